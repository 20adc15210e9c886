//! The dossier state maintained on write (DESIGN §1 "dossier projection").
//!
//! The ingest transaction marks the persons a batch touched in `dossier_dirty`; the projector
//! drains that set, loads each person's current records once, computes the dossier at the
//! projection day and stores both the records (`facts`) and the summary columns in
//! `dossier_state`. Readers compute any `as_of` from `facts` without touching `source_records`;
//! coverage and listings at the projection day are plain SQL over the summary columns.
//! On PostgreSQL several hubs drain the set together: marks are locked in key order, a
//! conflicting round runs again, and links, enrollments and classes written concurrently are
//! caught by deferred account and class marks that the projector resolves after they commit.

use crate::ingest::Touched;
use crate::review;
use crate::seal::column;
use crate::sql::{list, tuples, MAX_PARAMS};
use crate::{now_rfc3339, Backend, Error, Keyring, Result, Store};
use chrono::NaiveDate;
use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, Row, Transaction};
use std::collections::{BTreeMap, BTreeSet};
use trainhub_model::dispatch::{CoverageGroup, GroupBy};
use trainhub_model::dossier::{compute, Dossier, StoredRecord};
use trainhub_model::policy::Policy;
use trainhub_model::record::{Body, Kind, SourceRef};
use trainhub_model::review::{Claims, Reviewed};
use trainhub_model::PersonKey;

/// The conflict clause of every mark: a fresh `seq`, so a projection that read the person's
/// records before this mark cannot clear it.
fn bump(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => "ON CONFLICT (person_key) DO UPDATE SET seq = nextval('dossier_mark')",
        Backend::Sqlite => "ON CONFLICT (person_key) DO UPDATE SET seq = random()",
    }
}

/// Marks the persons whose dossiers `touched` changes: the persons themselves, whoever the
/// touched accounts are linked to, and everyone enrolled in a touched class. The keys are
/// collected first and marked in one sorted statement, so concurrent transactions take the
/// mark rows' locks in the same order and cannot deadlock on them.
pub(crate) async fn mark_dirty(
    backend: Backend,
    tx: &mut Transaction<'static, Any>,
    touched: &Touched,
) -> Result<()> {
    let mut persons: BTreeSet<String> = touched.persons.iter().cloned().collect();
    let derived = [
        ("kind = 'link' AND account_id", &touched.accounts),
        ("kind = 'enrollment' AND class_id", &touched.classes),
    ];
    for (condition, values) in derived {
        let values: Vec<&String> = values.iter().collect();
        for chunk in values.chunks(MAX_PARAMS) {
            let sql = format!(
                "SELECT DISTINCT person_key FROM source_records WHERE {condition} IN ({}) \
                 AND person_key IS NOT NULL",
                list(backend, chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for v in chunk {
                q = q.bind(v.as_str());
            }
            for row in q.fetch_all(&mut **tx).await? {
                persons.insert(row.try_get("person_key")?);
            }
        }
    }
    if backend == Backend::Postgres {
        // With concurrent writers the lookups above cannot see links or enrollments that other
        // transactions are writing right now. A deferred mark per account and class is
        // resolved again by the projector once this transaction has committed (see
        // `expand_deferred`), so a person is never left unprojected by that race.
        for a in &touched.accounts {
            persons.insert(format!("{ACCOUNT_MARK}{a}"));
        }
        for c in &touched.classes {
            persons.insert(format!("{CLASS_MARK}{c}"));
        }
    }
    insert_marks(backend, tx, persons).await
}

/// A dirty mark: key and `seq`.
type Mark = (String, i64);

/// Prefix of a deferred mark: the persons linked to an account.
const ACCOUNT_MARK: &str = "acct:";
/// Prefix of a deferred mark: the persons enrolled in a class.
const CLASS_MARK: &str = "class:";

/// Marks `keys` dirty (a fresh `seq` for those already marked), in one sorted statement per
/// chunk.
pub(crate) async fn insert_marks(
    backend: Backend,
    tx: &mut Transaction<'static, Any>,
    keys: BTreeSet<String>,
) -> Result<()> {
    let persons: Vec<String> = keys.into_iter().collect();
    for chunk in persons.chunks(MAX_PARAMS) {
        let sql = format!(
            "INSERT INTO dossier_dirty (person_key) VALUES {} {}",
            tuples(backend, 1, chunk.len(), 1),
            bump(backend)
        );
        let mut q = sqlx::query(&sql);
        for k in chunk {
            q = q.bind(k.as_str());
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

const COLUMNS: &str = "system, kind, record_id, version, received_at, profile, body";

fn stored_record(row: &AnyRow, keys: &Keyring) -> Result<StoredRecord> {
    let kind: String = row.try_get("kind")?;
    let record_id: String = row.try_get("record_id")?;
    let corrupt = |e: String| Error::Corrupt(format!("{kind}/{record_id}"), e);
    let body: String = row.try_get("body")?;
    let body = keys.open_text(column::BODY, &body).map_err(|e| {
        let system: String = row.try_get("system").unwrap_or_default();
        Error::Sealed(
            format!("{} of {system}/{kind}/{record_id}", column::BODY),
            e,
        )
    })?;
    let body: Body = serde_json::from_str(&body).map_err(|e| corrupt(e.to_string()))?;
    Ok(StoredRecord {
        source: SourceRef {
            system: row.try_get("system")?,
            kind: Kind::parse("kind", &kind).map_err(|e| corrupt(e.to_string()))?,
            record_id: record_id.clone(),
            version: row.try_get("version")?,
        },
        received_at: row.try_get("received_at")?,
        profile: row.try_get("profile")?,
        body,
    })
}

/// The current, live records of each of `persons`: their own records, records naming them by a
/// linked account, and the classes those records refer to. Records are sorted so the facts of
/// a person do not depend on the order rows come back in.
pub(crate) async fn records_of(
    backend: Backend,
    conn: &mut AnyConnection,
    keys: &Keyring,
    persons: &[String],
) -> Result<BTreeMap<String, Vec<StoredRecord>>> {
    let mut out: BTreeMap<String, Vec<StoredRecord>> =
        persons.iter().map(|p| (p.clone(), Vec::new())).collect();
    let mut accounts: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for chunk in persons.chunks(MAX_PARAMS) {
        let sql = format!(
            "SELECT {COLUMNS}, person_key, account_system, account_id FROM source_records \
             WHERE person_key IN ({}) AND deleted = 0 AND body IS NOT NULL",
            list(backend, chunk.len())
        );
        let mut q = sqlx::query(&sql);
        for p in chunk {
            q = q.bind(p.as_str());
        }
        for row in q.fetch_all(&mut *conn).await? {
            let person: String = row.try_get("person_key")?;
            let record = stored_record(&row, keys)?;
            if record.source.kind == Kind::Link {
                let account = (row.try_get("account_system")?, row.try_get("account_id")?);
                accounts.entry(account).or_default().push(person.clone());
            }
            out.entry(person).or_default().push(record);
        }
    }
    let account_ids: Vec<&String> = accounts.keys().map(|(_, id)| id).collect();
    for chunk in account_ids.chunks(MAX_PARAMS) {
        let sql = format!(
            "SELECT {COLUMNS}, account_system, account_id FROM source_records \
             WHERE person_key IS NULL AND deleted = 0 AND body IS NOT NULL AND kind <> 'link' \
             AND account_id IN ({})",
            list(backend, chunk.len())
        );
        let mut q = sqlx::query(&sql);
        for a in chunk {
            q = q.bind(a.as_str());
        }
        for row in q.fetch_all(&mut *conn).await? {
            let account: (String, String) =
                (row.try_get("account_system")?, row.try_get("account_id")?);
            if let Some(owners) = accounts.get(&account) {
                let record = stored_record(&row, keys)?;
                for owner in owners {
                    out.entry(owner.clone()).or_default().push(record.clone());
                }
            }
        }
    }
    let mut by_class: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (person, records) in &out {
        for r in records {
            if let Some(c) = r.body.class_id() {
                by_class
                    .entry(c.to_owned())
                    .or_default()
                    .insert(person.clone());
            }
        }
    }
    let class_ids: Vec<&String> = by_class.keys().collect();
    for chunk in class_ids.chunks(MAX_PARAMS) {
        let sql = format!(
            "SELECT {COLUMNS} FROM source_records WHERE kind = 'training_class' \
             AND deleted = 0 AND body IS NOT NULL AND class_id IN ({})",
            list(backend, chunk.len())
        );
        let mut q = sqlx::query(&sql);
        for c in chunk {
            q = q.bind(c.as_str());
        }
        for row in q.fetch_all(&mut *conn).await? {
            let record = stored_record(&row, keys)?;
            let class = record.body.class_id().unwrap_or_default().to_owned();
            for person in by_class.get(&class).into_iter().flatten() {
                out.entry(person.clone()).or_default().push(record.clone());
            }
        }
    }
    for records in out.values_mut() {
        records.sort_by(|a, b| {
            (a.source.kind, &a.source.system, &a.source.record_id).cmp(&(
                b.source.kind,
                &b.source.system,
                &b.source.record_id,
            ))
        });
    }
    Ok(out)
}

/// The records of each of `persons` ([`records_of`]) after the identity review rules:
/// records waiting for a reviewer are left out, decisions applied.
pub(crate) async fn reviewed_of(
    backend: Backend,
    conn: &mut AnyConnection,
    keys: &Keyring,
    persons: &[String],
) -> Result<BTreeMap<String, Reviewed>> {
    let facts = records_of(backend, conn, keys, persons).await?;
    let accounts = review::linked_accounts(facts.values().flatten());
    let claims = if accounts.is_empty() {
        Claims::new()
    } else {
        review::claims_of(backend, conn, &accounts).await?
    };
    let decisions = review::decisions_for(backend, conn, persons).await?;
    review::review_all(facts, &claims, &decisions)
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
        // Projectors of several hubs and concurrent writers may still conflict (a deadlock or
        // a serialization failure rolls one back): that round simply runs again.
        let mut attempt = 0;
        loop {
            match self.project_dirty_once(policy, today, limit).await {
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
    ) -> Result<usize> {
        let marks: Vec<(String, i64)> = sqlx::query(&format!(
            "SELECT person_key, seq FROM dossier_dirty ORDER BY person_key LIMIT {limit}"
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
        let keys: Vec<String> = marks.iter().map(|(k, _)| k.clone()).collect();
        // Each person's records, after the identity review rules: records waiting for a
        // reviewer are left out, decisions applied.
        let (reviewed, in_review) = {
            let mut conn = self.pool.acquire().await?;
            let reviewed = reviewed_of(self.backend, &mut conn, &self.keys, &keys).await?;
            let in_review = review::in_review(self.backend, &mut conn, &keys).await?;
            (reviewed, in_review)
        };
        let mut computed: BTreeMap<&str, Option<(Dossier, String)>> = BTreeMap::new();
        let mut findings = BTreeMap::new();
        for (key, r) in &reviewed {
            let person = PersonKey::parse("person_key", key)
                .map_err(|e| Error::Corrupt(key.clone(), e.to_string()))?;
            let state = compute(&person, &r.records, today, policy).map(|d| {
                (
                    d,
                    serde_json::to_string(&r.records).expect("records serialise"),
                )
            });
            computed.insert(key.as_str(), state);
            if !r.conflicts.is_empty() || !r.held.is_empty() || in_review.contains(key) {
                findings.insert(key.as_str(), self.findings(r));
            }
        }
        // Sealed before the write lock is taken: the state's name and facts.
        let sealed: BTreeMap<&str, (String, String)> = computed
            .iter()
            .filter_map(|(key, state)| {
                let (d, facts) = state.as_ref()?;
                Some((
                    *key,
                    (
                        self.keys.seal_text(column::NAME, &d.name),
                        self.keys.seal_text(column::FACTS, facts),
                    ),
                ))
            })
            .collect();

        let _guard = self.write_guard().await;
        let now = now_rfc3339();
        let mut tx = self.pool.begin().await?;
        let mut cleared: BTreeSet<String> = BTreeSet::new();
        if self.backend == Backend::Postgres {
            // Lock the marks in key order first: projectors of several hubs (and writers
            // re-marking) then always wait on each other in the same order and never deadlock.
            for chunk in marks.chunks(MAX_PARAMS) {
                let sql = format!(
                    "SELECT person_key FROM dossier_dirty WHERE person_key IN ({}) \
                     ORDER BY person_key FOR UPDATE",
                    list(self.backend, chunk.len())
                );
                let mut q = sqlx::query(&sql);
                for (k, _) in chunk {
                    q = q.bind(k.as_str());
                }
                q.fetch_all(&mut *tx).await?;
            }
        }
        for chunk in marks.chunks(MAX_PARAMS / 2) {
            // The key list lets both databases use the primary key; the pairs check the seq.
            let sql = format!(
                "DELETE FROM dossier_dirty WHERE person_key IN ({}) \
                 AND (person_key, seq) IN (VALUES {}) RETURNING person_key",
                tuples(self.backend, 1, 1, chunk.len()).trim_matches(|c| c == '(' || c == ')'),
                tuples(self.backend, chunk.len() + 1, chunk.len(), 2)
            );
            let mut q = sqlx::query(&sql);
            for (k, _) in chunk {
                q = q.bind(k.as_str());
            }
            for (k, seq) in chunk {
                q = q.bind(k.as_str()).bind(*seq);
            }
            for row in q.fetch_all(&mut *tx).await? {
                cleared.insert(row.try_get("person_key")?);
            }
        }
        let mut rows = Vec::new();
        let mut gone = Vec::new();
        let mut projected = Vec::new();
        for (key, state) in &computed {
            if !cleared.contains(*key) {
                continue;
            }
            projected.push(crate::outbox::Projected {
                person_key: key,
                dossier: state.as_ref().map(|(d, f)| (d, f.as_str())),
            });
            match (state, sealed.get(key)) {
                (Some((d, _)), Some((name, facts))) => {
                    rows.push((d, name.as_str(), facts.as_str()))
                }
                _ => gone.push(*key),
            }
        }
        write_state(self.backend, &mut tx, &rows, &now).await?;
        for (key, found) in &findings {
            if cleared.contains(*key) {
                review::write_review(&mut tx, key, found, &now).await?;
            }
        }
        if self.events {
            crate::outbox::announce(self.backend, &mut tx, &projected, &now).await?;
        }
        for chunk in gone.chunks(MAX_PARAMS) {
            let sql = format!(
                "DELETE FROM dossier_state WHERE person_key IN ({})",
                list(self.backend, chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for k in chunk {
                q = q.bind(*k);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(marks.len())
    }

    /// Turns deferred account and class marks into marks of the persons they resolve to now,
    /// and clears them (if not marked again meanwhile).
    async fn expand_deferred(&self, deferred: &[(String, i64)]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let mut persons = BTreeSet::new();
        for (key, _) in deferred {
            let (condition, value) = match key.strip_prefix(ACCOUNT_MARK) {
                Some(account) => ("kind = 'link' AND deleted = 0 AND account_id = $1", account),
                None => (
                    "kind = 'enrollment' AND class_id = $1",
                    key.strip_prefix(CLASS_MARK).unwrap_or(key),
                ),
            };
            let sql = format!(
                "SELECT DISTINCT person_key FROM source_records WHERE {condition} \
                 AND person_key IS NOT NULL"
            );
            for row in sqlx::query(&sql).bind(value).fetch_all(&mut *tx).await? {
                persons.insert(row.try_get::<String, _>("person_key")?);
            }
        }
        insert_marks(self.backend, &mut tx, persons).await?;
        for (key, seq) in deferred {
            sqlx::query("DELETE FROM dossier_dirty WHERE person_key = $1 AND seq = $2")
                .bind(key)
                .bind(*seq)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Drains the dirty set completely, after marking rows projected on another day as dirty.
    pub async fn project_all(&self, policy: &Policy, today: NaiveDate) -> Result<usize> {
        sqlx::query(&format!(
            "INSERT INTO dossier_dirty (person_key) SELECT person_key FROM dossier_state \
                 WHERE as_of <> $1 ORDER BY person_key {}",
            bump(self.backend)
        ))
        .bind(today.to_string())
        .execute(&self.pool)
        .await?;
        let mut total = 0;
        loop {
            let n = self.project_dirty(policy, today, 500).await?;
            if n == 0 {
                return Ok(total);
            }
            total += n;
        }
    }

    /// How many persons wait for projection.
    pub async fn dirty_count(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM dossier_dirty")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }

    /// The current records of `person`: from the projected state when it is fresh, else
    /// straight from the source records.
    pub async fn person_facts(&self, person: &PersonKey) -> Result<Vec<StoredRecord>> {
        let row = sqlx::query(
            "SELECT facts, (SELECT COUNT(*) FROM dossier_dirty d WHERE d.person_key = $1) AS dirty \
             FROM dossier_state WHERE person_key = $1",
        )
        .bind(person.as_str())
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = row {
            if row.try_get::<i64, _>("dirty")? == 0 {
                let facts: String = row.try_get("facts")?;
                let facts = self.open_text(column::FACTS, &format!("person {person}"), &facts)?;
                return serde_json::from_str(&facts)
                    .map_err(|e| Error::Corrupt(format!("facts of {person}"), e.to_string()));
            }
        }
        self.person_records(person).await
    }

    /// One page of projected persons after `after` (keyset by person key), with their facts.
    pub async fn state_page(
        &self,
        filter: &StateFilter,
        after: &str,
        limit: i64,
    ) -> Result<Vec<(PersonKey, Vec<StoredRecord>)>> {
        let (clause, binds) = filter.clause(2);
        let sql = format!(
            "SELECT person_key, facts FROM dossier_state WHERE person_key > $1{clause} \
             ORDER BY person_key LIMIT {limit}"
        );
        let mut q = sqlx::query(&sql).bind(after);
        for b in binds {
            q = q.bind(b);
        }
        let mut out = Vec::new();
        for row in q.fetch_all(&self.pool).await? {
            let key: String = row.try_get("person_key")?;
            let facts: String = row.try_get("facts")?;
            let facts = self.open_text(column::FACTS, &format!("person {key}"), &facts)?;
            let records = serde_json::from_str(&facts)
                .map_err(|e| Error::Corrupt(format!("facts of {key}"), e.to_string()))?;
            let key = PersonKey::parse("person_key", &key)
                .map_err(|e| Error::Corrupt(key.clone(), e.to_string()))?;
            out.push((key, records));
        }
        Ok(out)
    }
}

/// Filters on the projected summary columns.
#[derive(Debug, Clone, Default)]
pub struct StateFilter {
    /// Exact unit code.
    pub unit_code: Option<String>,
    /// Rank at the projection day.
    pub rank: Option<String>,
    /// Category.
    pub category: Option<String>,
    /// Region code.
    pub region_code: Option<String>,
    /// Light at the projection day (`RED`, …).
    pub light: Option<String>,
}

impl StateFilter {
    /// ` AND col = $n …` numbering from `first`, and the values to bind.
    pub(crate) fn clause(&self, first: usize) -> (String, Vec<String>) {
        let mut sql = String::new();
        let mut binds = Vec::new();
        for (col, value) in [
            ("unit_code", &self.unit_code),
            ("rank", &self.rank),
            ("category", &self.category),
            ("region_code", &self.region_code),
            ("light", &self.light),
        ] {
            if let Some(v) = value {
                sql.push_str(&format!(" AND {col} = ${}", first + binds.len()));
                binds.push(v.clone());
            }
        }
        (sql, binds)
    }
}

async fn write_state(
    backend: Backend,
    tx: &mut Transaction<'static, Any>,
    rows: &[(&Dossier, &str, &str)],
    now: &str,
) -> Result<()> {
    const COLS: usize = 16;
    for chunk in rows.chunks(MAX_PARAMS / COLS) {
        let sql = format!(
            "INSERT INTO dossier_state (person_key, as_of, name, unit_code, rank, category, \
             region_code, in_scope, light, required_hours, credited_hours, participated, \
             results_total, results_passed, facts, updated_at) VALUES {} \
             ON CONFLICT (person_key) DO UPDATE SET as_of = excluded.as_of, name = excluded.name, \
             unit_code = excluded.unit_code, rank = excluded.rank, category = excluded.category, \
             region_code = excluded.region_code, in_scope = excluded.in_scope, \
             light = excluded.light, required_hours = excluded.required_hours, \
             credited_hours = excluded.credited_hours, participated = excluded.participated, \
             results_total = excluded.results_total, results_passed = excluded.results_passed, \
             facts = excluded.facts, updated_at = excluded.updated_at",
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
                .bind(facts)
                .bind(now);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

impl Store {
    /// Coverage per group over the projected state, computed by the database. Valid for the
    /// projection day; callers drain the dirty set first ([`Store::project_all`]).
    pub async fn coverage(
        &self,
        group_by: GroupBy,
        filter: &StateFilter,
    ) -> Result<BTreeMap<String, CoverageGroup>> {
        let col = group_by.column();
        let (clause, binds) = filter.clause(1);
        let sql = format!(
            "SELECT {col} AS k, COUNT(*) AS in_scope, \
             CAST(SUM(participated) AS BIGINT) AS participated, \
             CAST(SUM(results_total) AS BIGINT) AS results, \
             CAST(SUM(results_passed) AS BIGINT) AS passed, \
             CAST(SUM(CASE WHEN light = 'RED' THEN 1 ELSE 0 END) AS BIGINT) AS red, \
             CAST(SUM(CASE WHEN light = 'YELLOW' THEN 1 ELSE 0 END) AS BIGINT) AS yellow, \
             CAST(SUM(CASE WHEN light = 'GREEN' THEN 1 ELSE 0 END) AS BIGINT) AS green \
             FROM dossier_state WHERE in_scope = 1{clause} GROUP BY {col}"
        );
        let mut q = sqlx::query(&sql);
        for b in &binds {
            q = q.bind(b.as_str());
        }
        let mut out = BTreeMap::new();
        for row in q.fetch_all(&self.pool).await? {
            out.insert(
                row.try_get::<String, _>("k")?,
                CoverageGroup {
                    in_scope: row.try_get("in_scope")?,
                    participated: row.try_get("participated")?,
                    results: row.try_get("results")?,
                    passed: row.try_get("passed")?,
                    red: row.try_get("red")?,
                    yellow: row.try_get("yellow")?,
                    green: row.try_get("green")?,
                    red_list: Vec::new(),
                },
            );
        }
        let sql = format!(
            "SELECT {col} AS k, person_key, name, unit_code FROM dossier_state \
             WHERE in_scope = 1 AND light = 'RED'{clause} ORDER BY person_key"
        );
        let mut q = sqlx::query(&sql);
        for b in &binds {
            q = q.bind(b.as_str());
        }
        for row in q.fetch_all(&self.pool).await? {
            let key: String = row.try_get("k")?;
            if let Some(g) = out.get_mut(&key) {
                let person: String = row.try_get("person_key")?;
                let name: String = row.try_get("name")?;
                let name = self.open_text(column::NAME, &format!("person {person}"), &name)?;
                g.red_list.push((person, name, row.try_get("unit_code")?));
            }
        }
        Ok(out)
    }

    /// In-scope persons of `unit` at the projection day.
    pub async fn unit_in_scope(&self, unit: &str) -> Result<i64> {
        Ok(sqlx::query(
            "SELECT COUNT(*) AS n FROM dossier_state WHERE unit_code = $1 AND in_scope = 1",
        )
        .bind(unit)
        .fetch_one(&self.pool)
        .await?
        .try_get("n")?)
    }
}

impl Store {
    /// The person an account is linked to, if any. When live links tie it to several persons
    /// it is the owner a reviewer chose (`ACCOUNT_LINKED_TWICE`), and nobody until then.
    pub async fn person_for_account(&self, system: &str, id: &str) -> Result<Option<PersonKey>> {
        let owners: Vec<String> = sqlx::query(
            "SELECT DISTINCT person_key FROM source_records WHERE kind = 'link' AND deleted = 0 \
             AND account_system = $1 AND account_id = $2 AND person_key IS NOT NULL",
        )
        .bind(system)
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| r.try_get("person_key"))
        .collect::<std::result::Result<_, _>>()?;
        let owner = match owners.as_slice() {
            [] => None,
            [one] => Some(one.clone()),
            several => sqlx::query(
                "SELECT choice FROM review_conflicts WHERE kind = 'ACCOUNT_LINKED_TWICE' \
                 AND status = 'resolved' AND account_system = $1 AND account_id = $2",
            )
            .bind(system)
            .bind(id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .filter_map(|r| r.try_get::<String, _>("choice").ok())
            .find(|c| several.contains(c)),
        };
        owner
            .map(|k| {
                PersonKey::parse("person_key", &k)
                    .map_err(|e| Error::Corrupt(k.clone(), e.to_string()))
            })
            .transpose()
    }
}
