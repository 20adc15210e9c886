//! Partners' own formats, as the pipeline sees them: a [`NativeDecoder`] turns a payload in
//! a partner's format (CSV, a workbook, JSON, an LRMX form, an xAPI statement) into
//! [`Inbound`] envelopes. The connectors implement it with their readers and mapping
//! profiles; the binary hands it to the pipeline, so `SubmitNative` and dead-letter replay
//! decode exactly as the connector that first received the bytes, without the pipeline or the
//! gRPC handlers depending on any reader.

use crate::Inbound;
use std::collections::BTreeMap;
use std::sync::Arc;
use trainhub_model::{PersonKeyer, Rejection};

/// How a native record was made: the profile, the source format, and which source field
/// each canonical field came from (so a validation rejection names the partner's field).
#[derive(Debug, Clone)]
pub struct Native {
    /// `name@version` of the mapping profile; kept as the record's provenance.
    pub profile: String,
    /// The source format (`csv`, `jsonl`, `lrmx`, `xapi`, …).
    pub format: &'static str,
    /// Canonical field path → source path.
    pub origin: Arc<BTreeMap<String, String>>,
    /// The profile file, when the profile is an operator's file rather than a shipped one:
    /// replay reads it again from there (the fix is usually to that file).
    pub file: Option<Arc<str>>,
}

impl Native {
    /// `rejection` with its field named as the source has it: `A0184 (person.national_id)`.
    pub fn name_source(&self, mut rejection: Rejection) -> Rejection {
        if let Some(source) = self.origin.get(&rejection.field) {
            rejection.field = format!("{source} ({})", rejection.field);
        }
        rejection
    }

    /// The format tag a dead letter keeps, e.g. `csv:cadre-a01@1.0.0`, or
    /// `csv:cadre-local@1.0.0|/etc/trainhub/cadre-local.toml` for an operator's profile file:
    /// enough to decode the bytes again on replay.
    pub fn tag(&self) -> String {
        match &self.file {
            Some(file) => format!("{}:{}|{file}", self.format, self.profile),
            None => format!("{}:{}", self.format, self.profile),
        }
    }
}

/// A `SubmitNative` payload.
#[derive(Debug, Clone)]
pub struct NativePayload {
    /// A profile name (its current version is used).
    pub profile: String,
    /// How the payload is encoded (`text/csv`, `application/json`, …).
    pub content_type: String,
    /// The partner system the records are of.
    pub system: String,
    /// The bytes.
    pub payload: Vec<u8>,
}

/// A dead letter's bytes, to decode again.
#[derive(Debug, Clone)]
pub struct Letter<'a> {
    /// The tag kept with it (see [`Native::tag`]).
    pub format: &'a str,
    /// The system the receiving connector speaks for now.
    pub system: &'a str,
    /// The bytes as received.
    pub payload: &'a [u8],
    /// Transport headers kept with it (a JSON object), or empty.
    pub headers: &'a str,
    /// When the hub received it (RFC 3339): a document's version, an xAPI statement's
    /// `stored` time.
    pub received_at: &'a str,
}

/// Reads partners' formats (implemented by the connectors, wired by the binary).
pub trait NativeDecoder: Send + Sync + std::fmt::Debug {
    /// The records a payload maps to. `Err` refuses the request as a whole (an unknown
    /// profile or content type, an unreadable file) with a sentence naming the fix.
    fn payload(&self, payload: NativePayload, keyer: &PersonKeyer) -> Result<Vec<Inbound>, String>;

    /// The records a dead letter of a native format maps to now, with the profile's current
    /// version; `None` when the tag names no format this hub reads.
    fn letter(&self, letter: Letter<'_>, keyer: &PersonKeyer) -> Option<Vec<Inbound>>;
}
