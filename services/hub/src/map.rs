//! The organisation department's pages on the ops port: the coverage map (`/coverage`, 数字图谱)
//! and its data — coverage by group and by year, the warning lists, the annual form, exports
//! as XLSX/CSV — and the appointment form's filling (`POST /api/lrmx-fill`). Each data call
//! needs a reader token with the role it reads under and a purpose, keeps a scoped reader to
//! its authorities and is audited; the handlers authorise, call [`Feedback`] and convert.

use crate::export::{self, Book, Meta};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::NaiveDate;
use serde::Deserialize;
use trainhub_api::auth::{Caller, Principals};
use trainhub_api::feedback::{CoverageView, Feedback, Reader};
use trainhub_connectors::forms::LrmxForm;
use trainhub_model::dispatch::CoverageGroup;
use trainhub_model::warnings::WarningList;
use trainhub_pipeline::queries::Filter;
use trainhub_proto::v1 as pb;

/// The page: one file, its charts drawn as SVG by its own script, nothing from elsewhere.
const PAGE: &str = include_str!("coverage.html");

/// What the department's routes serve from.
#[derive(Clone)]
pub struct Map {
    /// Who may read.
    pub principals: Principals,
    /// The reads.
    pub feedback: Feedback,
}

/// The routes.
pub fn router(map: Map) -> Router {
    Router::new()
        .route("/coverage", get(|| async { Html(PAGE) }))
        .route("/api/coverage", get(coverage))
        .route("/api/warnings", get(warnings))
        .route("/api/annual-form", get(annual_form))
        .route("/api/lrmx-fill", post(lrmx_fill))
        .with_state(map)
}

/// A refusal: answered with the gRPC code's HTTP twin and a JSON reason.
struct Refused(Box<tonic::Status>);

impl From<tonic::Status> for Refused {
    fn from(status: tonic::Status) -> Refused {
        Refused(Box::new(status))
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        refused(&self.0)
    }
}

/// What a handler answers.
type Answer = Result<Response, Refused>;

fn refused(status: &tonic::Status) -> Response {
    use tonic::Code;
    let code = match status.code() {
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::InvalidArgument => StatusCode::BAD_REQUEST,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let body =
        serde_json::json!({"error": format!("{:?}", status.code()), "message": status.message()});
    if code == StatusCode::UNAUTHORIZED {
        return (code, [(header::WWW_AUTHENTICATE, "Bearer")], Json(body)).into_response();
    }
    (code, Json(body)).into_response()
}

fn bad_request(message: String) -> Refused {
    tonic::Status::invalid_argument(message).into()
}

/// The reader of a request: its token (when the hub has principals) and its purpose.
fn reader(map: &Map, headers: &HeaderMap, purpose: &str) -> Result<Reader, Refused> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let caller: Caller = map.principals.authenticate(authorization)?;
    Ok(Reader::of(caller, purpose, "http")?)
}

fn date(name: &str, text: &Option<String>) -> Result<Option<NaiveDate>, Refused> {
    trainhub_model::values::date_opt(name, text.as_deref().unwrap_or(""))
        .map_err(|r| bad_request(r.describe()))
}

/// `format=json|xlsx|csv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
enum Format {
    #[default]
    Json,
    Xlsx,
    Csv,
}

impl Format {
    /// The audit row's method of a read in this format: `json` for the page's own read,
    /// `<export>.xlsx|csv` for a download.
    fn method(self, json: &'static str, export: &str) -> String {
        match self {
            Format::Json => json.to_owned(),
            Format::Xlsx => format!("{export}.xlsx"),
            Format::Csv => format!("{export}.csv"),
        }
    }
}

/// A workbook as a download.
fn download(book: &Book, format: Format, stem: &str) -> Answer {
    let (bytes, mime, ext) = match format {
        Format::Csv => (book.csv(), "text/csv; charset=utf-8", "csv"),
        _ => (
            book.xlsx(),
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "xlsx",
        ),
    };
    let bytes = bytes.map_err(|e| tonic::Status::internal(format!("{e:#}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, mime.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{stem}.{ext}\""),
            ),
        ],
        bytes,
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
struct CoverageQuery {
    #[serde(default)]
    purpose: String,
    group_by: Option<String>,
    as_of: Option<String>,
    authority: Option<String>,
    #[serde(default)]
    format: Format,
    /// Wait for the projector first (`wait=true`).
    #[serde(default)]
    wait: bool,
}

/// The `authority` narrowing of a request (a scoped reader stays inside its scope anyway).
fn filter(authority: &Option<String>) -> Result<Filter, Refused> {
    let authority = authority.clone().unwrap_or_default();
    Filter::parse(Some(&pb::DossierFilter {
        authority,
        ..Default::default()
    }))
    .map_err(|r| bad_request(r.describe()))
}

fn totals(groups: &std::collections::BTreeMap<String, CoverageGroup>) -> CoverageGroup {
    let mut all = CoverageGroup::default();
    for g in groups.values() {
        all.merge(g);
    }
    all
}

fn figures(key: &str, g: &CoverageGroup) -> serde_json::Value {
    serde_json::json!({
        "key": key, "in_scope": g.in_scope, "participation_rate": g.participation_rate(),
        "pass_rate": g.pass_rate(), "coverage_rate": g.coverage_rate(),
        "red": g.red, "yellow": g.yellow, "green": g.green,
    })
}

fn coverage_json(view: &CoverageView, group_by: &str, purpose: &str) -> serde_json::Value {
    serde_json::json!({
        "as_of": view.as_of.to_string(),
        "policy_version": view.policy_version,
        "purpose": purpose,
        "waiting": view.waiting,
        "group_by": group_by,
        "groups": view.groups.iter().map(|(k, g)| figures(k, g)).collect::<Vec<_>>(),
        "totals": figures("", &totals(&view.groups)),
        "trend": view.trend.iter().map(|p| {
            let mut v = figures(&p.year.to_string(), &p.totals);
            v["as_of"] = p.as_of.to_string().into();
            v
        }).collect::<Vec<_>>(),
    })
}

async fn coverage(
    State(map): State<Map>,
    headers: HeaderMap,
    Query(q): Query<CoverageQuery>,
) -> Answer {
    let reader = reader(&map, &headers, &q.purpose)?;
    let (as_of, filter) = (date("as_of", &q.as_of)?, filter(&q.authority)?);
    let group_by = q.group_by.clone().unwrap_or_else(|| "unit".into());
    let what = q.format.method("CoverageMap", "ExportCoverage");
    settle(&map, q.wait).await?;
    let view = map
        .feedback
        .coverage(&reader, &group_by, filter, as_of, true, &what)
        .await?;
    if q.format == Format::Json {
        return Ok(Json(coverage_json(&view, &group_by, &reader.purpose)).into_response());
    }
    let meta = Meta::read_by(
        &reader,
        &view.policy_version,
        view.as_of,
        "培训覆盖情况 coverage",
    );
    let book = export::coverage_book(meta, &group_by, &view.groups, &view.trend);
    download(&book, q.format, &format!("coverage-{}", view.as_of))
}

/// With `wait`, waits for the projector first (at most a minute): the page asks so for its
/// downloads, which are documents; its views answer at once and show how many persons wait.
async fn settle(map: &Map, wait: bool) -> Result<(), Refused> {
    if wait {
        map.feedback
            .wait_for_projection(trainhub_api::deadline::MAX_WAIT)
            .await?;
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
struct WarningsQuery {
    #[serde(default)]
    purpose: String,
    list: Option<String>,
    group_by: Option<String>,
    group: Option<String>,
    as_of: Option<String>,
    authority: Option<String>,
    #[serde(default)]
    format: Format,
    /// Wait for the projector first (`wait=true`).
    #[serde(default)]
    wait: bool,
}

async fn warnings(
    State(map): State<Map>,
    headers: HeaderMap,
    Query(q): Query<WarningsQuery>,
) -> Answer {
    let reader = reader(&map, &headers, &q.purpose)?;
    let (as_of, filter) = (date("as_of", &q.as_of)?, filter(&q.authority)?);
    let list = WarningList::parse(q.list.as_deref().unwrap_or("red"))
        .map_err(|r| bad_request(r.describe()))?;
    let group_by = q.group_by.clone().unwrap_or_else(|| "unit".into());
    let what = q.format.method("WarningList", "ExportWarnings");
    let day = as_of.unwrap_or_else(trainhub_pipeline::queries::today);
    settle(&map, q.wait).await?;
    let waiting = map.feedback.waiting().await?;
    let rows = map
        .feedback
        .warnings(
            &reader,
            list,
            &group_by,
            q.group.as_deref(),
            filter,
            Some(day),
            &what,
        )
        .await?;
    let policy_version = map.feedback.policy_version();
    if q.format == Format::Json {
        return Ok(Json(serde_json::json!({
            "as_of": day.to_string(), "policy_version": policy_version, "purpose": reader.purpose,
            "list": list.as_str(), "title": list.title_zh(), "group": q.group, "rows": rows,
            "waiting": waiting,
        }))
        .into_response());
    }
    let meta = Meta::read_by(&reader, &policy_version, day, list.title_zh());
    let book = export::warnings_book(meta, list, &rows);
    download(
        &book,
        q.format,
        &format!("warnings-{}-{day}", list.as_str()),
    )
}

#[derive(Debug, Deserialize)]
struct AnnualQuery {
    #[serde(default)]
    purpose: String,
    #[serde(default)]
    person: String,
    year: Option<i32>,
    as_of: Option<String>,
    #[serde(default)]
    format: Format,
}

async fn annual_form(
    State(map): State<Map>,
    headers: HeaderMap,
    Query(q): Query<AnnualQuery>,
) -> Answer {
    let reader = reader(&map, &headers, &q.purpose)?;
    let as_of = date("as_of", &q.as_of)?;
    let year = q.year.unwrap_or_else(|| {
        use chrono::Datelike;
        as_of
            .unwrap_or_else(trainhub_pipeline::queries::today)
            .year()
    });
    let (dossier, rows) = map
        .feedback
        .annual_form(&reader, &q.person, year, as_of)
        .await?;
    if q.format == Format::Json {
        return Ok(Json(serde_json::json!({
            "person_key": dossier.person_key.to_string(), "name": dossier.name, "year": year,
            "as_of": dossier.as_of.to_string(), "policy_version": dossier.policy_version,
            "rows": rows,
        }))
        .into_response());
    }
    let title = format!("年度考核登记表 {year} 脱产培训 {}", dossier.name);
    let meta = Meta::read_by(&reader, &dossier.policy_version, dossier.as_of, &title);
    let book = export::annual_book(meta, &rows);
    download(&book, q.format, &format!("annual-form-{year}"))
}

#[derive(Debug, Deserialize)]
struct FillQuery {
    #[serde(default)]
    purpose: String,
    as_of: Option<String>,
}

/// Fills an uploaded LRMX form with its person's appointment-form lines; the answer is the
/// form, in its own encoding, with `X-Trainhub-Lines-Added`.
async fn lrmx_fill(
    State(map): State<Map>,
    headers: HeaderMap,
    Query(q): Query<FillQuery>,
    body: Bytes,
) -> Answer {
    let reader = reader(&map, &headers, &q.purpose)?;
    let as_of = date("as_of", &q.as_of)?;
    let unreadable = |e: trainhub_connectors::forms::FormError| bad_request(e.to_string());
    let form = LrmxForm::read(&body).map_err(unreadable)?;
    let id = form.national_id().map_err(unreadable)?;
    let (_, lines) = map.feedback.appointment_lines(&reader, &id, as_of).await?;
    let filled = form.fill(&lines).map_err(unreadable)?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/xml".to_owned()),
            (
                header::HeaderName::from_static("x-trainhub-lines-added"),
                filled.added.len().to_string(),
            ),
        ],
        filled.bytes,
    )
        .into_response())
}
