//! `trainhub.v1.IngestService`: thin handlers over the [`Pipeline`].

use crate::auth::{Caller, Role};
use crate::error::ApiError;
use crate::limits::{Limits, RateLimiter};
use std::pin::Pin;
use std::sync::Arc;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};
use trainhub_pipeline::native::NativePayload;
use trainhub_pipeline::{OrderedCommits, Pipeline};
use trainhub_proto::v1::{self as pb, ingest_service_server::IngestService};

/// Connector name under which gRPC submissions are counted and dead-lettered.
pub const GRPC_CONNECTOR: &str = "grpc";

/// The ingest service.
#[derive(Debug, Clone)]
pub struct Ingest {
    pipeline: Pipeline,
    limits: Limits,
    rates: Arc<RateLimiter>,
}

impl Ingest {
    /// A service over `pipeline` with the default limits.
    pub fn new(pipeline: Pipeline) -> Self {
        Ingest::with_limits(pipeline, Limits::default())
    }

    /// A service over `pipeline` holding callers to `limits`.
    pub fn with_limits(pipeline: Pipeline, limits: Limits) -> Self {
        Ingest {
            pipeline,
            limits,
            rates: Arc::default(),
        }
    }

    /// Refuses a batch over the size limit or over the caller's rate.
    fn admit(&self, caller: &Caller, records: usize) -> Result<(), Status> {
        self.limits.check_batch(records)?;
        match caller.rate() {
            Some((name, rate)) => self.rates.take(name, rate, records),
            None => Ok(()),
        }
    }
}

async fn submit_one(
    pipeline: &Pipeline,
    scope: &str,
    req: pb::SubmitRequest,
) -> Result<pb::SubmitResponse, Status> {
    let batch = pipeline.prepare_as(scope, &req.records);
    let outcomes = pipeline
        .commit(GRPC_CONNECTOR, batch)
        .await
        .map_err(ApiError::from)?;
    Ok(pb::SubmitResponse {
        outcomes: outcomes.into_iter().map(Into::into).collect(),
    })
}

type ResponseStream = Pin<Box<dyn Stream<Item = Result<pb::SubmitResponse, Status>> + Send>>;

#[tonic::async_trait]
impl IngestService for Ingest {
    async fn submit(
        &self,
        request: Request<pb::SubmitRequest>,
    ) -> Result<Response<pb::SubmitResponse>, Status> {
        // A partner submits as its own system only; another system's records are refused
        // one by one (`SYSTEM_MISMATCH`) and dead-lettered.
        let caller = Caller::of(&request);
        caller.require(Role::Ingest)?;
        self.admit(&caller, request.get_ref().records.len())?;
        submit_one(&self.pipeline, caller.scope(), request.into_inner())
            .await
            .map(Response::new)
    }

    async fn submit_native(
        &self,
        request: Request<pb::NativeBatch>,
    ) -> Result<Response<pb::SubmitResponse>, Status> {
        let caller = Caller::of(&request);
        caller.require(Role::Ingest)?;
        let batch = request.into_inner();
        if batch.system.trim().is_empty() {
            return Err(Status::invalid_argument("`system` is required"));
        }
        // The batch declares its system: a token that speaks for another one is refused for
        // the whole call (each record would be refused alike), naming both.
        if !caller.scope().is_empty() && caller.scope() != batch.system {
            return Err(Status::permission_denied(format!(
                "this token speaks for system `{}`, not `{}`: send as `{}` or use that \
                 partner's token",
                caller.scope(),
                batch.system,
                caller.scope()
            )));
        }
        let decoder = self.pipeline.decoder().is_some();
        if !decoder {
            return Err(Status::unimplemented(
                "this hub reads no partner formats (no decoder was wired)",
            ));
        }
        // Reading and mapping are CPU work: off the async threads.
        let pipeline = self.pipeline.clone();
        let scope = caller.scope().to_owned();
        let payload = NativePayload {
            profile: batch.profile,
            content_type: batch.content_type,
            system: batch.system,
            payload: batch.payload,
        };
        let (items, prepared) = tokio::task::spawn_blocking(move || {
            let decoder = pipeline.decoder().expect("checked above");
            let items = decoder
                .payload(payload, pipeline.keyer())
                .map_err(Status::invalid_argument)?;
            let n = items.len();
            Ok::<_, Status>((n, pipeline.prepare_inbound(&scope, items)))
        })
        .await
        .map_err(|e| Status::internal(format!("mapping failed: {e}")))??;
        self.admit(&caller, items)?;
        let outcomes = self
            .pipeline
            .commit(GRPC_CONNECTOR, prepared)
            .await
            .map_err(ApiError::from)?;
        Ok(Response::new(pb::SubmitResponse {
            outcomes: outcomes.into_iter().map(Into::into).collect(),
        }))
    }

    type StreamStream = ResponseStream;

    async fn stream(
        &self,
        request: Request<Streaming<pb::SubmitRequest>>,
    ) -> Result<Response<Self::StreamStream>, Status> {
        let caller = Caller::of(&request);
        caller.require(Role::Ingest)?;
        let scope = caller.scope().to_owned();
        let mut inbound = request.into_inner();
        let pipeline = self.pipeline.clone();
        let (prepared_tx, prepared_rx) = tokio::sync::mpsc::channel(COMMITS);
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        // Two stages per stream, so the next batches are validated while earlier ones commit:
        // one task decodes and prepares, the other commits (see `commit_in_order`) and answers
        // each request once its transaction has committed. A closed channel means the partner
        // went away.
        let preparer = pipeline.clone();
        let admission = self.clone();
        tokio::spawn(async move {
            while let Some(next) = inbound.next().await {
                match next {
                    Ok(req) => {
                        // Over a limit: the stream ends with the reason (and when to retry);
                        // batches already sent are still committed and answered.
                        if let Err(status) = admission.admit(&caller, req.records.len()) {
                            let _ = prepared_tx.send(Err(status)).await;
                            break;
                        }
                        if prepared_tx
                            .send(Ok(preparer.prepare_as(&scope, &req.records)))
                            .await
                            .is_err()
                        {
                            break;
                        }
                    }
                    Err(status) => {
                        tracing::debug!(%status, "Partner stream ended with an error.");
                        break;
                    }
                }
            }
        });
        tokio::spawn(commit_in_order(pipeline, prepared_rx, tx));
        let out = tokio_stream::wrappers::ReceiverStream::new(rx);
        Ok(Response::new(Box::pin(out)))
    }
}

/// Batches of one stream committing at once (see [`OrderedCommits`]).
const COMMITS: usize = trainhub_pipeline::ordered::AT_ONCE;

type Reply = Result<pb::SubmitResponse, Status>;

/// Commits a stream's prepared batches, up to [`COMMITS`] at once, and answers them in the
/// order they were sent, each once its transaction has committed. After a failed commit or a
/// refusal the stream ends with that status; batches still committing then finish unanswered,
/// and sent again they come back `DUPLICATE`.
async fn commit_in_order(
    pipeline: Pipeline,
    mut prepared: tokio::sync::mpsc::Receiver<Result<trainhub_pipeline::PreparedBatch, Status>>,
    tx: tokio::sync::mpsc::Sender<Reply>,
) {
    let mut commits = OrderedCommits::new(pipeline, GRPC_CONNECTOR, COMMITS);
    // The refusal to send once the batches before it are answered.
    let mut refusal: Option<Status> = None;
    let mut open = true;
    loop {
        let room = open && refusal.is_none() && commits.has_room();
        tokio::select! {
            biased;
            Some(answer) = commits.next(), if !commits.is_empty() => {
                let reply = answer
                    .map(|outcomes| pb::SubmitResponse {
                        outcomes: outcomes.into_iter().map(Into::into).collect(),
                    })
                    .map_err(|e| Status::from(ApiError::from(e)));
                let failed = reply.is_err();
                if tx.send(reply).await.is_err() || failed {
                    return;
                }
            }
            next = prepared.recv(), if room => match next {
                Some(Ok(batch)) => commits.start(batch),
                Some(Err(status)) => refusal = Some(status),
                None => open = false,
            },
            else => {
                if let Some(status) = refusal.take() {
                    let _ = tx.send(Err(status)).await;
                }
                return;
            }
        }
    }
}
