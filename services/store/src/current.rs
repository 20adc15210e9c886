//! Writing a batch's winning versions into `source_records`: insert, or replace the stored
//! version where the incoming one is greater, in one multi-row statement per chunk.

use crate::ingest::{key_of, row_key, Key};
use crate::marks::Touched;
use crate::pending::PendingRow;
use crate::person;
use crate::prepared::HASH_BYTES;
use crate::seal::column;
use crate::sql::{tuples, MAX_PARAMS};
use crate::{Backend, PreparedRecord, Result, Store};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use std::collections::{HashMap, HashSet};

/// A record's body (packed) when it has one: kept in `source_records` for a record of an
/// account or a class, in `pending_bodies` until the projector folds it into its person's
/// state for a record that names a person (migration 0022).
pub(crate) enum SealedRecord {
    Content(Vec<u8>),
    Pending(Vec<u8>),
    None,
}

impl SealedRecord {
    fn content(&self) -> Option<&[u8]> {
        match self {
            SealedRecord::Content(c) => Some(c),
            _ => None,
        }
    }
}

impl Store {
    pub(crate) fn seal_records(&self, records: &[PreparedRecord]) -> Vec<SealedRecord> {
        records
            .iter()
            .map(|r| match (&r.body_json, &r.person_key) {
                (None, _) => SealedRecord::None,
                (Some(b), Some(_)) => {
                    SealedRecord::Pending(self.keys.seal_packed(column::PENDING, b.as_bytes()))
                }
                (Some(b), None) => {
                    SealedRecord::Content(self.keys.seal_packed(column::CONTENT, b.as_bytes()))
                }
            })
            .collect()
    }
}

/// Writes the bodies of the `written` records that name a person to `pending_bodies`, where
/// the projector finds them. Runs after the marks: a projector clearing a mark locks it before
/// it touches the person's pending rows, and so does this, so the two never wait on each
/// other in opposite orders.
pub(crate) async fn insert_pending(
    backend: Backend,
    tx: &mut Transaction<'static, Any>,
    records: &[PreparedRecord],
    sealed: &[SealedRecord],
    written: &HashSet<usize>,
) -> Result<()> {
    let mut rows: Vec<PendingRow> = written
        .iter()
        .filter_map(|&i| match (&sealed[i], &records[i].person_key) {
            (SealedRecord::Pending(c), Some(k)) => Some(PendingRow {
                person: k,
                source: &records[i].source,
                content: c,
            }),
            _ => None,
        })
        .collect();
    rows.sort_unstable_by(|a, b| {
        (
            a.person,
            &a.source.system,
            a.source.kind,
            &a.source.record_id,
        )
            .cmp(&(
                b.person,
                &b.source.system,
                b.source.kind,
                &b.source.record_id,
            ))
    });
    crate::pending::upsert(backend, tx, &rows).await
}

/// The columns a record writes; its person as bytes in `person` (migration 0027).
const COLUMNS: &str = "system, kind, record_id, version, deleted, content_hash, hash, \
                       person, account_system, account_id, class_id, content, profile, \
                       received_at, received";

/// A stored row's content hash as bytes: `hash`, or the hex text of a row written before
/// migration 0024 and not yet rewritten; its first [`HASH_BYTES`], all a hash keeps since
/// migration 0027. Bytes compare as their hex text did.
fn stored_hash(backend: Backend, table: &str) -> String {
    let n = HASH_BYTES;
    match backend {
        Backend::Postgres => {
            format!("substr(COALESCE({table}.hash, decode({table}.content_hash, 'hex')), 1, {n})")
        }
        Backend::Sqlite => {
            format!("substr(COALESCE({table}.hash, unhex({table}.content_hash)), 1, {n})")
        }
    }
}

/// What follows the rows: replace only a greater version, and give back what was written. A
/// replaced row keeps its person as bytes, whichever form it was stored in.
fn on_conflict(backend: Backend) -> String {
    let table = "source_records";
    format!(
        "ON CONFLICT (system, kind, record_id) DO UPDATE SET \
         version = excluded.version, deleted = excluded.deleted, \
         content_hash = '', hash = excluded.hash, \
         person = COALESCE(excluded.person, {}), person_key = NULL, \
         account_system = COALESCE(excluded.account_system, source_records.account_system), \
         account_id = COALESCE(excluded.account_id, source_records.account_id), \
         class_id = COALESCE(excluded.class_id, source_records.class_id), \
         body = NULL, content = excluded.content, profile = excluded.profile, \
         received_at = excluded.received_at, received = excluded.received \
         WHERE (excluded.version, excluded.deleted, excluded.hash) > \
               (source_records.version, source_records.deleted, {}) \
         RETURNING system, kind, record_id, {} AS person_key, account_id, class_id{}",
        person::bytes(backend, table),
        stored_hash(backend, table),
        person::key(backend, table),
        replaced_owner(backend)
    )
}

/// On PostgreSQL, the person and account the replaced version named, beside what the upsert
/// returns (`was_person`, `was_account`; NULL for a new row). A subquery of `RETURNING` reads
/// the statement's snapshot, in which the row's new version is not yet visible and the old
/// one still is; the row is locked by then, so no other hub's version can come between. A
/// new row (`xmax` 0: no version of it was locked and replaced) skips the lookups, so a bulk
/// load of new records pays nothing for them. On SQLite, whose `RETURNING` subqueries would
/// see the new row, the owners are read before the upsert instead ([`owners_before`]); its
/// writers take turns, so nothing comes between either.
fn replaced_owner(backend: Backend) -> String {
    match backend {
        Backend::Postgres => format!(
            ", CASE WHEN source_records.xmax = 0 THEN NULL ELSE \
             (SELECT {} FROM source_records o WHERE o.system = source_records.system \
             AND o.kind = source_records.kind AND o.record_id = source_records.record_id) END \
             AS was_person, \
             CASE WHEN source_records.xmax = 0 THEN NULL ELSE \
             (SELECT o.account_id FROM source_records o WHERE o.system = source_records.system \
             AND o.kind = source_records.kind AND o.record_id = source_records.record_id) END \
             AS was_account",
            person::key(backend, "o")
        ),
        Backend::Sqlite => String::new(),
    }
}

/// The person and account a stored version names: (person key, account id).
type Owner = (Option<String>, Option<String>);

/// SQLite: the person and account each stored row of `chunk` names before the upsert.
async fn owners_before(
    backend: Backend,
    tx: &mut Transaction<'static, Any>,
    records: &[PreparedRecord],
    chunk: &[usize],
) -> Result<HashMap<Key, Owner>> {
    let columns = format!("{} AS person_key, s.account_id", person::key(backend, "s"));
    let rows = stored_rows(backend, tx, records, chunk, &columns).await?;
    rows.iter()
        .map(|row| {
            Ok((
                row_key(row)?,
                (row.try_get("person_key")?, row.try_get("account_id")?),
            ))
        })
        .collect()
}

/// The stored rows (`source_records s`) of the records at `indexes`: their source identity
/// and `columns`.
pub(crate) async fn stored_rows(
    backend: Backend,
    tx: &mut Transaction<'static, Any>,
    records: &[PreparedRecord],
    indexes: &[usize],
    columns: &str,
) -> Result<Vec<AnyRow>> {
    let mut out = Vec::new();
    for chunk in indexes.chunks(MAX_PARAMS / 3) {
        let sql = format!(
            "WITH v (system, kind, record_id) AS (VALUES {}) \
             SELECT s.system, s.kind, s.record_id, {columns} \
             FROM source_records s JOIN v \
             ON s.system = v.system AND s.kind = v.kind AND s.record_id = v.record_id",
            tuples(backend, 1, chunk.len(), 3)
        );
        let mut q = sqlx::query(&sql);
        for &i in chunk {
            q = bind_source(q, &records[i]);
        }
        out.extend(q.fetch_all(&mut **tx).await?);
    }
    Ok(out)
}

/// Parameters of one record in the `VALUES` form.
const COLS: usize = 15;

/// Inserts or replaces the current version where the incoming one is greater; returns the
/// indexes that were written, and adds what they touch to `touched`.
pub(crate) async fn upsert_current(
    backend: Backend,
    tx: &mut Transaction<'static, Any>,
    now: &str,
    records: &[PreparedRecord],
    sealed: &[SealedRecord],
    candidates: &[usize],
    touched: &mut Touched,
) -> Result<HashSet<usize>> {
    let mut written = HashSet::with_capacity(candidates.len());
    for chunk in candidates.chunks(MAX_PARAMS / COLS) {
        let before = match backend {
            Backend::Sqlite => Some(owners_before(backend, tx, records, chunk).await?),
            Backend::Postgres => None,
        };
        let rows = upsert_chunk(backend, tx, now, records, sealed, chunk).await?;
        let index: HashMap<Key, usize> = chunk.iter().map(|&i| (key_of(&records[i]), i)).collect();
        for row in rows {
            let key = row_key(&row)?;
            if let Some(i) = index.get(&key) {
                written.insert(*i);
            }
            let was = match &before {
                Some(before) => before.get(&key).cloned().unwrap_or_default(),
                None => (row.try_get("was_person")?, row.try_get("was_account")?),
            };
            note_touched(&row, was, touched)?;
        }
    }
    Ok(written)
}

/// The person, account or class a written row makes stale: the ones it names, and the person
/// or account the version it replaced named (a record moved to another person leaves the
/// first one's dossier).
fn note_touched(row: &AnyRow, was: Owner, touched: &mut Touched) -> Result<()> {
    let kind: String = row.try_get("kind")?;
    if let Some(k) = row.try_get::<Option<String>, _>("person_key")? {
        touched.persons.insert(k);
    } else if let Some(a) = row.try_get::<Option<String>, _>("account_id")? {
        touched.accounts.insert(a);
    }
    match was {
        (Some(person), _) => {
            touched.persons.insert(person);
        }
        (None, Some(account)) => {
            touched.accounts.insert(account);
        }
        (None, None) => {}
    }
    if kind == "training_class" {
        if let Some(c) = row.try_get::<Option<String>, _>("class_id")? {
            touched.classes.insert(c);
        }
    }
    Ok(())
}

/// Binds a record's source identity: system, kind, record id.
pub(crate) fn bind_source<'q>(
    q: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
    r: &'q PreparedRecord,
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>> {
    q.bind(&r.source.system)
        .bind(r.source.kind.as_str())
        .bind(&r.source.record_id)
}

async fn upsert_chunk(
    backend: Backend,
    tx: &mut Transaction<'static, Any>,
    now: &str,
    records: &[PreparedRecord],
    sealed: &[SealedRecord],
    chunk: &[usize],
) -> Result<Vec<AnyRow>> {
    let sql = format!(
        "INSERT INTO source_records ({COLUMNS}) VALUES {} {}",
        tuples(backend, 1, chunk.len(), COLS),
        on_conflict(backend)
    );
    // The batch's time as milliseconds (migration 0025), or as text if it is not in that form.
    let (received_at, received) = crate::received::columns(now);
    let mut q = sqlx::query(&sql);
    for &i in chunk {
        let r = &records[i];
        q = bind_source(q, r)
            .bind(r.source.version)
            .bind(i64::from(r.deleted))
            // The hash as bytes (migration 0024); the text column stays empty.
            .bind("")
            .bind(hex::decode(&r.content_hash).map_err(|e| {
                crate::Error::Corrupt(r.source.record_id.clone(), format!("content hash: {e}"))
            })?)
            .bind(r.person_key.as_deref().map(person::to_bytes).transpose()?)
            .bind(r.account.as_ref().map(|a| a.0.as_str()))
            .bind(r.account.as_ref().map(|a| a.1.as_str()))
            .bind(r.class_id.as_deref())
            .bind(sealed[i].content())
            .bind(&r.profile)
            .bind(received_at)
            .bind(received);
    }
    Ok(q.fetch_all(&mut **tx).await?)
}
