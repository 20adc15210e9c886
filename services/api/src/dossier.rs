//! `trainhub.v1.DossierService`: dossiers, listings, coverage, dispatch checks and appointment
//! lines. Handlers authorise, call the shared [`Queries`], account for the read and convert.

use crate::auth::{Caller, Role};
use crate::error::ApiError;
use std::pin::Pin;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};
use trainhub_model::dispatch::{self, GroupBy};
use trainhub_model::dossier as d;
use trainhub_model::values::date_opt;
use trainhub_pipeline::queries::{today, Backlog, Filter};
use trainhub_pipeline::{wire, Pipeline, Queries};
use trainhub_proto::v1::{self as pb, dossier_service_server::DossierService};
use trainhub_store::audit::AuditEntry;

/// The dossier service.
#[derive(Debug, Clone)]
pub struct Dossiers {
    pipeline: Pipeline,
    queries: Queries,
}

/// The stated purpose of a read of personal data: required.
fn purpose(stated: &str) -> Result<String, Status> {
    trainhub_pipeline::audit::purpose(stated).map_err(Status::invalid_argument)
}

/// The audit row of a dossier returned to `caller`.
fn audited(caller: &Caller, method: &str, purpose: &str, d: &pb::Dossier) -> AuditEntry {
    trainhub_pipeline::audit::dossier_read(&caller.audit_name(), method, purpose, d)
}

/// Writes the audit rows; the data is not returned unless they are stored.
pub async fn account(pipeline: &Pipeline, entries: &[AuditEntry]) -> Result<(), Status> {
    pipeline.store().audit(entries).await.map_err(|e| {
        tracing::error!(error = %e, "Audit trail unwritable; the read is refused.");
        Status::unavailable("the audit trail cannot be written; the read is refused")
    })
}

/// The response header of `ListDossiers`: how many persons wait for the projector (each listed
/// as last projected, or not at all when never projected).
pub const WAITING_HEADER: &str = "trainhub-waiting";

/// The persons a read of many will not see as current: waits for the projector first when the
/// caller asks (within its deadline, at most [`crate::deadline::MAX_WAIT`]), then counts them.
async fn backlog(
    queries: &Queries,
    wait: bool,
    deadline: Option<std::time::Duration>,
) -> Result<usize, Status> {
    if wait {
        queries
            .wait_for_projection(crate::deadline::wait_within(deadline))
            .await
            .map_err(ApiError::from)?;
    }
    Ok(queries.waiting().await.map_err(ApiError::from)?)
}

/// A dossier for `caller`: one of a person outside its authorities is refused the same way as
/// one of nobody (`PERMISSION_DENIED`, saying nothing of whether the person exists).
pub fn scoped(
    caller: &Caller,
    found: Result<d::Dossier, trainhub_pipeline::QueryError>,
) -> Result<d::Dossier, Status> {
    if caller.authorities().is_some() {
        match &found {
            Ok(d) => caller.may_read(Some(&d.authority))?,
            Err(trainhub_pipeline::QueryError::NotFound(_)) => caller.may_read(None)?,
            Err(_) => {}
        }
    }
    Ok(found.map_err(ApiError::from)?)
}

impl Dossiers {
    /// One person's dossier for a reader: the role checked, the purpose required, the person
    /// by national ID or key, at `as_of` (today when empty).
    async fn person(
        &self,
        caller: &Caller,
        national_id: &str,
        person_key: &str,
        as_of: &str,
        stated: &str,
    ) -> Result<(String, d::Dossier), Status> {
        caller.require(Role::DossierRead)?;
        let purpose = purpose(stated)?;
        let as_of = date_opt("as_of", as_of).map_err(ApiError::from)?;
        let found = self.queries.dossier(national_id, person_key, as_of).await;
        let dossier = scoped(caller, found)?;
        Ok((purpose, dossier))
    }

    /// Refuses a dispatch plan naming a person outside a scoped caller's authorities (or not
    /// by national ID, which a scoped caller must use).
    async fn plan_in_scope(&self, caller: &Caller, plan: &pb::DispatchPlan) -> Result<(), Status> {
        if caller.authorities().is_none() {
            return Ok(());
        }
        for person in &plan.persons {
            let found = self.queries.dossier(&person.national_id, "", None).await;
            match found {
                Ok(d) => caller.may_read(Some(&d.authority))?,
                Err(_) => caller.may_read(None)?,
            }
        }
        Ok(())
    }

    /// A service reading through `pipeline`'s store and rules. Reads of many persons answer
    /// at once from the projected state ([`Backlog::Report`]).
    pub fn new(pipeline: Pipeline) -> Self {
        Dossiers {
            queries: Queries::new(pipeline.clone()).with_backlog(Backlog::Report),
            pipeline,
        }
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
        let req = request.into_inner();
        let (purpose, dossier) = self
            .person(
                &caller,
                &req.national_id,
                &req.person_key,
                &req.as_of,
                &req.purpose,
            )
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
        let deadline = crate::deadline::of(&request);
        let req = request.into_inner();
        let purpose = purpose(&req.purpose)?;
        let filter = Filter::parse(req.filter.as_ref())
            .map_err(ApiError::from)?
            .within(caller.authorities());
        let as_of = date_opt("as_of", &req.as_of)
            .map_err(ApiError::from)?
            .unwrap_or_else(today);
        let waiting = backlog(&self.queries, req.wait_for_projection, deadline).await?;
        let mut pages = self
            .queries
            .pages(&filter, as_of, &req.page_token)
            .await
            .map_err(ApiError::from)?;
        let limit = if req.page_size > 0 {
            req.page_size as usize
        } else {
            usize::MAX
        };
        let pipeline = self.pipeline.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            let mut sent = 0usize;
            while sent < limit {
                let page = match pages.next(500).await {
                    Ok(Some(page)) => page,
                    Ok(None) => return,
                    Err(e) => {
                        let _ = tx.send(Err(Status::from(ApiError::from(e)))).await;
                        return;
                    }
                };
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
        let mut response: Response<Self::ListDossiersStream> =
            Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)));
        response
            .metadata_mut()
            .insert(WAITING_HEADER, (waiting as u64).into());
        Ok(response)
    }

    async fn get_coverage(
        &self,
        request: Request<pb::CoverageRequest>,
    ) -> Result<Response<pb::CoverageReport>, Status> {
        let caller = Caller::of(&request);
        caller.require(Role::CoverageRead)?;
        let deadline = crate::deadline::of(&request);
        let req = request.into_inner();
        let purpose = purpose(&req.purpose)?;
        let group_by = GroupBy::parse(&req.group_by).map_err(ApiError::from)?;
        let filter = Filter::parse(req.filter.as_ref())
            .map_err(ApiError::from)?
            .within(caller.authorities());
        let as_of = date_opt("as_of", &req.as_of)
            .map_err(ApiError::from)?
            .unwrap_or_else(today);
        let waiting = backlog(&self.queries, req.wait_for_projection, deadline).await?;
        let groups = self
            .queries
            .coverage(group_by, &filter, as_of)
            .await
            .map_err(ApiError::from)?;
        let entry = trainhub_pipeline::audit::coverage_read(
            &caller.audit_name(),
            &purpose,
            &req.group_by,
            as_of,
            &groups,
        );
        account(&self.pipeline, &[entry]).await?;
        Ok(Response::new(pb::CoverageReport {
            groups: groups
                .into_iter()
                .map(|(k, g)| wire::coverage_group(k, g))
                .collect(),
            as_of: as_of.to_string(),
            policy_version: self.pipeline.policy().version.clone(),
            waiting: waiting as i64,
        }))
    }

    async fn check_dispatch(
        &self,
        request: Request<pb::DispatchPlan>,
    ) -> Result<Response<pb::DispatchCheck>, Status> {
        let caller = Caller::of(&request);
        caller.require(Role::DossierRead)?;
        let plan = request.into_inner();
        self.plan_in_scope(&caller, &plan).await?;
        Ok(Response::new(
            self.queries
                .check_dispatch(&plan)
                .await
                .map_err(ApiError::from)?,
        ))
    }

    async fn get_appointment_lines(
        &self,
        request: Request<pb::AppointmentLinesRequest>,
    ) -> Result<Response<pb::AppointmentLines>, Status> {
        let caller = Caller::of(&request);
        let req = request.into_inner();
        let (purpose, dossier) = self
            .person(
                &caller,
                &req.national_id,
                &req.person_key,
                &req.as_of,
                &req.purpose,
            )
            .await?;
        let lines = dispatch::appointment_lines(&dossier);
        let entry = AuditEntry {
            principal: caller.audit_name(),
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
