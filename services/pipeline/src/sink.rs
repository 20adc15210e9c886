//! The pipeline as connectors see it ([`RecordSink`]): decode, scope to the connector's system,
//! validate, commit.

use std::sync::Arc;
use trainhub_api::native::inbound_of_message;
use trainhub_api::{Inbound, Pipeline};
use trainhub_connectors::sink::{Batch, Decoding, RecordSink, SinkError, SinkFuture, Verdict};
use trainhub_model::merge::OutcomeStatus;

/// Connectors' entry into the pipeline.
#[derive(Debug, Clone)]
pub struct PipelineSink {
    pipeline: Pipeline,
}

impl PipelineSink {
    /// A sink committing through `pipeline`.
    pub fn new(pipeline: Pipeline) -> Arc<PipelineSink> {
        Arc::new(PipelineSink { pipeline })
    }
}

/// How a connector counts an outcome.
pub fn verdict(o: &trainhub_api::Outcome) -> Verdict {
    match &o.rejection {
        Some(r) => Verdict {
            status: o.status,
            stage: r.stage.as_str(),
            reason: r.code.as_str(),
        },
        None => Verdict::stored(o.status),
    }
}

/// One message's verdict from its records': rejected only when every record was (then the
/// broker dead-letters the message too); otherwise the first stored record's. The records
/// refused meanwhile are in the hub's dead letters either way.
fn message_verdict(records: Vec<Verdict>) -> Verdict {
    records
        .iter()
        .find(|v| v.status != OutcomeStatus::Rejected)
        .or(records.first())
        .cloned()
        .unwrap_or_else(|| Verdict::stored(OutcomeStatus::Duplicate))
}

/// The AMQP `content_type` property kept in a message's headers, if any.
fn content_type(headers: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(headers).ok()?;
    v.get("content_type")?.as_str().map(str::to_owned)
}

impl RecordSink for PipelineSink {
    fn commit(&self, batch: Batch) -> SinkFuture<'_> {
        Box::pin(async move {
            let span = tracing::info_span!("decode", messages = batch.messages.len());
            // Records per message, in order: one for canonical formats, any for a profile.
            let mut per_message = Vec::with_capacity(batch.messages.len());
            let inbound: Vec<Inbound> = span.in_scope(|| {
                let mut all = Vec::with_capacity(batch.messages.len());
                for m in batch.messages {
                    let before = all.len();
                    match &batch.format {
                        Decoding::Canonical(format) => {
                            all.push(Inbound::decode(m.payload, *format, m.headers))
                        }
                        Decoding::Profile(profile) => all.extend(inbound_of_message(
                            profile,
                            &batch.system,
                            self.pipeline.keyer(),
                            content_type(&m.headers).as_deref(),
                            m.payload,
                            &m.headers,
                        )),
                    }
                    per_message.push(all.len() - before);
                }
                all
            });
            let prepared = self.pipeline.prepare_inbound(&batch.system, inbound);
            let outcomes = self
                .pipeline
                .commit(&batch.connector, prepared)
                .await
                .map_err(|e| SinkError(e.to_string()))?;
            let mut outcomes = outcomes.iter();
            Ok(per_message
                .into_iter()
                .map(|n| message_verdict(outcomes.by_ref().take(n).map(verdict).collect()))
                .collect())
        })
    }
}
