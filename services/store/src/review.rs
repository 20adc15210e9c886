//! The identity review queue's tables (DESIGN §4): the conflicts the projector finds, the
//! records waiting on them, reviewers' decisions, and the unmatched records.
//!
//! The rules themselves are pure ([`trainhub_model::review`]); the projector gathers their
//! inputs here ([`claims_of`], [`decisions_for`]) and keeps their results ([`write_review`]) in
//! the transaction that stores the dossier state.

use crate::marks::insert_marks;
use crate::seal::column;
use crate::sql::{fetch_in, list, MAX_PARAMS};
use crate::{now_rfc3339, Backend, Error, Result, Store};
use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, Row, Transaction};
use std::collections::{BTreeMap, BTreeSet};
use trainhub_model::record::{Kind, SourceRef};
use trainhub_model::review::{Claim, Claims, Conflict, Decisions, Reviewed};
use trainhub_model::PersonKey;

fn corrupt(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Corrupt(what.to_owned(), e.to_string())
}

fn source_of(row: &AnyRow) -> Result<SourceRef> {
    let kind: String = row.try_get("kind")?;
    Ok(SourceRef {
        system: row.try_get("system")?,
        kind: Kind::parse("kind", &kind).map_err(|e| corrupt(&kind, e))?,
        record_id: row.try_get("record_id")?,
        version: row.try_get("version")?,
    })
}

/// Every live link naming one of `accounts`.
pub(crate) async fn claims_of(
    backend: Backend,
    conn: &mut AnyConnection,
    accounts: &BTreeSet<(String, String)>,
) -> Result<Claims> {
    let ids: Vec<&str> = accounts
        .iter()
        .map(|(_, id)| id.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut out = Claims::new();
    let person = crate::person::key(backend, "source_records");
    let sql = format!(
        "SELECT system, kind, record_id, version, received_at, received, \
         {person} AS person_key, account_system, account_id FROM source_records \
         WHERE kind = 'link' AND deleted = 0 AND {person} IS NOT NULL \
         AND account_id IN ({{in}})"
    );
    for row in fetch_in(backend, conn, &sql, &ids).await? {
        let account = (row.try_get("account_system")?, row.try_get("account_id")?);
        if !accounts.contains(&account) {
            continue;
        }
        let key: String = row.try_get("person_key")?;
        out.entry(account).or_default().push(Claim {
            person_key: PersonKey::parse("person_key", &key).map_err(|e| corrupt(&key, e))?,
            source: source_of(&row)?,
            received_at: crate::received::of_row(&row)?,
        });
    }
    Ok(out)
}

/// The decisions taken on conflicts involving any of `persons`.
pub(crate) async fn decisions_for(
    backend: Backend,
    conn: &mut AnyConnection,
    persons: &[String],
) -> Result<Decisions> {
    let mut out = Decisions::new();
    let keys: Vec<&str> = persons.iter().map(String::as_str).collect();
    let sql = "SELECT c.id, c.choice FROM review_conflicts c JOIN review_conflict_persons p \
               ON p.conflict_id = c.id WHERE c.status = 'resolved' AND p.person_key IN ({in})";
    for row in fetch_in(backend, conn, sql, &keys).await? {
        out.insert(row.try_get("id")?, row.try_get("choice")?);
    }
    Ok(out)
}

/// Which of `persons` have rows in the review tables (whose findings must be rewritten even
/// when the projection finds nothing now).
pub(crate) async fn in_review(
    backend: Backend,
    conn: &mut AnyConnection,
    persons: &[String],
) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for chunk in persons.chunks(MAX_PARAMS / 2) {
        let sql = format!(
            "SELECT person_key FROM review_conflict_persons WHERE person_key IN ({}) \
             UNION SELECT person_key FROM review_held WHERE person_key IN ({})",
            list(backend, chunk.len()),
            crate::sql::list_from(backend, chunk.len() + 1, chunk.len())
        );
        let mut q = sqlx::query(&sql);
        for p in chunk.iter().chain(chunk) {
            q = q.bind(p.as_str());
        }
        for row in q.fetch_all(&mut *conn).await? {
            out.insert(row.try_get("person_key")?);
        }
    }
    Ok(out)
}

/// A person's review findings with each conflict sealed, ready for [`write_review`].
pub(crate) struct Findings {
    held: Vec<(SourceRef, String)>,
    conflicts: Vec<(Conflict, String)>,
}

impl Store {
    /// Seals the conflicts of `reviewed` (their sides carry names and birth dates).
    pub(crate) fn findings(&self, reviewed: &Reviewed) -> Findings {
        Findings {
            held: reviewed.held.clone(),
            conflicts: reviewed
                .conflicts
                .iter()
                .map(|c| {
                    let json = serde_json::to_string(c).expect("conflicts serialise");
                    (c.clone(), self.keys.seal_text(column::REVIEW, &json))
                })
                .collect(),
        }
    }
}

/// Keeps what the projection of `person` found: the records it holds back, new conflicts, and
/// `cleared` for open conflicts of the person that its records no longer produce.
pub(crate) async fn write_review(
    tx: &mut Transaction<'static, Any>,
    person: &str,
    findings: &Findings,
    now: &str,
) -> Result<()> {
    sqlx::query("DELETE FROM review_held WHERE person_key = $1")
        .bind(person)
        .execute(&mut **tx)
        .await?;
    for (source, conflict) in &findings.held {
        sqlx::query(
            "INSERT INTO review_held (person_key, system, kind, record_id, conflict_id) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(person)
        .bind(&source.system)
        .bind(source.kind.as_str())
        .bind(&source.record_id)
        .bind(conflict)
        .execute(&mut **tx)
        .await?;
    }
    for (c, sealed) in &findings.conflicts {
        sqlx::query(
            "INSERT INTO review_conflicts (id, kind, account_system, account_id, sides, \
             detected_at, status) VALUES ($1, $2, $3, $4, $5, $6, 'open') \
             ON CONFLICT (id) DO UPDATE SET sides = excluded.sides, \
             status = CASE WHEN review_conflicts.status = 'cleared' THEN 'open' \
             ELSE review_conflicts.status END",
        )
        .bind(&c.id)
        .bind(c.kind.as_str())
        .bind(c.account.as_ref().map(|a| a.0.as_str()))
        .bind(c.account.as_ref().map(|a| a.1.as_str()))
        .bind(sealed)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        for p in &c.persons {
            sqlx::query(
                "INSERT INTO review_conflict_persons (person_key, conflict_id) VALUES ($1, $2) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(p.as_str())
            .bind(&c.id)
            .execute(&mut **tx)
            .await?;
        }
    }
    let found: BTreeSet<&str> = findings
        .conflicts
        .iter()
        .map(|(c, _)| c.id.as_str())
        .collect();
    let open: Vec<String> = sqlx::query(
        "SELECT c.id FROM review_conflicts c JOIN review_conflict_persons p \
         ON p.conflict_id = c.id WHERE p.person_key = $1 AND c.status = 'open'",
    )
    .bind(person)
    .fetch_all(&mut **tx)
    .await?
    .iter()
    .map(|r| r.try_get("id"))
    .collect::<std::result::Result<_, _>>()?;
    for id in open.iter().filter(|id| !found.contains(id.as_str())) {
        sqlx::query("UPDATE review_conflicts SET status = 'cleared' WHERE id = $1")
            .bind(id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// A conflict as kept, with its review state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConflictRow {
    /// The conflict and its sides.
    pub conflict: Conflict,
    /// `open`, `resolved` or `cleared`.
    pub status: String,
    /// When it was first found.
    pub detected_at: String,
    /// The chosen side's `choice`, once resolved.
    pub choice: Option<String>,
    /// The reviewer's note.
    pub note: Option<String>,
    /// Who resolved it.
    pub resolved_by: Option<String>,
    /// When.
    pub resolved_at: Option<String>,
}

/// What [`Store::resolve_conflict`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Decided; the persons involved are marked for projection.
    Resolved(Box<ConflictRow>),
    /// No conflict has that id.
    NotFound,
    /// The records no longer conflict; nothing to decide.
    Cleared,
    /// The choice is none of the sides'; these are.
    BadChoice(Vec<String>),
}

/// A record not in any dossier, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnmatchedRow {
    /// The record.
    pub source: SourceRef,
    /// When its current version was received.
    pub received_at: String,
    /// `NO_LINK` (its account is linked to nobody), `NO_PERSON` (no usable person record for
    /// its person, or its account's persons, yet) or `IN_REVIEW` (it waits on `conflict_id`).
    pub reason: &'static str,
    /// The person it names by national ID, if it does.
    pub person_key: Option<String>,
    /// The account it names, if it does.
    pub account: Option<(String, String)>,
    /// The conflict it waits on.
    pub conflict_id: Option<String>,
}

const CONFLICT_COLUMNS: &str =
    "id, sides, status, detected_at, choice, note, resolved_by, resolved_at";

impl Store {
    fn conflict_row(&self, row: &AnyRow) -> Result<ConflictRow> {
        let id: String = row.try_get("id")?;
        let sides: String = row.try_get("sides")?;
        let json = self.open_text(column::REVIEW, &format!("conflict {id}"), &sides)?;
        Ok(ConflictRow {
            conflict: serde_json::from_str(&json).map_err(|e| corrupt(&id, e))?,
            status: row.try_get("status")?,
            detected_at: row.try_get("detected_at")?,
            choice: row.try_get("choice")?,
            note: row.try_get("note")?,
            resolved_by: row.try_get("resolved_by")?,
            resolved_at: row.try_get("resolved_at")?,
        })
    }

    /// Conflicts after `after` in id order: open ones only, or every one.
    pub async fn list_conflicts(
        &self,
        include_closed: bool,
        after: &str,
        limit: i64,
    ) -> Result<Vec<ConflictRow>> {
        let status = if include_closed {
            ""
        } else {
            "AND status = 'open' "
        };
        let sql = format!(
            "SELECT {CONFLICT_COLUMNS} FROM review_conflicts WHERE id > $1 {status}\
             ORDER BY id LIMIT {limit}"
        );
        sqlx::query(&sql)
            .bind(after)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| self.conflict_row(r))
            .collect()
    }

    /// How many conflicts wait for a reviewer.
    pub async fn open_conflict_count(&self) -> Result<i64> {
        Ok(
            sqlx::query("SELECT COUNT(*) AS n FROM review_conflicts WHERE status = 'open'")
                .fetch_one(&self.pool)
                .await?
                .try_get("n")?,
        )
    }

    /// A person's name as the dossier state has it.
    pub async fn person_name(&self, person: &PersonKey) -> Result<Option<String>> {
        let row = sqlx::query("SELECT name FROM dossier_state WHERE person_key = $1")
            .bind(person.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            let name: String = r.try_get("name")?;
            self.open_text(column::NAME, &format!("person {person}"), &name)
        })
        .transpose()
    }

    /// One conflict by id.
    pub async fn conflict(&self, id: &str) -> Result<Option<ConflictRow>> {
        let sql = format!("SELECT {CONFLICT_COLUMNS} FROM review_conflicts WHERE id = $1");
        sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| self.conflict_row(&r))
            .transpose()
    }

    /// Decides conflict `id` for the side whose choice is `choice`, and marks the persons
    /// involved so their dossiers are projected again with the decision (the records that
    /// waited join them). Deciding again replaces the earlier decision.
    pub async fn resolve_conflict(
        &self,
        id: &str,
        choice: &str,
        note: &str,
        by: &str,
    ) -> Result<Resolution> {
        let Some(row) = self.conflict(id).await? else {
            return Ok(Resolution::NotFound);
        };
        if row.status == "cleared" {
            return Ok(Resolution::Cleared);
        }
        if !row.conflict.accepts(choice) {
            let choices = row.conflict.choices().into_iter().map(str::to_owned);
            return Ok(Resolution::BadChoice(choices.collect()));
        }
        let _guard = self.write_guard().await;
        let now = now_rfc3339();
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE review_conflicts SET status = 'resolved', choice = $1, note = $2, \
             resolved_by = $3, resolved_at = $4 WHERE id = $5",
        )
        .bind(choice)
        .bind(note)
        .bind(by)
        .bind(&now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let persons = row.conflict.persons.iter().map(|p| p.to_string()).collect();
        insert_marks(self.backend, &mut tx, persons).await?;
        tx.commit().await?;
        let row = self
            .conflict(id)
            .await?
            .ok_or_else(|| corrupt(id, "vanished"))?;
        Ok(Resolution::Resolved(Box::new(row)))
    }

    /// Records that are in no dossier, after `after` = `(system, kind, record_id)` in that
    /// order, as of the last projection of their persons.
    pub async fn list_unmatched(
        &self,
        after: (&str, &str, &str),
        limit: i64,
    ) -> Result<Vec<UnmatchedRow>> {
        let held = "FROM review_held h WHERE h.system = s.system AND h.kind = s.kind \
                    AND h.record_id = s.record_id";
        // Live links of the record's account; with a dossier: links to a projected person.
        let links = "FROM source_records l WHERE l.kind = 'link' AND l.deleted = 0 \
                     AND l.account_id IS NOT NULL \
                     AND l.account_id = s.account_id AND l.account_system = s.account_system";
        let (person, linked) = (
            crate::person::key(self.backend, "s"),
            crate::person::key(self.backend, "l"),
        );
        let sql = format!(
            "SELECT s.system, s.kind, s.record_id, s.version, s.received_at, s.received, \
             {person} AS person_key, \
             s.account_system, s.account_id, (SELECT MIN(h.conflict_id) {held}) AS conflict_id, \
             CASE WHEN EXISTS (SELECT 1 {links}) THEN 1 ELSE 0 END AS linked \
             FROM source_records s \
             WHERE s.deleted = 0 AND s.kind <> 'training_class' \
             AND (s.system > $1 OR (s.system = $1 AND (s.kind > $2 \
                  OR (s.kind = $2 AND s.record_id > $3)))) \
             AND (EXISTS (SELECT 1 {held}) \
                  OR ({person} IS NULL AND s.account_id IS NOT NULL AND s.kind <> 'link' \
                      AND NOT EXISTS (SELECT 1 {links} AND EXISTS (SELECT 1 FROM dossier_state d \
                      WHERE d.person_key = {linked}))) \
                  OR ({person} IS NOT NULL AND s.kind <> 'person' AND NOT EXISTS \
                      (SELECT 1 FROM dossier_state d WHERE d.person_key = {person}))) \
             ORDER BY s.system, s.kind, s.record_id LIMIT {limit}"
        );
        let rows = sqlx::query(&sql)
            .bind(after.0)
            .bind(after.1)
            .bind(after.2)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let person_key: Option<String> = row.try_get("person_key")?;
                let conflict_id: Option<String> = row.try_get("conflict_id")?;
                let account = match (
                    row.try_get::<Option<String>, _>("account_system")?,
                    row.try_get::<Option<String>, _>("account_id")?,
                ) {
                    (Some(s), Some(a)) => Some((s, a)),
                    _ => None,
                };
                let linked: i64 = row.try_get("linked")?;
                let reason = if conflict_id.is_some() {
                    "IN_REVIEW"
                } else if person_key.is_none() && linked == 0 {
                    "NO_LINK"
                } else {
                    "NO_PERSON"
                };
                Ok(UnmatchedRow {
                    source: source_of(row)?,
                    received_at: crate::received::of_row(row)?,
                    reason,
                    person_key,
                    account,
                    conflict_id,
                })
            })
            .collect()
    }
}

/// The accounts the links among `records` name.
pub(crate) fn linked_accounts<'a>(
    records: impl IntoIterator<Item = &'a trainhub_model::dossier::StoredRecord>,
) -> BTreeSet<(String, String)> {
    records
        .into_iter()
        .filter_map(|r| match &r.body {
            trainhub_model::record::Body::Link(l) => {
                Some((l.account_system.clone(), l.account_id.clone()))
            }
            _ => None,
        })
        .collect()
}

/// Reviews every person's gathered records.
pub(crate) fn review_all(
    facts: BTreeMap<String, Vec<trainhub_model::dossier::StoredRecord>>,
    claims: &Claims,
    decisions: &Decisions,
) -> Result<BTreeMap<String, Reviewed>> {
    facts
        .into_iter()
        .map(|(key, records)| {
            let person = PersonKey::parse("person_key", &key).map_err(|e| corrupt(&key, e))?;
            let reviewed = trainhub_model::review::review(&person, records, claims, decisions);
            Ok((key, reviewed))
        })
        .collect()
}
