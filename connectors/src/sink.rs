//! What a connector hands its messages to: the hub's pipeline, seen through a trait so that
//! connectors never touch the store (DESIGN §2).

use crate::profile::Profile;
pub use crate::status::Verdict;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use trainhub_proto::Format;

/// How a connector's messages encode their records (`format` in its configuration).
#[derive(Debug, Clone)]
pub enum Decoding {
    /// One canonical `trainhub.v1.Record` per message (`json` or `protobuf`).
    Canonical(Format),
    /// A partner's own payload per message, normalised by a mapping profile (`format` names
    /// the profile): a JSON object or array unless the message's `content_type` says CSV, JSON
    /// lines or XML. One message may map to several records.
    Profile(Arc<Profile>),
}

/// One message as a transport received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The body, exactly as received.
    pub payload: Vec<u8>,
    /// Transport headers and properties as a JSON object, kept with a dead letter.
    pub headers: String,
}

/// A batch from one connector.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Connector name (metrics, raw log, dead letters).
    pub connector: String,
    /// The partner system the connector speaks for: records of any other system are refused.
    pub system: String,
    /// How every payload encodes its records.
    pub format: Decoding,
    /// The messages, in delivery order.
    pub messages: Vec<Message>,
}

/// The sink failed as a whole: nothing of the batch was committed; the connector must not
/// acknowledge it and should try again later.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct SinkError(pub String);

/// A boxed future of a sink's answer.
pub type SinkFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<Verdict>, SinkError>> + Send + 'a>>;

/// Decodes, validates and commits a batch; returns one verdict per message, in order, only
/// after the batch's transaction committed. A `REJECTED` message is already in the
/// dead-letter table when this returns.
pub trait RecordSink: Send + Sync + 'static {
    /// Commits `batch`.
    fn commit(&self, batch: Batch) -> SinkFuture<'_>;
}
