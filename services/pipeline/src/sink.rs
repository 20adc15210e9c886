//! The one door every source comes in by ([`RecordSink`]): a connector decodes and maps its
//! own input into [`Inbound`] envelopes, one group per message, and the sink scopes them to
//! the connector's system, validates and commits them. Verdicts come back only after the
//! transaction committed (DESIGN §1, "no ack before durability").

use crate::{Inbound, Outcome, Pipeline};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use trainhub_model::merge::OutcomeStatus;
use trainhub_model::{ReasonCode, Rejection, Stage};

/// The envelopes of one batch of messages from one connector.
#[derive(Debug, Clone)]
pub struct Envelopes {
    /// Connector name (metrics, raw log, dead letters).
    pub connector: String,
    /// The partner system the connector speaks for: records of any other system are refused.
    pub system: String,
    /// The records each message decoded to, in delivery order; a message that could not be
    /// decoded is one rejected envelope carrying its bytes.
    pub messages: Vec<Vec<Inbound>>,
}

/// One message as a connector counts it and settles it with its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// The outcome.
    pub status: OutcomeStatus,
    /// For a rejected record: the stage that refused it.
    pub stage: &'static str,
    /// For a rejected record: the reason code.
    pub reason: &'static str,
}

impl Verdict {
    /// A record that was not rejected.
    pub fn stored(status: OutcomeStatus) -> Verdict {
        Verdict {
            status,
            stage: "",
            reason: "",
        }
    }

    /// How a connector counts a record's outcome.
    pub fn of(o: &Outcome) -> Verdict {
        match &o.rejection {
            Some(r) => Verdict {
                status: o.status,
                stage: r.stage.as_str(),
                reason: r.code.as_str(),
            },
            None => Verdict::stored(o.status),
        }
    }
}

/// Whether trying the same batch again can succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The store is unreachable, restarting or busy: try again later, unchanged.
    Transient,
    /// The store refused this data (a constraint, a trigger, a data exception): the same
    /// batch fails again. A connector finds the message at fault and dead-letters it.
    Permanent,
}

/// The sink failed as a whole: nothing of the batch was committed, and the connector must
/// not acknowledge any of it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct SinkError {
    /// Retry or dead-letter.
    pub kind: ErrorKind,
    /// The store's error, for the operator.
    pub message: String,
}

impl From<trainhub_store::Error> for SinkError {
    fn from(e: trainhub_store::Error) -> Self {
        SinkError {
            kind: if e.is_permanent() {
                ErrorKind::Permanent
            } else {
                ErrorKind::Transient
            },
            message: e.to_string(),
        }
    }
}

/// A boxed future of a sink's answer.
pub type SinkFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, SinkError>> + Send + 'a>>;

/// Validates and commits envelopes; one verdict per message, in order, only after the batch's
/// transaction committed. A `REJECTED` message is already in the dead-letter table then.
pub trait RecordSink: Send + Sync + 'static {
    /// Commits `batch`.
    fn commit(&self, batch: Envelopes) -> SinkFuture<'_, Vec<Verdict>>;

    /// Dead-letters one message whose commit the store refused for good (`cause`, stage
    /// `store`, reason `STORE_REFUSED`), with its bytes, so that it can be replayed once the
    /// cause is fixed. Returns its verdict (rejected).
    fn refuse(
        &self,
        connector: &str,
        system: &str,
        message: Vec<Inbound>,
        cause: &SinkError,
    ) -> SinkFuture<'_, Verdict>;
}

/// Connectors' entry into the pipeline.
#[derive(Debug, Clone)]
pub struct PipelineSink {
    pipeline: Pipeline,
}

impl PipelineSink {
    /// A sink committing through `pipeline`.
    pub fn new(pipeline: Pipeline) -> Arc<PipelineSink> {
        Arc::new(PipelineSink { pipeline })
    }
}

/// One message's verdict from its records': rejected only when every record was (then the
/// broker dead-letters the message too); otherwise the first stored record's. The records
/// refused meanwhile are in the hub's dead letters either way.
fn message_verdict(records: Vec<Verdict>) -> Verdict {
    records
        .iter()
        .find(|v| v.status != OutcomeStatus::Rejected)
        .or(records.first())
        .copied()
        .unwrap_or_else(|| Verdict::stored(OutcomeStatus::Duplicate))
}

impl RecordSink for PipelineSink {
    fn commit(&self, batch: Envelopes) -> SinkFuture<'_, Vec<Verdict>> {
        Box::pin(async move {
            let per_message: Vec<usize> = batch.messages.iter().map(Vec::len).collect();
            let all = batch.messages.into_iter().flatten();
            let prepared = self.pipeline.prepare_inbound(&batch.system, all);
            let outcomes = self.pipeline.commit(&batch.connector, prepared).await?;
            let mut outcomes = outcomes.iter();
            Ok(per_message
                .into_iter()
                .map(|n| message_verdict(outcomes.by_ref().take(n).map(Verdict::of).collect()))
                .collect())
        })
    }

    fn refuse(
        &self,
        connector: &str,
        system: &str,
        message: Vec<Inbound>,
        cause: &SinkError,
    ) -> SinkFuture<'_, Verdict> {
        let (connector, system) = (connector.to_owned(), system.to_owned());
        let rejection = Rejection {
            stage: Stage::Store,
            code: ReasonCode::StoreRefused,
            field: String::new(),
            message: format!("the store refused the record: {}", cause.message),
        };
        Box::pin(async move {
            let prepared = self.pipeline.prepare_refused(&system, message, &rejection);
            let outcomes = self.pipeline.commit(&connector, prepared).await?;
            Ok(message_verdict(outcomes.iter().map(Verdict::of).collect()))
        })
    }
}
