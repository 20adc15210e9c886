//! Committing a batch: one transaction writes the raw log, the winning versions and the dead
//! letters, and tells each record's outcome. Nothing is acknowledged before it commits.

use crate::current::upsert_current;
use crate::marks::Touched;
use crate::prepared::HASH_BYTES;
use crate::seal::column;
use crate::sql::fetch_in;
use crate::Backend;
use crate::{now_rfc3339, PreparedRecord, Result, Store};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use std::collections::{HashMap, HashSet};
use trainhub_model::merge::{decide, Decision, OutcomeStatus, VersionKey};
use trainhub_model::record::Kind;
use trainhub_model::Rejection;

/// A refused record to keep in the dead-letter table.
#[derive(Debug, Clone)]
pub struct DeadLetterInput {
    /// Why it was refused.
    pub rejection: Rejection,
    /// Source identity as far as it could be read (empty strings when not).
    pub system: String,
    /// Kind as sent.
    pub kind: String,
    /// Record id as sent.
    pub record_id: String,
    /// The original bytes.
    pub payload: Vec<u8>,
    /// How `payload` encodes the record (`protobuf`, `json`), for replay.
    pub format: String,
    /// Transport headers as a JSON object (AMQP headers), or empty.
    pub headers: String,
    /// The system the receiving connector speaks for; empty when it speaks for any.
    pub scope: String,
    /// The dead letter this is a replay of: its row is updated rather than a new one written.
    pub replay_of: Option<i64>,
    /// A keyed fingerprint of the bytes as received: while a letter of the same connector
    /// with this fingerprint waits (not replayed), no second one is written. Empty: always
    /// written.
    pub fingerprint: Vec<u8>,
}

/// The outcome of each prepared record, in input order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedBatch {
    /// One status per prepared record.
    pub statuses: Vec<OutcomeStatus>,
    /// Ids of the dead-letter rows written, in input order.
    pub dead_letter_ids: Vec<i64>,
}

pub(crate) type Key = (String, Kind, String);

pub(crate) fn key_of(r: &PreparedRecord) -> Key {
    (
        r.source.system.clone(),
        r.source.kind,
        r.source.record_id.clone(),
    )
}

fn version_key(r: &PreparedRecord) -> VersionKey {
    VersionKey {
        version: r.source.version,
        deleted: r.deleted,
        content_hash: r.content_hash.clone(),
    }
}

impl Store {
    /// Commits `records` and `rejects` received by `connector` in one transaction.
    pub async fn commit_batch(
        &self,
        connector: &str,
        records: &[PreparedRecord],
        rejects: &[DeadLetterInput],
    ) -> Result<CommittedBatch> {
        self.commit_batch_with(connector, records, rejects, &[])
            .await
    }

    /// [`Store::commit_batch`], also keeping the xAPI `statements` the records were made from:
    /// a statement is stored exactly when its records are.
    pub async fn commit_batch_with(
        &self,
        connector: &str,
        records: &[PreparedRecord],
        rejects: &[DeadLetterInput],
        statements: &[crate::xapi::NewStatement],
    ) -> Result<CommittedBatch> {
        // Sealing is CPU work: done before the write lock is taken.
        let sealed = self.seal_records(records);
        let raw = self.seal_raw(records);
        let rejects_sealed: Vec<(Vec<u8>, String)> = rejects
            .iter()
            .map(|d| {
                (
                    self.keys.seal(column::DEAD_LETTER, &d.payload),
                    self.keys.seal_text(column::DEAD_LETTER_HEADERS, &d.headers),
                )
            })
            .collect();
        let _guard = self.write_guard().await;
        let now = now_rfc3339();
        let mut tx = self.begin_write().await?;
        lock_fingerprints(self.backend, &mut tx, connector, rejects).await?;
        crate::xapi::insert_statements(self, &mut tx, &now, statements).await?;
        let received = records.len();
        crate::raw::insert_batch(self, &mut tx, connector, &now, received, raw.as_deref()).await?;

        // Within the batch, only the greatest version of each key goes to the database.
        let mut winner: HashMap<Key, usize> = HashMap::with_capacity(records.len());
        for (i, r) in records.iter().enumerate() {
            let w = winner.entry(key_of(r)).or_insert(i);
            if version_key(r) > version_key(&records[*w]) {
                *w = i;
            }
        }
        let mut candidates: Vec<usize> = winner.values().copied().collect();
        candidates.sort_unstable();
        let mut touched = Touched::default();
        let written = upsert_current(
            self.backend,
            &mut tx,
            &now,
            records,
            &sealed,
            &candidates,
            &mut touched,
        )
        .await?;
        crate::marks::mark_dirty(self.backend, &mut tx, &touched).await?;
        crate::current::insert_pending(self.backend, &mut tx, records, &sealed, &written).await?;
        let unwritten: Vec<usize> = candidates
            .iter()
            .copied()
            .filter(|i| !written.contains(i))
            .collect();
        let stored = stored_versions(self.backend, &mut tx, records, &unwritten).await?;
        let known = known_persons(self.backend, &mut tx, records, &written).await?;

        let mut statuses = Vec::with_capacity(records.len());
        for (i, r) in records.iter().enumerate() {
            let w = winner[&key_of(r)];
            let status = if i != w {
                match decide(Some(&version_key(&records[w])), &version_key(r)) {
                    Decision::Duplicate if !written.contains(&w) => {
                        // Same as the batch winner, which was itself not written.
                        outcome_against_store(&stored, r)
                    }
                    Decision::Duplicate => OutcomeStatus::Duplicate,
                    _ => OutcomeStatus::Superseded,
                }
            } else if written.contains(&i) {
                if r.deleted || (is_resolved(r, &known) && !waits_for_review(r, &known)) {
                    OutcomeStatus::Accepted
                } else {
                    OutcomeStatus::Parked
                }
            } else {
                outcome_against_store(&stored, r)
            };
            statuses.push(status);
        }
        let dead_letter_ids =
            insert_dead_letters(&mut tx, connector, &now, rejects, &rejects_sealed).await?;
        let replayed = records
            .iter()
            .map(|r| r.replay_of)
            .zip(statuses.iter().copied());
        crate::replayed::record_attempts(&mut tx, &now, replayed, rejects).await?;
        tx.commit().await?;
        Ok(CommittedBatch {
            statuses,
            dead_letter_ids,
        })
    }
}

impl Store {
    /// Which of the `parked` records (indexes into `records`, each `PARKED` when its batch
    /// committed) are resolved now: their person, or their account's link, has committed
    /// since, in a batch that committed alongside theirs. What a batch would have been told
    /// had it committed after those.
    pub async fn resolved_now(
        &self,
        records: &[PreparedRecord],
        parked: &[usize],
    ) -> Result<HashSet<usize>> {
        let parked: HashSet<usize> = parked.iter().copied().collect();
        let mut tx = self.pool.begin().await?;
        let known = known_persons(self.backend, &mut tx, records, &parked).await?;
        tx.commit().await?;
        Ok(parked
            .into_iter()
            .filter(|&i| is_resolved(&records[i], &known) && !waits_for_review(&records[i], &known))
            .collect())
    }
}

fn outcome_against_store(stored: &HashMap<Key, VersionKey>, r: &PreparedRecord) -> OutcomeStatus {
    match decide(stored.get(&key_of(r)), &version_key(r)) {
        Decision::Duplicate => OutcomeStatus::Duplicate,
        // Not written although it wins: a concurrent writer stored something greater meanwhile.
        _ => OutcomeStatus::Superseded,
    }
}

/// Persons and accounts known in the store, for telling `ACCEPTED` from `PARKED`.
#[derive(Default)]
struct Known {
    persons: HashSet<String>,
    accounts: HashSet<(String, String)>,
    /// Accounts linked to more than one person with no decision taken on them.
    contested: HashSet<(String, String)>,
    /// Conflicts among the batch's own that a reviewer has decided.
    decided: HashSet<String>,
}

/// Whether `r` waits on an undecided identity conflict (DESIGN §4): its own birth date, or an
/// account claimed by several persons. (A name that disagrees with another HR system's shows
/// only when the projector compares the records; its outcome here is `ACCEPTED`.)
fn waits_for_review(r: &PreparedRecord, known: &Known) -> bool {
    if let Some(c) = &r.conflict {
        return !known.decided.contains(c);
    }
    r.person_key.is_none()
        && r.account
            .as_ref()
            .is_some_and(|a| known.contested.contains(a))
}

fn is_resolved(r: &PreparedRecord, known: &Known) -> bool {
    match r.source.kind {
        Kind::Person | Kind::TrainingClass => true,
        Kind::Link => r
            .person_key
            .as_ref()
            .is_some_and(|k| known.persons.contains(k)),
        _ => match (&r.person_key, &r.account) {
            (Some(k), _) => known.persons.contains(k),
            (None, Some(a)) => known.accounts.contains(a),
            (None, None) => false,
        },
    }
}

pub(crate) fn row_key(row: &AnyRow) -> Result<Key> {
    let kind: String = row.try_get("kind")?;
    let kind = Kind::parse("kind", &kind)
        .map_err(|e| crate::Error::Corrupt(kind.clone(), e.to_string()))?;
    Ok((row.try_get("system")?, kind, row.try_get("record_id")?))
}

async fn stored_versions(
    backend: Backend,
    tx: &mut Transaction<'static, Any>,
    records: &[PreparedRecord],
    indexes: &[usize],
) -> Result<HashMap<Key, VersionKey>> {
    let columns = "s.version, s.deleted, s.content_hash, s.hash";
    let rows = crate::current::stored_rows(backend, tx, records, indexes, columns).await?;
    let mut out = HashMap::with_capacity(rows.len());
    for row in rows {
        let deleted: i64 = row.try_get("deleted")?;
        out.insert(
            row_key(&row)?,
            VersionKey {
                version: row.try_get("version")?,
                deleted: deleted != 0,
                // Hashes stored before migration 0027 are compared by the bytes kept since.
                content_hash: match row.try_get::<Option<Vec<u8>>, _>("hash")? {
                    Some(hash) => hex::encode(&hash[..hash.len().min(HASH_BYTES)]),
                    None => {
                        let text: String = row.try_get("content_hash")?;
                        text.get(..2 * HASH_BYTES).unwrap_or(&text).to_owned()
                    }
                },
            },
        );
    }
    Ok(out)
}

async fn known_persons(
    backend: Backend,
    tx: &mut Transaction<'static, Any>,
    records: &[PreparedRecord],
    written: &HashSet<usize>,
) -> Result<Known> {
    let mut keys: Vec<&str> = Vec::new();
    let mut accounts: Vec<&(String, String)> = Vec::new();
    for &i in written {
        let r = &records[i];
        if matches!(r.source.kind, Kind::Person | Kind::TrainingClass) || r.deleted {
            continue;
        }
        match (&r.person_key, &r.account) {
            (Some(k), _) => keys.push(k),
            (None, Some(a)) => accounts.push(a),
            _ => {}
        }
    }
    keys.sort_unstable();
    keys.dedup();
    accounts.sort_unstable();
    accounts.dedup();
    let mut known = Known::default();
    let sql = format!(
        "SELECT DISTINCT {} AS person_key FROM source_records WHERE kind = 'person' \
         AND deleted = 0 AND {} IN ({{keys}})",
        crate::person::key(backend, "source_records"),
        crate::person::bytes(backend, "source_records")
    );
    for row in fetch_in(backend, tx, &sql, &keys).await? {
        known.persons.insert(row.try_get("person_key")?);
    }
    let owners = account_owners(backend, tx, &accounts, &mut known).await?;
    // Rare: accounts claimed twice, and conflicts of the batch's own. Only then is the review
    // table read, for decisions already taken.
    let contested: Vec<(String, String)> = owners
        .into_iter()
        .filter(|(_, o)| o.len() > 1)
        .map(|(a, _)| a)
        .collect();
    if !contested.is_empty() {
        let ids: Vec<&str> = contested.iter().map(|(_, a)| a.as_str()).collect();
        let sql = "SELECT account_system, account_id FROM review_conflicts \
                   WHERE kind = 'ACCOUNT_LINKED_TWICE' AND status = 'resolved' \
                   AND account_id IN ({in})";
        let mut decided: HashSet<(String, String)> = HashSet::new();
        for row in fetch_in(backend, tx, sql, &ids).await? {
            decided.insert((row.try_get("account_system")?, row.try_get("account_id")?));
        }
        known.contested = contested
            .into_iter()
            .filter(|a| !decided.contains(a))
            .collect();
    }
    let own: Vec<&str> = written
        .iter()
        .filter_map(|&i| records[i].conflict.as_deref())
        .collect();
    let sql = "SELECT id FROM review_conflicts WHERE status = 'resolved' AND id IN ({in})";
    for row in fetch_in(backend, tx, sql, &own).await? {
        known.decided.insert(row.try_get("id")?);
    }
    Ok(known)
}

/// The linked persons of each of `accounts` (noted as known in `known`). Looked up by account
/// id alone through a partial index on links, then matched on the pair here: a row-value join
/// made PostgreSQL's planner scan the table.
async fn account_owners(
    backend: Backend,
    tx: &mut Transaction<'static, Any>,
    accounts: &[&(String, String)],
    known: &mut Known,
) -> Result<HashMap<(String, String), HashSet<String>>> {
    let wanted: HashSet<&(String, String)> = accounts.iter().copied().collect();
    let ids: Vec<&str> = accounts.iter().map(|(_, a)| a.as_str()).collect();
    let sql = format!(
        "SELECT account_system, account_id, {} AS person_key FROM source_records \
         WHERE kind = 'link' AND deleted = 0 AND account_id IN ({{in}})",
        crate::person::key(backend, "source_records")
    );
    let mut owners: HashMap<(String, String), HashSet<String>> = HashMap::new();
    for row in fetch_in(backend, tx, &sql, &ids).await? {
        let pair = (row.try_get("account_system")?, row.try_get("account_id")?);
        if wanted.contains(&pair) {
            let owner: Option<String> = row.try_get("person_key")?;
            owners.entry(pair.clone()).or_default().extend(owner);
            known.accounts.insert(pair);
        }
    }
    Ok(owners)
}

/// Advisory lock class of "a letter of these bytes is being written" (ASCII `LETT`).
const LETTER_LOCK_CLASS: i32 = 0x4c45_5454;

/// On PostgreSQL, concurrent batches of one connector may each carry the same bytes; each
/// would find no waiting letter and write its own. Each transaction therefore first takes a
/// transaction-scoped advisory lock per fingerprint, in one sorted order and before it locks
/// anything else, so the second waits for the first to commit and then finds its letter.
/// (SQLite writes one transaction at a time.)
async fn lock_fingerprints(
    backend: Backend,
    tx: &mut Transaction<'static, Any>,
    connector: &str,
    rejects: &[DeadLetterInput],
) -> Result<()> {
    if backend != Backend::Postgres {
        return Ok(());
    }
    let mut keys: Vec<i32> = rejects
        .iter()
        .filter(|d| d.replay_of.is_none() && !d.fingerprint.is_empty())
        .map(|d| letter_lock_key(connector, &d.fingerprint))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    for key in keys {
        sqlx::query("SELECT pg_advisory_xact_lock($1, $2)::text")
            .bind(LETTER_LOCK_CLASS)
            .bind(key)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// The lock key of a connector's fingerprint. Two inputs sharing a key only wait for each other.
fn letter_lock_key(connector: &str, fingerprint: &[u8]) -> i32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in connector
        .as_bytes()
        .iter()
        .chain([0u8].iter())
        .chain(fingerprint)
    {
        h = (h ^ u32::from(*b)).wrapping_mul(0x0100_0193);
    }
    h as i32
}

async fn insert_dead_letters(
    tx: &mut Transaction<'static, Any>,
    connector: &str,
    now: &str,
    rejects: &[DeadLetterInput],
    sealed: &[(Vec<u8>, String)],
) -> Result<Vec<i64>> {
    let mut ids = Vec::with_capacity(rejects.len());
    for (d, (payload, headers)) in rejects.iter().zip(sealed) {
        if let Some(id) = d.replay_of {
            // Still refused on replay: the letter stays as first refused (its history gains
            // the attempt, see `replayed`).
            ids.push(id);
            continue;
        }
        if !d.fingerprint.is_empty() {
            let waiting = sqlx::query(
                "SELECT id FROM dead_letters WHERE fingerprint = $1 AND connector = $2 \
                 AND replayed_at IS NULL ORDER BY id LIMIT 1",
            )
            .bind(&d.fingerprint)
            .bind(connector)
            .fetch_optional(&mut **tx)
            .await?;
            if let Some(row) = waiting {
                // The same bytes already wait as a letter: that one stands for both.
                ids.push(row.try_get("id")?);
                continue;
            }
        }
        let row = sqlx::query(
            "INSERT INTO dead_letters (received_at, connector, stage, reason_code, message, system, \
             kind, record_id, payload, format, headers, scope, fingerprint) \
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13) RETURNING id",
        )
        .bind(now)
        .bind(connector)
        .bind(d.rejection.stage.as_str())
        .bind(d.rejection.code.as_str())
        .bind(d.rejection.describe())
        .bind(&d.system)
        .bind(&d.kind)
        .bind(&d.record_id)
        .bind(payload)
        .bind(&d.format)
        .bind(headers)
        .bind(&d.scope)
        .bind(&d.fingerprint)
        .fetch_one(&mut **tx)
        .await?;
        ids.push(row.try_get("id")?);
    }
    Ok(ids)
}

impl Store {
    /// Writes `records` straight into the raw log and `source_records` with the same multi-row
    /// statements the hub uses, without reading anything back or deciding outcomes. This is
    /// the database's own limit for the benchmark to compare the hub against.
    pub async fn insert_direct(&self, connector: &str, records: &[PreparedRecord]) -> Result<()> {
        let sealed = self.seal_records(records);
        let raw = self.seal_raw(records);
        let _guard = self.write_guard().await;
        let now = now_rfc3339();
        let mut tx = self.begin_write().await?;
        let received = records.len();
        crate::raw::insert_batch(self, &mut tx, connector, &now, received, raw.as_deref()).await?;
        let all: Vec<usize> = (0..records.len()).collect();
        let mut touched = Touched::default();
        let written = upsert_current(
            self.backend,
            &mut tx,
            &now,
            records,
            &sealed,
            &all,
            &mut touched,
        )
        .await?;
        crate::marks::mark_dirty(self.backend, &mut tx, &touched).await?;
        crate::current::insert_pending(self.backend, &mut tx, records, &sealed, &written).await?;
        tx.commit().await?;
        Ok(())
    }
}
