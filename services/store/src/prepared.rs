//! A validated record turned into the column values it writes.

use sha2::{Digest, Sha256};
use trainhub_model::record::{Body, CanonicalRecord, PersonRef, SourceRef};

/// How many bytes of a record's SHA-256 its content hash keeps (migration 0027; 32 before).
/// 128 bits tell a repeated record from a changed one as surely as 256 would (two different
/// contents of one record collide with a chance under one in 2^64 even after 2^32 versions); the
/// other half cost 16 bytes a record. A hash stored before is compared by its first 16 bytes,
/// which order as the whole did wherever the two differ.
pub const HASH_BYTES: usize = 16;

/// The rows one record writes: raw log entry plus current-version candidate.
#[derive(Debug, Clone)]
pub struct PreparedRecord {
    /// Source identity and version.
    pub source: SourceRef,
    /// Tombstone.
    pub deleted: bool,
    /// Hex content hash: the first [`HASH_BYTES`] of the SHA-256 of the canonical content
    /// (kind, tombstone, body); tells a repeat from a change and breaks version ties.
    pub content_hash: String,
    /// The person the record belongs to (a person's own key, a link's person, or a reference
    /// by national ID).
    pub person_key: Option<String>,
    /// The account a record names its person by, or that a link ties.
    pub account: Option<(String, String)>,
    /// The class a record belongs to.
    pub class_id: Option<String>,
    /// The canonical body as JSON; `None` for a tombstone without body.
    pub body_json: Option<String>,
    /// The bytes as received.
    pub raw: Vec<u8>,
    /// Mapping profile and version that produced the record; empty for canonical input.
    pub profile: String,
    /// The dead letter this record is a replay of, marked replayed when it commits.
    pub replay_of: Option<i64>,
    /// The identity conflict this record is in by itself (a person record whose birth date is
    /// not its ID's): it waits for a reviewer unless that conflict is decided.
    pub conflict: Option<String>,
}

impl PreparedRecord {
    /// Prepares `record`, received as `raw` through `profile` (empty for canonical input).
    pub fn new(record: &CanonicalRecord, raw: Vec<u8>, profile: &str) -> Self {
        let body_json = record
            .body
            .as_ref()
            .map(|b| serde_json::to_string(b).expect("bodies always serialise"));
        let mut content = Sha256::new();
        content.update(record.source.kind.as_str());
        content.update([u8::from(record.deleted)]);
        content.update(body_json.as_deref().unwrap_or_default());
        let (person_key, account) = match &record.body {
            Some(Body::Person(p)) => (Some(p.person_key.as_str().to_owned()), None),
            Some(Body::Link(l)) => (
                Some(l.person_key.as_str().to_owned()),
                Some((l.account_system.clone(), l.account_id.clone())),
            ),
            Some(b) => match b.person_ref() {
                Some(PersonRef::Key(k)) => (Some(k.as_str().to_owned()), None),
                Some(PersonRef::Account {
                    account_system,
                    account_id,
                }) => (None, Some((account_system.clone(), account_id.clone()))),
                None => (None, None),
            },
            None => (None, None),
        };
        PreparedRecord {
            source: record.source.clone(),
            deleted: record.deleted,
            content_hash: hex::encode(&content.finalize()[..HASH_BYTES]),
            person_key,
            account,
            class_id: record
                .body
                .as_ref()
                .and_then(|b| b.class_id())
                .map(str::to_owned),
            body_json,
            raw,
            profile: profile.to_owned(),
            replay_of: None,
            conflict: match &record.body {
                Some(Body::Person(p)) => {
                    trainhub_model::review::birth_conflict(&record.source, p).map(|c| c.0)
                }
                _ => None,
            },
        }
    }
}
