//! SQLite: the write-ahead log copied back into the database file beside the writer, not by
//! it. By default the connection whose commit takes the log past 1,000 pages copies it back
//! and syncs the file before that commit returns; under a steady load that was a fifth of the
//! writer's time (`perf` of `bench ingest`), on the one thread every write waits for. Here a
//! task runs a passive checkpoint every [`INTERVAL`] on a connection of the pool: it copies
//! what has committed while writers go on, on whichever core is free. The connections'
//! own automatic checkpoint stays as a backstop at [`BACKSTOP_PAGES`], should the task fall
//! behind (a reader holding an old snapshot keeps a passive checkpoint from finishing).

use sqlx::{AnyPool, Executor};
use std::sync::Weak;
use std::time::Duration;

/// How often the task checkpoints.
const INTERVAL: Duration = Duration::from_millis(250);

/// Pages of log at which a committing connection checkpoints itself (SQLite's own default
/// is 1,000; 16,000 pages are 64 MiB).
pub(crate) const BACKSTOP_PAGES: u32 = 16_000;

/// The most a log file keeps of its size when it starts over after a complete checkpoint
/// (without a limit it keeps the largest it ever grew to).
pub(crate) const LOG_LIMIT_BYTES: u64 = 16 << 20;

/// Starts the task for the store whose pool is `pool`; it ends when the pool closes or every
/// handle of the store (`alive`) is gone.
pub(crate) fn spawn<T: Send + Sync + 'static>(pool: AnyPool, alive: Weak<T>) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(INTERVAL).await;
            if alive.strong_count() == 0 || pool.is_closed() {
                return;
            }
            let Ok(mut conn) = pool.acquire().await else {
                return;
            };
            // Passive: never waits for a writer or a reader, copies what it can. A failure
            // (the file gone under a test, a full disk) leaves the backstop to try again.
            if let Err(e) = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").await {
                tracing::debug!(error = %e, "background checkpoint failed");
            }
        }
    });
}
