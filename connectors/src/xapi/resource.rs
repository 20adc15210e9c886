//! `/xapi/statements` on the ops port (DESIGN §7): the xAPI 1.0.3 statement resource for
//! online learning platforms. `POST` takes one statement or an array and answers their ids;
//! `PUT ?statementId=` takes one; `GET ?statementId=` returns a stored statement. Every request
//! carries `X-Experience-API-Version` (400 without) and HTTP Basic credentials: a partner's
//! name and token. A statement id used again with other content is a 409. Statements are kept
//! as received (sealed) and normalised by the `xapi` mapping into `learning` records through
//! the pipeline: study time lands in the dossier of the account's person, a voiding statement
//! removes it.

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::Value;
use sha2::{Digest, Sha256};
use trainhub_api::auth::{Principals, Role};
use trainhub_api::{Inbound, Native, Pipeline};
use trainhub_connectors::xapi::{self, Meaning};
use trainhub_store::xapi::Stored;

/// The version this resource speaks.
const VERSION: &str = "1.0.3";
/// The version header.
const VERSION_HEADER: &str = "x-experience-api-version";

/// What the xAPI routes serve from.
#[derive(Clone)]
pub struct Xapi {
    /// The pipeline statements' records go through.
    pub pipeline: Pipeline,
    /// Who may send statements (a partner with `ingest`; anyone when open).
    pub principals: Principals,
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
    let (caller, user) = state
        .principals
        .authenticate_basic(authorization)
        .map_err(|s| error(StatusCode::UNAUTHORIZED, s.message()))?;
    caller
        .require(Role::Ingest)
        .map_err(|s| error(StatusCode::FORBIDDEN, s.message()))?;
    let scope = caller.scope().to_owned();
    let system = if scope.is_empty() {
        user
    } else {
        scope.clone()
    };
    Ok((system, scope))
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
    match state.pipeline.store().xapi_statement(&system, &id).await {
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

/// Stores `statements` (ids assigned where absent) and sends what they mean through the
/// pipeline; returns their ids. A conflicting id refuses the whole request, before anything
/// is stored.
async fn receive(
    state: &Xapi,
    headers: &HeaderMap,
    mut statements: Vec<Value>,
) -> Result<Vec<String>, Refusal> {
    let (system, scope) = admit(state, headers)?;
    let store = state.pipeline.store();
    let unavailable =
        |e: trainhub_store::Error| error(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
    let mut prepared = Vec::with_capacity(statements.len());
    for statement in &mut statements {
        xapi::check(statement).map_err(|m| error(StatusCode::BAD_REQUEST, m))?;
        if statement.get("id").is_none() {
            statement["id"] = Value::String(new_id());
        }
        let id = statement["id"].as_str().unwrap_or_default().to_owned();
        let bytes = serde_json::to_vec(statement).expect("a value serialises");
        let hash = hex::encode(Sha256::digest(&bytes));
        if let Some(stored) = store
            .xapi_statement(&system, &id)
            .await
            .map_err(unavailable)?
        {
            let stored: Value = serde_json::from_slice(&stored).unwrap_or(Value::Null);
            if &stored != statement {
                return Err(error(
                    StatusCode::CONFLICT,
                    format!("statement {id} is stored with other content"),
                ));
            }
        }
        prepared.push((id, hash, bytes));
    }
    let mut inbound = Vec::new();
    let mut ids = Vec::with_capacity(statements.len());
    for (statement, (id, hash, bytes)) in statements.iter().zip(prepared) {
        let stored = store
            .xapi_store(&system, &id, &hash, &bytes)
            .await
            .map_err(unavailable)?;
        ids.push(id.clone());
        match stored {
            Stored::New => {}
            Stored::Same => continue,
            Stored::Conflict => {
                return Err(error(
                    StatusCode::CONFLICT,
                    format!("statement {id} is stored with other content"),
                ))
            }
        }
        let record = match xapi::meaning(&system, statement) {
            Ok(Meaning::Learning(record)) => Ok(*record),
            Ok(Meaning::Voids(target)) => {
                match store
                    .xapi_statement(&system, &target)
                    .await
                    .map_err(unavailable)?
                {
                    Some(voided) => {
                        let voided: Value = serde_json::from_slice(&voided).unwrap_or(Value::Null);
                        Ok(xapi::tombstone(&system, &voided, statement))
                    }
                    // Voiding a statement this hub never received changes nothing.
                    None => continue,
                }
            }
            Ok(Meaning::Nothing) => continue,
            Err(rejection) => Err(rejection),
        };
        inbound.push(Inbound {
            record,
            payload: bytes,
            format: trainhub_proto::Format::Json,
            headers: serde_json::json!({ "statement": id }).to_string(),
            replay_of: None,
            native: Some(Native {
                profile: xapi::PROFILE.to_owned(),
                format: "xapi",
                origin: Default::default(),
            }),
        });
    }
    if !inbound.is_empty() {
        let batch = state.pipeline.prepare_inbound(&scope, inbound);
        state
            .pipeline
            .commit(&format!("xapi/{system}"), batch)
            .await
            .map_err(unavailable)?;
    }
    Ok(ids)
}
