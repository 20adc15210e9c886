//! The ops HTTP port (DESIGN §6.2): `/healthz` (liveness), `/readyz` (store reachable and no
//! connector failed), `/metrics` (Prometheus text), `/` (the sync-health dashboard, assets
//! embedded) and `/api/status` (what the dashboard shows, as JSON).

use crate::health::Registry;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;
use trainhub_api::auth::{Principals, Role};
use trainhub_connectors::xapi::resource;
use trainhub_store::read::LetterFilter;
use trainhub_store::Store;

/// What the ops port serves from.
#[derive(Clone)]
pub struct Ops {
    /// The store.
    pub store: Store,
    /// The hub's connectors and metrics.
    pub registry: Arc<Registry>,
    /// Who may read the dashboard and its data (everyone when open).
    pub principals: Principals,
    /// The pipeline, for the xAPI statement resource.
    pub pipeline: trainhub_pipeline::Pipeline,
}

/// The dashboard page: one file, no external assets.
const DASHBOARD: &str = include_str!("dashboard.html");

/// The ops router.
pub fn router(ops: Ops) -> Router {
    // Probes, the scraper and the dashboard page (no data of its own) need no token; the data
    // the page shows needs `health:read` (the page asks for a token when the hub has
    // principals).
    let guarded = Router::new()
        .route("/api/status", get(status))
        .route_layer(axum::middleware::from_fn_with_state(ops.clone(), guard));
    let xapi = resource::router(resource::Xapi::new(
        ops.pipeline.clone(),
        Arc::new(XapiPartners(ops.principals.clone())),
        ops.registry.clone(),
    ));
    let map = crate::map::router(crate::map::Map {
        principals: ops.principals.clone(),
        feedback: trainhub_api::feedback::Feedback::new(
            trainhub_pipeline::Queries::new(ops.pipeline.clone())
                .with_backlog(trainhub_pipeline::queries::Backlog::Report),
        ),
    });
    Router::new()
        .route("/", get(|| async { Html(DASHBOARD) }))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(guarded)
        .with_state(ops)
        .merge(xapi)
        .merge(map)
}

/// Partners admitted to `/xapi/statements` by HTTP Basic (their name and token) with the
/// `ingest` role; statements are filed under the partner's system.
struct XapiPartners(Principals);

impl resource::Admission for XapiPartners {
    fn admit(&self, authorization: Option<&str>) -> Result<(String, String), (u16, String)> {
        let (caller, user) = self
            .0
            .authenticate_basic(authorization)
            .map_err(|s| (401, s.message().to_owned()))?;
        caller
            .require(Role::Ingest)
            .map_err(|s| (403, s.message().to_owned()))?;
        let scope = caller.scope().to_owned();
        let system = if scope.is_empty() {
            user
        } else {
            scope.clone()
        };
        Ok((system, scope))
    }
}

/// Lets a request through when the hub is open or it carries a token with `health:read`.
async fn guard(
    State(ops): State<Ops>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let header = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let verdict = ops
        .principals
        .authenticate(header)
        .and_then(|caller| caller.require(Role::HealthRead));
    match verdict {
        Ok(()) => next.run(request).await,
        Err(status) if status.code() == tonic::Code::Unauthenticated => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            format!("{}\n", status.message()),
        )
            .into_response(),
        Err(status) => (StatusCode::FORBIDDEN, format!("{}\n", status.message())).into_response(),
    }
}

async fn readyz(State(ops): State<Ops>) -> (StatusCode, String) {
    if let Err(e) = ops.store.ping().await {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: store: {e}\n"),
        );
    }
    let failed = ops.registry.any_failed();
    if !failed.is_empty() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: failed connectors: {}\n", failed.join(", ")),
        );
    }
    (StatusCode::OK, "ready\n".into())
}

async fn metrics(State(ops): State<Ops>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        ops.registry.prometheus_text(),
    )
        .into_response()
}

/// A record id fit for a screen: one that looks like a national ID is masked.
fn shown_id(id: &str) -> String {
    let looks_like_id = id.len() >= 15
        && id
            .chars()
            .all(|c| c.is_ascii_digit() || c == 'X' || c == 'x');
    if looks_like_id {
        format!("{}…{}", &id[..2], &id[id.len() - 2..])
    } else {
        id.to_owned()
    }
}

async fn status(State(ops): State<Ops>) -> Response {
    let store = match ops.store.ping().await {
        Ok(()) => {
            serde_json::json!({ "reachable": true, "backend": format!("{:?}", ops.store.backend()) })
        }
        Err(e) => serde_json::json!({ "reachable": false, "error": e.to_string() }),
    };
    let counts = ops.store.dead_letter_counts().await.unwrap_or_default();
    let newest = ops
        .store
        .dead_letters(&LetterFilter::default(), None, 10)
        .await
        .unwrap_or_default();
    let connectors: Vec<serde_json::Value> = ops
        .registry
        .snapshots()
        .into_iter()
        .map(|s| {
            serde_json::json!({
                "name": s.name, "kind": s.kind, "state": s.state.as_str(), "since": s.since,
                "last_error": s.last_error.map(|e| serde_json::json!({
                    "stage": e.stage, "reason": e.reason, "message": e.message,
                    "at": e.at.to_rfc3339(),
                })),
                "last_success": s.last_success,
                "received": s.counts[0], "accepted": s.counts[1], "duplicate": s.counts[2],
                "superseded": s.counts[3], "parked": s.counts[4], "rejected": s.counts[5],
                "sent": s.counts[6], "statements": s.counts[7], "last_minute": s.last_minute, "sparkline": s.sparkline,
                "queue_depth": s.queue_depth, "oldest_unacked_seconds": s.oldest_unacked_seconds,
                "silence_seconds": s.silence_seconds,
                "reconciliation": s.reconciliation.iter().map(|r| serde_json::json!({
                    "kind": r.kind, "period_start": r.period_start, "period_end": r.period_end,
                    "reported": r.reported, "stored": r.stored,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Json(serde_json::json!({
        "instance": ops.registry.instance(),
        "store": store,
        "outbox_depth": ops.registry.outbox_depth(),
        "open_conflicts": ops.registry.open_conflicts(),
        "events": ops.store.events(),
        "connectors": connectors,
        "dead_letters": counts.iter().map(|(connector, stage, reason, n)| serde_json::json!({
            "connector": connector, "stage": stage, "reason": reason, "count": n,
        })).collect::<Vec<_>>(),
        "newest_dead_letters": newest.iter().map(|l| serde_json::json!({
            "id": l.id, "received_at": l.received_at, "connector": l.connector,
            "stage": l.stage, "reason": l.reason_code, "message": l.message,
            "record": format!("{}/{}/{}", l.system, l.kind, shown_id(&l.record_id)),
        })).collect::<Vec<_>>(),
    }))
    .into_response()
}

/// Serves the ops port until `shutdown` completes: HTTPS when `tls` is given (the
/// certificate of `[server] tls_cert_file`), else plain HTTP.
pub async fn serve(
    listener: TcpListener,
    ops: Ops,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    match tls {
        None => {
            axum::serve(listener, router(ops))
                .with_graceful_shutdown(shutdown)
                .await
        }
        Some(tls) => serve_tls(listener, router(ops), tls, shutdown).await,
    }
}

/// HTTPS: each accepted connection completes its TLS handshake (bounded in time) on a task of
/// its own, then HTTP/1.1 is served on it. At shutdown no new connection is taken and open
/// ones finish their request (for at most ten seconds).
async fn serve_tls(
    listener: TcpListener,
    app: Router,
    tls: Arc<rustls::ServerConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use std::time::Duration;
    const HANDSHAKE: Duration = Duration::from_secs(10);
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(error = %e, "Ops port: accept failed.");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let (acceptor, app, watcher) = (acceptor.clone(), app.clone(), graceful.watcher());
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "Ops port: TLS handshake failed.");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "Ops port: TLS handshake timed out.");
                    return;
                }
            };
            let service = hyper_util::service::TowerToHyperService::new(app);
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HANDSHAKE)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(%peer, error = %e, "Ops port: connection ended with an error.");
            }
        });
    }
    if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("Ops port: connections still open after 10 s; closing them.");
    }
    Ok(())
}
