//! Wiring: builds the store, the pipeline and both listeners, then serves until shutdown.
//! Listeners are bound in [`Application::build`], so tests can ask for port 0 and read back
//! the addresses.

use crate::config::{Config, ConnectorConfig, EventsConfig};
use crate::health::Registry;
use crate::ops;
use anyhow::{bail, Context, Result};
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::net::TcpListener;
use trainhub_connectors::amqp::relay;
use trainhub_connectors::registry::Context as ConnectorContext;
use trainhub_connectors::status::ConnectorStatus;
use trainhub_model::policy::Policy;
use trainhub_model::PersonKeyer;
use trainhub_pipeline::Pipeline;
use trainhub_store::{Keyring, Store};

/// The longest each shutdown stage (connectors and relay, projector, store) is waited for.
const SHUTDOWN_STAGE: std::time::Duration = std::time::Duration::from_secs(30);

/// A built hub, listening but not yet serving.
pub struct Application {
    grpc: TcpListener,
    http: TcpListener,
    pipeline: Pipeline,
    connectors: Vec<(ConnectorConfig, Arc<ConnectorStatus>)>,
    events: EventsConfig,
    relay_status: Option<Arc<ConnectorStatus>>,
    registry: Arc<Registry>,
    principals: trainhub_api::auth::Principals,
    limits: trainhub_api::limits::Limits,
    tls: Option<tonic::transport::ServerTlsConfig>,
    http_tls: Option<Arc<rustls::ServerConfig>>,
    /// Held while serving an SQLite store: one SQLite store takes one hub.
    _lock: Option<std::fs::File>,
}

impl Application {
    /// The store the hub serves.
    pub fn store(&self) -> &Store {
        self.pipeline.store()
    }

    /// Connects and migrates the store, loads the secret and binds both listeners.
    pub async fn build(config: &Config) -> Result<Application> {
        let principals = config.principals()?;
        if principals.is_open() {
            tracing::warn!(
                "No partners or readers with tokens: the hub runs open (every call \
                allowed)."
            );
        }
        let tls = tls_config(config)?;
        let http_tls = http_tls_config(config)?;
        let grpc_secure = tls.is_some() && !principals.is_open();
        let http_secure = http_tls.is_some() && !principals.is_open();
        for (addr, secure) in [
            (config.server.grpc_addr, grpc_secure),
            (config.server.http_addr, http_secure),
        ] {
            // Beyond loopback only with TLS and principals, or when the operator says the
            // network is private.
            if addr.ip().is_loopback() || secure {
                continue;
            }
            if !config.server.allow_plaintext_network {
                let why = if principals.is_open() {
                    "with no partners or readers configured the hub runs open"
                } else {
                    "without TLS, tokens and records would cross the network in plain text"
                };
                bail!(
                    "refusing to listen on {addr}: {why}, so it only listens on loopback (set \
                     [server] allow_plaintext_network = true only on a private network nothing \
                     untrusted can reach)"
                );
            }
            tracing::warn!(%addr, open = principals.is_open(), "Listening beyond loopback in plain \
                text: allow_plaintext_network is set.");
        }
        let partners = config
            .partners
            .iter()
            .map(|p| {
                (
                    p.system.clone(),
                    p.max_silence_seconds.map(std::time::Duration::from_secs),
                )
            })
            .collect();
        let registry = Registry::new(
            config.server.instance(),
            partners,
            config.telemetry.otlp_endpoint.as_deref(),
        )?;
        let lock = sqlite_lock(config)?;
        let pipeline = open_pipeline(config, true)
            .await?
            .with_observer(registry.clone());
        let grpc = TcpListener::bind(config.server.grpc_addr)
            .await
            .with_context(|| format!("binding gRPC on {}", config.server.grpc_addr))?;
        let http = TcpListener::bind(config.server.http_addr)
            .await
            .with_context(|| format!("binding ops HTTP on {}", config.server.http_addr))?;
        let connectors = config
            .connectors
            .iter()
            .map(|c| (c.clone(), registry.add(c.status())))
            .collect();
        let relay_status = config
            .events
            .url
            .as_ref()
            .map(|_| registry.add(ConnectorStatus::new(relay::NAME, "outbox")));
        Ok(Application {
            grpc,
            http,
            pipeline,
            connectors,
            events: config.events.clone(),
            relay_status,
            registry,
            principals,
            limits: config.limits.limits(),
            tls,
            http_tls,
            _lock: lock,
        })
    }

    /// The live status of connector `name` (`grpc/<system>` for gRPC partners, `outbox` for
    /// the relay).
    pub fn connector_status(&self, name: &str) -> Option<Arc<ConnectorStatus>> {
        self.registry.get(name)
    }

    /// The registry of this hub's connectors.
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.clone()
    }

    /// The bound gRPC address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc.local_addr().expect("bound")
    }

    /// The bound ops HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http.local_addr().expect("bound")
    }

    /// The ops port's URL scheme: `https` when TLS is configured.
    pub fn http_scheme(&self) -> &'static str {
        if self.http_tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// The keyring sealing personal data in the store.
    pub fn keys(&self) -> &Keyring {
        self.pipeline.store().keys()
    }

    /// Serves gRPC and ops HTTP until `shutdown` completes, then lets in-flight calls finish.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let (tx, _) = tokio::sync::broadcast::channel::<()>(1);
        let mut grpc_stop = tx.subscribe();
        let mut http_stop = tx.subscribe();
        let grpc = trainhub_api::server::serve(
            self.grpc,
            self.pipeline.clone(),
            self.registry.clone(),
            self.principals.clone(),
            self.limits,
            self.tls,
            async move {
                let _ = grpc_stop.recv().await;
            },
        );
        let http = ops::serve(
            self.http,
            ops::Ops {
                store: self.pipeline.store().clone(),
                registry: self.registry.clone(),
                principals: self.principals.clone(),
                pipeline: self.pipeline.clone(),
            },
            self.http_tls,
            async move {
                let _ = http_stop.recv().await;
            },
        );
        let projector = tokio::spawn(trainhub_pipeline::projector::run(
            self.pipeline.clone(),
            tx.subscribe(),
        ));
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        let mut sources = Vec::new();
        let sink = trainhub_pipeline::sink::PipelineSink::new(self.pipeline.clone());
        for (config, status) in self.connectors {
            sources.push(config.spawn(ConnectorContext {
                sink: sink.clone(),
                keyer: self.pipeline.keyer().clone(),
                status,
                stop: stop.clone(),
            }));
        }
        if let Some(status) = self.relay_status {
            sources.push(tokio::spawn(relay::run(
                self.pipeline.clone(),
                self.events,
                self.registry.instance().to_owned(),
                status,
                stop.clone(),
            )));
        }
        sources.push(tokio::spawn(
            self.registry
                .clone()
                .watch(self.pipeline.store().clone(), stop),
        ));
        let store = self.pipeline.store().clone();
        let registry = self.registry.clone();
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("Shutting down: finishing in-flight calls and batches.");
            registry.close();
            let _ = stop_tx.send(true);
            let _ = tx.send(());
        });
        let (g, h) = tokio::join!(grpc, http);
        g.context("gRPC server failed")?;
        h.context("ops HTTP server failed")?;
        // Connectors finish their batch and the relay its confirms; each stage is bounded, so a
        // task stuck on a half-dead broker connection cannot keep the process from exiting.
        let sources = futures::future::join_all(sources);
        if tokio::time::timeout(SHUTDOWN_STAGE, sources).await.is_err() {
            tracing::warn!(
                seconds = SHUTDOWN_STAGE.as_secs(),
                "Connectors or the outbox relay did not stop in time; leaving them (unacknowledged \
                 messages return to their queues, unconfirmed events stay in the outbox)."
            );
        }
        if tokio::time::timeout(SHUTDOWN_STAGE, projector)
            .await
            .is_err()
        {
            tracing::warn!(
                "The dossier projector did not stop in time; its marks stay for the next start."
            );
        }
        self.registry.shutdown();
        if tokio::time::timeout(SHUTDOWN_STAGE, store.close())
            .await
            .is_err()
        {
            tracing::warn!("Store connections still in use after the stop; closing regardless.");
        }
        Ok(())
    }
}

/// Opens the store named by `config` (migrating it), the hub secret and the policy: what every
/// command that reads or writes records needs, with or without a running hub.
pub async fn open_pipeline(config: &Config, create_secret: bool) -> Result<Pipeline> {
    // The secret first: a reader pointed at the wrong folder is told so before anything is
    // created there.
    if create_secret {
        std::fs::create_dir_all(&config.server.data_dir).with_context(|| {
            format!("creating data folder {}", config.server.data_dir.display())
        })?;
    }
    let secret = load_secret(config, create_secret)?;
    let keys = load_keys(config, create_secret)?;
    let store = Store::connect(&config.store_url(), keys)
        .await
        .with_context(|| format!("connecting to store {}", redact(&config.store_url())))?
        .with_events(config.events.url.is_some());
    store.migrate().await.context("migrating the store")?;
    check_identity(config, &store, &secret).await?;
    store.check_keys().await.with_context(|| {
        format!(
            "the data keys ({}) do not open what the store holds: every hub sharing a store \
             needs the same keyring",
            data_key_source(config)
        )
    })?;
    let policy = match &config.policy.file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading policy file {}", path.display()))?;
            Policy::from_toml(&text)
                .map_err(|e| anyhow::anyhow!("policy file {}: {}", path.display(), e.message))?
        }
        None => Policy::default(),
    };
    let scopes = config
        .connectors
        .iter()
        .map(|c| (c.name().to_owned(), c.system().to_owned()))
        .collect();
    Ok(
        Pipeline::new(store, PersonKeyer::new(&secret), Arc::new(policy))
            .with_scopes(scopes)
            .with_decoder(Arc::new(trainhub_connectors::native::Formats)),
    )
}

/// The gRPC TLS settings from `[server] tls_*`, reading the PEM files now so a wrong path or
/// an unreadable file stops the start with its name.
fn tls_config(config: &Config) -> Result<Option<tonic::transport::ServerTlsConfig>> {
    use tonic::transport::{Certificate, Identity, ServerTlsConfig};
    let s = &config.server;
    let (Some(cert), Some(key)) = (&s.tls_cert_file, &s.tls_key_file) else {
        return Ok(None);
    };
    let read = |path: &std::path::Path| {
        std::fs::read(path).with_context(|| format!("reading TLS file {}", path.display()))
    };
    let mut tls = ServerTlsConfig::new().identity(Identity::from_pem(read(cert)?, read(key)?));
    if let Some(ca) = &s.tls_client_ca_file {
        tls = tls
            .client_ca_root(Certificate::from_pem(read(ca)?))
            .client_auth_optional(true);
    }
    Ok(Some(tls))
}

/// The ops port's TLS settings: the certificate and key of `[server] tls_*` (no client
/// certificates: the ops port takes tokens), HTTP/1.1.
fn http_tls_config(config: &Config) -> Result<Option<Arc<rustls::ServerConfig>>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let s = &config.server;
    let (Some(cert), Some(key)) = (&s.tls_cert_file, &s.tls_key_file) else {
        return Ok(None);
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow::anyhow!("TLS certificate {}: {e}", cert.display()))?;
    if chain.is_empty() {
        bail!("TLS certificate {} holds no certificate", cert.display());
    }
    let private = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| anyhow::anyhow!("TLS key {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .with_context(|| {
            format!(
                "TLS certificate {} and key {} do not make a pair",
                cert.display(),
                key.display()
            )
        })?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Arc::new(tls)))
}

/// Reads the hub secret, generating one in the data folder on first start when `create`.
fn load_secret(config: &Config, create: bool) -> Result<Vec<u8>> {
    let path = config
        .identity
        .secret_file
        .clone()
        .unwrap_or_else(|| config.server.data_dir.join("hub.secret"));
    if !path.exists() && config.identity.secret_file.is_none() {
        if !create {
            bail!(
                "no hub secret at {}: this data folder has never been served; point --data-dir, \
                 --store or --config at the hub's",
                path.display()
            );
        }
        let secret: [u8; 32] = rand::random();
        write_private(&path, &hex::encode(secret))?;
        tracing::warn!(path = %path.display(), "Generated a new hub secret; keep it with the store.");
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading hub secret {}", path.display()))?;
    let secret = hex::decode(text.trim())
        .with_context(|| format!("hub secret {} is not hex", path.display()))?;
    if secret.len() < 16 {
        bail!("hub secret {} is shorter than 16 bytes", path.display());
    }
    Ok(secret)
}

/// Where the data keyring file is: `[identity] data_key_file`, else `data.keys` in the data
/// folder.
pub fn data_key_path(config: &Config) -> std::path::PathBuf {
    config
        .identity
        .data_key_file
        .clone()
        .unwrap_or_else(|| config.server.data_dir.join("data.keys"))
}

/// Where the data keyring comes from, for messages: the setting or the file.
pub fn data_key_source(config: &Config) -> String {
    match &config.identity.data_keys {
        Some(_) => "[identity] data_keys".to_owned(),
        None => data_key_path(config).display().to_string(),
    }
}

/// Reads the data keyring (`[identity] data_keys`, else the key file), generating a one-key
/// file in the data folder on first start when `create`.
pub fn load_keys(config: &Config, create: bool) -> Result<Keyring> {
    let id = &config.identity;
    if let Some(text) = &id.data_keys {
        if id.data_key_file.is_some() {
            bail!("[identity] data_keys and data_key_file are both set: keep one");
        }
        return Keyring::parse(&text.0).map_err(|e| {
            anyhow::anyhow!("[identity] data_keys (TRAINHUB_IDENTITY__DATA_KEYS): {e}")
        });
    }
    let path = data_key_path(config);
    if !path.exists() && id.data_key_file.is_none() {
        if !create {
            bail!(
                "no data keys at {}: this data folder has never been served; point --data-dir, \
                 --store or --config at the hub's",
                path.display()
            );
        }
        let key_id = new_key_id();
        write_private(
            &path,
            &format!(
                "# trainhub data keys: `id:hex`, the first seals, every one opens.\n\
                 # Keep this file with the store: without it, stored personal data cannot be \
                 read.\n{}\n",
                Keyring::new_entry(&key_id)
            ),
        )?;
        tracing::warn!(
            path = %path.display(),
            key = %key_id,
            "Generated a local data key; national IDs, names and received records are sealed \
             with it. Keep it with the store."
        );
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading data keys {}", path.display()))?;
    Keyring::parse(&text).map_err(|e| anyhow::anyhow!("data keys {}: {e}", path.display()))
}

/// Takes the lock of an SQLite store (a file beside the database) for as long as the hub
/// serves: a second hub on the same SQLite store is refused, since SQLite takes one writer
/// process and the hubs would fight over the projection. `None` for PostgreSQL.
fn sqlite_lock(config: &Config) -> Result<Option<std::fs::File>> {
    let url = config.store_url();
    let Some(rest) = url.strip_prefix("sqlite://") else {
        return Ok(None);
    };
    let db = rest.split('?').next().unwrap_or(rest);
    if db.is_empty() || db.starts_with(':') {
        return Ok(None); // in memory
    }
    let path = std::path::PathBuf::from(format!("{db}.lock"));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating data folder {}", dir.display()))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening lock file {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "another hub already serves the SQLite store {db} (its lock {} is held): one \
             SQLite store takes one hub. Stop the other hub, give this one a data folder of its \
             own (--data-dir), or move the store to PostgreSQL to run several hubs.",
            path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
}

/// A fresh key id: the date and a random suffix, so that ids made on one day never collide
/// (the key generated on a first start and one made by `trainhub key` the same day).
pub fn new_key_id() -> String {
    format!(
        "k{}-{:04x}",
        chrono::Utc::now().format("%Y%m%d"),
        rand::random::<u16>()
    )
}

/// Refuses a hub whose secret or keys differ from what the store was first used with, before
/// anything is written, naming the difference and the fix.
async fn check_identity(config: &Config, store: &Store, secret: &[u8]) -> Result<()> {
    let check = trainhub_store::seal::check_value("hub secret", secret);
    let Err(mismatches) = store
        .check_identity(&check)
        .await
        .context("checking the store's recorded hub secret and data keys")?
    else {
        return Ok(());
    };
    let secret_file = config
        .identity
        .secret_file
        .clone()
        .unwrap_or_else(|| config.server.data_dir.join("hub.secret"));
    let mut lines = Vec::new();
    for m in &mismatches {
        lines.push(match m {
            trainhub_store::identity::Mismatch::Secret => format!(
                "- the hub secret ({}) is not the one this store was first used with. Every hub \
                 on one store needs the same secret, or one person's records split across \
                 person keys: copy hub.secret from the first hub's data folder (or point \
                 [identity] secret_file at it), or give this hub a store of its own.",
                secret_file.display()
            ),
            trainhub_store::identity::Mismatch::Key(id) => format!(
                "- data key `{id}` ({}) is not the key this store knows under that id. Every \
                 hub on one store needs the same keyring: copy the first hub's data.keys (or \
                 its [identity] data_keys); a new key needs a new id (`trainhub key`).",
                data_key_source(config)
            ),
        });
    }
    bail!(
        "this hub does not belong to store {}; nothing was written:\n{}",
        redact(&config.store_url()),
        lines.join("\n")
    )
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

/// A store URL fit for messages: any password removed.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..s + 3], user, &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}
