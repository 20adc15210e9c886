//! The hub's view of its connectors (DESIGN §8): a registry of every connector's status —
//! AMQP queues, gRPC partners (one per source system, appearing as they first send), the
//! outbox relay — and the metrics behind `/metrics`, recorded through `opentelemetry`.
//!
//! It is told of every commit ([`CommitObserver`]: latency for all, counts for gRPC partners;
//! AMQP connectors count what they acknowledge themselves), checks silent partners every
//! second, and answers `SyncHealthService` ([`StatusSource`]). Nothing is labelled by person.
//!
//! Layout: this module (the registry), `metrics` (the instruments), `sync` (what
//! `SyncHealthService` reads, and the commit observer).

use opentelemetry::metrics::{Meter, MeterProvider as _};
use opentelemetry::KeyValue;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use trainhub_api::sync_health::StatusSource;
use trainhub_connectors::status::{ConnectorStatus, Snapshot, State};

mod metrics;
mod sync;

pub use metrics::Metrics;
pub use sync::to_wire;
use sync::PUBLISH_EVERY;

/// Every connector of this hub instance.
pub struct Registry {
    instance: String,
    statuses: RwLock<BTreeMap<String, Arc<ConnectorStatus>>>,
    /// Configured partners: system → silence limit.
    partners: BTreeMap<String, Option<Duration>>,
    metrics: Arc<Metrics>,
    provider: SdkMeterProvider,
    prometheus: prometheus::Registry,
    changes: tokio::sync::watch::Sender<u64>,
    closing: tokio::sync::watch::Sender<bool>,
    states: Mutex<BTreeMap<String, State>>,
    outbox_depth: Arc<std::sync::atomic::AtomicI64>,
    /// Open identity conflicts waiting for a reviewer; -1 before the first look.
    open_conflicts: Arc<std::sync::atomic::AtomicI64>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// The registry of hub instance `instance`, for configured `partners` (system → silence limit); metrics are exported in
    /// Prometheus format, and over OTLP to `otlp` when given.
    pub fn new(
        instance: String,
        partners: BTreeMap<String, Option<Duration>>,
        otlp: Option<&str>,
    ) -> anyhow::Result<Arc<Registry>> {
        let prometheus = prometheus::Registry::new();
        let exporter = opentelemetry_prometheus::exporter()
            .with_registry(prometheus.clone())
            .without_target_info()
            .scope_info_enabled(false)
            .build()?;
        let mut builder = SdkMeterProvider::builder().with_reader(exporter);
        if let Some(endpoint) = otlp {
            use opentelemetry_otlp::WithExportConfig;
            let otlp = opentelemetry_otlp::MetricExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .build()?;
            builder = builder.with_periodic_exporter(otlp);
        }
        let provider = builder.build();
        let meter = provider.meter("trainhub");
        let metrics = Arc::new(Metrics::new(&meter));
        let registry = Arc::new(Registry {
            instance,
            statuses: RwLock::default(),
            partners: partners.clone(),
            metrics,
            provider,
            prometheus,
            changes: tokio::sync::watch::channel(0).0,
            closing: tokio::sync::watch::channel(false).0,
            states: Mutex::default(),
            outbox_depth: Arc::new(std::sync::atomic::AtomicI64::new(-1)),
            open_conflicts: Arc::new(std::sync::atomic::AtomicI64::new(-1)),
        });
        for (system, silence) in partners {
            registry.add(
                ConnectorStatus::new(format!("grpc/{system}"), "grpc").with_max_silence(silence),
            );
        }
        registry.gauges(&meter);
        Ok(registry)
    }

    fn gauges(self: &Arc<Self>, meter: &Meter) {
        let weak = Arc::downgrade(self);
        let each = move |f: fn(&Snapshot) -> Option<f64>| {
            let weak = weak.clone();
            move |observer: &dyn opentelemetry::metrics::AsyncInstrument<f64>| {
                if let Some(registry) = weak.upgrade() {
                    for s in registry.snapshots() {
                        if let Some(v) = f(&s) {
                            observer.observe(v, &[KeyValue::new("connector", s.name.clone())]);
                        }
                    }
                }
            }
        };
        meter
            .f64_observable_gauge("trainhub_connector_state")
            .with_description(
                "Connector state: 0 starting, 1 running, 2 degraded, 3 failed, 4 stopped.",
            )
            .with_callback(each(|s| Some(s.state.gauge() as f64)))
            .build();
        meter
            .f64_observable_gauge("trainhub_connector_queue_depth")
            .with_description("Messages waiting in the connector's source queue.")
            .with_callback(each(|s| s.queue_depth.map(|d| d as f64)))
            .build();
        meter
            .f64_observable_gauge("trainhub_connector_oldest_unacked_seconds")
            .with_description("Age of the oldest received but unacknowledged message.")
            .with_callback(each(|s| Some(s.oldest_unacked_seconds.unwrap_or(0.0))))
            .build();
        meter
            .f64_observable_gauge("trainhub_connector_silence_seconds")
            .with_description("Seconds since the source last sent anything.")
            .with_callback(each(|s| s.silence_seconds))
            .build();
        meter
            .f64_observable_gauge("trainhub_connector_records_last_minute")
            .with_description("Records committed in the last 60 seconds.")
            .with_callback(each(|s| Some(s.last_minute as f64)))
            .build();
        let depth = self.outbox_depth.clone();
        meter
            .i64_observable_gauge("trainhub_outbox_depth")
            .with_description("dossier.changed events waiting in the outbox.")
            .with_callback(move |o| {
                let d = depth.load(std::sync::atomic::Ordering::Relaxed);
                if d >= 0 {
                    o.observe(d, &[]);
                }
            })
            .build();
        let conflicts = self.open_conflicts.clone();
        meter
            .i64_observable_gauge("trainhub_review_open_conflicts")
            .with_description("Identity conflicts waiting for a reviewer (ReviewService).")
            .with_callback(move |o| {
                let n = conflicts.load(std::sync::atomic::Ordering::Relaxed);
                if n >= 0 {
                    o.observe(n, &[]);
                }
            })
            .build();
    }

    /// This instance's id.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Adds a connector (counting into the metrics too) and returns it.
    pub fn add(&self, status: ConnectorStatus) -> Arc<ConnectorStatus> {
        let status = Arc::new(status.with_sink(self.metrics.clone()));
        self.statuses
            .write()
            .expect("not poisoned")
            .insert(status.name.clone(), status.clone());
        self.changes.send_modify(|v| *v += 1);
        status
    }

    /// Connector `name`.
    pub fn get(&self, name: &str) -> Option<Arc<ConnectorStatus>> {
        self.statuses
            .read()
            .expect("not poisoned")
            .get(name)
            .cloned()
    }

    /// The gRPC partner of `system`, created when it first sends.
    pub fn partner(&self, system: &str) -> Arc<ConnectorStatus> {
        let name = format!("grpc/{system}");
        if let Some(s) = self.get(&name) {
            return s;
        }
        let silence = self.partners.get(system).copied().flatten();
        self.add(ConnectorStatus::new(name, "grpc").with_max_silence(silence))
    }

    /// The xAPI source of partner `system`, created when it first posts.
    pub fn xapi(&self, system: &str) -> Arc<ConnectorStatus> {
        let name = format!("xapi/{system}");
        match self.get(&name) {
            Some(s) => s,
            None => self.add(ConnectorStatus::new(name, "xapi")),
        }
    }

    /// Every status, by name.
    pub fn snapshots(&self) -> Vec<Snapshot> {
        self.statuses
            .read()
            .expect("not poisoned")
            .values()
            .map(|s| s.snapshot())
            .collect()
    }

    /// Whether any connector has failed.
    pub fn any_failed(&self) -> Vec<String> {
        self.snapshots()
            .into_iter()
            .filter(|s| s.state == State::Failed)
            .map(|s| s.name)
            .collect()
    }

    /// The metrics in Prometheus text format.
    pub fn prometheus_text(&self) -> String {
        use prometheus::Encoder;
        let mut out = Vec::new();
        let _ = prometheus::TextEncoder::new().encode(&self.prometheus.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    /// Notes the outbox depth (for the gauge and the dashboard).
    pub fn set_outbox_depth(&self, depth: i64) {
        self.outbox_depth
            .store(depth, std::sync::atomic::Ordering::Relaxed);
    }

    /// Open identity conflicts last counted; -1 before the first look.
    pub fn open_conflicts(&self) -> i64 {
        self.open_conflicts
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The outbox depth last seen; -1 before the first look.
    pub fn outbox_depth(&self) -> i64 {
        self.outbox_depth.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Once a second: silent partners, state changes (for watchers), the outbox depth.
    pub async fn watch(
        self: Arc<Self>,
        store: trainhub_store::Store,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut ticks = 0u64;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => {
                    if let Err(e) = store.withdraw_statuses(&self.instance).await {
                        tracing::warn!(error = %e, "Could not withdraw this instance's status.");
                    }
                    return;
                }
            }
            // Every few seconds, for the other instances on the same store to list.
            if ticks.is_multiple_of(PUBLISH_EVERY) {
                self.publish(&store).await;
            }
            ticks += 1;
            let statuses: Vec<_> = self
                .statuses
                .read()
                .expect("not poisoned")
                .values()
                .cloned()
                .collect();
            let mut changed = false;
            {
                let mut states = self.states.lock().expect("not poisoned");
                for s in statuses {
                    s.check_silence();
                    let state = s.state();
                    if states.insert(s.name.clone(), state) != Some(state) {
                        changed = true;
                    }
                }
            }
            if changed {
                self.changes.send_modify(|v| *v += 1);
            }
            if let Ok(n) = store.open_conflict_count().await {
                self.open_conflicts
                    .store(n, std::sync::atomic::Ordering::Relaxed);
            }
            // The outbox only fills when events are on.
            if store.events() {
                if let Ok(depth) = store.outbox_depth().await {
                    self.set_outbox_depth(depth);
                }
            }
        }
    }

    /// Writes this instance's statuses to the store for the other instances.
    async fn publish(&self, store: &trainhub_store::Store) {
        let encoded: Vec<(String, Vec<u8>)> = self
            .connectors()
            .into_iter()
            .map(|c| (c.name.clone(), prost::Message::encode_to_vec(&c)))
            .collect();
        if let Err(e) = store.publish_statuses(&self.instance, &encoded).await {
            tracing::debug!(error = %e, "Could not publish this instance's status.");
        }
    }

    /// The hub is shutting down: long-lived watch streams end.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Flushes metrics to OTLP (if configured) on shutdown.
    pub fn shutdown(&self) {
        let _ = self.provider.shutdown();
    }
}
