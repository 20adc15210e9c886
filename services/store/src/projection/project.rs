//! The projector's rounds: read the marks, compute the marked persons' dossiers outside any
//! lock, then in one short transaction clear the marks that did not change meanwhile and
//! write exactly those persons' state, review findings and outbox rows.

use super::bodies::Settled;
use super::facts::reviewed_of;
use super::Lane;
use crate::marks::{bump, insert_marks, Mark, ACCOUNT_MARK, CLASS_MARK};
use crate::review;
use crate::seal::column;
use crate::sql::{execute_in, fetch_in, list, tuples, MAX_PARAMS};
use crate::{now_rfc3339, Backend, Error, Result, Store};
use chrono::NaiveDate;
use sqlx::{Any, AnyConnection, Row, Transaction};
use std::collections::{BTreeMap, BTreeSet};
use trainhub_model::dossier::{compute, Dossier};
use trainhub_model::policy::Policy;
use trainhub_model::PersonKey;

/// The marked persons' new state, computed and sealed before the write.
#[derive(Default)]
struct Round {
    /// Per person: the dossier and its facts (JSON), or `None` when the person is gone.
    computed: BTreeMap<String, Option<(Dossier, String)>>,
    /// Per person: the name, sealed, and the facts, packed.
    sealed: BTreeMap<String, (String, Vec<u8>)>,
    /// Review findings of persons with conflicts or held records.
    findings: BTreeMap<String, review::Findings>,
    /// Per person: what its new state changes in `pending_bodies`.
    pending: BTreeMap<String, Settled>,
}

impl Store {
    /// Projects up to `limit` dirty persons at `today`; returns how many were taken.
    ///
    /// Optimistic: the marks and records are read and the dossiers computed outside any write
    /// lock; one short transaction then clears each mark whose `seq` is unchanged and writes the
    /// state of exactly those persons. A person marked again meanwhile keeps its mark and is
    /// projected in a later round, so several projectors (hubs) never store a stale state.
    pub async fn project_dirty(
        &self,
        policy: &Policy,
        today: NaiveDate,
        limit: i64,
    ) -> Result<usize> {
        self.project_lane(policy, today, limit, Lane::ALL).await
    }

    /// [`Store::project_dirty`] over the marks of one lane only: a hub runs one projector per
    /// lane, so that reading one lane's records overlaps with computing another's.
    pub async fn project_lane(
        &self,
        policy: &Policy,
        today: NaiveDate,
        limit: i64,
        lane: Lane,
    ) -> Result<usize> {
        // Projectors of several hubs and concurrent writers may still conflict (a deadlock or
        // a serialization failure rolls one back): that round simply runs again.
        let mut attempt = 0;
        loop {
            match self.project_dirty_once(policy, today, limit, lane).await {
                Err(e) if e.is_retryable_conflict() && attempt < 5 => {
                    attempt += 1;
                    tracing::debug!(error = %e, attempt, "Projection conflicted; retrying.");
                    tokio::time::sleep(std::time::Duration::from_millis(5 << attempt)).await;
                }
                other => return other,
            }
        }
    }

    async fn project_dirty_once(
        &self,
        policy: &Policy,
        today: NaiveDate,
        limit: i64,
        lane: Lane,
    ) -> Result<usize> {
        // The account and class marks first: expanded while the persons they stand for still
        // wait on the marks their own records left (a fresh `seq`), not after those persons
        // were projected (a second projection of each). A bulk load writes every class, and
        // expanded last, its class marks re-marked the whole population.
        let deferred = self.deferred_marks(lane, limit).await?;
        if !deferred.is_empty() {
            self.expand_deferred(&deferred).await?;
            return Ok(deferred.len());
        }
        let marks: Vec<Mark> = sqlx::query(&format!(
            "SELECT person_key, seq FROM dossier_dirty{} ORDER BY person_key LIMIT {limit}",
            lane.clause()
        ))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("person_key")?, r.try_get("seq")?)))
        .collect::<Result<_>>()?;
        if marks.is_empty() {
            return Ok(0);
        }
        let (deferred, marks): (Vec<Mark>, Vec<Mark>) = marks
            .into_iter()
            .partition(|(k, _)| k.starts_with(ACCOUNT_MARK) || k.starts_with(CLASS_MARK));
        if !deferred.is_empty() {
            self.expand_deferred(&deferred).await?;
        }
        if marks.is_empty() {
            return Ok(deferred.len());
        }
        let round = self.compute_round(policy, today, &marks).await?;
        let _guard = self.write_guard().await;
        let now = now_rfc3339();
        let mut tx = self.begin_write().await?;
        let cleared = clear_marks(self.backend, &mut tx, &marks).await?;
        self.write_round(&mut tx, &round, &cleared, &now).await?;
        tx.commit().await?;
        Ok(marks.len())
    }

    /// After a burst: reclaims the row versions re-projection left behind in the state and
    /// mark tables (PostgreSQL `VACUUM`; a person's state is rewritten each time a burst's
    /// records reach it, and an update that changes an indexed column, its light or unit,
    /// cannot reuse the row's page). Skips the state table while another hub vacuums it.
    /// The mark table is small in live rows but churned by every batch: its vacuum waits
    /// rather than skips, so a burst's dead marks (hundreds of thousands) do not stay in the
    /// index every read checks (the database interrupts an autovacuum that holds the lock
    /// another vacuum asks for). `pending_bodies` is churned the same way by a burst's bodies.
    /// Both are truncated when the vacuum leaves them empty, so that a burst's size does not
    /// stay in their indexes ([`Store::truncate_emptied`]). The mark table last: a bench waits
    /// for its vacuum to measure. The state's and the records' indexes are rebuilt once
    /// writes have left their pages part empty ([`Store::rebuild_indexes`]). SQLite reuses
    /// freed pages by itself; a store created with incremental auto-vacuum (every store since
    /// migration 0022) also gives a burst's freed pages back to the disk when there are more
    /// than 4 MiB of them.
    pub async fn tidy_projection(&self) -> Result<()> {
        if self.backend == Backend::Sqlite {
            let free: i64 = sqlx::query("PRAGMA freelist_count")
                .fetch_one(&self.pool)
                .await?
                .try_get(0)?;
            if free > 1024 {
                let _guard = self.write_guard().await;
                sqlx::query("PRAGMA incremental_vacuum")
                    .execute(&self.pool)
                    .await?;
            }
        }
        if self.backend == Backend::Postgres {
            sqlx::query("VACUUM (SKIP_LOCKED) dossier_state")
                .execute(&self.pool)
                .await?;
            sqlx::query("VACUUM (SKIP_LOCKED) pending_bodies")
                .execute(&self.pool)
                .await?;
            self.truncate_emptied("pending_bodies").await?;
            if let Err(e) = self.rebuild_indexes().await {
                tracing::warn!(error = %e, "Could not rebuild the store's indexes.");
            }
            sqlx::query("VACUUM dossier_dirty")
                .execute(&self.pool)
                .await?;
            self.truncate_emptied("dossier_dirty").await?;
        }
        Ok(())
    }

    /// Each marked person's records after the identity review rules (records waiting for a
    /// reviewer left out, decisions applied), their dossier at `today`, sealed.
    async fn compute_round(
        &self,
        policy: &Policy,
        today: NaiveDate,
        marks: &[Mark],
    ) -> Result<Round> {
        let keys: Vec<String> = marks.iter().map(|(k, _)| k.clone()).collect();
        let (reviewed, bodies, in_review, names) = {
            let mut tx = self.snapshot().await?;
            let (reviewed, bodies) = reviewed_of(self.backend, &mut tx, &self.keys, &keys).await?;
            let in_review = review::in_review(self.backend, &mut tx, &keys).await?;
            // Only PostgreSQL indexes the name (migration 0017); SQLite re-seals it as before.
            let names = if self.backend == Backend::Postgres {
                stored_names(self.backend, &mut tx, &keys).await?
            } else {
                BTreeMap::new()
            };
            tx.commit().await?;
            (reviewed, bodies, in_review, names)
        };
        let mut round = Round::default();
        for (key, r) in &reviewed {
            let person = PersonKey::parse("person_key", key)
                .map_err(|e| Error::Corrupt(key.clone(), e.to_string()))?;
            let state = compute(&person, &r.records, today, policy).map(|d| {
                let facts = serde_json::to_string(&r.records).expect("records serialise");
                (d, facts)
            });
            if let Some((d, facts)) = &state {
                let sealed = (
                    // The stored name when it is unchanged: a fresh seal would change an
                    // indexed column on every re-projection.
                    self.keys.keep_or_seal_text(
                        column::NAME,
                        names.get(key).map(String::as_str),
                        &d.name,
                    ),
                    self.keys.seal_packed(column::PACKED, facts.as_bytes()),
                );
                round.sealed.insert(key.clone(), sealed);
            }
            if let Some(b) = bodies.get(key) {
                let facts = state.as_ref().map(|_| r.records.as_slice());
                round
                    .pending
                    .insert(key.clone(), b.settle(&self.keys, facts));
            }
            round.computed.insert(key.clone(), state);
            if !r.conflicts.is_empty() || !r.held.is_empty() || in_review.contains(key) {
                round.findings.insert(key.clone(), self.findings(r));
            }
        }
        Ok(round)
    }

    /// Writes the state, findings and outbox rows of the persons whose marks were `cleared`;
    /// removes the state of persons who are gone.
    async fn write_round(
        &self,
        tx: &mut Transaction<'static, Any>,
        round: &Round,
        cleared: &BTreeSet<String>,
        now: &str,
    ) -> Result<()> {
        let mut rows = Vec::new();
        let mut gone = Vec::new();
        let mut projected = Vec::new();
        for (key, state) in &round.computed {
            if !cleared.contains(key) {
                continue;
            }
            projected.push(crate::outbox::Projected {
                person_key: key,
                dossier: state.as_ref().map(|(d, f)| (d, f.as_str())),
            });
            match (state, round.sealed.get(key)) {
                (Some((d, _)), Some((name, facts))) => {
                    rows.push((d, name.as_str(), facts.as_slice()))
                }
                _ => gone.push(key.as_str()),
            }
        }
        write_state(self.backend, tx, &rows, now).await?;
        for (key, found) in &round.findings {
            if cleared.contains(key) {
                review::write_review(tx, key, found, now).await?;
            }
        }
        if self.events {
            crate::outbox::announce(self.backend, tx, &projected, now).await?;
        }
        let sql = "DELETE FROM dossier_state WHERE person_key IN ({in})";
        execute_in(self.backend, tx, sql, &gone).await?;
        let settled = round
            .pending
            .iter()
            .filter(|(key, _)| cleared.contains(*key))
            .map(|(key, s)| (key.as_str(), s));
        super::bodies::write(self.backend, tx, settled).await
    }

    /// Up to `limit` of the deferred account and class marks in `lane`, in key order.
    async fn deferred_marks(&self, lane: Lane, limit: i64) -> Result<Vec<Mark>> {
        let mut out: Vec<Mark> = Vec::new();
        if !crate::marks::writes_deferred(self.backend) {
            return Ok(out);
        }
        for prefix in crate::marks::deferred_prefixes().filter(|p| lane.takes(p)) {
            let room = limit - out.len() as i64;
            if room <= 0 {
                break;
            }
            // The key column sorts bytewise (`COLLATE "C"`): a prefix is a range of its index.
            let rows = sqlx::query(&format!(
                "SELECT person_key, seq FROM dossier_dirty WHERE person_key LIKE '{prefix}%' \
                 ORDER BY person_key LIMIT {room}"
            ))
            .fetch_all(&self.pool)
            .await?;
            for r in rows {
                out.push((r.try_get("person_key")?, r.try_get("seq")?));
            }
        }
        Ok(out)
    }

    /// Turns deferred account and class marks into marks of the persons they resolve to now,
    /// and clears them (if not marked again meanwhile): one lookup per kind of mark by the
    /// list of its accounts or classes.
    async fn expand_deferred(&self, deferred: &[Mark]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let mut persons = BTreeSet::new();
        for (prefix, sql) in crate::marks::resolvers(self.backend) {
            let values: Vec<&str> = deferred
                .iter()
                .filter_map(|(key, _)| key.strip_prefix(prefix))
                .collect();
            if values.is_empty() {
                continue;
            }
            for row in fetch_in(self.backend, &mut tx, &sql, &values).await? {
                persons.insert(row.try_get::<String, _>("person_key")?);
            }
        }
        insert_marks(self.backend, &mut tx, persons).await?;
        clear_marks(self.backend, &mut tx, deferred).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Drains the dirty set completely, after marking rows projected on another day as dirty.
    pub async fn project_all(&self, policy: &Policy, today: NaiveDate) -> Result<usize> {
        self.mark_other_days(today).await?;
        let mut total = 0;
        loop {
            let n = self.project_dirty(policy, today, 500).await?;
            if n == 0 {
                return Ok(total);
            }
            total += n;
        }
    }

    /// Marks the persons whose state was projected on another day than `today` (their light
    /// and rank columns may have changed with the date): the projector runs this when the day
    /// changes.
    pub async fn mark_other_days(&self, today: NaiveDate) -> Result<()> {
        let _guard = self.write_guard().await;
        sqlx::query(&format!(
            "INSERT INTO dossier_dirty (person_key) SELECT person_key FROM dossier_state \
             WHERE (as_of < $1 OR as_of > $1) ORDER BY person_key {}",
            bump(self.backend)
        ))
        .bind(today.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Whether every projected state is of `today` (its summary columns hold for today).
    pub async fn projected_on(&self, today: NaiveDate) -> Result<bool> {
        // `<` or `>`, not `<>`: two probes of the day's index rather than a scan.
        let other =
            sqlx::query("SELECT 1 AS x FROM dossier_state WHERE as_of < $1 OR as_of > $1 LIMIT 1")
                .bind(today.to_string())
                .fetch_optional(&self.pool)
                .await?;
        Ok(other.is_none())
    }

    /// Whether any person waits for projection (one index probe).
    pub async fn marks_pending(&self) -> Result<bool> {
        Ok(sqlx::query("SELECT 1 AS x FROM dossier_dirty LIMIT 1")
            .fetch_optional(&self.pool)
            .await?
            .is_some())
    }

    /// How many persons wait for projection.
    pub async fn dirty_count(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM dossier_dirty")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }
}

/// Clears the marks whose `seq` is unchanged; returns their keys. On PostgreSQL the marks are
/// locked in key order first: projectors of several hubs (and writers re-marking) then always
/// wait on each other in the same order and never deadlock.
async fn clear_marks(
    backend: Backend,
    tx: &mut Transaction<'static, Any>,
    marks: &[Mark],
) -> Result<BTreeSet<String>> {
    if backend == Backend::Postgres {
        for chunk in marks.chunks(MAX_PARAMS) {
            let sql = format!(
                "SELECT person_key FROM dossier_dirty WHERE person_key IN ({}) \
                 ORDER BY person_key FOR UPDATE",
                list(backend, chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for (k, _) in chunk {
                q = q.bind(k.as_str());
            }
            q.fetch_all(&mut **tx).await?;
        }
    }
    let mut cleared = BTreeSet::new();
    for chunk in marks.chunks(MAX_PARAMS / 2) {
        // The key list lets both databases use the primary key; the pairs check the seq.
        let sql = format!(
            "DELETE FROM dossier_dirty WHERE person_key IN ({}) \
             AND (person_key, seq) IN (VALUES {}) RETURNING person_key",
            tuples(backend, 1, 1, chunk.len()).trim_matches(|c| c == '(' || c == ')'),
            tuples(backend, chunk.len() + 1, chunk.len(), 2)
        );
        let mut q = sqlx::query(&sql);
        for (k, _) in chunk {
            q = q.bind(k.as_str());
        }
        for (k, seq) in chunk {
            q = q.bind(k.as_str()).bind(*seq);
        }
        for row in q.fetch_all(&mut **tx).await? {
            cleared.insert(row.try_get("person_key")?);
        }
    }
    Ok(cleared)
}

/// The sealed names the state rows of `persons` hold now.
async fn stored_names(
    backend: Backend,
    conn: &mut AnyConnection,
    persons: &[String],
) -> Result<BTreeMap<String, String>> {
    let keys: Vec<&str> = persons.iter().map(String::as_str).collect();
    let sql = "SELECT person_key, name FROM dossier_state WHERE person_key IN ({in})";
    fetch_in(backend, conn, sql, &keys)
        .await?
        .iter()
        .map(|row| Ok((row.try_get("person_key")?, row.try_get("name")?)))
        .collect()
}

async fn write_state(
    backend: Backend,
    tx: &mut Transaction<'static, Any>,
    rows: &[(&Dossier, &str, &[u8])],
    now: &str,
) -> Result<()> {
    const COLS: usize = 18;
    for chunk in rows.chunks(MAX_PARAMS / COLS) {
        let sql = format!(
            "INSERT INTO dossier_state (person_key, as_of, name, unit_code, rank, category, \
             region_code, in_scope, light, required_hours, credited_hours, participated, \
             results_total, results_passed, facts, packed, updated_at, authority) VALUES {} \
             ON CONFLICT (person_key) DO UPDATE SET as_of = excluded.as_of, name = excluded.name, \
             unit_code = excluded.unit_code, rank = excluded.rank, category = excluded.category, \
             region_code = excluded.region_code, in_scope = excluded.in_scope, \
             light = excluded.light, required_hours = excluded.required_hours, \
             credited_hours = excluded.credited_hours, participated = excluded.participated, \
             results_total = excluded.results_total, results_passed = excluded.results_passed, \
             facts = excluded.facts, packed = excluded.packed, updated_at = excluded.updated_at, \
             authority = excluded.authority",
            tuples(backend, 1, chunk.len(), COLS)
        );
        let mut q = sqlx::query(&sql);
        for &(d, name, facts) in chunk {
            q = q
                .bind(d.person_key.as_str())
                .bind(d.as_of.to_string())
                .bind(name)
                .bind(d.unit_code.as_str())
                .bind(d.rank.map(|r| r.as_str()).unwrap_or_default())
                .bind(d.category.map(|c| c.as_str()).unwrap_or_default())
                .bind(d.region_code.as_str())
                .bind(i64::from(d.in_scope))
                .bind(d.light.as_str())
                .bind(d.required_hours)
                .bind(d.credited_hours)
                .bind(i64::from(d.participated))
                .bind(i64::from(d.results_in_window))
                .bind(i64::from(d.results_passed))
                // Text facts are what stores before migration 0015 hold.
                .bind("")
                .bind(facts)
                .bind(now)
                .bind(d.authority.as_str());
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}
