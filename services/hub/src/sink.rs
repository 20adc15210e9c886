//! The pipeline as connectors see it ([`RecordSink`]): decode, scope to the connector's system,
//! validate, commit.

use std::sync::Arc;
use trainhub_api::{Inbound, Pipeline};
use trainhub_connectors::sink::{Batch, RecordSink, SinkError, SinkFuture, Verdict};

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

impl RecordSink for PipelineSink {
    fn commit(&self, batch: Batch) -> SinkFuture<'_> {
        Box::pin(async move {
            let format = batch.format;
            let inbound: Vec<Inbound> =
                tracing::info_span!("decode", records = batch.messages.len()).in_scope(|| {
                    batch
                        .messages
                        .into_iter()
                        .map(|m| Inbound::decode(m.payload, format, m.headers))
                        .collect()
                });
            let prepared = self.pipeline.prepare_inbound(&batch.system, inbound);
            let outcomes = self
                .pipeline
                .commit(&batch.connector, prepared)
                .await
                .map_err(|e| SinkError(e.to_string()))?;
            Ok(outcomes.iter().map(verdict).collect())
        })
    }
}
