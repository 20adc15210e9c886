//! One connection's life: declare the topology, consume, decode each batch into envelopes,
//! hand them to the sink, and settle with the broker once the batch committed.
//!
//! When the store refuses a batch for good (a constraint or trigger: the same batch would
//! fail again), the batch is split and its messages committed one by one; a message refused
//! on each of its [`PERMANENT_TRIES`] tries is dead-lettered — in the hub (stage `store`,
//! `STORE_REFUSED`, bytes kept for replay) and by the broker — so the messages behind it on
//! the queue go on. Transient failures (the store unreachable or restarting) are retried
//! without limit and nothing is acknowledged meanwhile.

use super::headers::headers_json;
use super::{declare_topology, AmqpConfig, Decoding, Nodes};
use crate::status::ConnectorStatus;
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicQosOptions, BasicRejectOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use trainhub_model::merge::OutcomeStatus;
use trainhub_model::PersonKeyer;
use trainhub_pipeline::{Envelopes, ErrorKind, Inbound, RecordSink, SinkError, Verdict};

/// Tries of one message the store refuses for good before it is dead-lettered.
pub const PERMANENT_TRIES: u32 = 3;

/// A delivery waiting for its batch to commit.
struct Pending {
    tag: u64,
    received: Instant,
    payload: Vec<u8>,
    content_type: Option<String>,
    headers: String,
}

/// What a session needs besides its connection.
#[derive(Clone)]
pub(super) struct Session {
    pub config: AmqpConfig,
    pub decoding: Decoding,
    pub sink: Arc<dyn RecordSink>,
    pub keyer: PersonKeyer,
    pub status: Arc<ConnectorStatus>,
}

impl Session {
    /// One connection's life: declare, consume, commit and acknowledge. `Ok` when stopped.
    pub async fn run(
        &self,
        nodes: &mut Nodes,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), lapin::Error> {
        let (config, status) = (&self.config, &self.status);
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
        let depth = watch_depth(
            connection.create_channel().await?,
            status.clone(),
            config.queue(),
        );

        // Batches in flight: three committing (while one decodes and seals, the others are at
        // the database, whose round trips leave it idle otherwise), one being received, each
        // a quarter of the prefetch. Acknowledgements go out in delivery order whatever order
        // commits finish in.
        let max_batch = usize::from(config.prefetch).div_ceil(4).max(1);
        let (to_commit, committing) = mpsc::channel::<Vec<Pending>>(1);
        let committer = tokio::spawn(self.clone().committer(
            channel.clone(),
            committing,
            stop.clone(),
        ));

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

    /// Commits the batches in turn (three at a time) and settles each in delivery order.
    async fn committer(
        self,
        channel: Channel,
        committing: mpsc::Receiver<Vec<Pending>>,
        stop: watch::Receiver<bool>,
    ) -> Result<(), lapin::Error> {
        let mut committed = tokio_stream::wrappers::ReceiverStream::new(committing)
            .map(|batch| {
                let (session, stop) = (self.clone(), stop.clone());
                self.status.in_flight_push(batch[0].received);
                async move {
                    let tags: Vec<u64> = batch.iter().map(|p| p.tag).collect();
                    let messages = session.decode(batch);
                    (tags, session.commit(messages, stop).await)
                }
            })
            .buffered(3);
        while let Some((tags, verdicts)) = committed.next().await {
            match verdicts {
                Some(verdicts) => settle(&channel, &self.status, &tags, &verdicts).await?,
                // Abandoned while stopping: neither it nor any later batch may be acked (a
                // `multiple` ack would cover it); the broker redelivers them all.
                None => return Ok(()),
            }
        }
        Ok(())
    }

    /// The envelopes of each delivery, in order.
    fn decode(&self, batch: Vec<Pending>) -> Vec<Vec<Inbound>> {
        let _span = tracing::info_span!("decode", messages = batch.len()).entered();
        batch
            .into_iter()
            .map(|p| {
                self.decoding.decode(
                    &self.config.system,
                    &self.keyer,
                    p.content_type.as_deref(),
                    p.payload,
                    p.headers,
                )
            })
            .collect()
    }

    /// Commits one batch's messages: retried while the store is unavailable, split when the
    /// store refuses it for good. `None` when the hub stops before it could commit (the batch
    /// is then left for redelivery).
    async fn commit(
        &self,
        messages: Vec<Vec<Inbound>>,
        stop: watch::Receiver<bool>,
    ) -> Option<Vec<Verdict>> {
        match self.commit_retrying(&messages, &stop).await? {
            Ok(verdicts) => Some(verdicts),
            Err(e) if messages.len() == 1 => Some(vec![
                self.refuse(messages.into_iter().next()?, &e, &stop).await?,
            ]),
            Err(e) => {
                tracing::warn!(connector = %self.config.name, error = %e, messages = messages.len(),
                    "The store refused the batch; committing its messages one by one.");
                let mut verdicts = Vec::with_capacity(messages.len());
                for message in messages {
                    let one = std::slice::from_ref(&message);
                    let verdict = match self.commit_retrying(one, &stop).await? {
                        Ok(v) => v.into_iter().next()?,
                        Err(e) => self.refuse(message, &e, &stop).await?,
                    };
                    verdicts.push(verdict);
                }
                Some(verdicts)
            }
        }
    }

    /// Commits `messages`, retrying transient failures without limit and a permanent
    /// refusal up to [`PERMANENT_TRIES`] times; `Err` carries the permanent refusal, `None`
    /// means the hub is stopping. The sink takes its envelopes, so each try gets a copy; the
    /// caller keeps the messages for a split or a dead letter.
    async fn commit_retrying(
        &self,
        messages: &[Vec<Inbound>],
        stop: &watch::Receiver<bool>,
    ) -> Option<Result<Vec<Verdict>, SinkError>> {
        let mut backoff = super::Backoff::default();
        let mut refused = 0;
        loop {
            let envelopes = Envelopes {
                connector: self.config.name.clone(),
                system: self.config.system.clone(),
                messages: messages.to_vec(),
            };
            let e = match self.sink.commit(envelopes).await {
                Ok(verdicts) => return Some(Ok(verdicts)),
                Err(e) => e,
            };
            if e.kind == ErrorKind::Permanent {
                refused += 1;
                if refused >= PERMANENT_TRIES {
                    return Some(Err(e));
                }
            }
            self.wait_after(&e, &mut backoff, stop).await?;
        }
    }

    /// Dead-letters a message the store refused for good; retried (without limit) only while
    /// the store cannot even take the dead letter.
    async fn refuse(
        &self,
        message: Vec<Inbound>,
        cause: &SinkError,
        stop: &watch::Receiver<bool>,
    ) -> Option<Verdict> {
        tracing::warn!(connector = %self.config.name, error = %cause,
            "The store refused a message on every try; dead-lettering it.");
        let mut backoff = super::Backoff::default();
        loop {
            let refused = self.sink.refuse(
                &self.config.name,
                &self.config.system,
                message.clone(),
                cause,
            );
            match refused.await {
                Ok(verdict) => return Some(verdict),
                Err(e) => self.wait_after(&e, &mut backoff, stop).await?,
            }
        }
    }

    /// Waits before the next try; `None` when the hub is stopping.
    async fn wait_after(
        &self,
        e: &SinkError,
        backoff: &mut super::Backoff,
        stop: &watch::Receiver<bool>,
    ) -> Option<()> {
        if *stop.borrow() {
            tracing::warn!(connector = %self.config.name, error = %e,
                "Store unavailable while stopping; leaving the batch for redelivery.");
            return None;
        }
        let wait = backoff.wait();
        tracing::warn!(connector = %self.config.name, error = %e, retry_in = ?wait,
            "Store failed; the batch stays unacknowledged and is retried.");
        let (stage, reason) = match e.kind {
            ErrorKind::Transient => ("store", "STORE_UNAVAILABLE"),
            ErrorKind::Permanent => ("store", "STORE_REFUSED"),
        };
        let fail_after = Duration::from_secs(self.config.fail_after_seconds);
        self.status
            .trouble(stage, reason, e.to_string(), Some(fail_after));
        tokio::time::sleep(wait).await;
        Some(())
    }
}

/// Lag: the queue's depth, polled on a channel of its own while the session lasts.
fn watch_depth(
    channel: Channel,
    status: Arc<ConnectorStatus>,
    queue: String,
) -> tokio::task::JoinHandle<()> {
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
        headers: headers_json(&delivery),
        content_type: delivery
            .properties
            .content_type()
            .as_ref()
            .map(|t| t.as_str().to_owned()),
        payload: delivery.data,
    })
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
