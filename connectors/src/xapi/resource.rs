//! `/xapi/statements` and `/xapi/about` on the ops port: the xAPI 1.0.3 Statements and About
//! resources (Part Three §1–§2, §7) for online learning platforms.
//!
//! - `POST` takes one statement or an array (JSON, or `multipart/mixed` with attachments) and
//!   answers their ids; `PUT ?statementId=` takes one and answers 204. Every statement is
//!   checked against Part Two ([`super::validate`]): one refused statement refuses the whole
//!   request with 400 and stores nothing. A statement whose records the hub would refuse is
//!   refused the same way, so a 2xx never leaves a dead letter behind.
//! - The hub sets `stored`, `authority` (the partner) and, if absent, `version`.
//! - `GET` ([`super::query`]) returns one statement, or a `StatementResult` of those matching
//!   the filters with `more` paging.
//! - Other xAPI resources answer 404 with a JSON body saying what the hub offers.
//! - Every request carries `X-Experience-API-Version` (1.0.x; 400 without) and HTTP Basic
//!   credentials (a partner's name and token); `/xapi/about` needs neither. A statement id
//!   used again with other content is a 409.
//! - The alternate request syntax (Part Three §1.3): `POST ?method=GET|PUT|POST` with a form
//!   body carrying the headers, the parameters and `content`.
//!
//! Statements are stored in the same transaction as the records they make (the `xapi`
//! mapping, [`super::meaning`]): if that commit fails the answer is 503 and nothing is kept.
//! Who may post is the binary's to decide ([`Admission`]); what it is told of each request is
//! its [`Report`].

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use trainhub_pipeline::Pipeline;

/// The version this resource speaks.
pub const VERSION: &str = "1.0.3";
/// The largest request body taken (statements with their attachments); larger is 413.
pub const MAX_BODY: usize = 32 << 20;
/// The version header.
pub(crate) const VERSION_HEADER: &str = "x-experience-api-version";

/// Decides who may send and read statements, from the request's `Authorization` header: the
/// partner system they are filed under and the scope the pipeline holds them to.
pub trait Admission: Send + Sync {
    /// `Ok((system, scope))`, or the HTTP status (401 or 403) and why.
    fn admit(&self, authorization: Option<&str>) -> Result<(String, String), (u16, String)>;
}

/// Told of what arrives, for sync health: statements per partner system.
pub trait Report: Send + Sync {
    /// `statements` statements of `system` were stored (committed).
    fn statements(&self, system: &str, statements: u64);
    /// A request of `system` to store statements was answered `status` (4xx or 5xx), `why`.
    fn refused(&self, system: &str, status: u16, why: &str);
}

/// What the xAPI routes serve from.
#[derive(Clone)]
pub struct Xapi {
    /// The pipeline statements' records go through.
    pub pipeline: Pipeline,
    /// Who may send statements.
    pub admission: Arc<dyn Admission>,
    /// Where counts go.
    pub report: Arc<dyn Report>,
    /// Stored times (ms) of commits in progress: `X-Experience-API-Consistent-Through` stays
    /// before the oldest.
    pub(crate) in_flight: Arc<Mutex<BTreeMap<u64, i64>>>,
}

impl Xapi {
    /// The routes' state.
    pub fn new(pipeline: Pipeline, admission: Arc<dyn Admission>, report: Arc<dyn Report>) -> Self {
        Xapi {
            pipeline,
            admission,
            report,
            in_flight: Arc::default(),
        }
    }
}

/// The `/xapi` routes.
pub fn router(state: Xapi) -> Router {
    Router::new()
        .route(
            "/xapi/statements",
            get(super::query::get_statements).post(post).put(put),
        )
        .route("/xapi/statements/more/{token}", get(super::query::more))
        .route("/xapi/about", get(about))
        .route("/xapi/{*rest}", any(elsewhere))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// A refused request: the status and what is wrong.
#[derive(Debug)]
pub struct Refusal(pub StatusCode, pub String);

pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Refusal {
    Refusal(status, message.into())
}

pub(crate) fn bad_request(message: impl Into<String>) -> Refusal {
    error(StatusCode::BAD_REQUEST, message)
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response =
            (self.0, axum::Json(serde_json::json!({ "error": self.1 }))).into_response();
        versioned(&mut response);
        if self.0 == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"trainhub xAPI\""),
            );
        }
        response
    }
}

/// Adds the version header every answer carries.
pub(crate) fn versioned(response: &mut Response) {
    response.headers_mut().insert(
        HeaderName::from_static(VERSION_HEADER),
        HeaderValue::from_static(VERSION),
    );
}

/// The store failed: nothing was kept, the client may retry.
pub(crate) fn unavailable(e: impl std::fmt::Display) -> Refusal {
    error(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
}

/// Checks the version header and the credentials; returns the system statements are filed
/// under and the scope the pipeline holds them to.
pub(crate) fn admit(state: &Xapi, headers: &HeaderMap) -> Result<(String, String), Refusal> {
    let version = headers.get(VERSION_HEADER).and_then(|v| v.to_str().ok());
    let ok = version.is_some_and(|v| {
        v == "1.0"
            || v.strip_prefix("1.0.")
                .is_some_and(|p| p.parse::<u32>().is_ok())
    });
    if !ok {
        return Err(bad_request(
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

type Params = BTreeMap<String, String>;

async fn about() -> Response {
    let mut r = axum::Json(serde_json::json!({
        "version": ["1.0.3", "1.0.2", "1.0.1", "1.0.0"],
        "extensions": {
            "https://trainhub.invalid/xapi/resources": ["statements", "about"]
        }
    }))
    .into_response();
    versioned(&mut r);
    r
}

async fn elsewhere(Path(rest): Path<String>) -> Refusal {
    error(
        StatusCode::NOT_FOUND,
        format!(
            "/xapi/{rest} is not offered: trainhub offers the xAPI Statements resource \
             (/xapi/statements) and the About resource (/xapi/about) only"
        ),
    )
}

async fn put(
    State(state): State<Xapi>,
    headers: HeaderMap,
    Query(params): Query<Params>,
    body: Bytes,
) -> Result<Response, Refusal> {
    put_with(&state, &headers, &params, body).await
}

async fn post(
    State(state): State<Xapi>,
    headers: HeaderMap,
    Query(params): Query<Params>,
    body: Bytes,
) -> Result<Response, Refusal> {
    if let Some(method) = params.get("method") {
        return alternate(&state, method, &params, &headers, &body).await;
    }
    post_with(&state, &headers, &params, body).await
}

pub(crate) async fn put_with(
    state: &Xapi,
    headers: &HeaderMap,
    params: &Params,
    body: Bytes,
) -> Result<Response, Refusal> {
    let (system, scope) = admit(state, headers)?;
    let put = put_statement(state, (&system, &scope), headers, params, body).await;
    noted(state, &system, put)
}

async fn put_statement(
    state: &Xapi,
    (system, scope): (&str, &str),
    headers: &HeaderMap,
    params: &Params,
    body: Bytes,
) -> Result<Response, Refusal> {
    if let Some(k) = params.keys().find(|k| k.as_str() != "statementId") {
        return Err(bad_request(format!(
            "PUT takes statementId only, not `{k}`"
        )));
    }
    let id = params
        .get("statementId")
        .ok_or_else(|| bad_request("PUT needs statementId"))?;
    let (mut statements, parts) = super::receive::body(headers, &body)?;
    let [statement] = &mut statements[..] else {
        return Err(bad_request("PUT takes one statement (a JSON object)"));
    };
    if !statement.is_object() {
        return Err(bad_request("PUT takes one statement (a JSON object)"));
    }
    match statement.get("id") {
        Some(Value::String(own)) if !own.eq_ignore_ascii_case(id) => {
            return Err(bad_request("the statement's id differs from statementId"))
        }
        Some(_) => {}
        None => statement["id"] = Value::String(id.clone()),
    }
    super::receive::receive(state, system, scope, statements, parts).await?;
    let mut r = StatusCode::NO_CONTENT.into_response();
    versioned(&mut r);
    super::query::consistent(state, &mut r);
    Ok(r)
}

pub(crate) async fn post_with(
    state: &Xapi,
    headers: &HeaderMap,
    params: &Params,
    body: Bytes,
) -> Result<Response, Refusal> {
    let (system, scope) = admit(state, headers)?;
    let post = async {
        if let Some(k) = params.keys().next() {
            return Err(bad_request(format!(
                "POST takes no parameters (`{k}`); PUT takes statementId"
            )));
        }
        let (statements, parts) = super::receive::body(headers, &body)?;
        super::receive::receive(state, &system, &scope, statements, parts).await
    };
    let ids = noted(state, &system, post.await)?;
    let mut r = axum::Json(ids).into_response();
    versioned(&mut r);
    super::query::consistent(state, &mut r);
    Ok(r)
}

/// Tells the report of a refused request of partner `system` (its last error in sync health).
fn noted<T>(state: &Xapi, system: &str, result: Result<T, Refusal>) -> Result<T, Refusal> {
    if let Err(Refusal(status, why)) = &result {
        state.report.refused(system, status.as_u16(), why);
    }
    result
}

/// The alternate request syntax (Part Three §1.3): `POST ?method=…` with a form body holding
/// the headers, the parameters and the content; no other query parameter.
async fn alternate(
    state: &Xapi,
    method: &str,
    query: &Params,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, Refusal> {
    if query.len() > 1 {
        return Err(bad_request(
            "with the alternate request syntax every parameter goes in the form body",
        ));
    }
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !form_type.starts_with("application/x-www-form-urlencoded") {
        return Err(bad_request(
            "the alternate request syntax sends application/x-www-form-urlencoded",
        ));
    }
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|e| bad_request(format!("the form body does not parse: {e}")))?;
    let mut inner = HeaderMap::new();
    let mut params = Params::new();
    let mut content = Bytes::new();
    for (k, v) in form {
        let header_name = HeaderName::from_bytes(k.as_bytes()).ok().filter(|h| {
            [
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::ACCEPT_LANGUAGE,
            ]
            .contains(h)
                || h.as_str() == VERSION_HEADER
        });
        match (k.as_str(), header_name) {
            ("content", _) => content = Bytes::from(v),
            (_, Some(h)) => {
                let value = HeaderValue::from_str(&v)
                    .map_err(|_| bad_request(format!("form field {k} is not a header value")))?;
                inner.insert(h, value);
            }
            _ => {
                params.insert(k, v);
            }
        }
    }
    match method {
        "GET" => super::query::get_with(state, &inner, &params).await,
        "PUT" => put_with(state, &inner, &params, content).await,
        "POST" => post_with(state, &inner, &params, content).await,
        other => Err(bad_request(format!(
            "method `{other}` is not offered on /xapi/statements (GET, PUT, POST)"
        ))),
    }
}
