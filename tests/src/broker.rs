//! The test RabbitMQ: at `TRAINHUB_TEST_AMQP` (default `amqp://guest:guest@127.0.0.1:5672/%2f`).
//! Each test uses its own random names. When the broker is unreachable tests skip with a
//! message — unless `CI` is set, in which case they fail.

use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use std::time::Duration;

/// The broker URL tests use.
pub fn amqp_url() -> String {
    std::env::var("TRAINHUB_TEST_AMQP")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// A connection to the test broker with a confirming channel.
pub struct Broker {
    /// The connection.
    pub connection: Connection,
    /// A channel in confirm mode.
    pub channel: Channel,
}

/// A short random word for queue, connector and routing names.
pub fn random_name(prefix: &str) -> String {
    format!("{prefix}{:08x}", rand::random::<u32>())
}

impl Broker {
    /// Connects, or `None` (with a message) when the broker is unavailable outside CI.
    pub async fn connect() -> Option<Broker> {
        match Broker::try_connect().await {
            Ok(b) => Some(b),
            Err(e) if std::env::var_os("CI").is_some() => {
                panic!("RabbitMQ is required in CI but unavailable: {e}")
            }
            Err(e) => {
                eprintln!("SKIPPED: RabbitMQ unavailable ({e}); start it on 127.0.0.1:5672");
                None
            }
        }
    }

    /// Connects, failing when the broker is away.
    pub async fn try_connect() -> lapin::Result<Broker> {
        let connection = Connection::connect(&amqp_url(), ConnectionProperties::default()).await?;
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(Broker {
            connection,
            channel,
        })
    }

    /// Declares `exchange` as a durable topic exchange.
    pub async fn topic_exchange(&self, exchange: &str) -> lapin::Result<()> {
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        };
        self.channel
            .exchange_declare(
                exchange.into(),
                ExchangeKind::Topic,
                durable,
                FieldTable::default(),
            )
            .await
    }

    /// Publishes every payload to `exchange` (declared as a durable topic exchange) with its
    /// routing key, persistent, and waits for the broker's confirms.
    pub async fn publish_all(
        &self,
        exchange: &str,
        messages: &[(String, Vec<u8>)],
    ) -> lapin::Result<()> {
        self.topic_exchange(exchange).await?;
        for chunk in messages.chunks(1000) {
            for (key, payload) in chunk {
                // The confirm is awaited for the whole chunk below.
                drop(
                    self.channel
                        .basic_publish(
                            exchange.into(),
                            key.as_str().into(),
                            BasicPublishOptions::default(),
                            payload,
                            BasicProperties::default()
                                .with_delivery_mode(2)
                                .with_content_type("application/json".into()),
                        )
                        .await?,
                );
            }
            self.channel.wait_for_confirms().await?;
        }
        Ok(())
    }

    /// Messages ready in `queue` (not counting unacknowledged ones).
    pub async fn ready(&self, queue: &str) -> lapin::Result<u32> {
        let q = self
            .channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
        Ok(q.message_count())
    }

    /// Declares a durable queue bound to `exchange` with `key`, for watching published events.
    pub async fn watch(&self, queue: &str, exchange: &str, key: &str) -> lapin::Result<()> {
        self.topic_exchange(exchange).await?;
        self.channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
        self.channel
            .queue_bind(
                queue.into(),
                exchange.into(),
                key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
    }

    /// Consumes every message now in `queue` (acknowledging them), in delivery order, waiting
    /// until none arrived for `quiet`.
    pub async fn drain(
        &self,
        queue: &str,
        quiet: Duration,
    ) -> lapin::Result<Vec<lapin::message::Delivery>> {
        let channel = self.connection.create_channel().await?;
        let mut consumer = channel
            .basic_consume(
                queue.into(),
                random_name("drain-").as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let mut out = Vec::new();
        while let Ok(Some(d)) = tokio::time::timeout(quiet, consumer.next()).await {
            let d = d?;
            d.ack(BasicAckOptions::default()).await?;
            out.push(d);
        }
        let _ = channel.close(200, "drained".into()).await;
        Ok(out)
    }

    /// Deletes `queues`, ignoring those already gone.
    pub async fn delete(&self, queues: &[String]) {
        for q in queues {
            if let Ok(channel) = self.connection.create_channel().await {
                let _ = channel
                    .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                    .await;
            }
        }
    }

    /// Deletes an exchange a test declared, ignoring failures.
    pub async fn delete_exchange(&self, exchange: &str) {
        let _ = self
            .channel
            .exchange_delete(exchange.into(), Default::default())
            .await;
    }
}

/// Polls `check` every 100 ms until it returns true or `limit` passes; returns whether it did.
/// A safety limit against hanging, not a performance assertion.
pub async fn wait_for<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = std::time::Instant::now();
    loop {
        if check().await {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Three AMQP connectors, one per synthetic partner system, with names and bindings unique to
/// one test: partner `S` publishes to `trainhub.in` with routing key `<prefix>.S.<kind>`.
pub struct Feed {
    /// The test's prefix.
    pub prefix: String,
    /// The connectors' settings.
    pub connectors: Vec<trainhub_connectors::amqp::AmqpConfig>,
}

impl Feed {
    /// A feed with a fresh random prefix.
    pub fn new(prefetch: u16) -> Feed {
        use trainhub_connectors::synthetic::{ELEARNING, HR, SCHOOL};
        let prefix = random_name("t");
        let connectors = [HR, SCHOOL, ELEARNING]
            .iter()
            .map(|system| trainhub_connectors::amqp::AmqpConfig {
                name: format!("{prefix}-{system}"),
                system: (*system).to_owned(),
                url: amqp_url(),
                fallback_urls: Vec::new(),
                queue: None,
                bindings: Some(vec![format!("{prefix}.{system}.#")]),
                prefetch,
                format: "json".into(),
                queue_type: None,
                fail_after_seconds: 60,
            })
            .collect();
        Feed { prefix, connectors }
    }

    /// The connectors as `[[connectors]]` entries.
    pub fn configs(&self) -> Vec<trainhub::config::ConnectorConfig> {
        self.connectors
            .iter()
            .cloned()
            .map(trainhub::config::ConnectorConfig::Amqp)
            .collect()
    }

    /// Where partner `system` publishes a record of `kind`.
    pub fn routing_key(&self, system: &str, kind: &str) -> String {
        format!("{}.{system}.{kind}", self.prefix)
    }

    /// The messages a partner publishes for `records`: proto3 JSON, routed by system and kind.
    pub fn messages(&self, records: &[trainhub_proto::v1::Record]) -> Vec<(String, Vec<u8>)> {
        records
            .iter()
            .map(|r| {
                let s = r.source.as_ref().expect("source");
                (
                    self.routing_key(&s.system, &s.kind),
                    trainhub_proto::encode_json(r),
                )
            })
            .collect()
    }

    /// Declares the connectors' queues and bindings, as the hub does at start, so that
    /// messages published before the hub runs are kept rather than dropped unroutable.
    pub async fn declare(&self, broker: &Broker) -> lapin::Result<()> {
        for c in &self.connectors {
            trainhub_connectors::amqp::declare_topology(&broker.channel, c).await?;
        }
        Ok(())
    }

    /// Every queue the feed's connectors declare.
    pub fn queues(&self) -> Vec<String> {
        self.connectors
            .iter()
            .flat_map(|c| [c.queue(), c.dead_queue()])
            .collect()
    }

    /// `[[connectors]]` entries as TOML, for a hub run as a process.
    pub fn toml(&self) -> String {
        let mut out = String::new();
        for c in &self.connectors {
            out.push_str(&format!(
                "[[connectors]]\nname = {:?}\nkind = \"amqp\"\nsystem = {:?}\nurl = {:?}\n\
                 bindings = [{:?}]\nprefetch = {}\nformat = \"json\"\n\n",
                c.name,
                c.system,
                c.url,
                c.bindings()[0],
                c.prefetch
            ));
        }
        out
    }
}
