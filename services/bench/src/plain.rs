//! The plain limit a benchmark compares the hub with: the same records written once into one
//! plain table — `(system, kind, record_id, version, body)`, the body as its protobuf bytes,
//! keyed by the source identity — by the fastest plain batch each database has (PostgreSQL
//! `INSERT … SELECT FROM unnest(…)`, SQLite one multi-row `INSERT` per batch in a
//! transaction). No hub layout, no sealing, no projection: what the database itself can do.
//! And the bench stores themselves: a fresh SQLite folder or PostgreSQL database, and the
//! bytes each holds.

use anyhow::{Context, Result};
use sqlx::Connection;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;
use trainhub_proto::v1 as pb;

/// A store for one leg of a benchmark: a fresh SQLite folder or PostgreSQL database.
pub(crate) struct BenchStore {
    /// Its URL.
    pub url: String,
    dir: std::path::PathBuf,
    /// The PostgreSQL database to drop afterwards: (admin URL, name).
    database: Option<(String, String)>,
}

impl BenchStore {
    /// A fresh store of `backend` (`sqlite` in `dir`, or a new database on `admin`'s server).
    pub async fn fresh(backend: &str, admin: &str, dir: std::path::PathBuf) -> Result<BenchStore> {
        std::fs::create_dir_all(&dir)?;
        if backend == "sqlite" {
            let url = format!("sqlite://{}", dir.join("bench.db").display());
            return Ok(BenchStore {
                url,
                dir,
                database: None,
            });
        }
        let name = format!("trainhub_bench_{:08x}", rand::random::<u32>());
        let url = trainhub_store::create_postgres_database(admin, &name)
            .await
            .context("creating the benchmark database (use --no-postgres to skip)")?;
        Ok(BenchStore {
            url,
            dir,
            database: Some((admin.to_owned(), name)),
        })
    }

    /// The PostgreSQL store at `url` a run with `--keep-database` left, with its data folder
    /// `dir`: measured like a fresh one, dropped only by hand.
    pub fn kept(url: &str, dir: std::path::PathBuf) -> BenchStore {
        let name = url.rsplit('/').next().unwrap_or_default().to_owned();
        BenchStore {
            url: url.to_owned(),
            dir,
            database: Some((String::new(), name)),
        }
    }

    /// The folder it keeps its files in (the hub's data folder for this leg).
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// Bytes the store holds: the database's size, or the files of the SQLite folder (after
    /// a checkpoint, so the write-ahead log is in the database file).
    pub async fn bytes(&self) -> Result<u64> {
        use sqlx::Row;
        if self.database.is_some() {
            let mut c = sqlx::PgConnection::connect(&self.url).await?;
            let row = sqlx::query("SELECT pg_database_size(current_database()) AS n")
                .fetch_one(&mut c)
                .await?;
            return Ok(row.try_get::<i64, _>("n")? as u64);
        }
        let mut c = sqlx::SqliteConnection::connect(&self.url).await?;
        // A hub still open may be checkpointing at that moment (its store does in the
        // background): the truncating checkpoint then reports busy and is tried again.
        for _ in 0..100 {
            let row = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .fetch_one(&mut c)
                .await?;
            if row.try_get::<i64, _>(0)? == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        c.close().await?;
        let mut total = 0;
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            // The database and its log; not the hub's secret, keys or lock.
            if name.starts_with("bench.db") {
                total += entry.metadata()?.len();
            }
        }
        Ok(total)
    }

    /// Records the PostgreSQL store received (its raw log): for a kept store, whose load file
    /// is gone.
    pub async fn records(&self) -> Result<usize> {
        use sqlx::Row;
        let mut c = sqlx::PgConnection::connect(&self.url).await?;
        let row = sqlx::query(
            "SELECT ((SELECT COUNT(*) FROM raw_log) \
             + (SELECT COALESCE(SUM(records), 0) FROM raw_batches))::int8 AS n",
        )
        .fetch_one(&mut c)
        .await?;
        Ok(row.try_get::<i64, _>("n")? as usize)
    }

    /// How many times the projector has tidied after a burst: a `VACUUM` command (autovacuum
    /// not counted) of the mark table, which it vacuums after the state table (PostgreSQL; 0
    /// on SQLite).
    pub async fn tidies(&self) -> Result<i64> {
        use sqlx::Row;
        if self.database.is_none() {
            return Ok(0);
        }
        let mut c = sqlx::PgConnection::connect(&self.url).await?;
        let row = sqlx::query(
            "SELECT coalesce(sum(vacuum_count), 0)::int8 AS n \
             FROM pg_stat_user_tables WHERE relname = 'dossier_dirty'",
        )
        .fetch_one(&mut c)
        .await?;
        Ok(row.try_get("n")?)
    }

    /// Pages of the SQLite database file that are free (0 on PostgreSQL): the projector gives
    /// a burst's back to the disk when it tidies.
    pub async fn free_pages(&self) -> Result<i64> {
        use sqlx::Row;
        if self.database.is_some() {
            return Ok(0);
        }
        let mut c = sqlx::SqliteConnection::connect(&self.url).await?;
        let row = sqlx::query("PRAGMA freelist_count")
            .fetch_one(&mut c)
            .await?;
        c.close().await?;
        Ok(row.try_get(0)?)
    }

    /// Whether the store is a PostgreSQL database.
    pub fn is_postgres(&self) -> bool {
        self.database.is_some()
    }

    /// The size of the mark table's indexes (PostgreSQL; 0 on SQLite): the projector
    /// truncates the emptied table right after its vacuum, which gives their space back.
    pub async fn mark_index_bytes(&self) -> Result<i64> {
        use sqlx::Row;
        if self.database.is_none() {
            return Ok(0);
        }
        let mut c = sqlx::PgConnection::connect(&self.url).await?;
        let row = sqlx::query("SELECT pg_indexes_size('dossier_dirty') AS n")
            .fetch_one(&mut c)
            .await?;
        Ok(row.try_get("n")?)
    }

    /// Prints where the bytes are on PostgreSQL: each table of more than 1% of the database,
    /// with its indexes and TOAST, per record, and its live and dead rows (the dead rows of
    /// the dossier state show how much re-projection leaves behind). Nothing on SQLite.
    pub async fn print_tables(&self, records: usize) -> Result<()> {
        use sqlx::Row;
        if self.database.is_none() {
            return Ok(());
        }
        let mut c = sqlx::PgConnection::connect(&self.url).await?;
        let rows = sqlx::query(
            "SELECT c.relname AS name, pg_total_relation_size(c.oid) AS bytes, \
                    pg_indexes_size(c.oid) AS indexes, \
                    coalesce(s.n_live_tup, 0) AS live, coalesce(s.n_dead_tup, 0) AS dead \
             FROM pg_class c LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid \
             WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace \
             AND pg_total_relation_size(c.oid) * 100 > pg_database_size(current_database()) \
             ORDER BY 2 DESC",
        )
        .fetch_all(&mut c)
        .await?;
        for row in rows {
            let bytes = row.try_get::<i64, _>("bytes")? as f64;
            let indexes = row.try_get::<i64, _>("indexes")? as f64;
            println!(
                "  {:<16} {:>8.1} MiB {:>6.0} B/record ({:.0} in indexes), {} live rows, {} dead",
                row.try_get::<String, _>("name")?,
                bytes / (1 << 20) as f64,
                bytes / records.max(1) as f64,
                indexes / records.max(1) as f64,
                row.try_get::<i64, _>("live")?,
                row.try_get::<i64, _>("dead")?
            );
        }
        let values = sqlx::query(
            "SELECT (SELECT coalesce(sum(pg_column_size(packed))::float8 / nullif(sum(records), 0), 0) \
                     FROM raw_batches) AS raw, \
                    (SELECT coalesce(avg(pg_column_size(coalesce(content, body::bytea))), 0)::float8 \
                     FROM source_records) AS body",
        )
        .fetch_one(&mut c)
        .await?;
        println!(
            "  per record: received bytes {:.0} B packed in batches, canonical body {:.0} B as stored",
            values.try_get::<f64, _>("raw")?,
            values.try_get::<f64, _>("body")?
        );
        let state = sqlx::query(
            "SELECT count(*) AS persons, coalesce(avg(pg_column_size(coalesce(packed, facts::bytea))), 0)::float8 AS facts, \
                    coalesce(avg(pg_column_size(s.*)), 0)::float8 AS row_bytes \
             FROM dossier_state s",
        )
        .fetch_one(&mut c)
        .await?;
        println!(
            "  per person ({} persons): facts {:.0} B as stored, state row {:.0} B",
            state.try_get::<i64, _>("persons")?,
            state.try_get::<f64, _>("facts")?,
            state.try_get::<f64, _>("row_bytes")?
        );
        Ok(())
    }

    /// Drops the PostgreSQL database, if any.
    pub async fn drop(self) {
        if let Some((admin, name)) = &self.database {
            let _ = trainhub_store::drop_postgres_database(admin, name).await;
        }
    }
}

/// One plain row: the source identity, the version and the body's bytes.
type Row = (String, String, String, i64, Vec<u8>);

fn rows(records: &[pb::Record]) -> Vec<Row> {
    records
        .iter()
        .filter_map(|r| {
            let s = r.source.as_ref()?;
            let body = r.body.as_ref().map(|b| {
                let mut bytes = Vec::new();
                b.encode(&mut bytes);
                bytes
            });
            Some((
                s.system.clone(),
                s.kind.clone(),
                s.record_id.clone(),
                s.version,
                body.unwrap_or_default(),
            ))
        })
        .collect()
}

const TABLE: &str = "CREATE TABLE plain_records (system TEXT NOT NULL, kind TEXT NOT NULL, \
     record_id TEXT NOT NULL, version BIGINT NOT NULL, body {BLOB} NOT NULL, \
     PRIMARY KEY (system, kind, record_id))";

/// Batches a benchmark's PostgreSQL limits write at once: as many as a hub's ingest stream
/// commits at once (SQLite writes one transaction at a time whatever the number).
pub(crate) const AT_ONCE: usize = trainhub_pipeline::ordered::AT_ONCE;

/// One batch into the plain PostgreSQL table.
async fn insert_plain_pg(c: &mut sqlx::PgConnection, chunk: &[Row]) -> Result<()> {
    let systems: Vec<&str> = chunk.iter().map(|r| r.0.as_str()).collect();
    let kinds: Vec<&str> = chunk.iter().map(|r| r.1.as_str()).collect();
    let ids: Vec<&str> = chunk.iter().map(|r| r.2.as_str()).collect();
    let versions: Vec<i64> = chunk.iter().map(|r| r.3).collect();
    let bodies: Vec<&[u8]> = chunk.iter().map(|r| r.4.as_slice()).collect();
    sqlx::query(
        "INSERT INTO plain_records SELECT * FROM unnest($1::text[], $2::text[], \
         $3::text[], $4::int8[], $5::bytea[]) ON CONFLICT DO NOTHING",
    )
    .bind(systems)
    .bind(kinds)
    .bind(ids)
    .bind(versions)
    .bind(bodies)
    .execute(c)
    .await?;
    Ok(())
}

/// Writes `records` into the plain table of `store` in batches of `batch` (on PostgreSQL
/// [`AT_ONCE`] at a time); (rows/s, bytes the store holds per row).
pub(crate) async fn plain_limit(
    store: &BenchStore,
    records: &[pb::Record],
    batch: usize,
) -> Result<(f64, f64)> {
    let rows = rows(records);
    let started = Instant::now();
    if store.database.is_some() {
        let mut c = sqlx::PgConnection::connect(&store.url).await?;
        sqlx::query(&TABLE.replace("{BLOB}", "BYTEA"))
            .execute(&mut c)
            .await?;
        c.close().await?;
        // As many batches at once as a hub stream commits, each on its own connection.
        let chunks: Vec<&[Row]> = rows.chunks(batch).collect();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let workers = (0..AT_ONCE).map(|_| async {
            let mut c = sqlx::PgConnection::connect(&store.url).await?;
            while let Some(chunk) = chunks.get(next.fetch_add(1, Relaxed)) {
                insert_plain_pg(&mut c, chunk).await?;
            }
            c.close().await?;
            anyhow::Ok(())
        });
        futures::future::try_join_all(workers).await?;
    } else {
        let mut c = sqlx::SqliteConnection::connect(&format!("{}?mode=rwc", store.url)).await?;
        for pragma in ["PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL"] {
            sqlx::query(pragma).execute(&mut c).await?;
        }
        sqlx::query(&TABLE.replace("{BLOB}", "BLOB"))
            .execute(&mut c)
            .await?;
        for chunk in rows.chunks(batch) {
            let values = vec!["(?, ?, ?, ?, ?)"; chunk.len()].join(", ");
            let sql = format!("INSERT OR IGNORE INTO plain_records VALUES {values}");
            let mut query = sqlx::query(&sql);
            for (system, kind, id, version, body) in chunk {
                query = query
                    .bind(system)
                    .bind(kind)
                    .bind(id)
                    .bind(version)
                    .bind(body.as_slice());
            }
            let mut tx = c.begin().await?;
            query.execute(&mut *tx).await?;
            tx.commit().await?;
        }
        c.close().await?;
    }
    let rate = rows.len() as f64 / started.elapsed().as_secs_f64();
    let bytes = store.bytes().await? as f64 / rows.len() as f64;
    Ok((rate, bytes))
}
