//! trainhub's persistence: one schema on SQLite (the embedded default) and PostgreSQL
//! (production), reached through sqlx's `Any` driver so every query is written once.
//!
//! Layout:
//! - [`Store`]: connecting, migrating, the backend in use;
//! - [`prepared`]: a validated record turned into the rows it will write;
//! - [`ingest`]: one transaction per batch: raw log, current versions, dead letters (and the
//!   xAPI statements the records came from, see [`xapi`]);
//! - `replayed`: each replayed letter's attempt, written in the replay's transaction;
//! - `marks`: the persons a write changed, for the projector;
//! - [`projection`]: the dossier state maintained on write (marks, facts, the projector's
//!   rounds) and what reads it;
//! - [`outbox`]: `dossier.changed` events written with the state, taken by a relay;
//! - [`read`]: dead letters and counts for operators;
//! - [`review`]: the identity review queue (conflicts, held and unmatched records);
//! - [`compact`]: moving a store's text bodies and facts into bytes (migration 0015), and
//!   (`unshare`) the bodies of persons' records out of `source_records` (migration 0022);
//! - `pending`: bodies of persons' records their state does not hold as they are;
//! - [`seal`], [`rekey`]: personal data sealed at rest (`pack`: compressing values before
//!   sealing) and key rotation; [`identity`]: the
//!   secret and keys every hub on the store must share; [`audit`]: the read
//!   trail; [`cluster`]: hub instances sharing the store; `sql`: placeholders and chunked
//!   `IN (…)` lookups.
//!
//! - `checkpoint` (SQLite): the write-ahead log copied into the database by a task, off
//!   the writer's path.
//! - [`raw`]: the raw log, a committed batch's records as received in one packed row.
//!
//! Tables: `raw_batches` (append-only, every received record; `raw_log` before migration
//! 0018), `source_records` (the winning
//! version per `(system, kind, record_id)`; the body of a record of an account or a class),
//! `pending_bodies` (bodies of persons' records not yet in their state), `dead_letters`
//! (refused records with their bytes).

#![forbid(unsafe_code)]

mod aead;
pub mod audit;
mod checkpoint;
pub mod cluster;
pub mod compact;
mod current;
pub mod identity;
pub mod ingest;
mod marks;
pub mod outbox;
mod pack;
mod pending;
mod person;
pub mod prepared;
pub mod projection;
pub mod raw;
pub mod read;
mod received;
pub mod rekey;
mod replayed;
pub mod review;
pub mod seal;
mod sql;
mod statistics;
mod unshare;
pub mod xapi;

pub use ingest::{CommittedBatch, DeadLetterInput};
pub use prepared::PreparedRecord;
pub use seal::Keyring;

use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;
use sqlx::Executor;
use std::sync::atomic::AtomicI64;
use std::sync::Arc;
use std::time::Duration;

/// Which database a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded, single file; writes are serialised in-process.
    Sqlite,
    /// Shared by any number of hub instances.
    Postgres,
}

/// A store error. [`Error::is_transient`] decides retry (connection trouble, lock timeouts)
/// versus dead-letter.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store URL names no supported database.
    #[error("unsupported store URL {0:?}: use sqlite://PATH or postgres://USER@HOST/DB")]
    UnsupportedUrl(String),
    /// A database error.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored body could not be decoded (a bug or a schema drift, never input).
    #[error("stored record {0} is corrupt: {1}")]
    Corrupt(String, String),
    /// A sealed column value could not be opened with the keyring.
    #[error("cannot open {0}: {1}")]
    Sealed(String, seal::OpenError),
}

/// The result of work handed to a blocking thread (opening sealed values). Opening never
/// panics; if it did, the panic is the caller's to see. A task cancelled because the runtime is
/// shutting down is a crashed worker, which callers retry.
pub(crate) async fn joined<T>(task: tokio::task::JoinHandle<Result<T>>) -> Result<T> {
    match task.await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(Error::Database(sqlx::Error::WorkerCrashed)),
    }
}

impl Error {
    /// Whether retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        let server_going = matches!(self, Error::Database(sqlx::Error::Database(e))
            // PostgreSQL's classes: 08 connection exception, 53 insufficient resources,
            // 57 operator intervention (a shutdown or restart under way).
            if e.code().is_some_and(|c| ["08", "53", "57"].iter().any(|p| c.starts_with(p))));
        server_going
            || matches!(
                self,
                Error::Database(
                    sqlx::Error::Io(_)
                        | sqlx::Error::PoolTimedOut
                        | sqlx::Error::PoolClosed
                        | sqlx::Error::WorkerCrashed
                        | sqlx::Error::Tls(_)
                )
            )
            || self.is_retryable_conflict()
    }

    /// A refusal that trying again cannot change: the database refused this data (a
    /// constraint, a data exception, a trigger's `RAISE`). Everything else — connection
    /// trouble, a restart, a full disk, a lock — may pass, and is retried by the connectors.
    pub fn is_permanent(&self) -> bool {
        let Error::Database(sqlx::Error::Database(e)) = self else {
            return false;
        };
        if !matches!(e.kind(), sqlx::error::ErrorKind::Other) {
            return true;
        }
        // PostgreSQL's classes: 22 data exception, 23 integrity constraint, P0 PL/pgSQL raise.
        e.code()
            .is_some_and(|c| c.starts_with("22") || c.starts_with("23") || c.starts_with("P0"))
    }

    /// A conflict between concurrent transactions (deadlock, serialization failure, SQLite
    /// busy): the transaction was rolled back and can be run again as it is.
    pub fn is_retryable_conflict(&self) -> bool {
        matches!(self, Error::Database(sqlx::Error::Database(e))
            if e.code().is_some_and(|c| c == "40001" || c == "40P01" || c == "5" || c == "6"))
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A connection pool plus what the backend needs to be used safely.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite allows one writer: serialise write transactions here rather than spin on
    /// `SQLITE_BUSY`.
    write_lock: Option<Arc<tokio::sync::Mutex<()>>>,
    /// Whether dossier changes are written to the outbox (a relay is configured).
    events: bool,
    /// Seals and opens the columns that hold personal data.
    keys: Arc<Keyring>,
    /// Each table of `statistics::REBUILT`: its written row versions when its indexes were
    /// last rebuilt, or when this hub connected (`Store::rebuild_indexes`).
    rebuilt_at: Arc<[AtomicI64; statistics::REBUILT.len()]>,
}

impl Store {
    /// Connects to `url` (`sqlite://…` or `postgres://…`), sealing personal data with `keys`.
    /// SQLite files are created if missing.
    pub async fn connect(url: &str, keys: Keyring) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(Error::UnsupportedUrl(url.to_owned()));
        };
        let options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(10));
        let pool = match backend {
            Backend::Sqlite => {
                let url = if url.contains('?') {
                    url.to_owned()
                } else {
                    format!("{url}?mode=rwc")
                };
                options
                    .max_connections(4)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            // Incremental auto-vacuum takes effect on a new file only (before
                            // its first table): the projector then gives back the pages a
                            // burst freed (`tidy_projection`).
                            conn.execute(
                                "PRAGMA auto_vacuum=INCREMENTAL; PRAGMA journal_mode=WAL; \
                                 PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000; \
                                 PRAGMA cache_size=-32768;",
                            )
                            .await?;
                            // See `checkpoint`: the task checkpoints, this is the backstop;
                            // and the log file shrinks back when it starts over.
                            conn.execute(
                                format!(
                                    "PRAGMA wal_autocheckpoint={}; PRAGMA journal_size_limit={}",
                                    checkpoint::BACKSTOP_PAGES,
                                    checkpoint::LOG_LIMIT_BYTES
                                )
                                .as_str(),
                            )
                            .await?;
                            Ok(())
                        })
                    })
                    .connect(&url)
                    .await?
            }
            Backend::Postgres => {
                options
                    .max_connections(8)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            // No JIT: the hub's statements are keyed reads and writes and
                            // summary reads of a second or less, and compiling one took
                            // longer than running it (0.4 s for a waiting count that found
                            // nothing, on a million persons' estimates).
                            conn.execute("SET jit = off").await?;
                            Ok(())
                        })
                    })
                    .connect(url)
                    .await?
            }
        };
        let mut rebuilt_at = [0; statistics::REBUILT.len()];
        if backend == Backend::Postgres {
            for (at, table) in rebuilt_at.iter_mut().zip(statistics::REBUILT) {
                *at = statistics::table_writes(&pool, table).await?;
            }
        }
        let rebuilt_at = Arc::new(rebuilt_at.map(AtomicI64::new));
        let write_lock: Option<Arc<tokio::sync::Mutex<()>>> =
            (backend == Backend::Sqlite).then(Default::default);
        if let Some(lock) = &write_lock {
            checkpoint::spawn(pool.clone(), Arc::downgrade(lock));
        }
        Ok(Store {
            pool,
            backend,
            write_lock,
            events: false,
            keys: Arc::new(keys),
            rebuilt_at,
        })
    }

    /// This store with dossier changes written to the outbox (`true`) or not. Only turn it on
    /// where a relay publishes the outbox, or rows accumulate.
    pub fn with_events(mut self, events: bool) -> Store {
        self.events = events;
        self
    }

    /// Whether dossier changes are written to the outbox.
    pub fn events(&self) -> bool {
        self.events
    }

    /// Applies the migrations of the backend in use.
    pub async fn migrate(&self) -> Result<()> {
        match self.backend {
            Backend::Sqlite => {
                sqlx::migrate!("./migrations/sqlite")
                    .run(&self.pool)
                    .await?
            }
            Backend::Postgres => {
                sqlx::migrate!("./migrations/postgres")
                    .run(&self.pool)
                    .await?
            }
        }
        Ok(())
    }

    /// The keyring that seals personal data.
    pub fn keys(&self) -> &Keyring {
        &self.keys
    }

    /// Opens a sealed text value of `column`; `row` names it in the error.
    pub(crate) fn open_text(
        &self,
        column: &str,
        row: &dyn std::fmt::Display,
        stored: &str,
    ) -> Result<String> {
        self.keys
            .open_text(column, stored)
            .map_err(|e| Error::Sealed(format!("{column} of {row}"), e))
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool, for benchmarks that measure the database without the hub.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The rows of `query`; on PostgreSQL run in a transaction of its own under `settings`
    /// (`set_config` names and values, for that statement only), on SQLite as it is.
    pub(crate) async fn fetch_all_with<'q>(
        &self,
        settings: &[(&str, &str)],
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> Result<Vec<sqlx::any::AnyRow>> {
        if self.backend != Backend::Postgres {
            return Ok(query.fetch_all(&self.pool).await?);
        }
        let set: Vec<String> = settings
            .iter()
            .map(|(name, value)| format!("set_config('{name}', '{value}', true)"))
            .collect();
        let mut tx = self.pool.begin().await?;
        sqlx::query(&format!("SELECT {}", set.join(", ")))
            .execute(&mut *tx)
            .await?;
        let rows = query.fetch_all(&mut *tx).await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// A read-only transaction that sees one snapshot throughout (PostgreSQL `REPEATABLE
    /// READ`; a SQLite read transaction does by itself): a person's records are read from
    /// three tables (migration 0022), and a projector committing between two of the reads
    /// must not make a body seem missing.
    pub(crate) async fn snapshot(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        let mut tx = self.pool.begin().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *tx)
                .await?;
        }
        Ok(tx)
    }

    /// A transaction that writes, and may read before it does (a batch looks up the dead
    /// letters it may repeat before it writes one). On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`, waiting up to the busy timeout): a transaction that began by
    /// reading and then wrote after another connection had committed failed at once with
    /// `database is locked` (`SQLITE_BUSY_SNAPSHOT`, which no busy timeout retries), as a
    /// batch of only refused records did beside the hub's own writes.
    pub(crate) async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    pub(crate) async fn write_guard(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.write_lock {
            Some(lock) => Some(lock.lock().await),
            None => None,
        }
    }
}

/// The current time as stored: RFC 3339, UTC, milliseconds.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Creates database `name` on the PostgreSQL server of `admin_url` and returns its URL. Used by
/// tests and benchmarks that need a fresh database each.
pub async fn create_postgres_database(admin_url: &str, name: &str) -> Result<String> {
    sqlx::any::install_default_drivers();
    let admin = AnyPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect(admin_url)
        .await?;
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&admin)
        .await?;
    admin.close().await;
    let base = admin_url
        .rsplit_once('/')
        .map_or(admin_url, |(base, _)| base);
    Ok(format!("{base}/{name}"))
}

/// Drops database `name` on the server of `admin_url`, closing its connections.
pub async fn drop_postgres_database(admin_url: &str, name: &str) -> Result<()> {
    sqlx::any::install_default_drivers();
    let admin = AnyPoolOptions::new()
        .max_connections(1)
        .connect(admin_url)
        .await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&admin)
        .await?;
    admin.close().await;
    Ok(())
}
