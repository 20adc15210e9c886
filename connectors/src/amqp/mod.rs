//! AMQP source (RabbitMQ, lapin): consumes one durable queue bound to exchange `trainhub.in`
//! decodes each message — one canonical `Record`, or a partner's own payload read by a mapping
//! profile — and hands the envelopes to the pipeline's sink (DESIGN §6.3, §7).
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
//!
//! Layout: [`decode`] (a delivery → envelopes), [`consume`] (one connection's life: receive,
//! commit, settle), [`nodes`] (cluster addresses and backoff), [`headers`] (what a dead letter
//! keeps of a delivery), [`relay`] (the outbound `dossier.changed` publisher).

pub mod consume;
pub mod decode;
pub mod headers;
pub mod nodes;
pub mod relay;

pub use decode::Decoding;
pub use nodes::{Backoff, Nodes};

use crate::registry::{Connector, Context};
use crate::status::State;
use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, ExchangeKind};
use serde::Deserialize;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
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
    /// Unacknowledged messages the broker may send ahead (default 4,000). The hub commits a
    /// quarter of them at a time, so the default makes batches of up to 1,000 messages, as
    /// many as a partner's `Submit` of 1,000 records.
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
    4000
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

impl Connector for AmqpConfig {
    const KIND: &'static str = "amqp";

    fn name(&self) -> &str {
        &self.name
    }

    fn system(&self) -> &str {
        &self.system
    }

    fn check(&self) -> Result<(), String> {
        self.validate().map(drop)
    }

    fn describe(&self) -> String {
        format!(
            "{} ← queue {} (system {}, {})",
            self.name,
            self.queue(),
            self.system,
            self.format
        )
    }

    fn run(self, ctx: Context) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(run(self, ctx))
    }
}

/// Consumes until `stop` turns true, reconnecting whenever the broker goes away.
async fn run(config: AmqpConfig, ctx: Context) {
    let Context {
        sink,
        keyer,
        status,
        mut stop,
    } = ctx;
    let fail_after = Duration::from_secs(config.fail_after_seconds);
    let decoding = match config.validate() {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(connector = %config.name, error = %e, "Connector misconfigured.");
            status.trouble("config", "MISCONFIGURED", e, Some(Duration::ZERO));
            return;
        }
    };
    let mut nodes = Nodes::new(config.addresses());
    let session = consume::Session {
        config: config.clone(),
        decoding,
        sink,
        keyer,
        status: status.clone(),
    };
    loop {
        if *stop.borrow() {
            break;
        }
        let outcome = session.run(&mut nodes, &mut stop).await;
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
        assert_eq!(c.prefetch, 4000);
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
}
