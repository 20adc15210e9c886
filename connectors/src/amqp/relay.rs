//! The outbox relay: publishes `dossier.changed` events from the transactional outbox to the
//! topic exchange (default `trainhub.dossier`) with publisher confirms, and deletes a row only
//! after the broker confirmed it. While the broker is away rows accumulate in the outbox and
//! go out once it is back; with several hubs each row is taken by one relay
//! (`FOR UPDATE SKIP LOCKED`), and a person's events go out in sequence order.
//!
//! Delivery is at least once: if the connection drops after the broker took a message but
//! before its confirm arrived, the row is published again. Consumers recognise a repeat by its
//! `message_id` (`<person_key>:<sequence>`), which is also in the body.

use super::Nodes;
use crate::status::{ConnectorStatus, State};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties, ExchangeKind};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use trainhub_pipeline::Pipeline;

/// `[events]`: where `dossier.changed` events go. Without a `url` no events are written.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// Broker URL of the outbox relay, e.g. `amqp://guest:guest@127.0.0.1:5672/%2f`.
    pub url: Option<String>,
    /// Further nodes of the same RabbitMQ cluster, tried in turn when the one in use is lost.
    pub fallback_urls: Vec<String>,
    /// Topic exchange the events are published to.
    pub exchange: String,
    /// Outbox rows published per confirm round.
    pub batch: u16,
    /// Seconds without the broker after which the relay is `failed` (default 60).
    pub fail_after_seconds: u64,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            url: None,
            fallback_urls: Vec::new(),
            exchange: "trainhub.dossier".into(),
            batch: 500,
            fail_after_seconds: 60,
        }
    }
}

/// The status name of the relay.
pub const NAME: &str = "outbox";

/// Header naming the hub instance that published an event.
pub const INSTANCE_HEADER: &str = "trainhub-instance";

/// Publishes until `stop` turns true; events carry `instance` in [`INSTANCE_HEADER`].
pub async fn run(
    pipeline: Pipeline,
    config: EventsConfig,
    instance: String,
    status: Arc<ConnectorStatus>,
    mut stop: watch::Receiver<bool>,
) {
    let Some(url) = config.url.clone() else {
        return;
    };
    let mut nodes = Nodes::new(
        std::iter::once(url)
            .chain(config.fallback_urls.iter().cloned())
            .collect(),
    );
    while !*stop.borrow() {
        match session(
            &pipeline, &config, &instance, &status, &mut stop, &mut nodes,
        )
        .await
        {
            Ok(()) => break,
            Err(e) => {
                let wait = nodes.lost();
                tracing::warn!(error = %e, retry_in = ?wait,
                    "Outbox relay lost its broker; events wait in the outbox.");
                let fail_after = Duration::from_secs(config.fail_after_seconds);
                status.trouble("publish", "BROKER_UNREACHABLE", e, Some(fail_after));
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.changed() => {}
                }
            }
        }
    }
    status.set_state(State::Stopped);
}

async fn session(
    pipeline: &Pipeline,
    config: &EventsConfig,
    instance: &str,
    status: &ConnectorStatus,
    stop: &mut watch::Receiver<bool>,
    nodes: &mut Nodes,
) -> Result<(), String> {
    let mut headers = FieldTable::default();
    headers.insert(
        INSTANCE_HEADER.into(),
        lapin::types::AMQPValue::LongString(instance.into()),
    );
    let broker = |e: lapin::Error| format!("broker: {e}");
    let connection = Connection::connect(
        nodes.current(),
        ConnectionProperties::default().with_connection_name("trainhub outbox relay".into()),
    )
    .await
    .map_err(broker)?;
    let channel = connection.create_channel().await.map_err(broker)?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(broker)?;
    channel
        .exchange_declare(
            config.exchange.as_str().into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .map_err(broker)?;
    status.running();
    nodes.connected();
    tracing::info!(exchange = %config.exchange, "Outbox relay publishing.");
    loop {
        if *stop.borrow() {
            let _ = connection.close(200, "trainhub stopping".into()).await;
            return Ok(());
        }
        // Noticed while idle too, so status tells the truth before events are waiting.
        if !channel.status().connected() {
            return Err("broker: the connection closed".into());
        }
        let claim = match pipeline.claim_events(i64::from(config.batch)).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "Outbox unreadable; retrying.");
                store_trouble(status, &e);
                idle(stop, Duration::from_secs(1)).await;
                continue;
            }
        };
        if claim.rows.is_empty() {
            drop(claim);
            idle(stop, Duration::from_millis(200)).await;
            continue;
        }
        let confirmed = publish(&channel, config, &headers, &claim.rows).await?;
        let published = confirmed.len();
        if let Err(e) = claim.complete(&confirmed).await {
            // The rows stay and are published again: at least once.
            tracing::warn!(error = %e, "Could not delete published outbox rows; they will repeat.");
            store_trouble(status, &e);
            continue;
        }
        status.sent(published as u64);
        tracing::debug!(published, "Outbox events published.");
    }
}

/// Publishes one claim's rows and waits for the broker's confirms; the ids it confirmed.
async fn publish(
    channel: &lapin::Channel,
    config: &EventsConfig,
    headers: &FieldTable,
    rows: &[trainhub_pipeline::OutboxRow],
) -> Result<Vec<i64>, String> {
    let broker = |e: lapin::Error| format!("broker: {e}");
    let mut confirms = Vec::with_capacity(rows.len());
    for row in rows {
        let properties = BasicProperties::default()
            .with_message_id(format!("{}:{}", row.person_key, row.seq).into())
            .with_content_type("application/json".into())
            .with_type("dossier.changed".into())
            .with_delivery_mode(2)
            .with_app_id("trainhub".into())
            .with_headers(headers.clone());
        let confirm = channel
            .basic_publish(
                config.exchange.as_str().into(),
                row.routing_key.as_str().into(),
                BasicPublishOptions::default(),
                row.payload.as_bytes(),
                properties,
            )
            .await
            .map_err(broker)?;
        confirms.push(confirm);
    }
    let mut confirmed = Vec::with_capacity(confirms.len());
    for (row, confirm) in rows.iter().zip(confirms) {
        if confirm.await.map_err(broker)?.is_ack() {
            confirmed.push(row.id);
        } else {
            tracing::warn!(
                seq = row.seq,
                "Broker refused an event; it stays in the outbox."
            );
        }
    }
    Ok(confirmed)
}

/// A store problem of the relay: `degraded` (never `failed`: events only wait).
fn store_trouble(status: &ConnectorStatus, e: &dyn std::fmt::Display) {
    status.trouble("store", "STORE_UNAVAILABLE", e.to_string(), None);
}

async fn idle(stop: &mut watch::Receiver<bool>, wait: Duration) {
    tokio::select! {
        _ = tokio::time::sleep(wait) => {}
        _ = stop.changed() => {}
    }
}
