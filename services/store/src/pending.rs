//! Bodies of a person's records that its projected state does not hold as they are
//! (`pending_bodies`, migration 0022): written by ingest, folded into the state by the
//! projector and then deleted, written back by the projector when a state stops holding one.
//!
//! A record that names a person keeps its body in exactly one place: here, or unchanged
//! inside its person's packed state. `source_records.content` keeps the bodies of records of
//! accounts and classes, and of rows written before the migration.

use crate::sql::{fetch_in, list, tuples, MAX_PARAMS};
use crate::{Backend, Result};
use sqlx::{Any, AnyConnection, Row, Transaction};
use std::collections::BTreeMap;
use trainhub_model::record::SourceRef;

/// One pending body: whose record, which version, the body packed under
/// [`crate::seal::column::PENDING`].
pub(crate) struct PendingRow<'a> {
    pub(crate) person: &'a str,
    pub(crate) source: &'a SourceRef,
    pub(crate) content: &'a [u8],
}

/// A record's identity without its version: `(system, kind, record_id)`.
pub(crate) type RecordId = (String, String, String);

/// Inserts `rows`, replacing the stored body of the same record of the same person.
pub(crate) async fn upsert(
    backend: Backend,
    tx: &mut Transaction<'static, Any>,
    rows: &[PendingRow<'_>],
) -> Result<()> {
    const COLS: usize = 6;
    for chunk in rows.chunks(MAX_PARAMS / COLS) {
        let sql = format!(
            "INSERT INTO pending_bodies (person_key, system, kind, record_id, version, content) \
             VALUES {} ON CONFLICT (person_key, system, kind, record_id) DO UPDATE SET \
             version = excluded.version, content = excluded.content",
            tuples(backend, 1, chunk.len(), COLS)
        );
        let mut q = sqlx::query(&sql);
        for r in chunk {
            q = q
                .bind(r.person)
                .bind(&r.source.system)
                .bind(r.source.kind.as_str())
                .bind(&r.source.record_id)
                .bind(r.source.version)
                .bind(r.content);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// The pending bodies of `persons`: per person, per record, the version and the packed body.
pub(crate) async fn of_persons(
    backend: Backend,
    conn: &mut AnyConnection,
    persons: &[&str],
) -> Result<BTreeMap<String, BTreeMap<RecordId, (i64, Vec<u8>)>>> {
    let sql = "SELECT person_key, system, kind, record_id, version, content FROM pending_bodies \
               WHERE person_key IN ({in})";
    let mut out: BTreeMap<String, BTreeMap<RecordId, (i64, Vec<u8>)>> = BTreeMap::new();
    for row in fetch_in(backend, conn, sql, persons).await? {
        let id = (
            row.try_get("system")?,
            row.try_get("kind")?,
            row.try_get("record_id")?,
        );
        out.entry(row.try_get("person_key")?)
            .or_default()
            .insert(id, (row.try_get("version")?, row.try_get("content")?));
    }
    Ok(out)
}

/// Deletes the pending bodies `(person, record, version)` of `rows`: a row replaced by a newer
/// version meanwhile stays.
pub(crate) async fn delete(
    backend: Backend,
    tx: &mut Transaction<'static, Any>,
    rows: &[(&str, &RecordId, i64)],
) -> Result<()> {
    const COLS: usize = 5;
    for chunk in rows.chunks(MAX_PARAMS / (COLS + 1)) {
        // The person list lets both databases use the primary key; the tuples pick the rows.
        let sql = format!(
            "DELETE FROM pending_bodies WHERE person_key IN ({}) \
             AND (person_key, system, kind, record_id, version) IN (VALUES {})",
            list(backend, chunk.len()),
            tuples(backend, chunk.len() + 1, chunk.len(), COLS)
        );
        let mut q = sqlx::query(&sql);
        for (person, _, _) in chunk {
            q = q.bind(*person);
        }
        for (person, (system, kind, record_id), version) in chunk {
            q = q
                .bind(*person)
                .bind(system.as_str())
                .bind(kind.as_str())
                .bind(record_id.as_str())
                .bind(*version);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}
