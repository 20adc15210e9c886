//! `/xapi/statements` on the ops port (DESIGN §7): the xAPI 1.0.3 statement resource for
//! online learning platforms. `POST` takes one statement or an array and answers their ids;
//! `PUT ?statementId=` takes one; `GET ?statementId=` returns a stored statement. Every request
//! carries `X-Experience-API-Version` (400 without) and HTTP Basic credentials: a partner's
//! name and token. A statement id used again with other content is a 409. Statements are kept
//! as received (sealed) and normalised by the `xapi` mapping into `learning` records through
//! the pipeline: study time lands in the dossier of the account's person, a voiding statement
//! removes it. A statement is stored in the same transaction as the records it makes: if that
//! commit fails the answer is 503 and nothing is kept, so the platform's retry lands both.
//!
//! Who may post is the binary's to decide ([`Admission`]): this module knows HTTP and xAPI,
//! not the hub's principals.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use trainhub_pipeline::{NewStatement, Pipeline};

use super::Meaning;

/// The version this resource speaks.
const VERSION: &str = "1.0.3";
/// The version header.
const VERSION_HEADER: &str = "x-experience-api-version";

/// Decides who may post statements, from the request's `Authorization` header: the partner
/// system they are filed under and the scope the pipeline holds them to (empty for any).
pub trait Admission: Send + Sync {
    /// `Ok((system, scope))`, or the HTTP status (401 or 403) and why.
    fn admit(&self, authorization: Option<&str>) -> Result<(String, String), (u16, String)>;
}

/// What the xAPI routes serve from.
#[derive(Clone)]
pub struct Xapi {
    /// The pipeline statements' records go through.
    pub pipeline: Pipeline,
    /// Who may send statements.
    pub admission: Arc<dyn Admission>,
}

/// The `/xapi/statements` routes.
pub fn router(state: Xapi) -> Router {
    Router::new()
        .route(
            "/xapi/statements",
            get(get_statement).post(post_statements).put(put_statement),
        )
        .with_state(state)
}

#[derive(serde::Deserialize)]
struct Params {
    #[serde(rename = "statementId")]
    statement_id: Option<String>,
}

/// A refused request: the status and what is wrong.
struct Refusal(StatusCode, String);

fn error(status: StatusCode, message: impl Into<String>) -> Refusal {
    Refusal(status, message.into())
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        respond(self.0, self.1)
    }
}

/// An xAPI error: status and a JSON body naming the problem.
fn respond(status: StatusCode, message: String) -> Response {
    let mut response =
        (status, axum::Json(serde_json::json!({ "error": message }))).into_response();
    let headers = response.headers_mut();
    headers.insert(VERSION_HEADER, VERSION.parse().expect("ascii"));
    if status == StatusCode::UNAUTHORIZED {
        headers.insert(
            header::WWW_AUTHENTICATE,
            "Basic realm=\"trainhub xAPI\"".parse().expect("ascii"),
        );
    }
    response
}

/// Checks the version header and the credentials; returns the system statements are filed
/// under and the scope the pipeline holds them to.
fn admit(state: &Xapi, headers: &HeaderMap) -> Result<(String, String), Refusal> {
    let version = headers.get(VERSION_HEADER).and_then(|v| v.to_str().ok());
    if !version.is_some_and(|v| v.starts_with("1.0")) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "the X-Experience-API-Version header (1.0.x) is required",
        ));
    }
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    state.admission.admit(authorization).map_err(|(code, why)| {
        error(
            StatusCode::from_u16(code).unwrap_or(StatusCode::FORBIDDEN),
            why,
        )
    })
}

/// The store failed: nothing was kept, the client may retry.
fn unavailable(e: impl std::fmt::Display) -> Refusal {
    error(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
}

fn new_id() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

async fn get_statement(
    State(state): State<Xapi>,
    headers: HeaderMap,
    Query(params): Query<Params>,
) -> Result<Response, Refusal> {
    let (system, _) = admit(&state, &headers)?;
    let id = params.statement_id.ok_or_else(|| {
        error(
            StatusCode::BAD_REQUEST,
            "this resource returns single statements: give statementId",
        )
    })?;
    match state.pipeline.statement(&system, &id).await {
        Ok(Some(bytes)) => Ok((
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::HeaderName::from_static(VERSION_HEADER), VERSION),
            ],
            bytes,
        )
            .into_response()),
        Ok(None) => Err(error(StatusCode::NOT_FOUND, format!("no statement {id}"))),
        Err(e) => Err(error(StatusCode::SERVICE_UNAVAILABLE, e.to_string())),
    }
}

async fn put_statement(
    State(state): State<Xapi>,
    headers: HeaderMap,
    Query(params): Query<Params>,
    body: Bytes,
) -> Result<Response, Refusal> {
    let id = params
        .statement_id
        .ok_or_else(|| error(StatusCode::BAD_REQUEST, "PUT needs statementId"))?;
    let mut statement: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "PUT takes one statement (a JSON object)",
            ))
        }
    };
    match statement.get("id").and_then(Value::as_str) {
        Some(own) if own != id => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "the statement's id differs from statementId",
            ))
        }
        Some(_) => {}
        None => statement["id"] = Value::String(id),
    }
    receive(&state, &headers, vec![statement]).await?;
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut()
        .insert(VERSION_HEADER, VERSION.parse().expect("ascii"));
    Ok(r)
}

async fn post_statements(
    State(state): State<Xapi>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Refusal> {
    let statements = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Array(items)) => items,
        Ok(v @ Value::Object(_)) => vec![v],
        _ => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "POST takes a statement or an array of statements (JSON)",
            ))
        }
    };
    let ids = receive(&state, &headers, statements).await?;
    Ok((
        [(header::HeaderName::from_static(VERSION_HEADER), VERSION)],
        axum::Json(ids),
    )
        .into_response())
}

/// Maps `statements` (ids assigned where absent) and commits their records together with
/// the statements themselves; returns their ids. A conflicting id refuses the whole request
/// before anything is stored; a statement already stored with the same content is skipped.
async fn receive(
    state: &Xapi,
    headers: &HeaderMap,
    mut statements: Vec<Value>,
) -> Result<Vec<String>, Refusal> {
    let (system, scope) = admit(state, headers)?;
    let mut ids = Vec::with_capacity(statements.len());
    let mut new = Vec::with_capacity(statements.len());
    for statement in &mut statements {
        super::check(statement).map_err(|m| error(StatusCode::BAD_REQUEST, m))?;
        if statement.get("id").is_none() {
            statement["id"] = Value::String(new_id());
        }
        let id = statement["id"].as_str().unwrap_or_default().to_owned();
        ids.push(id.clone());
        let stored = state
            .pipeline
            .statement(&system, &id)
            .await
            .map_err(unavailable)?;
        let earlier = new
            .iter()
            .find(|(s, _): &&(NewStatement, &Value)| s.id == id);
        let known = match (stored, earlier) {
            (Some(bytes), _) => Some(serde_json::from_slice(&bytes).unwrap_or(Value::Null)),
            (None, Some((_, value))) => Some((*value).clone()),
            (None, None) => None,
        };
        match known {
            Some(known) if &known == statement => continue,
            Some(_) => {
                return Err(error(
                    StatusCode::CONFLICT,
                    format!("statement {id} is stored with other content"),
                ))
            }
            None => {}
        }
        let bytes = serde_json::to_vec(statement).expect("a value serialises");
        let content_hash = hex::encode(Sha256::digest(&bytes));
        let row = NewStatement {
            system: system.clone(),
            id,
            content_hash,
            bytes,
        };
        new.push((row, &*statement));
    }
    let stored_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut inbound = Vec::new();
    for (row, statement) in &new {
        let record = match super::meaning(&system, statement, &stored_at) {
            Ok(Meaning::Learning(record)) => Ok(*record),
            Ok(Meaning::Voids(target)) => match voided(state, &system, &target, &new).await? {
                Some(voided) => Ok(super::tombstone(&system, &voided, statement)),
                // Voiding a statement this hub never received changes nothing.
                None => continue,
            },
            Ok(Meaning::Nothing) => continue,
            Err(rejection) => Err(rejection),
        };
        inbound.push(super::envelope(record, row.bytes.clone(), &row.id));
    }
    if new.is_empty() {
        return Ok(ids);
    }
    let mut batch = state.pipeline.prepare_inbound(&scope, inbound);
    batch.keep_statements(new.into_iter().map(|(row, _)| row).collect());
    state
        .pipeline
        .commit(&format!("xapi/{system}"), batch)
        .await
        .map_err(unavailable)?;
    Ok(ids)
}

/// The statement `target` voids: stored earlier, or earlier in the same request.
async fn voided(
    state: &Xapi,
    system: &str,
    target: &str,
    batch: &[(NewStatement, &Value)],
) -> Result<Option<Value>, Refusal> {
    if let Some((_, value)) = batch.iter().find(|(s, _)| s.id == target) {
        return Ok(Some((*value).clone()));
    }
    let stored = state
        .pipeline
        .statement(system, target)
        .await
        .map_err(unavailable)?;
    Ok(stored.map(|bytes| serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
}
