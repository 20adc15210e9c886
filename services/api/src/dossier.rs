//! `trainhub.v1.DossierService`: dossiers, listings, coverage, dispatch checks and appointment
//! lines. Handlers parse, read the projected facts, apply the model's rules and convert.

use crate::auth::{Caller, Role};
use crate::convert;
use crate::error::ApiError;
use crate::pipeline::Pipeline;
use crate::wire;
use chrono::NaiveDate;
use std::collections::BTreeMap;
use std::pin::Pin;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};
use trainhub_model::codes::{Category, Rank};
use trainhub_model::dispatch::{self, CoverageGroup, GroupBy};
use trainhub_model::dossier::{self as d, Light};
use trainhub_model::record::PersonRef;
use trainhub_model::values::date_opt;
use trainhub_model::{NationalId, PersonKey, Rejection};
use trainhub_proto::v1::{self as pb, dossier_service_server::DossierService};
use trainhub_store::audit::AuditEntry;
use trainhub_store::projection::StateFilter;

/// The dossier service.
#[derive(Debug, Clone)]
pub struct Dossiers {
    pipeline: Pipeline,
}

/// The stated purpose of a read of personal data (e.g. `appointment-review`): required, one
/// line of at most 200 characters.
fn purpose(stated: &str) -> Result<String, Status> {
    let p = stated.trim();
    if p.is_empty() {
        return Err(Status::invalid_argument(
            "`purpose` is required: say why the data is read, e.g. `appointment-review`",
        ));
    }
    if p.chars().count() > 200 || p.chars().any(char::is_control) {
        return Err(Status::invalid_argument(
            "`purpose` must be one line of at most 200 characters",
        ));
    }
    Ok(p.to_owned())
}

/// The audit row of a dossier returned to `caller`.
fn audited(caller: &Caller, method: &str, purpose: &str, d: &pb::Dossier) -> AuditEntry {
    AuditEntry {
        principal: caller.name().to_owned(),
        method: method.to_owned(),
        person_key: d.person_key.clone(),
        purpose: purpose.to_owned(),
        returned: format!(
            "dossier as_of {} light {:?} credited {} of {} hours, {} trainings, {} flags",
            d.as_of,
            d.light(),
            d.credited_hours,
            d.required_hours,
            d.trainings.len(),
            d.flags.len()
        ),
    }
}

/// Writes the audit rows; the data is not returned unless they are stored.
pub(crate) async fn account(pipeline: &Pipeline, entries: &[AuditEntry]) -> Result<(), Status> {
    pipeline.store().audit(entries).await.map_err(|e| {
        tracing::error!(error = %e, "Audit trail unwritable; the read is refused.");
        Status::unavailable("the audit trail cannot be written; the read is refused")
    })
}

/// Today in the hub's time zone: the default `as_of` and the projection day.
pub fn today() -> NaiveDate {
    chrono::Local::now().date_naive()
}

impl Dossiers {
    /// A service reading through `pipeline`'s store and rules.
    pub fn new(pipeline: Pipeline) -> Self {
        Dossiers { pipeline }
    }

    /// The dossier of `key` at `as_of`.
    pub async fn dossier_of(
        &self,
        key: &PersonKey,
        as_of: NaiveDate,
    ) -> Result<d::Dossier, ApiError> {
        let records = self.pipeline.store().person_facts(key).await?;
        d::compute(key, &records, as_of, self.pipeline.policy())
            .ok_or_else(|| ApiError::NotFound(format!("no person is known under key {key}")))
    }

    /// The dossier of the person named by `national_id` or `person_key` at `as_of` (today when
    /// `None`).
    pub async fn dossier(
        &self,
        national_id: &str,
        person_key: &str,
        as_of: Option<NaiveDate>,
    ) -> Result<d::Dossier, ApiError> {
        let key = resolve_key(&self.pipeline, national_id, person_key)?;
        self.dossier_of(&key, as_of.unwrap_or_else(today)).await
    }

    /// Coverage per group at `as_of`. At the projection day (today) the database aggregates the
    /// maintained state; for another day each person's facts are streamed page by page and
    /// aggregated here, never all in memory at once.
    pub async fn coverage(
        &self,
        group_by: GroupBy,
        filter: &Filter,
        as_of: NaiveDate,
    ) -> Result<BTreeMap<String, CoverageGroup>, ApiError> {
        let store = self.pipeline.store();
        let policy = self.pipeline.policy();
        if as_of == today() {
            store.project_all(policy, as_of).await?;
            return Ok(store.coverage(group_by, &filter.state(true)).await?);
        }
        let mut groups: BTreeMap<String, CoverageGroup> = BTreeMap::new();
        let mut after = String::new();
        loop {
            let page = store.state_page(&filter.state(false), &after, 1000).await?;
            let Some((last, _)) = page.last() else { break };
            after = last.to_string();
            for (key, records) in &page {
                if let Some(d) =
                    d::compute(key, records, as_of, policy).filter(|d| filter.matches(d))
                {
                    if d.in_scope {
                        groups
                            .entry(dispatch::group_key(&d, group_by))
                            .or_default()
                            .add(&d);
                    }
                }
            }
        }
        Ok(groups)
    }

    /// Checks a dispatch plan.
    pub async fn check_dispatch(
        &self,
        plan: &pb::DispatchPlan,
    ) -> Result<pb::DispatchCheck, ApiError> {
        let class = convert::training_class(
            plan.class
                .as_ref()
                .ok_or_else(|| Rejection::missing("class"))?,
        )?;
        let as_of =
            date_opt("as_of", &plan.as_of)?.unwrap_or_else(|| today().max(class.start_date));
        let store = self.pipeline.store();
        let policy = self.pipeline.policy();
        let mut persons = Vec::new();
        let mut planned_by_unit: BTreeMap<String, Vec<PersonKey>> = BTreeMap::new();
        for (index, r) in plan.persons.iter().enumerate() {
            let field = format!("persons[{index}]");
            let key = match convert::reader_person_ref(&field, r, self.pipeline.keyer())? {
                PersonRef::Key(k) => Some(k),
                PersonRef::Account {
                    account_system,
                    account_id,
                } => {
                    store
                        .person_for_account(&account_system, &account_id)
                        .await?
                }
            };
            let mut entry = pb::PersonDispatch {
                index: index as i32,
                ..Default::default()
            };
            if let Some(key) = key {
                let records = store.person_facts(&key).await?;
                entry.person_key = key.to_string();
                if let Some(d) = d::compute(&key, &records, as_of, policy) {
                    entry.known = true;
                    entry.name = d.name.clone();
                    entry.unit_code = d.unit_code.clone();
                    entry.red = d.light == Light::Red;
                    entry.violations = dispatch::violations(&key, &records, &class, as_of, policy)
                        .iter()
                        .map(wire::flag)
                        .collect();
                    planned_by_unit
                        .entry(d.unit_code.clone())
                        .or_default()
                        .push(key);
                }
            }
            persons.push(entry);
        }
        let mut units = Vec::new();
        for (unit, planned) in planned_by_unit {
            let mut away = 0i64;
            let mut in_scope = 0i64;
            let mut after = String::new();
            let filter = StateFilter {
                unit_code: Some(unit.clone()),
                ..Default::default()
            };
            loop {
                let page = store.state_page(&filter, &after, 1000).await?;
                let Some((last, _)) = page.last() else { break };
                after = last.to_string();
                for (key, records) in &page {
                    let Some(d) = d::compute(key, records, as_of, policy).filter(|d| d.in_scope)
                    else {
                        continue;
                    };
                    in_scope += 1;
                    if planned.contains(key)
                        || dispatch::away_during(&d, class.start_date, class.end_date)
                    {
                        away += 1;
                    }
                }
            }
            let share = if in_scope == 0 {
                1.0
            } else {
                away as f64 / in_scope as f64
            };
            units.push(pb::UnitLoad {
                unit_code: unit,
                in_scope,
                away,
                share,
                overloaded: share > policy.unit_overload_share + 1e-9,
            });
        }
        let ok =
            persons.iter().all(|p| p.violations.is_empty()) && units.iter().all(|u| !u.overloaded);
        Ok(pb::DispatchCheck { persons, units, ok })
    }
}

/// A listing/coverage filter, validated.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    unit_code: Option<String>,
    rank: Option<Rank>,
    category: Option<Category>,
    region_code: Option<String>,
    light: Option<Light>,
}

impl Filter {
    /// Validates the wire filter.
    pub fn parse(f: Option<&pb::DossierFilter>) -> Result<Filter, Rejection> {
        let Some(f) = f else {
            return Ok(Filter::default());
        };
        let light = match pb::Light::try_from(f.light).unwrap_or(pb::Light::Unspecified) {
            pb::Light::Unspecified => None,
            pb::Light::Red => Some(Light::Red),
            pb::Light::Yellow => Some(Light::Yellow),
            pb::Light::Green => Some(Light::Green),
            pb::Light::Exempt => Some(Light::Exempt),
        };
        Ok(Filter {
            unit_code: trainhub_model::values::text_opt(&f.unit_code),
            rank: Rank::parse_opt("filter.rank", &f.rank)?,
            category: Category::parse_opt("filter.category", &f.category)?,
            region_code: trainhub_model::values::text_opt(&f.region_code),
            light,
        })
    }

    /// The part the database can apply; rank and light only at the projection day.
    fn state(&self, projection_day: bool) -> StateFilter {
        StateFilter {
            unit_code: self.unit_code.clone(),
            category: self.category.map(|c| c.as_str().to_owned()),
            region_code: self.region_code.clone(),
            rank: self
                .rank
                .filter(|_| projection_day)
                .map(|r| r.as_str().to_owned()),
            light: self
                .light
                .filter(|_| projection_day)
                .map(|l| l.as_str().to_owned()),
        }
    }

    /// Whether a computed dossier passes the whole filter.
    pub fn matches(&self, d: &d::Dossier) -> bool {
        self.rank.is_none_or(|r| d.rank == Some(r)) && self.light.is_none_or(|l| d.light == l)
    }
}

/// The person key a reader asks for, by national ID or directly.
pub fn resolve_key(
    pipeline: &Pipeline,
    national_id: &str,
    person_key: &str,
) -> Result<PersonKey, Rejection> {
    if !national_id.trim().is_empty() {
        let id = NationalId::parse("national_id", national_id)?;
        Ok(pipeline.keyer().key(&id))
    } else {
        PersonKey::parse("national_id or person_key", person_key)
    }
}

type DossierStream = Pin<Box<dyn Stream<Item = Result<pb::Dossier, Status>> + Send>>;

#[tonic::async_trait]
impl DossierService for Dossiers {
    async fn get_dossier(
        &self,
        request: Request<pb::GetDossierRequest>,
    ) -> Result<Response<pb::Dossier>, Status> {
        let caller = Caller::of(&request);
        caller.require(Role::DossierRead)?;
        let req = request.into_inner();
        let purpose = purpose(&req.purpose)?;
        let as_of = date_opt("as_of", &req.as_of).map_err(ApiError::from)?;
        let dossier = self
            .dossier(&req.national_id, &req.person_key, as_of)
            .await?;
        let out = wire::dossier(&dossier);
        account(
            &self.pipeline,
            &[audited(&caller, "GetDossier", &purpose, &out)],
        )
        .await?;
        Ok(Response::new(out))
    }

    type ListDossiersStream = DossierStream;

    async fn list_dossiers(
        &self,
        request: Request<pb::ListDossiersRequest>,
    ) -> Result<Response<Self::ListDossiersStream>, Status> {
        let caller = Caller::of(&request);
        caller.require(Role::DossierRead)?;
        let req = request.into_inner();
        let purpose = purpose(&req.purpose)?;
        let filter = Filter::parse(req.filter.as_ref()).map_err(ApiError::from)?;
        let as_of = date_opt("as_of", &req.as_of)
            .map_err(ApiError::from)?
            .unwrap_or_else(today);
        let projection_day = as_of == today();
        if projection_day {
            let store = self.pipeline.store();
            store
                .project_all(self.pipeline.policy(), as_of)
                .await
                .map_err(ApiError::from)?;
        }
        let limit = if req.page_size > 0 {
            req.page_size as usize
        } else {
            usize::MAX
        };
        let pipeline = self.pipeline.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            let mut after = req.page_token;
            let mut sent = 0usize;
            let state = filter.state(projection_day);
            while sent < limit {
                let page = match pipeline.store().state_page(&state, &after, 500).await {
                    Ok(page) => page,
                    Err(e) => {
                        let _ = tx.send(Err(Status::from(ApiError::from(e)))).await;
                        return;
                    }
                };
                let Some((last, _)) = page.last() else { return };
                after = last.to_string();
                let mut out = Vec::new();
                for (key, records) in &page {
                    let Some(d) = d::compute(key, records, as_of, pipeline.policy()) else {
                        continue;
                    };
                    if filter.matches(&d) && sent + out.len() < limit {
                        out.push(wire::dossier(&d));
                    }
                }
                // A page is accounted for before any of it leaves.
                let entries: Vec<AuditEntry> = out
                    .iter()
                    .map(|d| audited(&caller, "ListDossiers", &purpose, d))
                    .collect();
                if let Err(status) = account(&pipeline, &entries).await {
                    let _ = tx.send(Err(status)).await;
                    return;
                }
                for d in out {
                    if tx.send(Ok(d)).await.is_err() {
                        return; // the reader went away
                    }
                    sent += 1;
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn get_coverage(
        &self,
        request: Request<pb::CoverageRequest>,
    ) -> Result<Response<pb::CoverageReport>, Status> {
        let caller = Caller::of(&request);
        caller.require(Role::CoverageRead)?;
        let req = request.into_inner();
        let purpose = purpose(&req.purpose)?;
        let group_by = GroupBy::parse(&req.group_by).map_err(ApiError::from)?;
        let filter = Filter::parse(req.filter.as_ref()).map_err(ApiError::from)?;
        let as_of = date_opt("as_of", &req.as_of)
            .map_err(ApiError::from)?
            .unwrap_or_else(today);
        let groups = self.coverage(group_by, &filter, as_of).await?;
        let red: i64 = groups.values().map(|g| g.red).sum();
        let entry = AuditEntry {
            principal: caller.name().to_owned(),
            method: "GetCoverage".into(),
            person_key: String::new(),
            purpose,
            returned: format!(
                "coverage by {} as_of {as_of}: {} groups, {red} persons on RED lists",
                req.group_by,
                groups.len()
            ),
        };
        account(&self.pipeline, &[entry]).await?;
        Ok(Response::new(pb::CoverageReport {
            groups: groups
                .iter()
                .map(|(k, g)| wire::coverage_group(k, g))
                .collect(),
            as_of: as_of.to_string(),
            policy_version: self.pipeline.policy().version.clone(),
        }))
    }

    async fn check_dispatch(
        &self,
        request: Request<pb::DispatchPlan>,
    ) -> Result<Response<pb::DispatchCheck>, Status> {
        Caller::of(&request).require(Role::DossierRead)?;
        Ok(Response::new(
            self.check_dispatch(&request.into_inner()).await?,
        ))
    }

    async fn get_appointment_lines(
        &self,
        request: Request<pb::AppointmentLinesRequest>,
    ) -> Result<Response<pb::AppointmentLines>, Status> {
        let caller = Caller::of(&request);
        caller.require(Role::DossierRead)?;
        let req = request.into_inner();
        let purpose = purpose(&req.purpose)?;
        let as_of = date_opt("as_of", &req.as_of).map_err(ApiError::from)?;
        let dossier = self
            .dossier(&req.national_id, &req.person_key, as_of)
            .await?;
        let lines = dispatch::appointment_lines(&dossier);
        let entry = AuditEntry {
            principal: caller.name().to_owned(),
            method: "GetAppointmentLines".into(),
            person_key: dossier.person_key.to_string(),
            purpose,
            returned: format!("{} appointment-form lines", lines.len()),
        };
        account(&self.pipeline, &[entry]).await?;
        Ok(Response::new(pb::AppointmentLines {
            person_key: dossier.person_key.to_string(),
            jianli: lines.join("\n"),
            lines,
        }))
    }
}
