//! `trainhub-bench amqp`: the hub consuming a RabbitMQ queue — decode JSON, validate, commit to
//! PostgreSQL, acknowledge — against a bare lapin consumer on the same queue that only
//! acknowledges them, a quarter of the prefetch at a time, as the hub does (what the broker can
//! deliver at best to one consumer).
//!
//! Both drain a backlog of the same messages published beforehand, with the same prefetch;
//! the clock runs from the consumer's start to the last acknowledgement (hub: the last commit).

use crate::ingest::{generate, peak_rss_kib, tempfile_dir};
use crate::AmqpBenchArgs;
use anyhow::{Context, Result};
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeleteOptions, QueuePurgeOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};
use trainhub::config::{Config, ConnectorConfig};
use trainhub::startup::Application;
use trainhub_connectors::amqp::{declare_topology, AmqpConfig, INBOUND_EXCHANGE};

const SYSTEM: &str = "bench-partner";

/// Runs the benchmark and prints both rates.
pub async fn run(args: AmqpBenchArgs) -> Result<()> {
    // One partner, one queue: the records of the three synthetic systems under one system,
    // their ids kept unique.
    let messages: Vec<Vec<u8>> = generate(args.records)
        .into_iter()
        .map(|mut r| {
            let source = r.source.as_mut().expect("generated records have a source");
            source.record_id = format!("{}/{}", source.system, source.record_id);
            source.system = SYSTEM.into();
            trainhub_proto::encode_json(&r)
        })
        .collect();
    let name = format!("bench-{:08x}", rand::random::<u32>());
    let connector = AmqpConfig {
        name: name.clone(),
        system: SYSTEM.into(),
        url: args.amqp.clone(),
        fallback_urls: Vec::new(),
        queue: None,
        bindings: Some(vec![format!("{name}.#")]),
        prefetch: args.prefetch,
        format: "json".into(),
        queue_type: None,
        fail_after_seconds: 60,
    };
    println!(
        "bench: {} JSON records ({:.1} MiB) through queue {}, prefetch {}",
        messages.len(),
        messages.iter().map(Vec::len).sum::<usize>() as f64 / (1 << 20) as f64,
        connector.queue(),
        args.prefetch
    );
    let connection = Connection::connect(&args.amqp, ConnectionProperties::default())
        .await
        .context("connecting to RabbitMQ")?;
    let channel = connection.create_channel().await?;
    declare_topology(&channel, &connector).await?;

    publish(&connection, &name, &messages).await?;
    let bare = bare_consumer(&connection, &connector, messages.len()).await?;
    println!("bare consumer (ack only): {bare:.0} messages/s");

    publish(&connection, &name, &messages).await?;
    let db = format!("trainhub_bench_amqp_{:08x}", rand::random::<u32>());
    let url = trainhub_store::create_postgres_database(&args.server.postgres, &db)
        .await
        .context("creating the benchmark database")?;
    let result = hub_consumer(&url, &connector, messages.len()).await;
    let _ = trainhub_store::drop_postgres_database(&args.server.postgres, &db).await;
    let hub = result?;
    println!("hub (decode, validate, commit to PostgreSQL, ack): {hub:.0} records/s");

    for queue in [connector.queue(), connector.dead_queue()] {
        let _ = channel
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
    println!();
    println!("{:<28} {:>12}", "consumer", "per second");
    println!("{:<28} {:>12.0}", "bare lapin, ack only", bare);
    println!("{:<28} {:>12.0}", "trainhub → PostgreSQL", hub);
    println!("hub / bare: {:.1}%", 100.0 * hub / bare);
    println!("peak RSS: {:.1} MiB", peak_rss_kib() as f64 / 1024.0);
    Ok(())
}

async fn publish(connection: &Connection, name: &str, messages: &[Vec<u8>]) -> Result<()> {
    let channel = connection.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let started = Instant::now();
    let key = format!("{name}.record");
    for chunk in messages.chunks(2000) {
        for m in chunk {
            drop(
                channel
                    .basic_publish(
                        INBOUND_EXCHANGE.into(),
                        key.as_str().into(),
                        BasicPublishOptions::default(),
                        m,
                        BasicProperties::default().with_delivery_mode(2),
                    )
                    .await?,
            );
        }
        channel.wait_for_confirms().await?;
    }
    println!(
        "published {} persistent messages in {:.1} s",
        messages.len(),
        started.elapsed().as_secs_f64()
    );
    let _ = channel.close(200, "published".into()).await;
    Ok(())
}

async fn bare_consumer(connection: &Connection, config: &AmqpConfig, n: usize) -> Result<f64> {
    let channel: Channel = connection.create_channel().await?;
    channel
        .basic_qos(config.prefetch, BasicQosOptions::default())
        .await?;
    let started = Instant::now();
    let mut consumer = channel
        .basic_consume(
            config.queue().as_str().into(),
            "bench-bare".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    // One `multiple` ack per quarter of the prefetch, the hub's batch: acknowledging each
    // message alone made this "limit" slower than the hub itself.
    let every = usize::from(config.prefetch).div_ceil(4).max(1);
    let mut received = 0;
    while received < n {
        let delivery = tokio::time::timeout(Duration::from_secs(60), consumer.next())
            .await
            .context("the queue ran dry before every message arrived")?
            .context("the consumer ended")??;
        received += 1;
        if received % every == 0 || received == n {
            delivery.ack(BasicAckOptions { multiple: true }).await?;
        }
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    channel
        .queue_purge(config.queue().as_str().into(), QueuePurgeOptions::default())
        .await?;
    let _ = channel.close(200, "done".into()).await;
    Ok(rate)
}

async fn hub_consumer(url: &str, connector: &AmqpConfig, n: usize) -> Result<f64> {
    let dir = tempfile_dir()?;
    let mut config = Config::load(None, std::iter::empty())?;
    config.server.grpc_addr = "127.0.0.1:0".parse()?;
    config.server.http_addr = "127.0.0.1:0".parse()?;
    config.server.data_dir = dir.clone();
    config.store.url = Some(url.to_owned());
    config.connectors = vec![ConnectorConfig::Amqp(connector.clone())];
    // Build (connect, migrate) before the clock starts; consumption starts with serving.
    let app = Application::build(&config).await?;
    let status = app
        .connector_status(&connector.name)
        .expect("the connector is configured");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let started = Instant::now();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stop_rx.await;
    }));
    let mut last = (Instant::now(), 0);
    loop {
        let done = status.counters.received.load(Relaxed);
        if done as usize >= n {
            break;
        }
        if done != last.1 {
            last = (Instant::now(), done);
        } else if last.0.elapsed() > Duration::from_secs(60) {
            anyhow::bail!(
                "the hub stalled at {done} of {n}: {:?}",
                status.last_error()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    let c = &status.counters;
    println!(
        "hub outcomes: {} accepted, {} parked, {} duplicate, {} rejected",
        c.accepted.load(Relaxed),
        c.parked.load(Relaxed),
        c.duplicate.load(Relaxed),
        c.rejected.load(Relaxed)
    );
    let _ = stop_tx.send(());
    server.await??;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(rate)
}
