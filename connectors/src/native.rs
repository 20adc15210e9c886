//! Partners' own formats into the pipeline: rows of a file or payload, mapped by a profile,
//! become [`Inbound`] records that carry the profile (provenance) and where each canonical
//! field came from (so a rejection names the partner's field). Shared by `SubmitNative` and
//! `trainhub import`.

use crate::pipeline::{Inbound, Native};
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use trainhub_connectors::files::{FileFormat, Row};
use trainhub_connectors::profile::{Profile, SHIPPED};
use trainhub_model::{PersonKeyer, ReasonCode, Rejection, Stage};
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

/// A JSON payload as JSON lines: an array's objects one per line, an object (pretty-printed
/// or not) on one line; other payloads pass through (the reader refuses them line by line).
pub fn json_as_lines(payload: Vec<u8>) -> Vec<u8> {
    match serde_json::from_slice::<serde_json::Value>(&payload) {
        Ok(object @ serde_json::Value::Object(_)) => {
            let mut out = serde_json::to_vec(&object).expect("a value serialises");
            out.push(b'\n');
            out
        }
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

/// The records one broker message in a partner's own format maps to (a connector with
/// `format = <profile>`). The message's `content_type` says how to read it (JSON when it has
/// none); a message that cannot be read at all is one rejected record, kept with its bytes, and
/// so is a message that holds no record. `headers` (a JSON object) goes with any dead letter.
pub fn inbound_of_message(
    profile: &Profile,
    system: &str,
    keyer: &PersonKeyer,
    content_type: Option<&str>,
    payload: Vec<u8>,
    headers: &str,
) -> Vec<Inbound> {
    let refuse = |payload: Vec<u8>, message: String| {
        vec![Inbound {
            record: Err(Rejection {
                stage: Stage::Decode,
                code: ReasonCode::MalformedPayload,
                field: String::new(),
                message,
            }),
            payload,
            format: Format::Json,
            headers: headers.to_owned(),
            replay_of: None,
            native: Some(Native {
                profile: profile.id(),
                format: FileFormat::JsonLines.as_str(),
                origin: Arc::default(),
            }),
        }]
    };
    let format = match content_type {
        None => FileFormat::JsonLines,
        Some(t) => match content_format(t) {
            Some(f) => f,
            None => {
                return refuse(
                    payload,
                    format!("content_type `{t}` is not one a mapping profile reads"),
                )
            }
        },
    };
    let lines = if format == FileFormat::JsonLines {
        json_as_lines(payload.clone())
    } else {
        payload.clone()
    };
    // A form's version is its arrival, as with SubmitNative.
    let now = chrono::Utc::now().format("%Y%m%d%H%M%S").to_string();
    let rows =
        match trainhub_connectors::files::Rows::from_bytes("message", lines, format, Some(now)) {
            Ok(rows) => rows,
            Err(e) => return refuse(payload, e.to_string()),
        };
    let mut out = Vec::new();
    for row in rows {
        match row {
            Ok(row) => out.extend(inbound_of_row(
                profile, system, keyer, format, &row, headers,
            )),
            Err(e) => {
                out.extend(refuse(payload.clone(), e.to_string()));
                break;
            }
        }
    }
    if out.is_empty() {
        return refuse(payload, "the message holds no record".into());
    }
    out
}
