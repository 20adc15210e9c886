//! Partners' own formats into the pipeline: rows of a file or payload, mapped by a profile,
//! become [`Inbound`] envelopes that carry the profile (provenance) and where each canonical
//! field came from (so a rejection names the partner's field). Shared by `trainhub import`,
//! the AMQP connector's profile formats, and — through [`Formats`], the pipeline's
//! [`NativeDecoder`] — by `SubmitNative` and dead-letter replay.

use crate::files::{FileFormat, Row, Rows};
use crate::profile::{Profile, SHIPPED};
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use trainhub_model::{PersonKeyer, ReasonCode, Rejection, Stage};
use trainhub_pipeline::native::{Letter, NativePayload};
use trainhub_pipeline::{Inbound, Native, NativeDecoder};
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
                    file: profile.file().cloned(),
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
        let native = native_of(profile, FileFormat::JsonLines);
        vec![unreadable(native, payload, headers, message)]
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
    let rows = match Rows::from_bytes("message", lines, format, Some(now)) {
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
    // Not one of its rows readable: the message was most likely read in the wrong format (its
    // content_type), so it is one refused message, not a letter per line.
    let unreadable = |i: &Inbound| matches!(&i.record, Err(r) if r.stage == trainhub_model::error::Stage::Decode);
    if out.len() > 1 && out.iter().all(unreadable) {
        let first = out[0].record.as_ref().err().map(|r| r.message.clone());
        return refuse(
            payload,
            format!(
                "none of its {} rows could be read as {} (content_type {}): is that the \
                 message's format? The first: {}",
                out.len(),
                format.as_str(),
                content_type.map_or("absent, so JSON".to_owned(), |t| format!("`{t}`")),
                first.unwrap_or_default()
            ),
        );
    }
    out
}

/// The connectors' reader of partners' formats, as the pipeline sees it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Formats;

impl NativeDecoder for Formats {
    fn payload(&self, batch: NativePayload, keyer: &PersonKeyer) -> Result<Vec<Inbound>, String> {
        if batch.system.trim().is_empty() {
            return Err("`system` is required".into());
        }
        let profile = shipped(&batch.profile).ok_or_else(|| {
            format!(
                "unknown profile `{}`; the hub has: {}",
                batch.profile,
                shipped_names().join(", ")
            )
        })?;
        let format = content_format(&batch.content_type).ok_or_else(|| {
            format!(
                "content_type `{}` is not one of text/csv, application/json, \
                 application/x-ndjson, application/xml, or the .xlsx type",
                batch.content_type
            )
        })?;
        let payload = if batch.content_type.trim().starts_with("application/json") {
            json_as_lines(batch.payload)
        } else {
            batch.payload
        };
        // A document's version is its arrival.
        let now = chrono::Utc::now().format("%Y%m%d%H%M%S").to_string();
        let rows =
            Rows::from_bytes("payload", payload, format, Some(now)).map_err(|e| e.to_string())?;
        let mut items = Vec::new();
        for row in rows {
            let row = row.map_err(|e| e.to_string())?;
            let headers = format!("{{\"row\":{}}}", row.number);
            items.extend(inbound_of_row(
                &profile,
                &batch.system,
                keyer,
                format,
                &row,
                &headers,
            ));
        }
        Ok(items)
    }

    fn letter(&self, letter: Letter<'_>, keyer: &PersonKeyer) -> Option<Vec<Inbound>> {
        let (source, profile_id) = letter.format.split_once(':')?;
        if source == "xapi" {
            return Some(vec![crate::xapi::replayed(letter)]);
        }
        let (tag, read_as) = match source {
            "csv" => (FileFormat::Csv, FileFormat::Csv),
            // A workbook row is kept as CSV: its header and the row.
            "xlsx" => (FileFormat::Xlsx, FileFormat::Csv),
            "jsonl" => (FileFormat::JsonLines, FileFormat::JsonLines),
            "json" => (FileFormat::Json, FileFormat::Json),
            "lrmx" => (FileFormat::Lrmx, FileFormat::Lrmx),
            _ => return None,
        };
        // The profile as it is now, whatever version refused the letter: an operator's file
        // read again, else the shipped profile of that name.
        let (profile_id, file) = match profile_id.split_once('|') {
            Some((id, file)) => (id, Some(file)),
            None => (profile_id, None),
        };
        let name = profile_id.split('@').next().unwrap_or(profile_id);
        let profile = match file.map(|f| Profile::load(std::path::Path::new(f))) {
            Some(Ok(p)) => Arc::new(p),
            Some(Err(e)) => {
                // The letter stays dead, saying which file to fix.
                let native = Native {
                    profile: profile_id.to_owned(),
                    format: tag.as_str(),
                    origin: Arc::default(),
                    file: file.map(Arc::from),
                };
                let message = format!("the letter's profile no longer loads: {e}");
                let payload = letter.payload.to_vec();
                return Some(vec![unreadable(native, payload, letter.headers, message)]);
            }
            None => shipped(name)?,
        };
        let mut payload = letter.payload.to_vec();
        if read_as == FileFormat::JsonLines {
            payload = json_as_lines(payload);
        }
        // A form's version is when the hub first received it, as then.
        let received = chrono::DateTime::parse_from_rfc3339(letter.received_at)
            .map(|t| {
                t.with_timezone(&chrono::Utc)
                    .format("%Y%m%d%H%M%S")
                    .to_string()
            })
            .ok();
        let refused = |message: String| {
            let native = native_of(&profile, tag);
            unreadable(native, letter.payload.to_vec(), letter.headers, message)
        };
        let rows = match Rows::from_bytes("letter", payload, read_as, received) {
            Ok(rows) => rows,
            Err(e) => return Some(vec![refused(e.to_string())]),
        };
        let mut out = Vec::new();
        for row in rows {
            match row {
                Ok(row) => out.extend(inbound_of_row(
                    &profile,
                    letter.system,
                    keyer,
                    tag,
                    &row,
                    letter.headers,
                )),
                Err(e) => out.push(refused(e.to_string())),
            }
        }
        Some(out)
    }
}

/// How `profile` read a record of `format`, for provenance and the dead-letter tag.
fn native_of(profile: &Profile, format: FileFormat) -> Native {
    Native {
        profile: profile.id(),
        format: format.as_str(),
        origin: Arc::default(),
        file: profile.file().cloned(),
    }
}

/// A payload that could not be read: one rejected envelope (stage `decode`) keeping its bytes.
fn unreadable(native: Native, payload: Vec<u8>, headers: &str, message: String) -> Inbound {
    Inbound {
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
        native: Some(native),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_letter_whose_profile_file_is_gone_stays_dead_naming_the_file() {
        let letter = Letter {
            format: "csv:cadre-local@1.0.0|/nonexistent/cadre-local.toml",
            system: "hr",
            payload: b"A0000\nx\n",
            headers: "{}",
            received_at: "2026-11-29T00:00:00Z",
        };
        let items = Formats
            .letter(letter, &PersonKeyer::new(b"k"))
            .expect("a refusal, not a silent skip");
        assert_eq!(items.len(), 1);
        let refusal = items[0].record.as_ref().unwrap_err();
        assert_eq!(refusal.code, ReasonCode::MalformedPayload);
        assert!(
            refusal.message.contains("/nonexistent/cadre-local.toml"),
            "{refusal:?}"
        );
        assert_eq!(items[0].payload, b"A0000\nx\n", "the bytes are kept");
    }

    #[test]
    fn a_message_read_in_the_wrong_format_is_one_refusal_not_one_per_line() {
        let profile = shipped("cadre-a01").unwrap();
        let csv = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("profiles/cadre-a01/samples/a01.csv"),
        )
        .unwrap();
        let keyer = PersonKeyer::new(b"k");
        // Without a content_type the message is read as JSON: a CSV's 21 lines are no JSON.
        let items = inbound_of_message(&profile, "hr", &keyer, None, csv.clone(), "{}");
        assert_eq!(items.len(), 1, "one message, one letter");
        let refusal = items[0].record.as_ref().unwrap_err();
        assert!(
            refusal.message.contains("none of its 21 rows"),
            "{refusal:?}"
        );
        assert_eq!(items[0].payload, csv, "the whole message is kept");
        // Said right, the same bytes map to 20 records.
        let right = inbound_of_message(&profile, "hr", &keyer, Some("text/csv"), csv, "{}");
        assert_eq!(right.iter().filter(|i| i.record.is_ok()).count(), 20);
    }
}
