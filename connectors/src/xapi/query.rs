//! `GET /xapi/statements` (Part Three §2.1.3): one statement by `statementId` (a voided one
//! only by `voidedStatementId`), or a `StatementResult` of the partner's statements matching
//! `agent`, `verb`, `activity`, `registration`, `since`, `until` (with `related_agents`,
//! `related_activities`), newest first unless `ascending`, at most `limit` with a `more` link
//! to the rest; in the `exact`, `ids` or `canonical` format, with attachments when asked.
//! Answers carry `X-Experience-API-Consistent-Through` and `Last-Modified`; HEAD answers the
//! same headers without a body.

use super::attachments;
use super::lrs;
use super::resource::{admit, bad_request, error, unavailable, versioned, Refusal, Xapi};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use trainhub_pipeline::{StatementQuery, StoredStatement};

/// The most statements one answer holds.
pub const MAX_LIMIT: i64 = 100;

type Params = BTreeMap<String, String>;

const FILTERS: [&str; 14] = [
    "statementId",
    "voidedStatementId",
    "agent",
    "verb",
    "activity",
    "registration",
    "related_activities",
    "related_agents",
    "since",
    "until",
    "limit",
    "format",
    "attachments",
    "ascending",
];

pub(crate) async fn get_statements(
    State(state): State<Xapi>,
    headers: HeaderMap,
    Query(params): Query<Params>,
) -> Result<Response, Refusal> {
    get_with(&state, &headers, &params).await
}

/// The `more` link of an earlier answer: its parameters and where it stopped.
pub(crate) async fn more(
    State(state): State<Xapi>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Result<Response, Refusal> {
    let gone = || {
        error(
            StatusCode::BAD_REQUEST,
            "this more link is not one the hub gave",
        )
    };
    let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| gone())?;
    let (params, ms, id): (Params, i64, String) =
        serde_json::from_slice(&raw).map_err(|_| gone())?;
    let (system, _) = admit(&state, &headers)?;
    list(&state, &system, &headers, &params, Some((ms, id))).await
}

pub(crate) async fn get_with(
    state: &Xapi,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Response, Refusal> {
    let (system, _) = admit(state, headers)?;
    if let Some(k) = params.keys().find(|k| !FILTERS.contains(&k.as_str())) {
        return Err(bad_request(format!(
            "`{k}` is not a parameter of GET /xapi/statements"
        )));
    }
    let single = ["statementId", "voidedStatementId"].map(|k| params.get(k));
    match single {
        [Some(_), Some(_)] => Err(bad_request(
            "give statementId or voidedStatementId, not both",
        )),
        [Some(id), None] => one(state, &system, headers, params, id, false).await,
        [None, Some(id)] => one(state, &system, headers, params, id, true).await,
        [None, None] => list(state, &system, headers, params, None).await,
    }
}

/// One statement: by `statementId` unless voided, by `voidedStatementId` only if voided.
async fn one(
    state: &Xapi,
    system: &str,
    headers: &HeaderMap,
    params: &Params,
    id: &str,
    voided: bool,
) -> Result<Response, Refusal> {
    if let Some(k) = params.keys().find(|k| {
        !matches!(
            k.as_str(),
            "statementId" | "voidedStatementId" | "format" | "attachments"
        )
    }) {
        return Err(bad_request(format!(
            "`{k}` cannot be combined with a statement id"
        )));
    }
    let (format, with_attachments) = (format(params)?, flag(params, "attachments")?);
    let found = state
        .pipeline
        .statement(system, id)
        .await
        .map_err(unavailable)?;
    let Some(found) = found.filter(|s| s.voided == voided) else {
        let which = if voided {
            "voided statement"
        } else {
            "statement"
        };
        return Err(error(StatusCode::NOT_FOUND, format!("no {which} {id}")));
    };
    let statement = shape(&found, format, headers);
    let last = found.stored_ms;
    answer(state, statement, &[found], with_attachments, last).await
}

/// A `StatementResult`: the statements matching the filters, and where the rest are.
async fn list(
    state: &Xapi,
    system: &str,
    headers: &HeaderMap,
    params: &Params,
    after: Option<(i64, String)>,
) -> Result<Response, Refusal> {
    let (format, with_attachments) = (format(params)?, flag(params, "attachments")?);
    let mut query = filters(state, system, params)?;
    query.after = after;
    let wanted = query.limit;
    query.limit = wanted + 1;
    let mut found = state
        .pipeline
        .query_statements(&query)
        .await
        .map_err(unavailable)?;
    let more = if found.len() as i64 > wanted {
        found.truncate(wanted as usize);
        let last = found.last().expect("wanted > 0");
        let token = serde_json::to_vec(&(params, last.stored_ms, &last.id)).expect("serialises");
        format!("/xapi/statements/more/{}", URL_SAFE_NO_PAD.encode(token))
    } else {
        String::new()
    };
    let statements: Vec<Value> = found.iter().map(|s| shape(s, format, headers)).collect();
    let last = found.iter().map(|s| s.stored_ms).max().unwrap_or(0);
    let result = json!({ "statements": statements, "more": more });
    answer(state, result, &found, with_attachments, last).await
}

/// The answer: JSON, or `multipart/mixed` with the statements' attachments; with the
/// consistency and modification headers.
async fn answer(
    state: &Xapi,
    body: Value,
    found: &[StoredStatement],
    with_attachments: bool,
    last_ms: i64,
) -> Result<Response, Refusal> {
    let json = serde_json::to_vec(&body).expect("serialises");
    let mut response = if with_attachments {
        let mut hashes: Vec<String> = Vec::new();
        for s in found {
            let value: Value = serde_json::from_slice(&s.bytes).unwrap_or(Value::Null);
            for (sha2, _) in attachments::named(&value) {
                if !hashes.contains(&sha2) {
                    hashes.push(sha2);
                }
            }
        }
        let parts = state
            .pipeline
            .statement_attachments(&hashes)
            .await
            .map_err(unavailable)?;
        let (content_type, body) = attachments::mixed(&json, &parts);
        ([(header::CONTENT_TYPE, content_type)], body).into_response()
    } else {
        (
            [(header::CONTENT_TYPE, "application/json".to_owned())],
            json,
        )
            .into_response()
    };
    versioned(&mut response);
    let consistent = consistent(state, &mut response);
    let modified = if last_ms > 0 { last_ms } else { consistent };
    response
        .headers_mut()
        .insert(header::LAST_MODIFIED, value(&http_date(modified)));
    Ok(response)
}

/// Adds `X-Experience-API-Consistent-Through` to an answer of the Statements resource;
/// returns that time (ms).
pub(crate) fn consistent(state: &Xapi, response: &mut Response) -> i64 {
    let through = consistent_through(state);
    response.headers_mut().insert(
        "x-experience-api-consistent-through",
        value(&rfc3339(through)),
    );
    through
}

fn value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).expect("dates are ASCII")
}

/// Every statement stored at or before this time (ms) is returned by queries: now, or just
/// before the oldest commit still in progress.
fn consistent_through(state: &Xapi) -> i64 {
    let now = chrono::Utc::now().timestamp_millis();
    let oldest = state
        .in_flight
        .lock()
        .expect("not poisoned")
        .values()
        .min()
        .copied();
    oldest.map_or(now, |t| (t - 1).min(now))
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn http_date(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

#[derive(Clone, Copy)]
enum Format {
    Exact,
    Ids,
    Canonical,
}

fn format(params: &Params) -> Result<Format, Refusal> {
    match params.get("format").map(String::as_str) {
        None | Some("exact") => Ok(Format::Exact),
        Some("ids") => Ok(Format::Ids),
        Some("canonical") => Ok(Format::Canonical),
        Some(other) => Err(bad_request(format!(
            "format `{other}` is not exact, ids or canonical"
        ))),
    }
}

fn flag(params: &Params, name: &str) -> Result<bool, Refusal> {
    match params.get(name).map(String::as_str) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(bad_request(format!(
            "{name} is true or false, not `{other}`"
        ))),
    }
}

/// A stored statement in the asked format.
fn shape(s: &StoredStatement, format: Format, headers: &HeaderMap) -> Value {
    let value: Value = serde_json::from_slice(&s.bytes).unwrap_or(Value::Null);
    match format {
        Format::Exact => value,
        Format::Ids => lrs::ids(&value),
        Format::Canonical => {
            let asked = headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok());
            lrs::canonical(&value, &lrs::accepted_languages(asked))
        }
    }
}

/// The query the filter parameters describe.
fn filters(state: &Xapi, system: &str, params: &Params) -> Result<StatementQuery, Refusal> {
    let related_agents = flag(params, "related_agents")?;
    let related_activities = flag(params, "related_activities")?;
    let mut q = StatementQuery {
        system: system.to_owned(),
        ascending: flag(params, "ascending")?,
        limit: MAX_LIMIT,
        ..Default::default()
    };
    let key = |k: &str| super::receive::fingerprint(state, k);
    if let Some(agent) = params.get("agent") {
        let value: Value = serde_json::from_str(agent)
            .map_err(|_| bad_request("agent is an Agent or identified Group as JSON"))?;
        let ifi = super::validate::agent(&value)
            .ok()
            .and_then(|()| lrs::agent_key(&value))
            .ok_or_else(|| bad_request("agent is an Agent or identified Group as JSON"))?;
        let kinds = if related_agents {
            vec![lrs::AGENT, lrs::RELATED_AGENT]
        } else {
            vec![lrs::AGENT]
        };
        q.keys.push((kinds, key(&ifi)));
    }
    for (name, kind, related) in [
        ("verb", lrs::VERB, None),
        ("activity", lrs::ACTIVITY, Some(related_activities)),
        ("registration", lrs::REGISTRATION, None),
    ] {
        let Some(v) = params.get(name) else { continue };
        let iri = match name {
            "registration" => uuid::Uuid::try_parse(v)
                .map(|u| u.hyphenated().to_string())
                .ok(),
            _ => iri_string::types::IriStr::new(v).ok().map(|_| v.clone()),
        };
        let iri = iri.ok_or_else(|| bad_request(format!("{name} `{v}` is not valid")))?;
        let kinds = match related {
            Some(true) => vec![kind, lrs::RELATED_ACTIVITY],
            _ => vec![kind],
        };
        q.keys.push((kinds, key(&iri)));
    }
    for (name, slot) in [("since", &mut q.since_ms), ("until", &mut q.until_ms)] {
        if let Some(v) = params.get(name) {
            let t = chrono::DateTime::parse_from_rfc3339(v)
                .map_err(|_| bad_request(format!("{name} `{v}` is not an ISO 8601 timestamp")))?;
            *slot = Some(t.timestamp_millis());
        }
    }
    if let Some(v) = params.get("limit") {
        let n: i64 = v
            .parse()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| bad_request(format!("limit `{v}` is not a whole number")))?;
        q.limit = if n == 0 { MAX_LIMIT } else { n.min(MAX_LIMIT) };
    }
    Ok(q)
}
