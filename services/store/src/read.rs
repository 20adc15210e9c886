//! Reading back: a person's current records (for the dossier) and the dead letters.

use crate::seal::column;
use crate::{Error, Keyring, Result, Store};
use sqlx::Row;
use trainhub_model::dossier::StoredRecord;
use trainhub_model::PersonKey;

/// A dead letter as listed for operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Row id.
    pub id: i64,
    /// Connector that received it.
    pub connector: String,
    /// Stage that refused it.
    pub stage: String,
    /// Stable reason code.
    pub reason_code: String,
    /// Human message.
    pub message: String,
    /// Source system as sent.
    pub system: String,
    /// Kind as sent.
    pub kind: String,
    /// Record id as sent.
    pub record_id: String,
    /// The original bytes.
    pub payload: Vec<u8>,
    /// When it was received.
    pub received_at: String,
    /// How `payload` encodes the record: `protobuf` or `json`.
    pub format: String,
    /// Transport headers as a JSON object, or empty.
    pub headers: String,
    /// The system the receiving connector speaks for; empty for any.
    pub scope: String,
    /// When a replay stored the record.
    pub replayed_at: Option<String>,
    /// Replays so far.
    pub replay_attempts: i64,
    /// What each replay did, oldest first (the fields above keep the first refusal).
    pub attempts: Vec<Attempt>,
}

/// One replay of a dead letter.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct Attempt {
    /// When (RFC 3339).
    pub at: String,
    /// The record's outcome: `ACCEPTED`, `DUPLICATE`, …, or `REJECTED`.
    pub outcome: String,
    /// When refused again: the stage.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stage: String,
    /// When refused again: the reason code.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason_code: String,
    /// When refused again: the message.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

fn attempts(lines: &str) -> Vec<Attempt> {
    lines
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Which dead letters to list or replay.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LetterFilter {
    /// Only these ids (all others ignored); empty for any.
    pub ids: Vec<i64>,
    /// Only this connector; empty for any.
    pub connector: String,
    /// Only this reason code; empty for any.
    pub reason_code: String,
    /// Also letters a replay has stored.
    pub include_replayed: bool,
}

const LETTER_COLUMNS: &str = "id, connector, stage, reason_code, message, system, kind, \
    record_id, payload, received_at, format, headers, scope, replayed_at, replay_attempts, attempts";

fn letter(row: &sqlx::any::AnyRow, keys: &Keyring) -> Result<DeadLetter> {
    let id: i64 = row.try_get("id")?;
    let payload: Vec<u8> = row.try_get("payload")?;
    let payload = keys
        .open(column::DEAD_LETTER, &payload)
        .map_err(|e| Error::Sealed(format!("{} of dead letter {id}", column::DEAD_LETTER), e))?;
    let headers: String = row.try_get("headers")?;
    let headers = keys
        .open_text(column::DEAD_LETTER_HEADERS, &headers)
        .map_err(|e| {
            Error::Sealed(
                format!("{} of dead letter {id}", column::DEAD_LETTER_HEADERS),
                e,
            )
        })?;
    Ok(DeadLetter {
        id,
        connector: row.try_get("connector")?,
        stage: row.try_get("stage")?,
        reason_code: row.try_get("reason_code")?,
        message: row.try_get("message")?,
        system: row.try_get("system")?,
        kind: row.try_get("kind")?,
        record_id: row.try_get("record_id")?,
        payload,
        received_at: row.try_get("received_at")?,
        format: row.try_get("format")?,
        headers,
        scope: row.try_get("scope")?,
        replayed_at: row.try_get("replayed_at")?,
        replay_attempts: row.try_get("replay_attempts")?,
        attempts: attempts(&row.try_get::<String, _>("attempts")?),
    })
}

impl Store {
    /// Every current, live record of `person` that counts (the identity review rules applied:
    /// records waiting for a reviewer left out), read from the source records (never from the
    /// projected state).
    pub async fn person_records(&self, person: &PersonKey) -> Result<Vec<StoredRecord>> {
        let mut found = self
            .records_of_persons(&[person.as_str().to_owned()])
            .await?;
        Ok(found.pop().map(|(_, records)| records).unwrap_or_default())
    }

    /// The current records of each of `persons` (as [`Store::person_records`]), read from the
    /// source records: what a reader uses for persons whose projected state is stale.
    pub async fn records_of_persons(
        &self,
        persons: &[String],
    ) -> Result<Vec<(PersonKey, Vec<StoredRecord>)>> {
        let mut tx = self.snapshot().await?;
        let (reviewed, _) =
            crate::projection::reviewed_of(self.backend, &mut tx, &self.keys, persons).await?;
        tx.commit().await?;
        reviewed
            .into_iter()
            .map(|(key, r)| {
                let person = PersonKey::parse("person_key", &key)
                    .map_err(|e| Error::Corrupt(key.clone(), e.to_string()))?;
                Ok((person, r.records))
            })
            .collect()
    }

    /// The persons whose projected state is stale or missing: those marked dirty, and those
    /// that the deferred account and class marks resolve to now. Read only: the marks stay for
    /// the projector.
    pub async fn stale_persons(&self) -> Result<std::collections::BTreeSet<String>> {
        let sql = format!(
            "SELECT person_key FROM ({}) w",
            crate::marks::stale_sql(self.backend)
        );
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| Ok(row.try_get::<String, _>("person_key")?))
            .collect()
    }

    /// How many persons wait for the projector. Exact — what [`Store::stale_persons`] would
    /// return: the persons marked themselves and those the shared marks resolve to besides —
    /// while at most [`SHARED_COUNTED`] shared marks (an
    /// account's or a class's, standing for its persons) wait; beyond that, during a bulk load,
    /// the persons marked themselves (at least 1), a lower bound: resolving every shared mark
    /// joins most of the source records, which would cost a read that is to answer at once
    /// most of a minute at a province's size.
    pub async fn waiting_count(&self) -> Result<usize> {
        let (own, shared) = crate::marks::mark_counts(&self.pool).await?;
        if shared > SHARED_COUNTED {
            // Never 0 while a mark waits: 0 tells a caller the figures are exact.
            return Ok(own.max(1) as usize);
        }
        if shared == 0 {
            // No shared mark to resolve: the persons marked themselves are all that wait.
            // Every coverage and listing asks, mostly with nothing waiting, and the query
            // below joins the records table: planned for a province, it costs a few hundred
            // milliseconds even when there is no mark at all.
            return Ok(own as usize);
        }
        let sql = crate::marks::resolved_unmarked_sql(self.backend);
        // On PostgreSQL lookups, never a hash of every mark or record: at a million persons,
        // 500 class marks and 220,000 own marks, 0.16 s against 0.88 s planned freely.
        let settings = [("enable_hashjoin", "off"), ("enable_mergejoin", "off")];
        let rows = self.fetch_all_with(&settings, sqlx::query(&sql)).await?;
        let resolved: i64 = match rows.first() {
            Some(row) => row.try_get("n")?,
            None => 0,
        };
        Ok((own + resolved) as usize)
    }

    /// Dead letters matching `filter`, newest first; `before_id` pages backwards.
    pub async fn dead_letters(
        &self,
        filter: &LetterFilter,
        before_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<DeadLetter>> {
        let ids = if filter.ids.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = filter.ids.iter().map(i64::to_string).collect();
            format!(" AND id IN ({})", list.join(","))
        };
        let sql = format!(
            "SELECT {LETTER_COLUMNS} FROM dead_letters \
             WHERE ($1 = '' OR connector = $1) AND ($2 = '' OR reason_code = $2) AND id < $3 \
             AND ($4 = 1 OR replayed_at IS NULL){ids} ORDER BY id DESC LIMIT $5"
        );
        let rows = sqlx::query(&sql)
            .bind(&filter.connector)
            .bind(&filter.reason_code)
            .bind(before_id.unwrap_or(i64::MAX))
            .bind(i64::from(filter.include_replayed))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| letter(r, &self.keys)).collect()
    }

    /// Unreplayed dead letters counted by connector, stage and reason.
    pub async fn dead_letter_counts(&self) -> Result<Vec<(String, String, String, i64)>> {
        let rows = sqlx::query(
            "SELECT connector, stage, reason_code, COUNT(*) AS n FROM dead_letters \
             WHERE replayed_at IS NULL GROUP BY connector, stage, reason_code \
             ORDER BY n DESC, connector, reason_code",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("connector")?,
                    r.try_get("stage")?,
                    r.try_get("reason_code")?,
                    r.try_get("n")?,
                ))
            })
            .collect()
    }

    /// Row counts of the main tables, for tests, the benchmark and status; for the raw log,
    /// the records it holds ([`Store::received_count`]).
    pub async fn table_count(&self, table: Table) -> Result<i64> {
        if table == Table::RawLog {
            return self.received_count().await;
        }
        let sql = format!("SELECT COUNT(*) AS n FROM {}", table.name());
        Ok(sqlx::query(&sql)
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }
}

/// Shared marks up to which [`Store::waiting_count`] counts the persons behind them.
pub const SHARED_COUNTED: i64 = 1000;

/// The store's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// Every received record (`raw_log` and `raw_batches`).
    RawLog,
    /// Current versions.
    SourceRecords,
    /// Refused records.
    DeadLetters,
    /// Projected dossiers.
    DossierState,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::RawLog => "raw_log",
            Table::SourceRecords => "source_records",
            Table::DeadLetters => "dead_letters",
            Table::DossierState => "dossier_state",
        }
    }
}
