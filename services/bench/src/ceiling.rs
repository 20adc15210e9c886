//! `trainhub-bench ceiling`: how close to the plain limit any hub can come while storing what
//! the contract asks of it, measured in the database alone. The same generated records (a
//! system, a kind, an id, a person, a 256-byte body, thirteen records a person) sit in a
//! table of the database; each step then copies them in batches of 1,000, one transaction a
//! batch, on one connection, with statements that read them from that table — no client, no
//! parameters, no sealing, no hub. The first step is the plain limit of the other benchmarks
//! (one row a record in a table keyed by the source identity); each later step adds one thing
//! the contract cannot do without, and keeps the ones before:
//!
//! 1. `+ raw log`: the batch's bytes as received, packed in one row (kept for audit and
//!    replay), and each record's person beside its body;
//! 2. `+ version rule`: the current version written by an upsert that replaces only a greater
//!    version (the merge decision), where the plain limit leaves a record already there;
//! 3. `+ person index`: the current versions findable by person (a dossier of a person still
//!    waiting is computed from its records alone);
//! 4. `+ dossier marks`: the persons a batch changed, for the projection to find.
//!
//! What each step leaves of the plain limit is the ceiling for a hub that does that much: the
//! hub also decodes, validates, seals and projects, on the same cores. Two last steps write
//! the hub's own layout beyond that (bodies apart until projected, a second person index), to
//! tell what the layout costs from what the contract does.

use crate::plain::BenchStore;
use anyhow::Result;
use sqlx::{AnyConnection, Connection, Executor};
use std::time::Instant;

/// Records a batch, as the other benchmarks send them.
const BATCH: i64 = 1000;

/// A step: its name, the tables and indexes it writes, what it does per batch (`{lo}`/`{hi}`
/// the batch's range of record numbers, `{b}` its number).
struct Step {
    name: &'static str,
    schema: &'static [&'static str],
    batch: &'static [&'static str],
}

const PLAIN: &str = "CREATE TABLE plain (system TEXT NOT NULL, kind TEXT NOT NULL, \
     record_id TEXT NOT NULL, version BIGINT NOT NULL, body {BLOB} NOT NULL, \
     PRIMARY KEY (system, kind, record_id))";
const CURRENT: &str = "CREATE TABLE cur (system TEXT NOT NULL, kind TEXT NOT NULL, \
     record_id TEXT NOT NULL, version BIGINT NOT NULL, person {BLOB}, body {BLOB} NOT NULL, \
     PRIMARY KEY (system, kind, record_id))";
const RAW: &str = "CREATE TABLE raw (id {SERIAL}, packed {BLOB} NOT NULL)";
const MARKS: &str = "CREATE TABLE marks (person {BLOB} PRIMARY KEY, seq BIGINT NOT NULL)";
const PERSON_INDEX: &str = "CREATE INDEX cur_person ON cur (person)";

// The hub's own layout beyond the contract (migrations 0020, 0022): a body that names a person
// waits in a table of its own until the projector folds it into the person's state, and the
// persons' own records have an index of their own.
const CURRENT_APART: &str = "CREATE TABLE cur (system TEXT NOT NULL, kind TEXT NOT NULL, \
     record_id TEXT NOT NULL, version BIGINT NOT NULL, person {BLOB}, body {BLOB}, \
     PRIMARY KEY (system, kind, record_id))";
const PENDING: &str = "CREATE TABLE pending (person {BLOB} NOT NULL, system TEXT NOT NULL, \
     kind TEXT NOT NULL, record_id TEXT NOT NULL, version BIGINT NOT NULL, body {BLOB} NOT NULL, \
     PRIMARY KEY (person, system, kind, record_id))";
const PERSONS_INDEX: &str = "CREATE INDEX cur_persons ON cur (person) WHERE kind = 'person'";

/// As the plain limit of `bench ingest` writes: a record already there is left as it is.
const INSERT_PLAIN: &str = "INSERT INTO plain SELECT system, kind, record_id, 1, body FROM src \
     WHERE i > {lo} AND i <= {hi} ON CONFLICT DO NOTHING";
const INSERT_RAW: &str = "INSERT INTO raw (packed) SELECT packed FROM src_raw WHERE b = {b}";
const INSERT_CURRENT: &str = "INSERT INTO cur SELECT system, kind, record_id, 1, person, body \
     FROM src WHERE i > {lo} AND i <= {hi} ON CONFLICT DO NOTHING";
const UPSERT_CURRENT: &str = "INSERT INTO cur SELECT system, kind, record_id, 1, person, body \
     FROM src WHERE i > {lo} AND i <= {hi} ON CONFLICT (system, kind, record_id) DO UPDATE \
     SET version = excluded.version, person = excluded.person, body = excluded.body \
     WHERE excluded.version > cur.version";
const UPSERT_APART: &str = "INSERT INTO cur SELECT system, kind, record_id, 1, person, NULL \
     FROM src WHERE i > {lo} AND i <= {hi} ON CONFLICT (system, kind, record_id) DO UPDATE \
     SET version = excluded.version, person = excluded.person \
     WHERE excluded.version > cur.version";
const UPSERT_PENDING: &str = "INSERT INTO pending SELECT person, system, kind, record_id, 1, \
     body FROM src WHERE i > {lo} AND i <= {hi} ON CONFLICT (person, system, kind, record_id) \
     DO UPDATE SET version = excluded.version, body = excluded.body";
const UPSERT_MARKS: &str = "INSERT INTO marks SELECT DISTINCT person, {hi} FROM src \
     WHERE i > {lo} AND i <= {hi} ON CONFLICT (person) DO UPDATE SET seq = excluded.seq";

const STEPS: [Step; 7] = [
    Step {
        name: "plain limit (one row a record, keyed)",
        schema: &[PLAIN],
        batch: &[INSERT_PLAIN],
    },
    Step {
        name: "+ raw log (a packed row a batch), person",
        schema: &[RAW, CURRENT],
        batch: &[INSERT_RAW, INSERT_CURRENT],
    },
    Step {
        name: "+ version rule (replace a lower version)",
        schema: &[RAW, CURRENT],
        batch: &[INSERT_RAW, UPSERT_CURRENT],
    },
    Step {
        name: "+ person index",
        schema: &[RAW, CURRENT, PERSON_INDEX],
        batch: &[INSERT_RAW, UPSERT_CURRENT],
    },
    Step {
        name: "+ dossier marks (one a person a batch)",
        schema: &[RAW, CURRENT, PERSON_INDEX, MARKS],
        batch: &[INSERT_RAW, UPSERT_CURRENT, UPSERT_MARKS],
    },
    Step {
        name: "hub layout: bodies apart until projected",
        schema: &[RAW, CURRENT_APART, PERSON_INDEX, MARKS, PENDING],
        batch: &[INSERT_RAW, UPSERT_APART, UPSERT_MARKS, UPSERT_PENDING],
    },
    Step {
        name: "+ an index of the persons' own records",
        schema: &[
            RAW,
            CURRENT_APART,
            PERSON_INDEX,
            PERSONS_INDEX,
            MARKS,
            PENDING,
        ],
        batch: &[INSERT_RAW, UPSERT_APART, UPSERT_MARKS, UPSERT_PENDING],
    },
];

/// Runs the steps on SQLite and (unless `no_postgres`) PostgreSQL and prints their figures.
pub async fn run(args: crate::CeilingBenchArgs) -> Result<()> {
    sqlx::any::install_default_drivers();
    let dir = crate::ingest::tempfile_dir()?;
    println!(
        "bench ceiling: {} records (13 a person, 256-byte bodies), batches of {BATCH}, one \
         connection, statements that read the records from a table of the database",
        args.records
    );
    let mut backends = vec!["sqlite"];
    if !args.no_postgres {
        backends.push("postgres");
    }
    let result = async {
        for backend in backends {
            measure(backend, &args, &dir).await?;
        }
        anyhow::Ok(())
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    result?;
    println!(
        "(each step keeps the ones above; a hub also decodes, validates, seals and projects on \
         the same cores, so it stays below the ceiling of what it stores)"
    );
    Ok(())
}

async fn measure(
    backend: &str,
    args: &crate::CeilingBenchArgs,
    dir: &std::path::Path,
) -> Result<()> {
    println!("{backend}:");
    println!(
        "  {:<42} {:>9} {:>11} {:>9}",
        "step", "seconds", "records/s", "of plain"
    );
    let mut plain = None;
    for (n, step) in STEPS.iter().enumerate() {
        let store = BenchStore::fresh(
            backend,
            &args.server.postgres,
            dir.join(format!("{backend}-{n}")),
        )
        .await?;
        let url = if backend == "sqlite" {
            format!("{}?mode=rwc", store.url)
        } else {
            store.url.clone()
        };
        let result = one_step(backend, &url, step, args.records).await;
        store.drop().await;
        let secs = result?;
        let rate = args.records as f64 / secs;
        let of_plain = 100.0 * rate / *plain.get_or_insert(rate);
        println!(
            "  {:<42} {secs:>9.2} {rate:>11.0} {of_plain:>8.1}%",
            step.name
        );
    }
    Ok(())
}

/// Generates the records in the database, creates the step's tables and times its batches.
async fn one_step(backend: &str, url: &str, step: &Step, records: i64) -> Result<f64> {
    let mut c = AnyConnection::connect(url).await?;
    let dialect = |sql: &str| {
        let (blob, serial) = match backend {
            "sqlite" => ("BLOB", "INTEGER PRIMARY KEY"),
            _ => ("BYTEA", "BIGSERIAL PRIMARY KEY"),
        };
        sql.replace("{BLOB}", blob).replace("{SERIAL}", serial)
    };
    if backend == "sqlite" {
        // As the hub's store opens its database.
        for pragma in [
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=NORMAL",
            "PRAGMA cache_size=-32768",
        ] {
            c.execute(pragma).await?;
        }
    }
    for sql in source(backend, records) {
        c.execute(dialect(&sql).as_str()).await?;
    }
    for sql in step.schema {
        c.execute(dialect(sql).as_str()).await?;
    }
    let started = Instant::now();
    for b in 0..(records + BATCH - 1) / BATCH {
        let mut tx = c.begin().await?;
        for sql in step.batch {
            let sql = sql
                .replace("{lo}", &(b * BATCH).to_string())
                .replace("{hi}", &((b + 1) * BATCH).to_string())
                .replace("{b}", &b.to_string());
            tx.execute(sql.as_str()).await?;
        }
        tx.commit().await?;
    }
    let secs = started.elapsed().as_secs_f64();
    c.close().await?;
    Ok(secs)
}

/// The statements that generate the records (`src`) and each batch's packed bytes
/// (`src_raw`, 40 bytes a record, as the raw log packs a typical record).
fn source(backend: &str, records: i64) -> Vec<String> {
    let kinds = "CASE i % 5 WHEN 0 THEN 'person' WHEN 1 THEN 'enrollment' WHEN 2 THEN \
                 'attendance' WHEN 3 THEN 'result' ELSE 'learning' END";
    match backend {
        "sqlite" => vec![
            format!(
                "CREATE TABLE src AS WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 \
                 FROM n WHERE i < {records}) SELECT i, 'sys' || (i % 3) AS system, {kinds} AS \
                 kind, 'R-' || i AS record_id, randomblob(256) AS body FROM n"
            ),
            "CREATE TABLE persons AS SELECT i / 13 AS p, randomblob(32) AS person FROM src \
             GROUP BY i / 13"
                .to_owned(),
            "CREATE TABLE src2 AS SELECT src.*, persons.person FROM src JOIN persons \
             ON persons.p = src.i / 13"
                .to_owned(),
            "DROP TABLE src".to_owned(),
            "ALTER TABLE src2 RENAME TO src".to_owned(),
            "CREATE INDEX src_i ON src (i)".to_owned(),
            format!(
                "CREATE TABLE src_raw AS WITH RECURSIVE n(b) AS (SELECT 0 UNION ALL SELECT b + 1 \
                 FROM n WHERE b < {records} / {BATCH}) SELECT b, randomblob(40 * {BATCH}) AS \
                 packed FROM n"
            ),
        ],
        _ => vec![
            format!(
                "CREATE TABLE src AS SELECT i, 'sys' || (i % 3) AS system, {kinds} AS kind, \
                 'R-' || i AS record_id, sha256(('p' || (i / 13))::bytea) AS person, \
                 sha512(('a' || i)::bytea) || sha512(('b' || i)::bytea) || \
                 sha512(('c' || i)::bytea) || sha512(('d' || i)::bytea) AS body \
                 FROM generate_series(1, {records}) i"
            ),
            "CREATE INDEX src_i ON src (i)".to_owned(),
            format!(
                "CREATE TABLE src_raw AS SELECT (i - 1) / {BATCH} AS b, \
                 string_agg(substr(body, 1, 40), ''::bytea ORDER BY i) AS packed FROM src \
                 GROUP BY (i - 1) / {BATCH}"
            ),
            "ANALYZE src".to_owned(),
        ],
    }
}
