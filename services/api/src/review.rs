//! `ReviewService` (DESIGN §4, §6.2): unmatched records and identity conflicts for operators,
//! and their decisions. The rules live in `trainhub_model::review`; the projector applies them.

use crate::auth::{Caller, Role};
use crate::dossier::account;
use crate::error::ApiError;
use crate::sync_health::{bad, page_size};
use tonic::{Request, Response, Status};
use trainhub_model::review::ConflictKind;
use trainhub_pipeline::Pipeline;
use trainhub_proto::v1 as pb;
use trainhub_proto::v1::review_service_server::ReviewService;
use trainhub_store::audit::AuditEntry;
use trainhub_store::review::{ConflictRow, Resolution, UnmatchedRow};

/// The service.
#[derive(Clone)]
pub struct Review {
    pipeline: Pipeline,
}

impl Review {
    /// A service over `pipeline`'s store.
    pub fn new(pipeline: Pipeline) -> Self {
        Review { pipeline }
    }
}

/// What an audit row says the review call was for.
const PURPOSE: &str = "identity-review";

fn source_to_wire(s: &trainhub_model::record::SourceRef) -> pb::SourceRef {
    pb::SourceRef {
        system: s.system.clone(),
        kind: s.kind.as_str().to_owned(),
        record_id: s.record_id.clone(),
        version: s.version,
    }
}

fn kind_to_wire(k: ConflictKind) -> pb::ConflictKind {
    match k {
        ConflictKind::AccountLinkedTwice => pb::ConflictKind::AccountLinkedTwice,
        ConflictKind::BirthDateMismatch => pb::ConflictKind::BirthDateMismatch,
        ConflictKind::NameMismatch => pb::ConflictKind::NameMismatch,
    }
}

fn conflict_to_wire(row: ConflictRow) -> pb::Conflict {
    let c = row.conflict;
    let (account_system, account_id) = c.account.unwrap_or_default();
    pb::Conflict {
        id: c.id,
        kind: kind_to_wire(c.kind) as i32,
        status: row.status,
        person_keys: c.persons.iter().map(|p| p.to_string()).collect(),
        account_system,
        account_id,
        sides: c
            .sides
            .iter()
            .map(|s| pb::ConflictSide {
                source: Some(source_to_wire(&s.source)),
                received_at: s.received_at.clone(),
                person_key: s.person_key.to_string(),
                name: s.name.clone(),
                birth_date: s.birth_date.map(|d| d.to_string()).unwrap_or_default(),
                choice: s.choice.clone(),
            })
            .collect(),
        detected_at: row.detected_at,
        choice: row.choice.unwrap_or_default(),
        note: row.note.unwrap_or_default(),
        resolved_by: row.resolved_by.unwrap_or_default(),
        resolved_at: row.resolved_at.unwrap_or_default(),
    }
}

fn unmatched_to_wire(r: UnmatchedRow) -> pb::UnmatchedRecord {
    let (account_system, account_id) = r.account.unwrap_or_default();
    pb::UnmatchedRecord {
        source: Some(source_to_wire(&r.source)),
        received_at: r.received_at,
        reason: r.reason.to_owned(),
        person_key: r.person_key.unwrap_or_default(),
        account_system,
        account_id,
        conflict_id: r.conflict_id.unwrap_or_default(),
    }
}

/// One audit row per person a conflict shows.
fn audited(caller: &Caller, method: &str, c: &pb::Conflict) -> Vec<AuditEntry> {
    c.person_keys
        .iter()
        .map(|p| AuditEntry {
            principal: caller.name().to_owned(),
            method: method.to_owned(),
            person_key: p.clone(),
            purpose: PURPOSE.to_owned(),
            returned: format!(
                "conflict {} {} ({}), {} sides",
                c.id,
                c.kind().as_str_name(),
                c.status,
                c.sides.len()
            ),
        })
        .collect()
}

/// Unmatched page tokens: the last record's `system`, `kind` and `record_id`, hex-encoded.
fn unmatched_token(s: &pb::SourceRef) -> String {
    hex::encode(format!("{}\0{}\0{}", s.system, s.kind, s.record_id))
}

fn parse_unmatched_token(token: &str) -> Result<(String, String, String), Status> {
    let refuse = || {
        bad(
            "page_token",
            "page_token is not one this service returned".into(),
        )
    };
    if token.is_empty() {
        return Ok(Default::default());
    }
    let text = hex::decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(refuse)?;
    let mut parts = text.splitn(3, '\0');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(a), Some(b), Some(c)) => Ok((a.to_owned(), b.to_owned(), c.to_owned())),
        _ => Err(refuse()),
    }
}

#[tonic::async_trait]
impl ReviewService for Review {
    async fn list_unmatched(
        &self,
        request: Request<pb::ListUnmatchedRequest>,
    ) -> Result<Response<pb::ListUnmatchedResponse>, Status> {
        Caller::of(&request).require(Role::ReviewWrite)?;
        let r = request.into_inner();
        let size = page_size(r.page_size)? as usize;
        let after = parse_unmatched_token(&r.page_token)?;
        let rows = self
            .pipeline
            .store()
            .list_unmatched((&after.0, &after.1, &after.2), size as i64 + 1)
            .await
            .map_err(ApiError::from)?;
        let more = rows.len() > size;
        let records: Vec<pb::UnmatchedRecord> =
            rows.into_iter().take(size).map(unmatched_to_wire).collect();
        let next_page_token = match (more, records.last().and_then(|r| r.source.as_ref())) {
            (true, Some(s)) => unmatched_token(s),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListUnmatchedResponse {
            records,
            next_page_token,
        }))
    }

    async fn list_conflicts(
        &self,
        request: Request<pb::ListConflictsRequest>,
    ) -> Result<Response<pb::ListConflictsResponse>, Status> {
        let caller = Caller::of(&request);
        caller.require(Role::ReviewWrite)?;
        let r = request.into_inner();
        let size = page_size(r.page_size)? as usize;
        let store = self.pipeline.store();
        let rows = store
            .list_conflicts(r.include_closed, &r.page_token, size as i64 + 1)
            .await
            .map_err(ApiError::from)?;
        let more = rows.len() > size;
        let mut conflicts = Vec::with_capacity(size);
        for row in rows.into_iter().take(size) {
            conflicts.push(conflict_to_wire(with_names(store, row).await?));
        }
        let entries: Vec<AuditEntry> = conflicts
            .iter()
            .flat_map(|c| audited(&caller, "ListConflicts", c))
            .collect();
        account(&self.pipeline, &entries).await?;
        let next_page_token = match (more, conflicts.last()) {
            (true, Some(c)) => c.id.clone(),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListConflictsResponse {
            conflicts,
            next_page_token,
        }))
    }

    async fn resolve_conflict(
        &self,
        request: Request<pb::ResolveConflictRequest>,
    ) -> Result<Response<pb::Conflict>, Status> {
        let caller = Caller::of(&request);
        caller.require(Role::ReviewWrite)?;
        let r = request.into_inner();
        if r.conflict_id.trim().is_empty() {
            return Err(bad("conflict_id", "`conflict_id` is required".into()));
        }
        if r.note.len() > 2_000 {
            return Err(bad("note", "`note` is longer than 2,000 bytes".into()));
        }
        let store = self.pipeline.store();
        let done = store
            .resolve_conflict(
                r.conflict_id.trim(),
                r.choice.trim(),
                &r.note,
                caller.name(),
            )
            .await
            .map_err(ApiError::from)?;
        let row = match done {
            Resolution::Resolved(row) => *row,
            Resolution::NotFound => {
                return Err(Status::not_found(format!(
                    "no conflict `{}`",
                    r.conflict_id.trim()
                )))
            }
            Resolution::Cleared => {
                return Err(Status::failed_precondition(format!(
                    "conflict `{}` is cleared: its records no longer conflict",
                    r.conflict_id.trim()
                )))
            }
            Resolution::BadChoice(choices) => {
                return Err(bad(
                    "choice",
                    format!(
                        "`choice` must be one of the sides' choices: {}",
                        choices.join(", ")
                    ),
                ))
            }
        };
        tracing::info!(
            conflict = %row.conflict.id,
            kind = row.conflict.kind.as_str(),
            by = caller.name(),
            "Identity conflict resolved."
        );
        let out = conflict_to_wire(with_names(store, row).await?);
        account(&self.pipeline, &audited(&caller, "ResolveConflict", &out)).await?;
        Ok(Response::new(out))
    }
}

/// Fills in the persons' names on the sides of an account conflict (links carry none), so a
/// reviewer sees whom the account is claimed by.
async fn with_names(
    store: &trainhub_store::Store,
    mut row: ConflictRow,
) -> Result<ConflictRow, Status> {
    if row.conflict.kind != ConflictKind::AccountLinkedTwice {
        return Ok(row);
    }
    for side in &mut row.conflict.sides {
        if let Some(name) = store
            .person_name(&side.person_key)
            .await
            .map_err(ApiError::from)?
        {
            side.name = name;
        }
    }
    Ok(row)
}
