//! Reading back: a person's current records (for the dossier) and the dead letters.

use crate::sql::{list, tuples, MAX_PARAMS};
use crate::{Error, Result, Store};
use sqlx::any::AnyRow;
use sqlx::Row;
use std::collections::BTreeSet;
use trainhub_model::dossier::StoredRecord;
use trainhub_model::record::{Body, Kind, SourceRef};
use trainhub_model::PersonKey;

const COLUMNS: &str = "system, kind, record_id, version, received_at, profile, body";

fn stored_record(row: &AnyRow) -> Result<StoredRecord> {
    let kind: String = row.try_get("kind")?;
    let record_id: String = row.try_get("record_id")?;
    let corrupt = |e: String| Error::Corrupt(format!("{kind}/{record_id}"), e);
    let body: String = row.try_get("body")?;
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
}

impl Store {
    /// Every current, live record of `person`: the person's own records, records naming them
    /// by a linked account, and the classes those records refer to.
    pub async fn person_records(&self, person: &PersonKey) -> Result<Vec<StoredRecord>> {
        let mut out = Vec::new();
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS}, account_system, account_id FROM source_records \
             WHERE person_key = $1 AND deleted = 0 AND body IS NOT NULL"
        ))
        .bind(person.as_str())
        .fetch_all(&self.pool)
        .await?;
        let mut accounts = BTreeSet::new();
        for row in &rows {
            let record = stored_record(row)?;
            if record.source.kind == Kind::Link {
                accounts.insert((
                    row.try_get::<String, _>("account_system")?,
                    row.try_get::<String, _>("account_id")?,
                ));
            }
            out.push(record);
        }
        let accounts: Vec<_> = accounts.into_iter().collect();
        for chunk in accounts.chunks(MAX_PARAMS / 2) {
            let sql = format!(
                "SELECT {COLUMNS} FROM source_records WHERE person_key IS NULL AND deleted = 0 \
                 AND body IS NOT NULL AND kind <> 'link' \
                 AND (account_system, account_id) IN (VALUES {})",
                tuples(self.backend, 1, chunk.len(), 2)
            );
            let mut q = sqlx::query(&sql);
            for (s, a) in chunk {
                q = q.bind(s.as_str()).bind(a.as_str());
            }
            for row in q.fetch_all(&self.pool).await? {
                out.push(stored_record(&row)?);
            }
        }
        let classes: BTreeSet<String> = out
            .iter()
            .filter_map(|r| r.body.class_id().map(str::to_owned))
            .collect();
        let classes: Vec<_> = classes.into_iter().collect();
        for chunk in classes.chunks(MAX_PARAMS) {
            let sql = format!(
                "SELECT {COLUMNS} FROM source_records WHERE kind = 'training_class' \
                 AND deleted = 0 AND body IS NOT NULL AND class_id IN ({})",
                list(self.backend, chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for c in chunk {
                q = q.bind(c.as_str());
            }
            for row in q.fetch_all(&self.pool).await? {
                out.push(stored_record(&row)?);
            }
        }
        Ok(out)
    }

    /// Dead letters, newest first, optionally filtered; `after_id` pages backwards.
    pub async fn dead_letters(
        &self,
        connector: Option<&str>,
        reason_code: Option<&str>,
        before_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<DeadLetter>> {
        let rows = sqlx::query(
            "SELECT id, connector, stage, reason_code, message, system, kind, record_id, payload, \
             received_at FROM dead_letters \
             WHERE ($1 = '' OR connector = $1) AND ($2 = '' OR reason_code = $2) AND id < $3 \
             ORDER BY id DESC LIMIT $4",
        )
        .bind(connector.unwrap_or_default())
        .bind(reason_code.unwrap_or_default())
        .bind(before_id.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(DeadLetter {
                    id: row.try_get("id")?,
                    connector: row.try_get("connector")?,
                    stage: row.try_get("stage")?,
                    reason_code: row.try_get("reason_code")?,
                    message: row.try_get("message")?,
                    system: row.try_get("system")?,
                    kind: row.try_get("kind")?,
                    record_id: row.try_get("record_id")?,
                    payload: row.try_get("payload")?,
                    received_at: row.try_get("received_at")?,
                })
            })
            .collect()
    }

    /// Row counts of the main tables, for tests, the benchmark and status.
    pub async fn table_count(&self, table: Table) -> Result<i64> {
        let sql = format!("SELECT COUNT(*) AS n FROM {}", table.name());
        Ok(sqlx::query(&sql)
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }
}

/// The store's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// Every received record.
    RawLog,
    /// Current versions.
    SourceRecords,
    /// Refused records.
    DeadLetters,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::RawLog => "raw_log",
            Table::SourceRecords => "source_records",
            Table::DeadLetters => "dead_letters",
        }
    }
}
