//! The planner's statistics of the tables the hub reads by key, and the space of the tables a
//! burst fills and the projector empties. A plan chosen on statistics
//! of an empty table — a heap scan of millions of records for each projector round — makes a
//! bulk load's drain many times slower. Autovacuum refreshes them when it runs, but a store may
//! run without it, and a bulk load outpaces it; the projector asks here every five
//! seconds.

use crate::{Backend, Result, Store};
use sqlx::{AnyPool, Row};
use std::sync::atomic::Ordering;

/// The tables whose statistics matter: the records, marks and pending bodies read by key each
/// round, and the state read by coverage and listings.
const TABLES: [&str; 4] = [
    "source_records",
    "dossier_state",
    "dossier_dirty",
    "pending_bodies",
];
/// Rows changed since the last `ANALYZE` below which a table's statistics are left as they are.
const MIN_CHANGED: i64 = 1000;
/// The tables whose indexes the projector's tidy rebuilds after a load
/// ([`Store::rebuild_indexes`]): the state, then the records.
pub(crate) const REBUILT: [&str; 2] = ["dossier_state", "source_records"];
/// The first half of the advisory lock an index rebuild holds (the second is the schema's
/// hash): one hub at a time rebuilds a store's indexes.
const REBUILD_LOCK: i32 = 0x5448_0001;
/// The longest an index rebuild waits for a lock or an older transaction.
const REBUILD_WAIT: &str = "10s";

impl Store {
    /// Gathers the statistics of each table of [`TABLES`] where they are stale: more rows
    /// changed since they were last gathered than a tenth of the table, and at least
    /// [`MIN_CHANGED`] (PostgreSQL `ANALYZE`, a sample of each table; nothing on SQLite,
    /// whose planner needs none for these lookups). Returns the tables analyzed.
    pub async fn refresh_statistics(&self) -> Result<Vec<String>> {
        if self.backend != Backend::Postgres {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "SELECT CAST(relname AS TEXT) AS relname, n_live_tup, n_mod_since_analyze \
             FROM pg_stat_user_tables \
             WHERE schemaname = current_schema() AND relname IN ($1, $2, $3, $4)",
        )
        .bind(TABLES[0])
        .bind(TABLES[1])
        .bind(TABLES[2])
        .bind(TABLES[3])
        .fetch_all(&self.pool)
        .await?;
        let mut analyzed = Vec::new();
        for row in rows {
            let (table, live, changed): (String, i64, i64) = (
                row.try_get("relname")?,
                row.try_get("n_live_tup")?,
                row.try_get("n_mod_since_analyze")?,
            );
            if changed >= MIN_CHANGED && changed * 10 > live {
                // The name is one of TABLES, as the query above selected it.
                sqlx::query(&format!("ANALYZE {table}"))
                    .execute(&self.pool)
                    .await?;
                analyzed.push(table);
            }
        }
        Ok(analyzed)
    }

    /// Reclaims the row versions re-projection left in the state table once they are a tenth
    /// of its rows (and at least [`MIN_CHANGED`]): PostgreSQL `VACUUM`, skipped while another
    /// hub vacuums it. Asked after each projector round. Every re-projection of a person
    /// writes a new version of its row, and the old one stays until a vacuum; without one
    /// during a drain, each rewritten person took a second row's space in the table and its
    /// indexes, and the space stayed after the burst (a simulation of the table, 8,500
    /// persons written three times in rounds of 1,000: 1,462 bytes of table and 1,273 of
    /// indexes per person with one vacuum at the end, 1,144 and 677 with one after each
    /// round). Reclaimed while the drain goes on, the next rounds reuse the space. The
    /// statistics it reads lag a second or so behind the writes. Nothing on SQLite, which
    /// reuses freed pages itself. Returns whether it vacuumed.
    pub async fn reclaim_state(&self) -> Result<bool> {
        if self.backend != Backend::Postgres {
            return Ok(false);
        }
        let Some(TableCounts { live, dead, .. }) =
            table_counts(&self.pool, "dossier_state").await?
        else {
            return Ok(false);
        };
        if dead < MIN_CHANGED || dead * 10 < live {
            return Ok(false);
        }
        sqlx::query("VACUUM (SKIP_LOCKED) dossier_state")
            .execute(&self.pool)
            .await?;
        Ok(true)
    }

    /// Gives back the space of `table` once a burst has passed through it and left it empty
    /// (the mark table, `pending_bodies`): `VACUUM` truncates the emptied table itself but
    /// never shrinks its indexes, which would keep a burst's size in empty pages (at 20,000
    /// persons x 20 records, 150 bytes a record for `pending_bodies`). Truncates the table
    /// only where it holds no row version at all (its size is 0 after the vacuum): then no
    /// transaction, however old its snapshot, can see anything in it, and truncating changes
    /// nothing anyone reads. Takes the table's lock without waiting (ten tries a tenth of a
    /// second apart): a table in use throughout is left for the next tidy. PostgreSQL only;
    /// returns whether it truncated.
    pub(crate) async fn truncate_emptied(&self, table: &str) -> Result<bool> {
        if self.backend != Backend::Postgres {
            return Ok(false);
        }
        // The projector looks at the mark table every few milliseconds: try a few times, a
        // tenth of a second apart, never waiting in the lock queue (readers would queue
        // behind the waiting lock).
        let mut attempts = 0;
        let mut tx = loop {
            let mut tx = self.pool.begin().await?;
            let locked = sqlx::query(&format!(
                "LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE NOWAIT"
            ))
            .execute(&mut *tx)
            .await;
            if locked.is_ok() {
                break tx;
            }
            // Another transaction uses it: rolled back with `tx`.
            drop(tx);
            attempts += 1;
            if attempts == 10 {
                return Ok(false);
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        let empty: bool = sqlx::query(
            "SELECT pg_relation_size(CAST($1 AS regclass)) = 0 \
             AND pg_indexes_size(CAST($1 AS regclass)) > 1048576 AS empty",
        )
        .bind(table)
        .fetch_one(&mut *tx)
        .await?
        .try_get("empty")?;
        if empty {
            sqlx::query(&format!("TRUNCATE {table}"))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(empty)
    }

    /// Rebuilds the indexes of each table of [`REBUILT`] once it has had new row versions for
    /// half its rows since its last rebuild (or since this hub connected), and at least
    /// [`MIN_CHANGED`] rows: PostgreSQL `REINDEX TABLE CONCURRENTLY`, which neither blocks
    /// reads nor writes. Each new row, and each rewrite that is not a heap-only update, adds
    /// an entry to every index, in no particular key order (person keys and record ids are
    /// not written in order); pages split as they fill, and a vacuum takes the dead entries
    /// out but leaves their pages as they are. In the `bench ingest` mix, whose 14,934
    /// persons were each written once, the state's indexes held 54 bytes a record after the
    /// drain and 36 after a rebuild (the summary index, which carries the counts and the
    /// sealed name, 54% full); the records' indexes 136 and 105. Half, not all: the live
    /// count is an estimate (17,508 states there). Half also bounds the work: a table
    /// rebuilt each time it grew by half is rebuilt a few times over its life, not once per
    /// load. One hub at a time rebuilds a store's indexes (an advisory lock; a hub that finds
    /// it taken counts the rebuild as done), and indexes an interrupted rebuild left invalid
    /// are dropped first. Asked by the projector's tidy after a burst; a table that fails is
    /// logged and the next one rebuilt; each rebuild is logged with its time. Nothing on
    /// SQLite.
    pub(crate) async fn rebuild_indexes(&self) -> Result<()> {
        if self.backend != Backend::Postgres {
            return Ok(());
        }
        let mut due = Vec::new();
        for (table, rebuilt_at) in REBUILT.into_iter().zip(self.rebuilt_at.iter()) {
            let Some(TableCounts { writes, live, .. }) = table_counts(&self.pool, table).await?
            else {
                continue;
            };
            let since = rebuilt_at.load(Ordering::Relaxed);
            if writes < since {
                // The statistics were reset: count from here.
                rebuilt_at.store(writes, Ordering::Relaxed);
            } else if live >= MIN_CHANGED && (writes - since) * 2 >= live {
                due.push((table, rebuilt_at, writes));
            }
        }
        if due.is_empty() {
            return Ok(());
        }
        let mut conn = self.pool.acquire().await?;
        let locked: bool = sqlx::query(&format!(
            "SELECT pg_try_advisory_lock({REBUILD_LOCK}, hashtext(current_schema())) AS locked"
        ))
        .fetch_one(&mut *conn)
        .await?
        .try_get("locked")?;
        for (_, rebuilt_at, writes) in &due {
            rebuilt_at.store(*writes, Ordering::Relaxed);
        }
        let tables: Vec<&str> = due.iter().map(|(table, ..)| *table).collect();
        let done = if locked {
            rebuild_each(&mut conn, &tables).await
        } else {
            Ok(())
        };
        // Closing the session releases the lock whatever happened.
        let _ = conn.close().await;
        done
    }
}

/// Rebuilds the indexes of each of `tables` ([`rebuild`]), each logged with its time; a table
/// that fails is logged and the next one rebuilt.
async fn rebuild_each(conn: &mut sqlx::AnyConnection, tables: &[&str]) -> Result<()> {
    sqlx::query(&format!("SET lock_timeout = '{REBUILD_WAIT}'"))
        .execute(&mut *conn)
        .await?;
    for &table in tables {
        let started = std::time::Instant::now();
        match rebuild(conn, table).await {
            Ok(()) => tracing::info!(
                table,
                seconds = started.elapsed().as_secs_f64(),
                "Rebuilt the table's indexes."
            ),
            Err(e) => tracing::warn!(table, error = %e, "Could not rebuild the table's indexes."),
        }
    }
    Ok(())
}

/// Drops the indexes an interrupted `REINDEX … CONCURRENTLY` left invalid on `table` (named
/// `…_ccnew` or `…_ccold`, its TOAST table's too), then rebuilds every index of the table. A
/// concurrent rebuild waits for every transaction whose snapshot is older than its new index
/// (a `pg_dump` holds one for as long as it runs): it gives up after [`REBUILD_WAIT`] of
/// waiting rather than hold up the projector's lane that asked, and the next rebuild drops
/// what it left (the session's `lock_timeout`, set by the caller). `table` is one of
/// [`REBUILT`].
async fn rebuild(conn: &mut sqlx::AnyConnection, table: &str) -> Result<()> {
    // The table's TOAST table has an index, rebuilt with the others.
    let left = sqlx::query(
        "SELECT CAST(n.nspname AS TEXT) AS schema, CAST(c.relname AS TEXT) AS name \
         FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE i.indrelid IN (CAST($1 AS regclass), (SELECT reltoastrelid \
           FROM pg_class WHERE oid = CAST($1 AS regclass))) \
         AND NOT i.indisvalid \
         AND (c.relname LIKE '%\\_ccnew%' OR c.relname LIKE '%\\_ccold%')",
    )
    .bind(table)
    .fetch_all(&mut *conn)
    .await?;
    for row in left {
        let (schema, name): (String, String) = (row.try_get("schema")?, row.try_get("name")?);
        tracing::warn!(index = %name, "Dropping an index an interrupted rebuild left invalid.");
        sqlx::query(&format!(
            "DROP INDEX CONCURRENTLY IF EXISTS \"{schema}\".\"{name}\""
        ))
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query(&format!("REINDEX TABLE CONCURRENTLY {table}"))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// What the database's statistics say of a table.
struct TableCounts {
    /// Row versions written that added index entries: inserts, and updates that were not
    /// heap-only.
    writes: i64,
    /// Live rows (an estimate).
    live: i64,
    /// Row versions replaced and not yet vacuumed.
    dead: i64,
}

/// `table`'s counts; `None` before the table exists.
async fn table_counts(pool: &AnyPool, table: &str) -> Result<Option<TableCounts>> {
    let row = sqlx::query(
        "SELECT n_tup_ins + n_tup_upd - n_tup_hot_upd AS writes, n_live_tup, n_dead_tup \
         FROM pg_stat_user_tables WHERE schemaname = current_schema() AND relname = $1",
    )
    .bind(table)
    .fetch_optional(pool)
    .await?;
    row.map(|r| {
        Ok(TableCounts {
            writes: r.try_get("writes")?,
            live: r.try_get("n_live_tup")?,
            dead: r.try_get("n_dead_tup")?,
        })
    })
    .transpose()
}

/// `table`'s written row versions now (see [`TableCounts`]), 0 before it exists.
pub(crate) async fn table_writes(pool: &AnyPool, table: &str) -> Result<i64> {
    Ok(table_counts(pool, table).await?.map_or(0, |c| c.writes))
}
