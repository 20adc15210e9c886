//! The pipeline as connectors see it ([`RecordSink`]): decode, scope to the connector's system,
//! validate, commit.

use std::sync::Arc;
use trainhub_api::{Inbound, Pipeline};
use trainhub_connectors::sink::{Batch, RecordSink, SinkError, SinkFuture};

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

impl RecordSink for PipelineSink {
    fn commit(&self, batch: Batch) -> SinkFuture<'_> {
        Box::pin(async move {
            let format = batch.format;
            let inbound = batch
                .messages
                .into_iter()
                .map(|m| Inbound::decode(m.payload, format, m.headers));
            let prepared = self.pipeline.prepare_inbound(&batch.system, inbound);
            let outcomes = self
                .pipeline
                .commit(&batch.connector, prepared)
                .await
                .map_err(|e| SinkError(e.to_string()))?;
            Ok(outcomes.into_iter().map(|o| o.status).collect())
        })
    }
}
