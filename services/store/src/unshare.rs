//! Moving the bodies of persons' records out of `source_records` in a store written before
//! migration 0022, where each was kept there and again inside its person's state.
//!
//! A page of rows that name a person and still hold a body is read in key order; in one short
//! transaction each body moves to `pending_bodies` (if the row still holds that version), and
//! the persons are marked. The projector then folds the bodies into their persons' states and
//! deletes them from `pending_bodies` as it does for new records: this step never needs to
//! decide whether a state holds a body unchanged. The mark also stops a projector that read
//! the row before the move from writing (its mark's `seq` changed). Online and resumable: a
//! stopped run leaves every row either moved or not, and the next run goes on.

use crate::compact::Rewritten;
use crate::marks::insert_marks;
use crate::pending::{self, PendingRow};
use crate::seal::column;
use crate::{Error, Result, Store};
use sqlx::any::AnyRow;
use sqlx::Row;
use std::collections::BTreeSet;
use trainhub_model::record::{Kind, SourceRef};

/// Rows a page moves.
const PAGE: i64 = 500;

/// The rows whose body is still in `source_records` although they name a person.
fn shared(backend: crate::Backend) -> String {
    format!(
        "{} IS NOT NULL AND deleted = 0 AND content IS NOT NULL",
        crate::person::key(backend, "source_records")
    )
}

/// A row to move: its person, source identity and version, its body packed for
/// `pending_bodies`.
struct Moving {
    person: String,
    source: SourceRef,
    content: Vec<u8>,
}

impl Store {
    /// How many rows name a person and still keep their body in `source_records`.
    pub async fn shared_bodies(&self) -> Result<u64> {
        let sql = format!(
            "SELECT COUNT(*) AS n FROM source_records WHERE {}",
            shared(self.backend)
        );
        let n: i64 = sqlx::query(&sql)
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        Ok(n as u64)
    }

    /// Moves every body of a row that names a person from `source_records` to
    /// `pending_bodies` for the projector to fold into the person's state; `progress` is told
    /// after each page. Fails, naming the row, on a body no key of the keyring opens.
    pub async fn move_person_bodies(
        &self,
        mut progress: impl FnMut(&Rewritten),
    ) -> Result<Rewritten> {
        let mut done = Rewritten {
            column: column::CONTENT,
            total: self.shared_bodies().await?,
            ..Rewritten::default()
        };
        let mut after: Option<(String, String, String)> = None;
        loop {
            let rows = self.shared_page(after.as_ref()).await?;
            let Some(last) = rows.last() else { break };
            after = Some((
                last.try_get("system")?,
                last.try_get("kind")?,
                last.try_get("record_id")?,
            ));
            done.examined += rows.len() as u64;
            let moving = rows
                .iter()
                .map(|r| self.moving(r))
                .collect::<Result<Vec<_>>>()?;
            let mut attempt = 0;
            let moved = loop {
                match self.move_page(&moving).await {
                    Err(e) if e.is_retryable_conflict() && attempt < 5 => attempt += 1,
                    other => break other?,
                }
            };
            done.rewritten += moved;
            done.skipped += moving.len() as u64 - moved;
            progress(&done);
        }
        Ok(done)
    }

    async fn shared_page(&self, after: Option<&(String, String, String)>) -> Result<Vec<AnyRow>> {
        let shared = shared(self.backend);
        let clause = match after {
            Some(_) => format!("{shared} AND (system, kind, record_id) > ($1, $2, $3)"),
            None => shared,
        };
        let sql = format!(
            "SELECT system, kind, record_id, version, {} AS person_key, content \
             FROM source_records WHERE {clause} ORDER BY system, kind, record_id LIMIT {PAGE}",
            crate::person::key(self.backend, "source_records")
        );
        let mut q = sqlx::query(&sql);
        if let Some((system, kind, record_id)) = after {
            q = q
                .bind(system.as_str())
                .bind(kind.as_str())
                .bind(record_id.as_str());
        }
        Ok(q.fetch_all(&self.pool).await?)
    }

    fn moving(&self, row: &AnyRow) -> Result<Moving> {
        let kind: String = row.try_get("kind")?;
        let record_id: String = row.try_get("record_id")?;
        let system: String = row.try_get("system")?;
        let what = format!("{} of {system}/{kind}/{record_id}", column::CONTENT);
        let body = self
            .keys
            .open_packed(column::CONTENT, &row.try_get::<Vec<u8>, _>("content")?)
            .map_err(|e| Error::Sealed(what.clone(), e))?;
        Ok(Moving {
            person: row.try_get("person_key")?,
            source: SourceRef {
                system,
                kind: Kind::parse("kind", &kind)
                    .map_err(|e| Error::Corrupt(what, e.to_string()))?,
                record_id,
                version: row.try_get("version")?,
            },
            content: self.keys.seal_packed(column::PENDING, &body),
        })
    }

    /// Moves the bodies of `rows` whose row still holds that version's body; returns how many.
    /// The records' rows first, then the marks, then `pending_bodies`: the order ingest takes
    /// its locks in.
    async fn move_page(&self, rows: &[Moving]) -> Result<u64> {
        let _guard = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let mut moved = Vec::with_capacity(rows.len());
        let sql = format!(
            "UPDATE source_records SET content = NULL WHERE system = $1 AND kind = $2 \
             AND record_id = $3 AND version = $4 AND {} = $5 AND deleted = 0 \
             AND content IS NOT NULL",
            crate::person::key(self.backend, "source_records")
        );
        for r in rows {
            let n = sqlx::query(&sql)
                .bind(&r.source.system)
                .bind(r.source.kind.as_str())
                .bind(&r.source.record_id)
                .bind(r.source.version)
                .bind(&r.person)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 1 {
                moved.push(PendingRow {
                    person: &r.person,
                    source: &r.source,
                    content: &r.content,
                });
            }
        }
        let persons: BTreeSet<String> = moved.iter().map(|r| r.person.to_owned()).collect();
        insert_marks(self.backend, &mut tx, persons).await?;
        pending::upsert(self.backend, &mut tx, &moved).await?;
        tx.commit().await?;
        Ok(moved.len() as u64)
    }
}
