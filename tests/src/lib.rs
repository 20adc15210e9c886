//! Helpers for trainhub's end-to-end tests: a real hub served in-process on port 0 against a
//! fresh SQLite file or a fresh PostgreSQL database per test.
//!
//! PostgreSQL is found at `TRAINHUB_TEST_PG` (default `postgres://postgres@127.0.0.1:5432/test`).
//! When it is unreachable the PostgreSQL variants skip with a message — unless `CI` is set, in
//! which case they fail: CI must never pass by skipping.

#![forbid(unsafe_code)]

pub mod broker;
pub mod proxy;

use sqlx::Row;
use std::collections::HashSet;
use std::net::SocketAddr;
use tempfile::TempDir;
use tonic::transport::Channel;
use trainhub::config::Config;
use trainhub::startup::Application;
use trainhub_proto::v1::{
    self as pb, dossier_service_client::DossierServiceClient,
    ingest_service_client::IngestServiceClient,
};
use trainhub_store::seal::column;
use trainhub_store::Store;

/// Which store a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in a temporary folder.
    Sqlite,
    /// A fresh database on the test PostgreSQL server.
    Postgres,
}

/// A `[[partners]]` entry speaking for `system` with `token`, role `ingest`.
pub fn partner(name: &str, system: &str, token: &str) -> trainhub::config::PartnerConfig {
    trainhub::config::PartnerConfig {
        name: name.into(),
        system: system.into(),
        max_silence_seconds: None,
        token_sha256: Some(trainhub::config::Digests::One(
            trainhub_api::auth::token_digest(token),
        )),
        token_file: None,
        roles: vec!["ingest".into()],
        records_per_second: None,
        cert_subject: None,
    }
}

/// The admin URL of the test PostgreSQL server.
pub fn postgres_admin_url() -> String {
    std::env::var("TRAINHUB_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A fresh store for one test; drops its PostgreSQL database when dropped.
pub struct TestStore {
    /// Store URL.
    pub url: String,
    /// Temporary folder (SQLite file, hub secret).
    pub dir: TempDir,
    pg_db: Option<String>,
}

impl TestStore {
    /// A fresh store, or `None` (with a message) when PostgreSQL is unavailable outside CI.
    pub async fn new(backend: Backend) -> Option<TestStore> {
        let dir = tempfile::tempdir().expect("temp dir");
        // The data keys, made up front so that a second hub on the same database (an alias)
        // can be given the same ones, as an operator gives every hub the same key file.
        std::fs::write(
            dir.path().join("data.keys"),
            trainhub_store::Keyring::new_entry("test"),
        )
        .expect("data keys written");
        // And the hub secret: every hub on one store shares it (the store checks).
        let secret: [u8; 32] = rand::random();
        std::fs::write(dir.path().join("hub.secret"), hex::encode(secret))
            .expect("hub secret written");
        match backend {
            Backend::Sqlite => Some(TestStore {
                url: format!("sqlite://{}", dir.path().join("test.db").display()),
                dir,
                pg_db: None,
            }),
            Backend::Postgres => {
                let name = format!("trainhub_test_{:016x}", rand::random::<u64>());
                match trainhub_store::create_postgres_database(&postgres_admin_url(), &name).await {
                    Ok(url) => Some(TestStore {
                        url,
                        dir,
                        pg_db: Some(name),
                    }),
                    Err(e) if std::env::var_os("CI").is_some() => {
                        panic!("PostgreSQL is required in CI but unavailable: {e}")
                    }
                    Err(e) => {
                        eprintln!(
                            "SKIPPED: PostgreSQL unavailable ({e}); set up 127.0.0.1:5432 to run"
                        );
                        None
                    }
                }
            }
        }
    }
}

impl TestStore {
    /// The same database for a second hub, with a folder of its own holding the same data keys
    /// and hub secret (the original keeps the database and drops it; drop the alias's hub
    /// first).
    pub fn alias(&self) -> TestStore {
        let dir = tempfile::tempdir().expect("temp dir");
        for file in ["data.keys", "hub.secret"] {
            std::fs::copy(self.dir.path().join(file), dir.path().join(file))
                .expect("the same data keys and hub secret");
        }
        TestStore {
            url: self.url.clone(),
            dir,
            pg_db: None,
        }
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        if let Some(name) = self.pg_db.take() {
            // Best effort, on a thread of its own: the test's runtime may be shutting down.
            let admin = postgres_admin_url();
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                let _ = rt.block_on(trainhub_store::drop_postgres_database(&admin, &name));
            })
            .join();
        }
    }
}

/// A hub serving on port 0.
pub struct TestHub {
    /// gRPC address.
    pub grpc_addr: SocketAddr,
    /// Ops HTTP address.
    pub http_addr: SocketAddr,
    /// A store handle on the hub's database, for inspecting tables.
    pub store: Store,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    /// Keeps the database alive for the hub's lifetime.
    pub test_store: TestStore,
    /// Live status of each configured connector and of the outbox relay.
    pub statuses: Vec<std::sync::Arc<trainhub_connectors::status::ConnectorStatus>>,
}

impl TestHub {
    /// Starts a hub on a fresh store, or `None` when the backend is unavailable outside CI.
    pub async fn start(backend: Backend) -> Option<TestHub> {
        let test_store = TestStore::new(backend).await?;
        Some(TestHub::start_on(test_store).await)
    }

    /// Starts a hub on `test_store`.
    pub async fn start_on(test_store: TestStore) -> TestHub {
        TestHub::start_with(test_store, |_| {}).await
    }

    /// The configuration a test hub on `test_store` runs with: port 0, the test's folder.
    pub fn config_for(test_store: &TestStore) -> Config {
        let mut config = Config::load(None, std::iter::empty()).expect("default config");
        config.server.grpc_addr = "127.0.0.1:0".parse().expect("addr");
        config.server.http_addr = "127.0.0.1:0".parse().expect("addr");
        config.server.data_dir = test_store.dir.path().to_owned();
        config.store.url = Some(test_store.url.clone());
        config
    }

    /// Starts a hub on `test_store` with the test's own settings (connectors, events).
    pub async fn start_with(test_store: TestStore, configure: impl FnOnce(&mut Config)) -> TestHub {
        let mut config = TestHub::config_for(&test_store);
        configure(&mut config);
        let app = Application::build(&config).await.expect("hub builds");
        let statuses = config
            .connectors
            .iter()
            .map(|c| c.name().to_owned())
            .chain([trainhub_connectors::amqp::relay::NAME.to_owned()])
            .filter_map(|n| app.connector_status(&n))
            .collect();
        let (grpc_addr, http_addr) = (app.grpc_addr(), app.http_addr());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until_stopped(async move {
            let _ = rx.await;
        }));
        let keys = trainhub::startup::load_keys(&config, false).expect("the hub's data keys");
        let store = Store::connect(&test_store.url, keys).await.expect("store");
        TestHub {
            grpc_addr,
            http_addr,
            store,
            stop: Some(tx),
            server: Some(server),
            test_store,
            statuses,
        }
    }

    /// An ingest client.
    pub async fn ingest(&self) -> IngestServiceClient<Channel> {
        IngestServiceClient::connect(format!("http://{}", self.grpc_addr))
            .await
            .expect("connect")
    }

    /// A dossier client.
    pub async fn dossiers(&self) -> DossierServiceClient<Channel> {
        DossierServiceClient::connect(format!("http://{}", self.grpc_addr))
            .await
            .expect("connect")
    }

    /// Submits `records` in one batch and returns the outcomes.
    pub async fn submit(&self, records: Vec<pb::Record>) -> Vec<pb::RecordOutcome> {
        self.ingest()
            .await
            .submit(pb::SubmitRequest { records })
            .await
            .expect("submit")
            .into_inner()
            .outcomes
    }

    /// Streams `records` over `IngestService.Stream` in batches of `batch` and returns every
    /// response, in order.
    pub async fn stream(&self, records: &[pb::Record], batch: usize) -> Vec<pb::SubmitResponse> {
        let requests: Vec<_> = records
            .chunks(batch)
            .map(|c| pb::SubmitRequest {
                records: c.to_vec(),
            })
            .collect();
        let mut responses = self
            .ingest()
            .await
            .stream(tokio_stream::iter(requests))
            .await
            .expect("stream opens")
            .into_inner();
        let mut out = Vec::new();
        while let Some(r) = responses.message().await.expect("stream answers") {
            out.push(r);
        }
        out
    }

    /// The dossier of `national_id`.
    pub async fn dossier(
        &self,
        national_id: &str,
        as_of: &str,
    ) -> Result<pb::Dossier, tonic::Status> {
        self.dossiers()
            .await
            .get_dossier(pb::GetDossierRequest {
                national_id: national_id.into(),
                as_of: as_of.into(),
                purpose: "test".into(),
                ..Default::default()
            })
            .await
            .map(|r| r.into_inner())
    }

    /// The live status of connector `name`.
    pub fn status(&self, name: &str) -> &trainhub_connectors::status::ConnectorStatus {
        self.statuses
            .iter()
            .find(|s| s.name == name)
            .expect("a configured connector")
    }

    /// A client of `SyncHealthService`.
    pub async fn sync_health(
        &self,
    ) -> pb::sync_health_service_client::SyncHealthServiceClient<Channel> {
        pb::sync_health_service_client::SyncHealthServiceClient::connect(format!(
            "http://{}",
            self.grpc_addr
        ))
        .await
        .expect("connect")
    }

    /// Stops the hub and returns its store, to start another hub on it.
    pub async fn stop_keeping_store(mut self) -> TestStore {
        self.shut_down().await;
        std::mem::replace(
            &mut self.test_store,
            TestStore {
                url: String::new(),
                dir: tempfile::tempdir().expect("temp dir"),
                pg_db: None,
            },
        )
    }

    async fn shut_down(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("join").expect("hub ran cleanly");
        }
        self.store.close().await;
    }

    /// Stops the hub and waits for it.
    pub async fn stop(mut self) {
        self.shut_down().await;
    }
}

/// The status of each outcome, as short names (`ACCEPTED`, …).
pub fn statuses(outcomes: &[pb::RecordOutcome]) -> Vec<String> {
    outcomes
        .iter()
        .map(|o| {
            pb::RecordStatus::try_from(o.status)
                .map(|s| {
                    s.as_str_name()
                        .trim_start_matches("RECORD_STATUS_")
                        .to_owned()
                })
                .unwrap_or_else(|_| format!("?{}", o.status))
        })
        .collect()
}

/// `GET path` on `addr` over plain HTTP/1.1; returns the status code and the body.
pub async fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    http_get_with(addr, path, &[]).await
}

/// [`http_get`] with extra request headers.
pub async fn http_get_with(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<(u16, String)> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    http_get_on(stream, &addr.to_string(), path, headers).await
}

/// [`http_get_with`] over an open connection (a TLS stream, say) to `host`. A connection that
/// ends without a TLS close_notify after the response still counts as the end.
pub async fn http_get_on(
    mut stream: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = host;
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Connection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
    let mut raw = Vec::new();
    match stream.read_to_end(&mut raw).await {
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        other => {
            other?;
        }
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    // Chunked bodies: keep only the chunk data.
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 || tail.len() < n {
                break;
            }
            out.push_str(&tail[..n]);
            rest = tail[n..].trim_start_matches("\r\n");
        }
        out
    } else {
        body.to_owned()
    };
    Ok((status, body))
}

/// The value of the Prometheus sample `name{labels…}` whose labels include every `want`
/// pair; summed over the samples that match.
pub fn metric(text: &str, name: &str, want: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, labels) = match series.split_once('{') {
                Some((m, rest)) => (m, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if metric != name {
                return None;
            }
            let ok = want
                .iter()
                .all(|(k, v)| labels.contains(&format!("{k}=\"{v}\"")));
            ok.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

/// The single `n` column of a counting query.
pub async fn count(store: &Store, sql: &str) -> i64 {
    sqlx::query(sql)
        .fetch_one(store.pool())
        .await
        .expect("query")
        .try_get("n")
        .expect("n")
}

/// Waits until the projector has taken every mark (a minute at most; panics after that).
pub async fn projected(store: &Store) {
    for _ in 0..600 {
        if count(store, "SELECT COUNT(*) AS n FROM dossier_dirty").await == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the projector did not settle within a minute");
}

/// Every stored `(system, kind, record_id)`.
pub async fn stored_keys(store: &Store) -> HashSet<(String, String, String)> {
    sqlx::query("SELECT system, kind, record_id FROM source_records")
        .fetch_all(store.pool())
        .await
        .expect("query")
        .iter()
        .map(|r| {
            (
                r.try_get("system").unwrap(),
                r.try_get("kind").unwrap(),
                r.try_get("record_id").unwrap(),
            )
        })
        .collect()
}

/// The key of a record.
pub fn key(r: &pb::Record) -> (String, String, String) {
    let s = r.source.as_ref().expect("source");
    (s.system.clone(), s.kind.clone(), s.record_id.clone())
}

/// Removes `received_at` everywhere: when a version arrived differs by run.
pub fn without_arrival(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            m.remove("received_at");
            m.values_mut().for_each(without_arrival);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(without_arrival),
        _ => {}
    }
}

/// The stored current versions and the projected dossier state, in a comparable form (without
/// arrival times, which differ by run).
pub async fn comparable_state(store: &Store) -> (Vec<String>, Vec<String>) {
    let versions = sqlx::query(
        "SELECT system, kind, record_id, version, deleted, content_hash, hash FROM source_records \
         ORDER BY system, kind, record_id",
    )
    .fetch_all(store.pool())
    .await
    .unwrap()
    .iter()
    .map(|r| {
        format!(
            "{}/{}/{} v{} d{} {}",
            r.get::<String, _>("system"),
            r.get::<String, _>("kind"),
            r.get::<String, _>("record_id"),
            r.get::<i64, _>("version"),
            r.get::<i64, _>("deleted"),
            // As bytes since migration 0024, as hex text before.
            r.get::<Option<Vec<u8>>, _>("hash")
                .map(hex::encode)
                .unwrap_or_else(|| r.get::<String, _>("content_hash"))
        )
    })
    .collect();
    let dossiers = sqlx::query(
        "SELECT person_key, name, unit_code, rank, light, required_hours, credited_hours, \
         in_scope, participated, results_total, results_passed, facts, packed FROM dossier_state \
         ORDER BY person_key",
    )
    .fetch_all(store.pool())
    .await
    .unwrap()
    .iter()
    .map(|r| {
        // Sealed values differ between stores (keys, nonces): their plain text is compared.
        let open = |col: &str, label: &str| {
            store
                .keys()
                .open_text(label, &r.get::<String, _>(col))
                .expect("sealed under the store's keyring")
        };
        let mut facts: serde_json::Value = match r.get::<Option<Vec<u8>>, _>("packed") {
            Some(packed) => {
                serde_json::from_slice(&store.keys().open_packed(column::PACKED, &packed).unwrap())
                    .unwrap()
            }
            None => serde_json::from_str(&open("facts", column::FACTS)).unwrap(),
        };
        without_arrival(&mut facts);
        format!(
            "{} {} {} {} {} {} {} {} {} {} {} {}",
            r.get::<String, _>("person_key"),
            open("name", column::NAME),
            r.get::<String, _>("unit_code"),
            r.get::<String, _>("rank"),
            r.get::<String, _>("light"),
            r.get::<f64, _>("required_hours"),
            r.get::<f64, _>("credited_hours"),
            r.get::<i64, _>("in_scope"),
            r.get::<i64, _>("participated"),
            r.get::<i64, _>("results_total"),
            r.get::<i64, _>("results_passed"),
            facts
        )
    })
    .collect();
    (versions, dossiers)
}

/// `tests/browser` when Chromium and `playwright-core` are installed; `None` (with a message)
/// otherwise — unless `CI` is set, in which case the test fails.
pub fn browser_dir() -> Option<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("browser");
    let ready = dir.join("node_modules/playwright-core").exists()
        && std::path::Path::new("/usr/bin/chromium").exists();
    if ready {
        return Some(dir);
    }
    if std::env::var_os("CI").is_some() {
        panic!("browser tests need /usr/bin/chromium and `npm ci` in tests/browser (.ci/run installs both)");
    }
    eprintln!("SKIPPED: install chromium and run `npm ci --prefix tests/browser`");
    None
}

/// `tests/xapi` when its `@xapi/xapi` client is installed; `None` (with a message) otherwise —
/// unless `CI` is set, in which case the test fails.
pub fn xapi_client_dir() -> Option<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("xapi");
    if dir.join("node_modules/@xapi/xapi").exists() {
        return Some(dir);
    }
    if std::env::var_os("CI").is_some() {
        panic!("the xAPI client test needs `npm ci --prefix tests/xapi` (.ci/run runs it)");
    }
    eprintln!("SKIPPED: run `npm ci --prefix tests/xapi`");
    None
}

/// The records of source system `system`, in order.
pub fn of_system(records: &[pb::Record], system: &str) -> Vec<pb::Record> {
    records
        .iter()
        .filter(|r| r.source.as_ref().is_some_and(|s| s.system == system))
        .cloned()
        .collect()
}

/// A `trainhub serve` process (the real program), its output going to files in a folder.
pub struct HubProcess {
    /// The process; killed when dropped.
    pub child: tokio::process::Child,
    /// gRPC address.
    pub grpc_addr: SocketAddr,
    /// Ops HTTP address.
    pub http_addr: SocketAddr,
    /// Where its stderr (the log) goes.
    pub log: std::path::PathBuf,
}

impl HubProcess {
    /// Runs `program serve --config config` (`program` is the test's
    /// `env!("CARGO_BIN_EXE_trainhub-under-test")`) with extra environment `env`; stdout and
    /// stderr go to `name.out` and `name.log` beside the config. Waits until the hub prints its
    /// addresses.
    pub async fn start(
        program: &str,
        config: &std::path::Path,
        name: &str,
        env: &[(&str, &str)],
    ) -> HubProcess {
        let dir = config.parent().expect("config in a folder");
        let (out, log) = (
            dir.join(format!("{name}.out")),
            dir.join(format!("{name}.log")),
        );
        let child = tokio::process::Command::new(program)
            .arg("serve")
            .arg("--config")
            .arg(config)
            .envs(env.iter().copied())
            .stdout(std::fs::File::create(&out).expect("stdout file"))
            .stderr(std::fs::File::create(&log).expect("log file"))
            .kill_on_drop(true)
            .spawn()
            .expect("the hub starts");
        let addr = |text: &str, label: &str| {
            text.lines().find_map(|l| {
                let rest = l.trim().strip_prefix(label)?.trim();
                let rest = rest.split_once("://").map_or(rest, |(_, r)| r);
                rest.split('/').next()?.parse::<SocketAddr>().ok()
            })
        };
        for _ in 0..600 {
            let text = std::fs::read_to_string(&out).unwrap_or_default();
            if let (Some(grpc_addr), Some(http_addr)) =
                (addr(&text, "gRPC"), addr(&text, "ops HTTP"))
            {
                return HubProcess {
                    child,
                    grpc_addr,
                    http_addr,
                    log,
                };
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!(
            "hub {name} did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// Stops it with SIGTERM and waits; panics (with its log) unless it exits cleanly.
    pub async fn stop(mut self) {
        let pid = self.child.id().expect("running");
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        let status = tokio::time::timeout(std::time::Duration::from_secs(60), self.child.wait())
            .await
            .expect("stops on SIGTERM")
            .expect("waits");
        assert!(
            status.success(),
            "{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }
}
