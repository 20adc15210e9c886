//! Wiring: builds the store, the pipeline and both listeners, then serves until shutdown.
//! Listeners are bound in [`Application::build`], so tests can ask for port 0 and read back
//! the addresses.
//!
//! Layout: this module (the application and its shutdown), `store` (opening the store and
//! the pipeline: the hub's identity checked against it, one hub per SQLite store), `secrets`
//! (hub secret and data keys), `tls` (the listeners' TLS settings).

mod secrets;
mod store;
mod tls;

pub use secrets::{data_key_path, data_key_source, load_keys, new_key_id};
use store::sqlite_lock;
pub use store::{open_pipeline, redact};
use tls::{check_exposure, http_tls_config, tls_config};

use crate::config::{Config, ConnectorConfig, EventsConfig};
use crate::health::Registry;
use crate::ops;
use anyhow::{Context, Result};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use trainhub_connectors::amqp::relay;
use trainhub_connectors::registry::Context as ConnectorContext;
use trainhub_connectors::status::ConnectorStatus;
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
    /// Whether this hub runs the projector (`[server] project`).
    project: bool,
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
        for (addr, has_tls) in [
            (config.server.grpc_addr, tls.is_some()),
            (config.server.http_addr, http_tls.is_some()),
        ] {
            check_exposure(addr, principals.is_open(), has_tls, config)?;
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
        let indexed = trainhub_connectors::xapi::receive::reindex(&pipeline)
            .await
            .context("indexing the xAPI statements an earlier release stored")?;
        if indexed > 0 {
            tracing::info!(
                statements = indexed,
                "Indexed xAPI statements of an earlier release for queries."
            );
        }
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
            project: config.server.project,
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

    /// The dashboard's URL (the ops port's root).
    pub fn dashboard_url(&self) -> String {
        format!("{}://{}/", self.http_scheme(), self.http_addr())
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
        let projector = if self.project {
            tokio::spawn(trainhub_pipeline::projector::run(
                self.pipeline.clone(),
                tx.subscribe(),
            ))
        } else {
            tracing::warn!(
                "This hub does not project ([server] project = false): dossier state stays \
                 current only while another hub on the store projects."
            );
            tokio::spawn(async {})
        };
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
