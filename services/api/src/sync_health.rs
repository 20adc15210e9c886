//! `SyncHealthService`: connector status for ops teams, partner reconciliation, and dead
//! letters — listing and replay.

use crate::auth::{Caller, Role};
use crate::error::ApiError;
use tonic::{Request, Response, Status};
use trainhub_model::{ReasonCode, Rejection};
use trainhub_pipeline::Pipeline;
use trainhub_proto::v1 as pb;
use trainhub_store::read::{DeadLetter, LetterFilter};

/// Default and largest page of `ListDeadLetters`.
const PAGE: (i32, i32) = (100, 1000);
/// Default number of letters one `ReplayDeadLetters` by filter takes.
const REPLAY_LIMIT: i32 = 1000;

/// Where connector status comes from: the hub's registry of running connectors.
pub trait StatusSource: Send + Sync + 'static {
    /// Every connector's status now.
    fn connectors(&self) -> Vec<pb::ConnectorStatus>;
    /// Ticks whenever a connector changed state.
    fn changes(&self) -> tokio::sync::watch::Receiver<u64>;
    /// Turns true when the hub is shutting down: watch streams end then.
    fn closing(&self) -> tokio::sync::watch::Receiver<bool>;
    /// Notes a partner's count against what the hub stored.
    fn reconcile(&self, system: &str, r: pb::Reconciliation);
    /// This hub instance's id, as in each status's `instance`.
    fn instance(&self) -> String;
}

/// Another instance's status counts as current while it is at most this old; instances
/// republish every few seconds, so an instance that stopped or died drops out of the list.
pub const FRESH: std::time::Duration = std::time::Duration::from_secs(15);

/// The service over the pipeline's store and the hub's connectors.
#[derive(Clone)]
pub struct SyncHealth {
    pipeline: Pipeline,
    status: std::sync::Arc<dyn StatusSource>,
}

impl SyncHealth {
    /// The service over `pipeline` and `status`.
    pub fn new(pipeline: Pipeline, status: std::sync::Arc<dyn StatusSource>) -> Self {
        SyncHealth { pipeline, status }
    }
}

impl SyncHealth {
    /// This instance's connectors, then those other instances on the same store published
    /// within [`FRESH`] (each with its `instance`). When the store cannot be read, this
    /// instance's alone.
    async fn cluster(&self) -> Vec<pb::ConnectorStatus> {
        let mut out = self.status.connectors();
        match self
            .pipeline
            .store()
            .other_statuses(&self.status.instance(), FRESH)
            .await
        {
            Ok(rows) => out.extend(rows.into_iter().filter_map(|r| {
                prost::Message::decode(r.status.as_slice())
                    .inspect_err(|e| {
                        tracing::warn!(instance = %r.instance, error = %e,
                        "Unreadable status of another instance.")
                    })
                    .ok()
            })),
            Err(e) => tracing::warn!(error = %e, "Other instances' status unreadable."),
        }
        out
    }
}

/// An RFC 3339 instant in the store's own format (UTC, milliseconds), so that text order is
/// time order.
fn instant(field: &str, text: &str) -> Result<String, Status> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        })
        .map_err(|_| bad(field, format!("`{field}` is not an RFC 3339 instant")))
}

/// A request's `page_size`: the default for 0, refused outside `1..=1000`.
pub(crate) fn page_size(requested: i32) -> Result<i32, Status> {
    match requested {
        0 => Ok(PAGE.0),
        n if (1..=PAGE.1).contains(&n) => Ok(n),
        n => Err(bad(
            "page_size",
            format!("page_size {n} is not in 1..={}", PAGE.1),
        )),
    }
}

pub(crate) fn bad(field: &str, message: String) -> Status {
    ApiError::from(Rejection::invalid(ReasonCode::OutOfRange, field, message)).into()
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
        attempts: l
            .attempts
            .iter()
            .map(|a| pb::LetterAttempt {
                at: a.at.clone(),
                outcome: a.outcome.clone(),
                stage: a.stage.clone(),
                reason_code: a.reason_code.clone(),
                message: a.message.clone(),
            })
            .collect(),
    }
}

#[tonic::async_trait]
impl pb::sync_health_service_server::SyncHealthService for SyncHealth {
    async fn list_connectors(
        &self,
        request: Request<pb::ListConnectorsRequest>,
    ) -> Result<Response<pb::ListConnectorsResponse>, Status> {
        Caller::of(&request).require(Role::HealthRead)?;
        Ok(Response::new(pb::ListConnectorsResponse {
            connectors: self.cluster().await,
        }))
    }

    async fn get_connector(
        &self,
        request: Request<pb::GetConnectorRequest>,
    ) -> Result<Response<pb::ConnectorStatus>, Status> {
        Caller::of(&request).require(Role::HealthRead)?;
        let name = request.into_inner().name;
        // This instance's own connector first, else another instance's.
        self.cluster()
            .await
            .into_iter()
            .find(|c| c.name == name)
            .map(Response::new)
            .ok_or_else(|| Status::not_found(format!("no connector named `{name}`")))
    }

    type WatchConnectorsStream = std::pin::Pin<
        Box<dyn tokio_stream::Stream<Item = Result<pb::ConnectorStatus, Status>> + Send>,
    >;

    async fn watch_connectors(
        &self,
        request: Request<pb::WatchConnectorsRequest>,
    ) -> Result<Response<Self::WatchConnectorsStream>, Status> {
        Caller::of(&request).require(Role::HealthRead)?;
        let source = self.status.clone();
        let mut changes = source.changes();
        let mut closing = source.closing();
        let stream = async_stream::stream! {
            let mut sent: std::collections::HashMap<String, pb::ConnectorStatus> =
                std::collections::HashMap::new();
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            loop {
                for c in source.connectors() {
                    // Ages grow every second; compare what actually changed.
                    let mut key = c.clone();
                    key.oldest_unacked_seconds = 0.0;
                    key.silence_seconds = 0.0;
                    key.sparkline.clear();
                    if sent.get(&c.name) != Some(&key) {
                        sent.insert(c.name.clone(), key);
                        yield Ok(c);
                    }
                }
                if *closing.borrow() {
                    break;
                }
                tokio::select! {
                    changed = changes.changed() => if changed.is_err() { break },
                    _ = closing.changed() => break,
                    _ = tick.tick() => {}
                }
            }
        };
        Ok(Response::new(Box::pin(stream)))
    }

    async fn report_counts(
        &self,
        request: Request<pb::ReportCountsRequest>,
    ) -> Result<Response<pb::ReportCountsResponse>, Status> {
        // A partner reports its own counts; a reader with health:read may report any.
        let caller = Caller::of(&request);
        if caller.require(Role::HealthRead).is_err() {
            caller.require(Role::Ingest)?;
        }
        let r = request.into_inner();
        if r.system.is_empty() {
            return Err(bad("system", "`system` names the partner counting".into()));
        }
        if !caller.scope().is_empty() && caller.scope() != r.system {
            return Err(Status::permission_denied(format!(
                "a partner reports for its own system `{}`, not `{}`",
                caller.scope(),
                r.system
            )));
        }
        if r.count < 0 {
            return Err(bad("count", "`count` cannot be negative".into()));
        }
        let start = instant("period_start", &r.period_start)?;
        let end = instant("period_end", &r.period_end)?;
        if start >= end {
            return Err(bad("period_end", "the period ends before it starts".into()));
        }
        let stored = self
            .pipeline
            .store()
            .received_between(&r.system, &r.kind, &start, &end)
            .await
            .map_err(ApiError::from)?;
        self.status.reconcile(
            &r.system,
            pb::Reconciliation {
                kind: r.kind,
                period_start: start,
                period_end: end,
                reported: r.count,
                stored,
            },
        );
        Ok(Response::new(pb::ReportCountsResponse {
            reported: r.count,
            stored,
            difference: r.count - stored,
        }))
    }

    async fn list_dead_letters(
        &self,
        request: Request<pb::ListDeadLettersRequest>,
    ) -> Result<Response<pb::ListDeadLettersResponse>, Status> {
        Caller::of(&request).require(Role::HealthRead)?;
        let r = request.into_inner();
        let size = page_size(r.page_size)?;
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
        Caller::of(&request).require(Role::DlqReplay)?;
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
