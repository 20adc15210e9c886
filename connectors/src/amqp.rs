//! AMQP source (RabbitMQ, lapin): consumes one durable queue bound to exchange `trainhub.in`
//! and hands each message — one canonical `Record` — to the pipeline (DESIGN §6.3, §7).
//!
//! Delivery rules:
//! - acknowledged only after the batch's transaction committed; under load, a batch is
//!   acknowledged with one `basic.ack` (`multiple`) on its highest tag, after its rejected
//!   messages were settled one by one, so no uncommitted message is ever covered;
//! - a message the pipeline refuses is already in the dead-letter table; it is then
//!   `basic.reject`ed without requeue, and the broker dead-letters a copy to `trainhub.dlx` →
//!   `trainhub.dead.<name>`. It never comes back, so there is no poison loop;
//! - when the store fails, nothing is acknowledged: the batch is retried with backoff, and if
//!   the hub stops meanwhile the broker redelivers it (stored as `DUPLICATE` if it had landed);
//! - a lost broker connection is re-established with exponential backoff and jitter; with a
//!   cluster's `fallback_urls` the next node is tried at once (quorum queues keep the queue
//!   when a node goes away);
//! - on shutdown the batch in hand is committed and acknowledged, the rest is left unacked and
//!   redelivered to whoever consumes next.
//!
//! Batches are pipelined: while one batch commits, the next is being received.

use crate::sink::{Batch, Decoding, Message, RecordSink};
use crate::status::Verdict;
use crate::status::{ConnectorStatus, State};
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicQosOptions, BasicRejectOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};
use serde::Deserialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use trainhub_model::merge::OutcomeStatus;
use trainhub_proto::Format;

/// The exchange partners publish records to.
pub const INBOUND_EXCHANGE: &str = "trainhub.in";
/// The exchange refused messages are dead-lettered to.
pub const DEAD_LETTER_EXCHANGE: &str = "trainhub.dlx";

/// `[[connectors]] kind = "amqp"`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AmqpConfig {
    /// Unique connector name: in metrics, status, dead letters and the broker's dead-letter
    /// queue `trainhub.dead.<name>`.
    pub name: String,
    /// The partner system this connector speaks for.
    pub system: String,
    /// Broker URL, `amqp://user:pass@host:5672/vhost` (`%2f` for the default vhost).
    pub url: String,
    /// Further nodes of the same RabbitMQ cluster: when the node in use goes away the
    /// connector moves on to the next address at once, and waits only after trying them all.
    #[serde(default)]
    pub fallback_urls: Vec<String>,
    /// The queue to consume; `trainhub.<name>` by default.
    #[serde(default)]
    pub queue: Option<String>,
    /// Routing keys bound on `trainhub.in`; `<system>.#` by default.
    #[serde(default)]
    pub bindings: Option<Vec<String>>,
    /// Unacknowledged messages the broker may send ahead (default 500).
    #[serde(default = "default_prefetch")]
    pub prefetch: u16,
    /// `json` (canonical `Record`, proto field names), `protobuf`, or a mapping profile (a
    /// shipped profile's name or a profile file): the partner's own payloads.
    #[serde(default = "default_format")]
    pub format: String,
    /// `classic` (default) or `quorum`.
    #[serde(default)]
    pub queue_type: Option<String>,
    /// Seconds without a working broker connection (or store) after which the connector is
    /// `failed` rather than `degraded` (default 60); it keeps trying either way.
    #[serde(default = "default_fail_after")]
    pub fail_after_seconds: u64,
}

fn default_fail_after() -> u64 {
    60
}

fn default_prefetch() -> u16 {
    500
}

fn default_format() -> String {
    "json".into()
}

impl AmqpConfig {
    /// The queue consumed.
    pub fn queue(&self) -> String {
        self.queue
            .clone()
            .unwrap_or_else(|| format!("trainhub.{}", self.name))
    }

    /// The broker-side dead-letter queue.
    pub fn dead_queue(&self) -> String {
        format!("trainhub.dead.{}", self.name)
    }

    /// Routing keys bound on `trainhub.in`.
    pub fn bindings(&self) -> Vec<String> {
        self.bindings
            .clone()
            .unwrap_or_else(|| vec![format!("{}.#", self.system)])
    }

    /// The broker addresses in the order they are tried: `url`, then `fallback_urls`.
    pub fn addresses(&self) -> Vec<String> {
        std::iter::once(self.url.clone())
            .chain(self.fallback_urls.iter().cloned())
            .collect()
    }

    /// Checks what can be checked before connecting; the message names the connector and key.
    pub fn validate(&self) -> Result<Decoding, String> {
        let at = |key: &str, why: &str| format!("connector `{}`: `{key}` {why}", self.name);
        if self.name.is_empty() || self.name.contains(char::is_whitespace) {
            return Err(at("name", "must be a non-empty word"));
        }
        if self.system.is_empty() {
            return Err(at("system", "must name the partner system"));
        }
        if !is_amqp_url(&self.url) {
            return Err(at("url", "must start with amqp:// or amqps://"));
        }
        if let Some(bad) = self.fallback_urls.iter().find(|u| !is_amqp_url(u)) {
            return Err(at(
                "fallback_urls",
                &format!("must hold amqp:// or amqps:// URLs, not `{bad}`"),
            ));
        }
        if self.prefetch == 0 {
            return Err(at("prefetch", "must be at least 1"));
        }
        match self.queue_type.as_deref() {
            None | Some("classic") | Some("quorum") => {}
            Some(_) => return Err(at("queue_type", "must be `classic` or `quorum`")),
        }
        if let Some(f) = Format::parse(&self.format) {
            return Ok(Decoding::Canonical(f));
        }
        crate::profile::Profile::resolve(&self.format)
            .map(|p| Decoding::Profile(Arc::new(p)))
            .map_err(|e| {
                at(
                    "format",
                    &format!("must be `json`, `protobuf` or a mapping profile: {e}"),
                )
            })
    }
}

/// Whether `url` is an AMQP broker URL (`amqp://` or `amqps://`).
pub fn is_amqp_url(url: &str) -> bool {
    url.starts_with("amqp://") || url.starts_with("amqps://")
}

/// Declares the connector's topology; idempotent, so every start (and every hub) runs it.
pub async fn declare_topology(channel: &Channel, config: &AmqpConfig) -> lapin::Result<()> {
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    channel
        .exchange_declare(
            INBOUND_EXCHANGE.into(),
            ExchangeKind::Topic,
            durable,
            FieldTable::default(),
        )
        .await?;
    channel
        .exchange_declare(
            DEAD_LETTER_EXCHANGE.into(),
            ExchangeKind::Direct,
            durable,
            FieldTable::default(),
        )
        .await?;
    let durable_queue = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    let mut dead_args = FieldTable::default();
    if config.queue_type.as_deref() == Some("quorum") {
        dead_args.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
    }
    channel
        .queue_declare(
            config.dead_queue().as_str().into(),
            durable_queue,
            dead_args.clone(),
        )
        .await?;
    channel
        .queue_bind(
            config.dead_queue().as_str().into(),
            DEAD_LETTER_EXCHANGE.into(),
            config.name.as_str().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let mut args = dead_args;
    args.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString(DEAD_LETTER_EXCHANGE.into()),
    );
    args.insert(
        "x-dead-letter-routing-key".into(),
        AMQPValue::LongString(config.name.as_str().into()),
    );
    channel
        .queue_declare(config.queue().as_str().into(), durable_queue, args)
        .await?;
    for key in config.bindings() {
        channel
            .queue_bind(
                config.queue().as_str().into(),
                INBOUND_EXCHANGE.into(),
                key.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    Ok(())
}

/// Consumes until `stop` turns true, reconnecting whenever the broker goes away.
pub async fn run(
    config: AmqpConfig,
    sink: Arc<dyn RecordSink>,
    status: Arc<ConnectorStatus>,
    mut stop: watch::Receiver<bool>,
) {
    let fail_after = Duration::from_secs(config.fail_after_seconds);
    let format = match config.validate() {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(connector = %config.name, error = %e, "Connector misconfigured.");
            status.trouble("config", "MISCONFIGURED", e, Some(Duration::ZERO));
            return;
        }
    };
    let mut nodes = Nodes::new(config.addresses());
    loop {
        if *stop.borrow() {
            break;
        }
        let outcome = session(&config, &mut nodes, &format, &sink, &status, &mut stop).await;
        status.in_flight_clear();
        status.set_queue_depth(None);
        match outcome {
            Ok(()) => break,
            Err(e) => {
                let wait = nodes.lost();
                tracing::warn!(connector = %config.name, error = %e, node = nodes.index(),
                    retry_in = ?wait, "AMQP connector lost its broker; reconnecting.");
                status.trouble(
                    "connect",
                    "BROKER_UNREACHABLE",
                    e.to_string(),
                    Some(fail_after),
                );
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }
    status.set_state(State::Stopped);
    tracing::info!(connector = %config.name, "AMQP connector stopped.");
}

/// Exponential backoff from 100 ms to 30 s with ±50 % jitter, so that many hubs losing the
/// same broker do not return in step.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            next: Duration::from_millis(100),
        }
    }
}

impl Backoff {
    /// The next wait.
    pub fn wait(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(Duration::from_secs(30));
        base.mul_f64(0.5 + rand::random::<f64>())
    }

    /// Back to the shortest wait, after a success.
    pub fn reset(&mut self) {
        *self = Backoff::default();
    }
}

/// The addresses of a broker cluster, tried in turn: after a failure the next node is tried at
/// once; only when every node has failed in a row does the backoff wait.
#[derive(Debug)]
pub struct Nodes {
    urls: Vec<String>,
    at: usize,
    failed_in_row: usize,
    backoff: Backoff,
}

impl Nodes {
    /// Starts at the first address.
    pub fn new(urls: Vec<String>) -> Nodes {
        assert!(!urls.is_empty(), "at least one broker address");
        Nodes {
            urls,
            at: 0,
            failed_in_row: 0,
            backoff: Backoff::default(),
        }
    }

    /// The address to connect to now.
    pub fn current(&self) -> &str {
        &self.urls[self.at]
    }

    /// Which address is current (0 is `url`).
    pub fn index(&self) -> usize {
        self.at
    }

    /// The current node is lost: moves to the next and says how long to wait first.
    pub fn lost(&mut self) -> Duration {
        self.at = (self.at + 1) % self.urls.len();
        self.failed_in_row += 1;
        if self.failed_in_row.is_multiple_of(self.urls.len()) {
            self.backoff.wait()
        } else {
            Duration::ZERO
        }
    }

    /// A connection worked: the next failure starts a fresh round.
    pub fn connected(&mut self) {
        self.failed_in_row = 0;
        self.backoff.reset();
    }
}

/// A delivery waiting for its batch to commit.
struct Pending {
    tag: u64,
    received: Instant,
    message: Message,
}

/// One connection's life: declare, consume, commit and acknowledge. `Ok` when stopped.
async fn session(
    config: &AmqpConfig,
    nodes: &mut Nodes,
    format: &Decoding,
    sink: &Arc<dyn RecordSink>,
    status: &Arc<ConnectorStatus>,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), lapin::Error> {
    let properties = ConnectionProperties::default()
        .with_connection_name(format!("trainhub {}", config.name).into());
    let connection = Connection::connect(nodes.current(), properties).await?;
    let channel = connection.create_channel().await?;
    declare_topology(&channel, config).await?;
    channel
        .basic_qos(config.prefetch, BasicQosOptions::default())
        .await?;
    let mut consumer = channel
        .basic_consume(
            config.queue().as_str().into(),
            format!("trainhub-{}-{:08x}", config.name, rand::random::<u32>()).into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    status.running();
    nodes.connected();
    tracing::info!(connector = %config.name, queue = %config.queue(), "AMQP connector consuming.");
    // Lag: the queue's depth, polled on a channel of its own while the session lasts.
    let depth = {
        let (channel, status, queue) = (
            connection.create_channel().await?,
            status.clone(),
            config.queue(),
        );
        tokio::spawn(async move {
            loop {
                let passive = QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                };
                match channel
                    .queue_declare(queue.as_str().into(), passive, FieldTable::default())
                    .await
                {
                    Ok(q) => status.set_queue_depth(Some(u64::from(q.message_count()))),
                    Err(_) => return,
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        })
    };

    // Batches in flight: two committing (one decoding while the other writes), one being
    // received. Acknowledgements go out in delivery order whatever order commits finish in.
    let max_batch = usize::from(config.prefetch).div_ceil(3).max(1);
    let (to_commit, committing) = mpsc::channel::<Vec<Pending>>(1);
    let committer = {
        let (sink, status, channel, config) = (
            sink.clone(),
            status.clone(),
            channel.clone(),
            config.clone(),
        );
        let (stop, format) = (stop.clone(), format.clone());
        tokio::spawn(async move {
            let mut committed = tokio_stream::wrappers::ReceiverStream::new(committing)
                .map(|batch| {
                    let (sink, status, config, stop, format) = (
                        sink.clone(),
                        status.clone(),
                        config.clone(),
                        stop.clone(),
                        format.clone(),
                    );
                    status.in_flight_push(batch[0].received);
                    async move {
                        let tags: Vec<u64> = batch.iter().map(|p| p.tag).collect();
                        let statuses =
                            commit_with_retry(&config, format, &sink, &status, batch, stop).await;
                        (tags, statuses)
                    }
                })
                .buffered(2);
            while let Some((tags, verdicts)) = committed.next().await {
                match verdicts {
                    Some(verdicts) => settle(&channel, &status, &tags, &verdicts).await?,
                    // Abandoned while stopping: neither it nor any later batch may be acked
                    // (a `multiple` ack would cover it); the broker redelivers them all.
                    None => return Ok(()),
                }
            }
            Ok::<(), lapin::Error>(())
        })
    };

    let received = async {
        loop {
            let first = tokio::select! {
                d = consumer.next() => d,
                _ = stop.changed() => return Ok(()),
            };
            let mut batch = vec![pending(first)?];
            // Take what has already arrived, without waiting for more.
            while batch.len() < max_batch {
                match tokio::time::timeout(Duration::from_millis(2), consumer.next()).await {
                    Ok(d) => batch.push(pending(d)?),
                    Err(_) => break,
                }
            }
            if to_commit.send(batch).await.is_err() {
                // The committer ended: its error is reported below.
                return Ok(());
            }
        }
    };
    let outcome: Result<(), lapin::Error> = received.await;
    depth.abort();
    drop(to_commit);
    let committed = committer
        .await
        .unwrap_or_else(|e| Err(lapin::Error::from(std::io::Error::other(e.to_string()))));
    let result = outcome.and(committed);
    if result.is_ok() {
        // Stopping: unacked deliveries go back to the queue when the channel closes.
        let _ = channel.close(200, "trainhub stopping".into()).await;
        let _ = connection.close(200, "trainhub stopping".into()).await;
    }
    result
}

fn pending(delivery: Option<lapin::Result<lapin::message::Delivery>>) -> lapin::Result<Pending> {
    let delivery = delivery.ok_or_else(|| {
        lapin::Error::from(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "the broker ended the consumer",
        ))
    })??;
    Ok(Pending {
        tag: delivery.delivery_tag,
        received: Instant::now(),
        message: Message {
            headers: headers_json(&delivery),
            payload: delivery.data,
        },
    })
}

/// Commits one batch, retrying while the store is unavailable; `None` when the hub stops
/// before it could commit (the batch is then left for redelivery).
async fn commit_with_retry(
    config: &AmqpConfig,
    format: Decoding,
    sink: &Arc<dyn RecordSink>,
    status: &ConnectorStatus,
    batch: Vec<Pending>,
    stop: watch::Receiver<bool>,
) -> Option<Vec<Verdict>> {
    let request = Batch {
        connector: config.name.clone(),
        system: config.system.clone(),
        format,
        messages: batch.into_iter().map(|p| p.message).collect(),
    };
    let mut backoff = Backoff::default();
    let fail_after = Duration::from_secs(config.fail_after_seconds);
    loop {
        match sink.commit(request.clone()).await {
            Ok(s) => return Some(s),
            Err(e) => {
                if *stop.borrow() {
                    tracing::warn!(connector = %config.name, error = %e,
                        "Store unavailable while stopping; leaving the batch for redelivery.");
                    return None;
                }
                let wait = backoff.wait();
                tracing::warn!(connector = %config.name, error = %e, retry_in = ?wait,
                    "Store unavailable; the batch stays unacknowledged and is retried.");
                status.trouble(
                    "store",
                    "STORE_UNAVAILABLE",
                    e.to_string(),
                    Some(fail_after),
                );
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// Settles a committed batch with the broker: each rejected message alone (no requeue, so the
/// broker dead-letters it), then one `multiple` ack on the highest tag of the rest.
async fn settle(
    channel: &Channel,
    status: &ConnectorStatus,
    tags: &[u64],
    verdicts: &[Verdict],
) -> lapin::Result<()> {
    let mut last_ok = None;
    for (tag, v) in tags.iter().zip(verdicts) {
        if v.status == OutcomeStatus::Rejected {
            channel
                .basic_reject(*tag, BasicRejectOptions { requeue: false })
                .await?;
        } else {
            last_ok = Some(*tag);
        }
    }
    if let Some(tag) = last_ok {
        channel
            .basic_ack(tag, BasicAckOptions { multiple: true })
            .await?;
    }
    status.in_flight_pop();
    status.count(verdicts);
    Ok(())
}

/// The delivery's routing and properties, and its headers, as a JSON object.
fn headers_json(d: &lapin::message::Delivery) -> String {
    let mut out = serde_json::Map::new();
    out.insert("exchange".into(), d.exchange.as_str().into());
    out.insert("routing_key".into(), d.routing_key.as_str().into());
    out.insert("redelivered".into(), d.redelivered.into());
    let p = &d.properties;
    if let Some(id) = p.message_id() {
        out.insert("message_id".into(), id.as_str().into());
    }
    if let Some(t) = p.content_type() {
        out.insert("content_type".into(), t.as_str().into());
    }
    if let Some(t) = p.timestamp() {
        out.insert("timestamp".into(), (*t).into());
    }
    if let Some(app) = p.app_id() {
        out.insert("app_id".into(), app.as_str().into());
    }
    if let Some(h) = p.headers() {
        let headers = h
            .inner()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), value_json(v)))
            .collect();
        out.insert("headers".into(), serde_json::Value::Object(headers));
    }
    serde_json::Value::Object(out).to_string()
}

fn value_json(v: &AMQPValue) -> serde_json::Value {
    use serde_json::Value;
    match v {
        AMQPValue::Boolean(b) => Value::from(*b),
        AMQPValue::ShortShortInt(n) => Value::from(*n),
        AMQPValue::ShortShortUInt(n) => Value::from(*n),
        AMQPValue::ShortInt(n) => Value::from(*n),
        AMQPValue::ShortUInt(n) => Value::from(*n),
        AMQPValue::LongInt(n) => Value::from(*n),
        AMQPValue::LongUInt(n) => Value::from(*n),
        AMQPValue::LongLongInt(n) => Value::from(*n),
        AMQPValue::Timestamp(n) => Value::from(*n),
        AMQPValue::Float(n) => Value::from(*n),
        AMQPValue::Double(n) => Value::from(*n),
        AMQPValue::ShortString(s) => Value::from(s.as_str()),
        AMQPValue::LongString(s) => Value::from(String::from_utf8_lossy(s.as_bytes())),
        AMQPValue::FieldArray(a) => Value::Array(a.as_slice().iter().map(value_json).collect()),
        AMQPValue::FieldTable(t) => Value::Object(
            t.inner()
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), value_json(v)))
                .collect(),
        ),
        other => Value::from(format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> AmqpConfig {
        toml_like(
            r#"{"name":"hr-queue","system":"hr-prov","url":"amqp://guest:guest@127.0.0.1:5672/%2f"}"#,
        )
    }

    fn toml_like(json: &str) -> AmqpConfig {
        serde_json::from_str(json).expect("valid config")
    }

    #[test]
    fn defaults_follow_the_naming_conventions() {
        let c = config();
        assert_eq!(c.queue(), "trainhub.hr-queue");
        assert_eq!(c.dead_queue(), "trainhub.dead.hr-queue");
        assert_eq!(c.bindings(), vec!["hr-prov.#".to_owned()]);
        assert_eq!(c.prefetch, 500);
        assert!(matches!(
            c.validate(),
            Ok(Decoding::Canonical(Format::Json))
        ));
        let mut c = config();
        c.format = "party-school-json".into();
        assert!(
            matches!(c.validate(), Ok(Decoding::Profile(p)) if p.id() == "party-school-json@1.0.0")
        );
    }

    #[test]
    fn bad_settings_name_the_key() {
        let mut c = config();
        c.format = "xml".into();
        assert!(c.validate().unwrap_err().contains("`format`"));
        let mut c = config();
        c.queue_type = Some("stream".into());
        assert!(c.validate().unwrap_err().contains("`queue_type`"));
        let mut c = config();
        c.url = "http://x".into();
        assert!(c.validate().unwrap_err().contains("`url`"));
        let mut c = config();
        c.fallback_urls = vec!["amqp://b".into(), "b:5672".into()];
        let e = c.validate().unwrap_err();
        assert!(
            e.contains("`fallback_urls`") && e.contains("`b:5672`"),
            "{e}"
        );
        assert!(serde_json::from_str::<AmqpConfig>(
            r#"{"name":"a","system":"b","url":"amqp://x","prefech":5}"#
        )
        .is_err());
    }

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let mut b = Backoff::default();
        let first = b.wait();
        assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(150));
        for _ in 0..20 {
            assert!(b.wait() <= Duration::from_secs(45));
        }
        b.reset();
        assert!(b.wait() <= Duration::from_millis(150));
    }

    #[test]
    fn nodes_are_tried_in_turn_and_backoff_waits_only_after_a_full_round() {
        let mut c = config();
        c.fallback_urls = vec!["amqp://b".into(), "amqp://c".into()];
        let mut nodes = Nodes::new(c.addresses());
        assert_eq!(nodes.current(), c.url);
        assert_eq!(nodes.lost(), Duration::ZERO);
        assert_eq!(nodes.current(), "amqp://b");
        assert_eq!(nodes.lost(), Duration::ZERO);
        assert_eq!(nodes.current(), "amqp://c");
        assert!(nodes.lost() > Duration::ZERO, "all three failed: wait");
        assert_eq!(nodes.current(), c.url);
        nodes.connected();
        assert_eq!(
            nodes.lost(),
            Duration::ZERO,
            "a fresh round after a connection"
        );
        assert_eq!(nodes.index(), 1);
    }
}
