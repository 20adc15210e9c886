//! Partners' own formats into the pipeline: rows of a file or payload, mapped by a profile,
//! become [`Inbound`] records that carry the profile (provenance) and where each canonical
//! field came from (so a rejection names the partner's field). Shared by `SubmitNative` and
//! `trainhub import`.

use crate::pipeline::{Inbound, Native};
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use trainhub_connectors::files::{FileFormat, Row};
use trainhub_connectors::profile::{Profile, SHIPPED};
use trainhub_model::PersonKeyer;
use trainhub_proto::Format;

/// The records one row maps to (a row that is not readable, or does not map, is one rejected
/// record); `headers` (a JSON object: file, row, …) is kept with any dead letter.
pub fn inbound_of_row(
    profile: &Profile,
    system: &str,
    keyer: &PersonKeyer,
    format: FileFormat,
    row: &Row,
    headers: &str,
) -> Vec<Inbound> {
    let mapped = match &row.source {
        Ok(source) => profile.map(system, source.as_ref(), keyer),
        Err(rejection) => vec![Err(rejection.clone())],
    };
    mapped
        .into_iter()
        .map(|m| {
            let (record, origin) = match m {
                Ok(m) => (Ok(m.record), m.origin),
                Err(r) => (Err(r), Arc::default()),
            };
            Inbound {
                record,
                payload: row.payload.clone(),
                format: Format::Json,
                headers: headers.to_owned(),
                replay_of: None,
                native: Some(Native {
                    profile: profile.id(),
                    format: format.as_str(),
                    origin,
                }),
            }
        })
        .collect()
}

/// A shipped profile by name, parsed once.
pub fn shipped(name: &str) -> Option<Arc<Profile>> {
    static PROFILES: OnceLock<BTreeMap<&'static str, Arc<Profile>>> = OnceLock::new();
    PROFILES
        .get_or_init(|| {
            SHIPPED
                .iter()
                .map(|(n, _)| {
                    let p = Profile::resolve(n).expect("shipped profiles load (tested)");
                    (*n, Arc::new(p))
                })
                .collect()
        })
        .get(name)
        .cloned()
}

/// The names of the shipped profiles.
pub fn shipped_names() -> Vec<&'static str> {
    SHIPPED.iter().map(|(n, _)| *n).collect()
}

/// How a `content_type` is read; `None` when it is not supported. `application/json` is a
/// JSON object or an array of them, read as JSON lines after splitting.
pub fn content_format(content_type: &str) -> Option<FileFormat> {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "text/csv" => Some(FileFormat::Csv),
        "application/json"
        | "application/x-ndjson"
        | "application/jsonl"
        | "application/json-lines" => Some(FileFormat::JsonLines),
        "application/xml" | "text/xml" | "application/x-lrmx" => Some(FileFormat::Lrmx),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => {
            Some(FileFormat::Xlsx)
        }
        _ => None,
    }
}

/// A JSON payload as JSON lines: an array's objects one per line, an object as it is; other
/// payloads pass through (the reader refuses them line by line).
pub fn json_as_lines(payload: Vec<u8>) -> Vec<u8> {
    match serde_json::from_slice::<serde_json::Value>(&payload) {
        Ok(serde_json::Value::Array(items)) => {
            let mut out = Vec::with_capacity(payload.len());
            for item in items {
                out.extend(serde_json::to_vec(&item).expect("a value serialises"));
                out.push(b'\n');
            }
            out
        }
        _ => payload,
    }
}
