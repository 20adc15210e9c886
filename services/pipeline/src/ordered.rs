//! Several batches of one sender committing at once, answered in the order they were sent.

use crate::{Outcome, Pipeline, PreparedBatch};
use std::collections::VecDeque;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

type Answer = Result<Vec<Outcome>, trainhub_store::Error>;

/// Batches of one sender committing at once where nothing else says: on two cores, three
/// keep both busy while the others wait for the database (a gRPC stream went from about
/// 11,000 to 20,000 records/s on PostgreSQL).
pub const AT_ONCE: usize = 3;

/// Batches of one sender (a gRPC stream, a file import) committing up to a limit at once. A
/// commit waits for the database most of its time (round trips, the log flush); one at a
/// time leaves a core idle. Batches may commit in any order — the newest version of a record
/// wins whichever lands first — and each is answered as if it had committed after the ones
/// started before it ([`Pipeline::commit_after`]).
pub struct OrderedCommits {
    pipeline: Pipeline,
    connector: String,
    limit: usize,
    in_flight: VecDeque<JoinHandle<Answer>>,
    /// Resolved once the last batch started has committed and been answered for.
    previous: Option<oneshot::Receiver<()>>,
}

impl OrderedCommits {
    /// Up to `limit` (at least one) batches at once, counted under `connector`.
    pub fn new(pipeline: Pipeline, connector: impl Into<String>, limit: usize) -> Self {
        OrderedCommits {
            pipeline,
            connector: connector.into(),
            limit: limit.max(1),
            in_flight: VecDeque::new(),
            previous: None,
        }
    }

    /// Whether another batch may start.
    pub fn has_room(&self) -> bool {
        self.in_flight.len() < self.limit
    }

    /// Whether no batch is committing.
    pub fn is_empty(&self) -> bool {
        self.in_flight.is_empty()
    }

    /// Starts committing `batch` (on its own task: it commits even if nobody waits for it).
    pub fn start(&mut self, batch: PreparedBatch) {
        let (done, next_done) = oneshot::channel::<()>();
        let earlier = self.previous.replace(next_done).and_then(|mut rx| {
            match rx.try_recv() {
                // Still committing: this one's transaction may not see it.
                Err(oneshot::error::TryRecvError::Empty) => Some(async move {
                    // A batch that failed drops its sender: nothing more to wait for.
                    let _ = rx.await;
                }),
                // Committed (or failed) before this one began.
                _ => None,
            }
        });
        let (pipeline, connector) = (self.pipeline.clone(), self.connector.clone());
        self.in_flight.push_back(tokio::spawn(async move {
            let answer = pipeline.commit_after(&connector, batch, earlier).await;
            let _ = done.send(());
            answer
        }));
    }

    /// The answer of the oldest batch still committing, once it has committed; `None` when
    /// none is. Cancel-safe: dropped before it finishes, the batch stays the oldest.
    pub async fn next(&mut self) -> Option<Answer> {
        let answer = self.in_flight.front_mut()?.await;
        self.in_flight.pop_front();
        Some(match answer {
            Ok(answer) => answer,
            // A panic in a commit is the caller's, as if it had committed inline.
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        })
    }
}
