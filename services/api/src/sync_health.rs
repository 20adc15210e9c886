//! `SyncHealthService`: dead letters for ops teams — listing and replay.

use crate::error::ApiError;
use crate::pipeline::Pipeline;
use tonic::{Request, Response, Status};
use trainhub_model::{ReasonCode, Rejection};
use trainhub_proto::v1 as pb;
use trainhub_store::read::{DeadLetter, LetterFilter};

/// Default and largest page of `ListDeadLetters`.
const PAGE: (i32, i32) = (100, 1000);
/// Default number of letters one `ReplayDeadLetters` by filter takes.
const REPLAY_LIMIT: i32 = 1000;

/// The service over the pipeline's store.
#[derive(Debug, Clone)]
pub struct SyncHealth {
    pipeline: Pipeline,
}

impl SyncHealth {
    /// The service over `pipeline`.
    pub fn new(pipeline: Pipeline) -> Self {
        SyncHealth { pipeline }
    }
}

fn bad(field: &str, message: String) -> Status {
    ApiError::Invalid(Rejection::invalid(ReasonCode::OutOfRange, field, message)).into()
}

/// A letter as sent on the wire.
pub fn letter_to_wire(l: DeadLetter) -> pb::DeadLetter {
    pb::DeadLetter {
        id: l.id.to_string(),
        connector: l.connector,
        stage: l.stage,
        reason_code: l.reason_code,
        message: l.message,
        payload: l.payload,
        received_at: l.received_at,
        format: l.format,
        headers: l.headers,
        system: l.system,
        kind: l.kind,
        record_id: l.record_id,
        replayed_at: l.replayed_at.unwrap_or_default(),
        replay_attempts: i32::try_from(l.replay_attempts).unwrap_or(i32::MAX),
    }
}

#[tonic::async_trait]
impl pb::sync_health_service_server::SyncHealthService for SyncHealth {
    async fn list_dead_letters(
        &self,
        request: Request<pb::ListDeadLettersRequest>,
    ) -> Result<Response<pb::ListDeadLettersResponse>, Status> {
        let r = request.into_inner();
        let size = match r.page_size {
            0 => PAGE.0,
            n if (1..=PAGE.1).contains(&n) => n,
            n => {
                return Err(bad(
                    "page_size",
                    format!("page_size {n} is not in 1..={}", PAGE.1),
                ))
            }
        };
        let before = match r.page_token.as_str() {
            "" => None,
            t => Some(t.parse::<i64>().map_err(|_| {
                bad(
                    "page_token",
                    "page_token is not one this service returned".into(),
                )
            })?),
        };
        let filter = LetterFilter {
            ids: Vec::new(),
            connector: r.connector,
            reason_code: r.reason_code,
            include_replayed: r.include_replayed,
        };
        let letters = self
            .pipeline
            .store()
            .dead_letters(&filter, before, i64::from(size) + 1)
            .await
            .map_err(ApiError::from)?;
        let more = letters.len() > size as usize;
        let letters: Vec<DeadLetter> = letters.into_iter().take(size as usize).collect();
        let next_page_token = match (more, letters.last()) {
            (true, Some(last)) => last.id.to_string(),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListDeadLettersResponse {
            dead_letters: letters.into_iter().map(letter_to_wire).collect(),
            next_page_token,
        }))
    }

    async fn replay_dead_letters(
        &self,
        request: Request<pb::ReplayDeadLettersRequest>,
    ) -> Result<Response<pb::ReplayDeadLettersResponse>, Status> {
        let r = request.into_inner();
        let ids = r
            .ids
            .iter()
            .map(|id| {
                id.parse::<i64>()
                    .map_err(|_| bad("ids", format!("`{id}` is not a dead-letter id")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let limit = match r.limit {
            0 => REPLAY_LIMIT,
            n if n > 0 => n,
            n => return Err(bad("limit", format!("limit {n} is negative"))),
        };
        let filter = LetterFilter {
            ids,
            connector: r.connector,
            reason_code: r.reason_code,
            include_replayed: false,
        };
        let replayed = self
            .pipeline
            .replay(&filter, i64::from(limit))
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(pb::ReplayDeadLettersResponse {
            letters: replayed
                .into_iter()
                .map(|r| pb::ReplayedLetter {
                    id: r.id.to_string(),
                    outcome: Some(r.outcome.into()),
                })
                .collect(),
        }))
    }
}
