//! Queries every front end shares (the gRPC services, the command line): a person's dossier,
//! coverage per group, dispatch checks. The rules are the model's; this reads the store and
//! applies them.

use crate::fresh::FreshPages;
use crate::{convert, Pipeline};
use chrono::NaiveDate;
use std::collections::BTreeMap;
use trainhub_model::codes::{Category, Rank};
use trainhub_model::dispatch::{self, CoverageGroup, GroupBy};
use trainhub_model::dossier::{self as d, Light};
use trainhub_model::record::PersonRef;
use trainhub_model::values::date_opt;
use trainhub_model::{NationalId, PersonKey, Rejection};
use trainhub_proto::v1 as pb;
use trainhub_store::projection::StateFilter;

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The request itself is invalid.
    #[error("{0}")]
    Invalid(#[from] Rejection),
    /// Nothing known under the given key.
    #[error("{0}")]
    NotFound(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] trainhub_store::Error),
    /// The caller asked to wait for the projector, and it had not caught up in time.
    #[error("{waiting} persons still wait for the projector after {waited:?}; ask again, or read without waiting (the answer then says how many persons wait)")]
    Waiting {
        /// Persons still waiting.
        waiting: usize,
        /// How long the read waited.
        waited: std::time::Duration,
    },
}

/// How often [`Queries::wait_for_projection`] looks at the marks.
const WAIT_TICK: std::time::Duration = std::time::Duration::from_millis(100);

/// A person named on a command line or in a form: a 64-hex `person_key`, else a national ID;
/// as the `(national_id, person_key)` pair [`Queries::dossier`] takes.
pub fn national_id_or_key(person: &str) -> (&str, &str) {
    if person.len() == 64 {
        ("", person)
    } else {
        (person, "")
    }
}

/// Today in the hub's time zone: the default `as_of` and the projection day.
pub fn today() -> NaiveDate {
    chrono::Local::now().date_naive()
}

/// How a read of many persons (coverage, listings, warning lists, a unit's load) treats the
/// persons still waiting for the projector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backlog {
    /// Computes each waiting person from its source records: exact, but the read's work grows
    /// with the backlog. The command line's choice: a batch with no caller's deadline.
    #[default]
    Compute,
    /// Answers at once from the projected state as it stands (a waiting person as last
    /// projected, a person never projected not at all); the caller learns how many persons
    /// wait from [`Queries::waiting`] and may [`Queries::wait_for_projection`] first. The
    /// network services' choice: a read never does the projector's work.
    Report,
}

/// Reads of dossiers, coverage and dispatch checks, shared by the gRPC services and the
/// command line. Reads only: the projection is kept by the projector loop.
#[derive(Debug, Clone)]
pub struct Queries {
    pipeline: Pipeline,
    backlog: Backlog,
}

impl Queries {
    /// Queries through `pipeline`'s store and rules, computing waiting persons
    /// ([`Backlog::Compute`]).
    pub fn new(pipeline: Pipeline) -> Self {
        Queries {
            pipeline,
            backlog: Backlog::Compute,
        }
    }

    /// These queries, treating the persons waiting for the projector as `backlog` says.
    pub fn with_backlog(mut self, backlog: Backlog) -> Self {
        self.backlog = backlog;
        self
    }

    /// How many persons wait for the projector now (their projected state is missing, stale,
    /// or of another day).
    pub async fn waiting(&self) -> Result<usize, QueryError> {
        Ok(self.pipeline.store().waiting_count().await?)
    }

    /// Waits until no person waits for the projector, for at most `within`; fails with
    /// [`QueryError::Waiting`] (how many still wait) when the time is up. The projector does
    /// the work; this only watches.
    pub async fn wait_for_projection(&self, within: std::time::Duration) -> Result<(), QueryError> {
        let until = tokio::time::Instant::now() + within;
        loop {
            if !self.pipeline.store().marks_pending().await? {
                return Ok(());
            }
            if tokio::time::Instant::now() + WAIT_TICK > until {
                return Err(QueryError::Waiting {
                    waiting: self.waiting().await?,
                    waited: within,
                });
            }
            tokio::time::sleep(WAIT_TICK).await;
        }
    }

    /// The persons a read of many computes from their source records: the stale ones under
    /// [`Backlog::Compute`], none under [`Backlog::Report`].
    pub(crate) async fn recompute(&self) -> Result<std::collections::BTreeSet<String>, QueryError> {
        Ok(match self.backlog {
            Backlog::Compute => self.pipeline.store().stale_persons().await?,
            Backlog::Report => Default::default(),
        })
    }

    /// The pipeline behind the queries.
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// The dossier of `key` at `as_of`.
    pub async fn dossier_of(
        &self,
        key: &PersonKey,
        as_of: NaiveDate,
    ) -> Result<d::Dossier, QueryError> {
        let records = self.pipeline.store().person_facts(key).await?;
        d::compute(key, &records, as_of, self.pipeline.policy())
            .ok_or_else(|| QueryError::NotFound(format!("no person is known under key {key}")))
    }

    /// The dossier of the person named by `national_id` or `person_key` at `as_of` (today when
    /// `None`).
    pub async fn dossier(
        &self,
        national_id: &str,
        person_key: &str,
        as_of: Option<NaiveDate>,
    ) -> Result<d::Dossier, QueryError> {
        let key = resolve_key(&self.pipeline, national_id, person_key)?;
        self.dossier_of(&key, as_of.unwrap_or_else(today)).await
    }

    /// Coverage per group at `as_of`. At the projection day, with every projected state
    /// current, the database aggregates the state; otherwise each person's records are read
    /// page by page (the stale ones from their source records) and aggregated here, never all
    /// in memory at once. Read only.
    pub async fn coverage(
        &self,
        group_by: GroupBy,
        filter: &Filter,
        as_of: NaiveDate,
    ) -> Result<BTreeMap<String, CoverageGroup>, QueryError> {
        let store = self.pipeline.store();
        let policy = self.pipeline.policy();
        let current = self.current(as_of).await?;
        let stale = self.recompute().await?;
        let mut pages = FreshPages::with_stale(store, filter.state(current), "", stale);
        if current && pages.all_current() {
            return Ok(store.coverage(group_by, &filter.state(true)).await?);
        }
        let mut groups: BTreeMap<String, CoverageGroup> = BTreeMap::new();
        while let Some(page) = pages.next(1000).await? {
            for (key, records) in &page {
                let Some(d) = d::compute(key, records, as_of, policy) else {
                    continue;
                };
                if d.in_scope && filter.matches(&d) {
                    groups
                        .entry(dispatch::group_key(&d, group_by))
                        .or_default()
                        .add(&d);
                }
            }
        }
        Ok(groups)
    }

    /// Pages of the persons `filter` may select, as the records say now (see [`FreshPages`]);
    /// the caller applies `filter.matches` to each computed dossier.
    pub async fn pages(
        &self,
        filter: &Filter,
        as_of: NaiveDate,
        after: &str,
    ) -> Result<FreshPages, QueryError> {
        let state = filter.state(self.current(as_of).await?);
        let stale = self.recompute().await?;
        Ok(FreshPages::with_stale(
            self.pipeline.store(),
            state,
            after,
            stale,
        ))
    }

    /// Whether the projected summary columns hold for `as_of`: it is today, and every state
    /// was projected today (the projector brings them over when the date changes).
    async fn current(&self, as_of: NaiveDate) -> Result<bool, QueryError> {
        Ok(as_of == today() && self.pipeline.store().projected_on(as_of).await?)
    }

    /// Checks a dispatch plan.
    pub async fn check_dispatch(
        &self,
        plan: &pb::DispatchPlan,
    ) -> Result<pb::DispatchCheck, QueryError> {
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
                        .map(crate::wire::flag)
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
        // Read once for every unit's pass.
        let stale = if planned_by_unit.is_empty() {
            Default::default()
        } else {
            self.recompute().await?
        };
        for (unit, planned) in planned_by_unit {
            let mut away = 0i64;
            let mut in_scope = 0i64;
            let filter = StateFilter {
                unit_code: Some(unit.clone()),
                ..Default::default()
            };
            let mut pages = FreshPages::with_stale(store, filter, "", stale.clone());
            while let Some(page) = pages.next(1000).await? {
                for (key, records) in &page {
                    let Some(d) = d::compute(key, records, as_of, policy)
                        .filter(|d| d.in_scope && d.unit_code == unit)
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
    authority: Option<String>,
    /// The authorities a scoped reader may see; `None` for all.
    scope: Option<std::collections::BTreeSet<String>>,
}

impl Filter {
    /// This filter, narrowed to the persons of `scope` (a reader's authorities; `None` for
    /// all).
    pub fn within(mut self, scope: Option<&std::collections::BTreeSet<String>>) -> Filter {
        self.scope = scope.cloned();
        self
    }

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
            authority: trainhub_model::values::text_opt(&f.authority),
            scope: None,
        })
    }

    /// The part the database can apply; rank and light only at the projection day.
    pub fn state(&self, projection_day: bool) -> StateFilter {
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
            authority: self.authority.clone(),
            authorities: self.scope.as_ref().map(|s| s.iter().cloned().collect()),
        }
    }

    /// Whether a computed dossier passes the whole filter.
    pub fn matches(&self, d: &d::Dossier) -> bool {
        self.rank.is_none_or(|r| d.rank == Some(r))
            && self.light.is_none_or(|l| d.light == l)
            && self.category.is_none_or(|c| d.category == Some(c))
            && self.unit_code.as_ref().is_none_or(|u| &d.unit_code == u)
            && self
                .region_code
                .as_ref()
                .is_none_or(|r| &d.region_code == r)
            && self.authority.as_ref().is_none_or(|a| &d.authority == a)
            && self.scope.as_ref().is_none_or(|s| s.contains(&d.authority))
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
