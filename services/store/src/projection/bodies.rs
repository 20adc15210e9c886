//! The bodies of a person's own records that `source_records` does not keep (migration 0022):
//! each is in `pending_bodies`, or unchanged inside the person's projected state. Reading a
//! person's records finds them there; projecting the person moves them between the two, so
//! that every body stays in exactly one place.

use super::state::facts_of;
use crate::pending::{self, PendingRow, RecordId};
use crate::seal::column;
use crate::sql::fetch_in;
use crate::{Backend, Error, Keyring, Result};
use sqlx::{Any, AnyConnection, Row, Transaction};
use std::collections::BTreeMap;
use trainhub_model::dossier::StoredRecord;
use trainhub_model::record::{Body, SourceRef};

/// A current record of a person whose body `source_records` does not hold.
pub(crate) struct Bare {
    pub(crate) source: SourceRef,
    pub(crate) received_at: String,
    pub(crate) profile: String,
}

/// Where one person's bodies were found, for the projector to settle
/// ([`Bodies::settle`]).
#[derive(Default)]
pub(crate) struct Bodies {
    /// Records whose body came from `pending_bodies`.
    pending: Vec<StoredRecord>,
    /// Records whose body came from the person's state.
    state: Vec<StoredRecord>,
    /// Pending rows no current record of the person uses: an older version, a deleted record,
    /// a record that now names another person.
    stale: Vec<(RecordId, i64)>,
}

/// What projecting one person changes in `pending_bodies`.
#[derive(Default)]
pub(crate) struct Settled {
    /// Rows to delete: `(record, version)`.
    pub(crate) delete: Vec<(RecordId, i64)>,
    /// Records whose body goes back to `pending_bodies`, with the body packed.
    pub(crate) insert: Vec<(SourceRef, Vec<u8>)>,
}

fn id_of(source: &SourceRef) -> RecordId {
    (
        source.system.clone(),
        source.kind.as_str().to_owned(),
        source.record_id.clone(),
    )
}

impl Bodies {
    /// Once `facts` are the person's new state (`None`: the person has no state): a pending
    /// body the state now holds unchanged is deleted; a body read from the old state that the
    /// new one does not hold unchanged (held for review, changed by a decision, the state
    /// gone) is written back; stale rows go.
    pub(crate) fn settle(&self, keys: &Keyring, facts: Option<&[StoredRecord]>) -> Settled {
        let held: BTreeMap<(RecordId, i64), &Body> = facts
            .unwrap_or_default()
            .iter()
            .map(|r| ((id_of(&r.source), r.source.version), &r.body))
            .collect();
        let holds =
            |r: &StoredRecord| held.get(&(id_of(&r.source), r.source.version)) == Some(&&r.body);
        let mut out = Settled {
            delete: self.stale.clone(),
            insert: Vec::new(),
        };
        for r in self.pending.iter().filter(|r| holds(r)) {
            out.delete.push((id_of(&r.source), r.source.version));
        }
        for r in self.state.iter().filter(|r| !holds(r)) {
            let json = serde_json::to_vec(&r.body).expect("bodies always serialise");
            let sealed = keys.seal_packed(column::PENDING, &json);
            out.insert.push((r.source.clone(), sealed));
        }
        out
    }
}

/// Moves the bodies of projected persons between their new state and `pending_bodies` as
/// [`Bodies::settle`] found: stale and folded rows deleted first, then the bodies the new
/// state does not hold written back. Runs in the transaction that writes the states, for the
/// persons whose marks it cleared.
pub(crate) async fn write<'a>(
    backend: Backend,
    tx: &mut Transaction<'static, Any>,
    settled: impl Iterator<Item = (&'a str, &'a Settled)> + Clone,
) -> Result<()> {
    let delete: Vec<_> = settled
        .clone()
        .flat_map(|(key, s)| s.delete.iter().map(move |(id, v)| (key, id, *v)))
        .collect();
    pending::delete(backend, tx, &delete).await?;
    let insert: Vec<PendingRow> = settled
        .flat_map(|(key, s)| {
            s.insert.iter().map(move |(source, content)| PendingRow {
                person: key,
                source,
                content,
            })
        })
        .collect();
    pending::upsert(backend, tx, &insert).await
}

/// Finds the bodies of `bare` (per person) in `pending_bodies`, then in the persons' states,
/// and adds the records to `out`. A record whose body is in neither is left out, logged.
pub(crate) async fn resolve(
    backend: Backend,
    conn: &mut AnyConnection,
    keys: &Keyring,
    persons: &[&str],
    mut bare: BTreeMap<String, Vec<Bare>>,
    out: &mut BTreeMap<String, Vec<StoredRecord>>,
) -> Result<BTreeMap<String, Bodies>> {
    let mut found: BTreeMap<String, Bodies> = BTreeMap::new();
    for (person, mut rows) in pending::of_persons(backend, conn, persons).await? {
        let bodies = found.entry(person.clone()).or_default();
        let wanted = bare.entry(person.clone()).or_default();
        let mut left = Vec::with_capacity(wanted.len());
        for b in wanted.drain(..) {
            match rows.remove(&id_of(&b.source)) {
                Some((version, sealed)) if version == b.source.version => {
                    let body = open_body(keys, &b.source, &sealed)?;
                    let record = b.with(body);
                    bodies.pending.push(record.clone());
                    out.entry(person.clone()).or_default().push(record);
                }
                Some(stale) => {
                    bodies.stale.push((id_of(&b.source), stale.0));
                    left.push(b);
                }
                None => left.push(b),
            }
        }
        *wanted = left;
        bodies
            .stale
            .extend(rows.into_iter().map(|(id, (v, _))| (id, v)));
    }
    bare.retain(|_, rows| !rows.is_empty());
    if bare.is_empty() {
        return Ok(found);
    }
    let keys_of: Vec<&str> = bare.keys().map(String::as_str).collect();
    let sql = "SELECT person_key, facts, packed FROM dossier_state WHERE person_key IN ({in})";
    let mut states: BTreeMap<String, Vec<StoredRecord>> = BTreeMap::new();
    for row in fetch_in(backend, conn, sql, &keys_of).await? {
        let person: String = row.try_get("person_key")?;
        states.insert(person.clone(), facts_of(keys, &row, &person)?);
    }
    for (person, rows) in bare {
        let mut held: BTreeMap<(RecordId, i64), Body> = states
            .remove(&person)
            .unwrap_or_default()
            .into_iter()
            .map(|r| ((id_of(&r.source), r.source.version), r.body))
            .collect();
        let bodies = found.entry(person.clone()).or_default();
        for b in rows {
            let Some(body) = held.remove(&(id_of(&b.source), b.source.version)) else {
                tracing::error!(
                    person = %person, system = %b.source.system, kind = b.source.kind.as_str(),
                    record_id = %b.source.record_id, version = b.source.version,
                    "A current record's body is neither pending nor in its person's state; \
                     the record is left out of the dossier."
                );
                continue;
            };
            let record = b.with(body);
            bodies.state.push(record.clone());
            out.entry(person.clone()).or_default().push(record);
        }
    }
    Ok(found)
}

impl Bare {
    /// The record with `body`.
    pub(crate) fn with(self, body: Body) -> StoredRecord {
        StoredRecord {
            source: self.source,
            received_at: self.received_at,
            profile: self.profile,
            body,
        }
    }
}

fn open_body(keys: &Keyring, source: &SourceRef, sealed: &[u8]) -> Result<Body> {
    let what = || {
        format!(
            "{} of {}/{}/{}",
            column::PENDING,
            source.system,
            source.kind.as_str(),
            source.record_id
        )
    };
    let json = keys
        .open_packed(column::PENDING, sealed)
        .map_err(|e| Error::Sealed(what(), e))?;
    serde_json::from_slice(&json).map_err(|e| Error::Corrupt(what(), e.to_string()))
}
