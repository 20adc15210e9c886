//! Storing statements (Part Three §2.1.1–§2.1.2): every statement of a request checked, then
//! compared with what is stored under its id, then stored with the records it makes in one
//! transaction — or, if any of it is refused, none of it.

use super::resource::{bad_request, error, unavailable, Refusal, Xapi};
use super::{attachments, lrs, validate, Meaning};
use axum::body::Bytes;
use axum::http::{header, HeaderMap, StatusCode};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use trainhub_pipeline::{NewAttachment, NewStatement};

/// The statements of a request body (JSON, or `multipart/mixed` with attachments) and the
/// attachments' parts.
pub(crate) fn body(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(Vec<Value>, Vec<NewAttachment>), Refusal> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let multipart = if content_type
        .to_ascii_lowercase()
        .starts_with("multipart/mixed")
    {
        Some(content_type.to_owned())
    } else {
        attachments::sniffed(content_type, body)
    };
    let (json, parts) = if let Some(content_type) = multipart {
        let mixed = attachments::split(&content_type, body).map_err(bad_request)?;
        (mixed.statements, mixed.parts)
    } else {
        (body.to_vec(), Vec::new())
    };
    let statements = match serde_json::from_slice::<Value>(&json) {
        Ok(Value::Array(items)) if !items.is_empty() => items,
        Ok(v @ Value::Object(_)) => vec![v],
        Ok(Value::Array(_)) => return Err(bad_request("the array holds no statement")),
        Ok(_) => {
            return Err(bad_request(
                "the body is a statement or an array of statements",
            ))
        }
        Err(e) => {
            return Err(bad_request(format!(
                "the body is not JSON ({content_type}): {e}"
            )))
        }
    };
    Ok((statements, parts))
}

fn new_id() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(b).hyphenated().to_string()
}

/// Checks every statement, then stores the new ones with their records; returns the ids.
pub(crate) async fn receive(
    state: &Xapi,
    system: &str,
    scope: &str,
    mut statements: Vec<Value>,
    parts: Vec<NewAttachment>,
) -> Result<Vec<String>, Refusal> {
    let many = statements.len() > 1;
    let which = |i: usize| {
        if many {
            format!("statement {}: ", i + 1)
        } else {
            String::new()
        }
    };
    let mut seen = HashSet::new();
    for (i, s) in statements.iter_mut().enumerate() {
        validate::statement(s).map_err(|e| bad_request(format!("{}{e}", which(i))))?;
        attachments::check_signature(s, &parts)
            .map_err(|e| bad_request(format!("{}{e}", which(i))))?;
        if s.get("id").is_none() {
            s["id"] = Value::String(new_id());
        }
        let id = s["id"].as_str().unwrap_or_default().to_ascii_lowercase();
        if !seen.insert(id.clone()) {
            return Err(bad_request(format!(
                "statement {id} is in the request twice"
            )));
        }
    }
    let kept = attachments::matched(&statements, &parts).map_err(bad_request)?;
    let ids: Vec<String> = statements
        .iter()
        .map(|s| s["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    let ticket = rand::random::<u64>();
    let now = chrono::Utc::now();
    let stored_ms = now.timestamp_millis();
    state
        .in_flight
        .lock()
        .expect("not poisoned")
        .insert(ticket, stored_ms);
    let result = store(state, system, scope, statements, kept, now).await;
    state
        .in_flight
        .lock()
        .expect("not poisoned")
        .remove(&ticket);
    let stored = result?;
    state.report.statements(system, stored);
    Ok(ids)
}

/// The new statements of a checked request, prepared and committed with their records;
/// returns how many were new.
async fn store(
    state: &Xapi,
    system: &str,
    scope: &str,
    statements: Vec<Value>,
    kept: Vec<Vec<NewAttachment>>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<u64, Refusal> {
    let stored_at = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let authority = lrs::authority(system);
    let ids: Vec<String> = statements
        .iter()
        .map(|s| s["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    let mut stored = state
        .pipeline
        .statements_in(system, &ids)
        .await
        .map_err(unavailable)?;
    let mut new: Vec<Pending> = Vec::new();
    for ((mut statement, own), id) in statements.into_iter().zip(kept).zip(ids) {
        let comparable = lrs::comparable(&statement);
        if let Some(known) = stored.remove(&id) {
            let known: Value = serde_json::from_slice(&known.bytes).unwrap_or(Value::Null);
            if lrs::comparable(&known) == comparable {
                continue;
            }
            return Err(error(
                StatusCode::CONFLICT,
                format!("statement {id} is stored with other content"),
            ));
        }
        lrs::normalise(&mut statement, &stored_at, &authority);
        let mut keys = fingerprints(state, lrs::keys(&statement));
        let (mut voids, mut voided) = (None, None);
        if let Some(target) = lrs::target(&statement) {
            keys.extend(inherited(state, system, target, &new).await?);
            if statement.pointer("/verb/id").and_then(Value::as_str) == Some(super::VOIDED) {
                voided = voided_target(state, system, target, &new).await?;
                voids = voided.as_ref().map(|_| target.to_owned());
            }
        }
        keys.sort();
        keys.dedup();
        let bytes = serde_json::to_vec(&statement).expect("a value serialises");
        let content_hash = hex::encode(Sha256::digest(
            serde_json::to_vec(&comparable).expect("serialises"),
        ));
        let row = NewStatement {
            system: system.to_owned(),
            id,
            content_hash,
            bytes,
            stored_ms: now.timestamp_millis(),
            keys,
            voids,
            attachments: own,
        };
        new.push(Pending {
            row,
            statement,
            voided,
        });
    }
    if new.is_empty() {
        return Ok(0);
    }
    let mut inbound = Vec::new();
    for Pending {
        row,
        statement,
        voided,
    } in &new
    {
        let record = match super::meaning(system, statement, &stored_at) {
            Ok(Meaning::Learning(record)) => *record,
            Ok(Meaning::Voids(_)) => match voided {
                Some(voided) => super::tombstone(system, voided, statement),
                None => continue,
            },
            Ok(Meaning::Nothing) => continue,
            Err(r) => {
                return Err(bad_request(format!(
                    "statement {}: {} {}: {}",
                    row.id,
                    r.code.as_str(),
                    r.field,
                    r.message
                )))
            }
        };
        inbound.push(super::envelope(Ok(record), row.bytes.clone(), &row.id));
    }
    let mut batch = state.pipeline.prepare_inbound(scope, inbound);
    if let Some(r) = batch.refusals().next() {
        return Err(bad_request(format!(
            "a statement's record would be refused ({} {} {}): {}",
            r.stage.as_str(),
            r.code.as_str(),
            r.field,
            r.message
        )));
    }
    let count = new.len() as u64;
    batch.keep_statements(new.into_iter().map(|p| p.row).collect());
    state
        .pipeline
        .commit(&format!("xapi/{system}"), batch)
        .await
        .map_err(unavailable)?;
    Ok(count)
}

/// A new statement of a request: its row, the statement as stored, and for a voiding
/// statement the statement it voids (if the hub has it).
struct Pending {
    row: NewStatement,
    statement: Value,
    voided: Option<Value>,
}

/// The statement `id` if it came earlier in the same request.
fn earlier<'a>(batch: &'a [Pending], id: &str) -> Option<&'a Pending> {
    batch.iter().find(|p| p.row.id.eq_ignore_ascii_case(id))
}

/// Keyed fingerprints of query keys: agents name persons, so no key is kept in clear.
fn fingerprints(state: &Xapi, keys: Vec<(i64, String)>) -> Vec<(i64, Vec<u8>)> {
    keys.into_iter()
        .map(|(kind, key)| (kind, key_of(state.pipeline.keyer(), &key)))
        .collect()
}

/// The fingerprint a query key is stored and searched under.
pub(crate) fn fingerprint(state: &Xapi, key: &str) -> Vec<u8> {
    key_of(state.pipeline.keyer(), key)
}

fn key_of(keyer: &trainhub_model::PersonKeyer, key: &str) -> Vec<u8> {
    keyer.fingerprint("xapi-query", &[key.as_bytes()]).to_vec()
}

/// The keys of the statement `target` (a StatementRef's): stored, or earlier in the request.
async fn inherited(
    state: &Xapi,
    system: &str,
    target: &str,
    batch: &[Pending],
) -> Result<Vec<(i64, Vec<u8>)>, Refusal> {
    if let Some(p) = earlier(batch, target) {
        return Ok(p.row.keys.clone());
    }
    state
        .pipeline
        .statement_keys(system, target)
        .await
        .map_err(unavailable)
}

/// The statement a voiding statement voids, if the hub has it; a voiding statement cannot be
/// voided (Part Two §2.4.4.3, voided statements).
async fn voided_target(
    state: &Xapi,
    system: &str,
    target: &str,
    batch: &[Pending],
) -> Result<Option<Value>, Refusal> {
    let found = match earlier(batch, target) {
        Some(p) => Some(p.statement.clone()),
        None => state
            .pipeline
            .statement(system, target)
            .await
            .map_err(unavailable)?
            .map(|s| serde_json::from_slice(&s.bytes).unwrap_or(Value::Null)),
    };
    if found
        .as_ref()
        .and_then(|v| v.pointer("/verb/id"))
        .and_then(Value::as_str)
        == Some(super::VOIDED)
    {
        return Err(bad_request(format!(
            "statement {target} is a voiding statement and cannot be voided"
        )));
    }
    Ok(found)
}

/// Indexes the statements an earlier release stored (before queries existed): sets what the
/// LRS owns, their stored time and query keys, and marks voided statements. Returns how many.
pub async fn reindex(
    pipeline: &trainhub_pipeline::Pipeline,
) -> Result<u64, trainhub_pipeline::StoreError> {
    let mut done = 0;
    loop {
        let rows = pipeline.unindexed_statements(200).await?;
        if rows.is_empty() {
            return Ok(done);
        }
        for (system, row, stored_at) in rows {
            let mut statement: Value = serde_json::from_slice(&row.bytes).unwrap_or(Value::Null);
            let stored = chrono::DateTime::parse_from_rfc3339(&stored_at)
                .map(|t| t.with_timezone(&chrono::Utc))
                .unwrap_or_else(|_| chrono::Utc::now());
            let comparable = lrs::comparable(&statement);
            let stored_text = stored.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            lrs::normalise(&mut statement, &stored_text, &lrs::authority(&system));
            let mut keys: Vec<(i64, Vec<u8>)> = lrs::keys(&statement)
                .into_iter()
                .map(|(k, key)| (k, key_of(pipeline.keyer(), &key)))
                .collect();
            let target = lrs::target(&statement).map(str::to_owned);
            if let Some(t) = &target {
                keys.extend(pipeline.statement_keys(&system, t).await?);
            }
            let voiding =
                statement.pointer("/verb/id").and_then(Value::as_str) == Some(super::VOIDED);
            pipeline
                .reindex_statement(&NewStatement {
                    system,
                    id: row.id,
                    content_hash: hex::encode(Sha256::digest(
                        serde_json::to_vec(&comparable).expect("serialises"),
                    )),
                    bytes: serde_json::to_vec(&statement).expect("serialises"),
                    stored_ms: stored.timestamp_millis(),
                    keys,
                    voids: target.filter(|_| voiding),
                    attachments: Vec::new(),
                })
                .await?;
            done += 1;
        }
    }
}
