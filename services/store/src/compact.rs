//! Rewriting a store's text values into the binary layout of migration 0015: each record
//! body from `source_records.body` (sealed text) into `source_records.content`, each person's
//! facts from `dossier_state.facts` into `dossier_state.packed` (compressed, then sealed, as
//! bytes). The plain values are moved as they are, so every dossier reads the same afterwards.
//! Then the bodies of persons' records leave `source_records` (migration 0022, see
//! [`crate::unshare`]), and content hashes stored as hex text become bytes (migration 0024).
//!
//! Online and resumable, like [`crate::Store::rekey`]: the tables are walked in key order a
//! page at a time, each page written in its own short transaction, and a row is rewritten only
//! if its text is still the one that was read (a hub that replaced the record meanwhile wrote
//! it in the binary layout already). Stopping loses nothing: the next run finds the rows still
//! in text and goes on.

use crate::rekey::{cursor_of, describe, Target, Value, SOURCE_BODY, STATE_FACTS};
use crate::seal::column;
use crate::{Error, Result, Store};
use sqlx::any::AnyRow;
use sqlx::Row;

/// A text column, and the binary column its values move to.
struct Move {
    from: Target,
    /// The binary column's associated data.
    to_label: &'static str,
    /// The rows whose value is still text.
    pending: &'static str,
    /// The assignment that moves a value: `$1` into the binary column, `from` cleared.
    set: &'static str,
}

const MOVES: [Move; 2] = [
    Move {
        from: SOURCE_BODY,
        to_label: column::CONTENT,
        pending: "body IS NOT NULL",
        set: "content = $1, body = NULL",
    },
    Move {
        from: STATE_FACTS,
        to_label: column::PACKED,
        pending: "facts <> ''",
        set: "packed = $1, facts = ''",
    },
];

/// What the rewrite did to one table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rewritten {
    /// `table.column` the values came from.
    pub column: &'static str,
    /// Rows still in text when the rewrite started (an estimate for progress: a hub may add
    /// or replace rows meanwhile).
    pub total: u64,
    /// Rows read in text.
    pub examined: u64,
    /// Rows rewritten into bytes.
    pub rewritten: u64,
    /// Rows a writer replaced between read and rewrite (already in bytes).
    pub skipped: u64,
}

impl Store {
    /// How many rows of each table are still in an earlier layout: text values, and bodies of
    /// persons' records in `source_records` (0 everywhere: nothing to rewrite).
    pub async fn text_rows(&self) -> Result<Vec<(&'static str, u64)>> {
        let mut out = Vec::with_capacity(MOVES.len() + 1);
        for m in &MOVES {
            let sql = format!(
                "SELECT COUNT(*) AS n FROM {} WHERE {}",
                m.from.table, m.pending
            );
            let n: i64 = sqlx::query(&sql)
                .fetch_one(&self.pool)
                .await?
                .try_get("n")?;
            out.push((m.from.label, n as u64));
        }
        out.push((column::CONTENT, self.shared_bodies().await?));
        out.push(("source_records.content_hash", self.hex_hashes().await?));
        Ok(out)
    }

    /// Rewrites every text body and facts value into bytes, then moves the bodies of persons'
    /// records out of `source_records` ([`Store::move_person_bodies`]); `progress` is told
    /// after each page. Fails, naming the row, on a value no key of the keyring opens.
    pub async fn rewrite_text_values(
        &self,
        mut progress: impl FnMut(&Rewritten),
    ) -> Result<Vec<Rewritten>> {
        let totals = self.text_rows().await?;
        let mut report = Vec::with_capacity(MOVES.len());
        for (m, (_, total)) in MOVES.iter().zip(totals) {
            let mut done = Rewritten {
                column: m.from.label,
                total,
                ..Rewritten::default()
            };
            let mut cursor = None;
            loop {
                let rows = self.page(&m.from, m.pending, cursor.as_ref()).await?;
                let Some(last) = rows.last() else { break };
                cursor = Some(cursor_of(&m.from, last)?);
                done.examined += rows.len() as u64;
                let changes = rows
                    .iter()
                    .map(|row| self.moved(m, row))
                    .collect::<Result<Vec<_>>>()?;
                let written = self.write_changes(&m.from, m.set, &changes).await?;
                done.rewritten += written;
                done.skipped += changes.len() as u64 - written;
                progress(&done);
            }
            report.push(done);
        }
        report.push(self.move_person_bodies(&mut progress).await?);
        report.push(self.rewrite_hashes(&mut progress).await?);
        Ok(report)
    }

    /// The row's key, its text value and that value packed into bytes.
    fn moved(&self, m: &Move, row: &AnyRow) -> Result<(crate::rekey::Cursor, Value, Value)> {
        let key = cursor_of(&m.from, row)?;
        let old: String = row.try_get("sealed")?;
        let plain = self.keys.open_text(m.from.label, &old).map_err(|e| {
            let row = format!("{}.{} of {}", m.from.table, m.from.column, describe(&key));
            Error::Sealed(row, e)
        })?;
        let new = self.keys.seal_packed(m.to_label, plain.as_bytes());
        Ok((key, Value::Text(old), Value::Bytes(new)))
    }
}

/// Rows whose content hash is still hex text (written before migration 0024).
const HEX_HASH: &str = "content_hash <> ''";

impl Store {
    /// Moves the content hashes still stored as hex text into `hash` as bytes (migration
    /// 0024), a page of rows per short transaction; a row a hub replaced meanwhile holds bytes
    /// already and is skipped.
    async fn rewrite_hashes(&self, progress: &mut impl FnMut(&Rewritten)) -> Result<Rewritten> {
        let mut done = Rewritten {
            column: "source_records.content_hash",
            total: self.hex_hashes().await?,
            ..Rewritten::default()
        };
        let decode = match self.backend {
            crate::Backend::Postgres => "decode(content_hash, 'hex')",
            crate::Backend::Sqlite => "unhex(content_hash)",
        };
        let update = format!(
            "UPDATE source_records SET hash = {decode}, content_hash = '' \
             WHERE system = $1 AND kind = $2 AND record_id = $3 AND {HEX_HASH}"
        );
        let mut after: Option<(String, String, String)> = None;
        loop {
            let clause = match after {
                Some(_) => format!("{HEX_HASH} AND (system, kind, record_id) > ($1, $2, $3)"),
                None => HEX_HASH.to_owned(),
            };
            let sql = format!(
                "SELECT system, kind, record_id FROM source_records WHERE {clause} \
                 ORDER BY system, kind, record_id LIMIT 500"
            );
            let mut q = sqlx::query(&sql);
            if let Some((system, kind, record_id)) = &after {
                q = q
                    .bind(system.clone())
                    .bind(kind.clone())
                    .bind(record_id.clone());
            }
            let keys: Vec<(String, String, String)> = q
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
                .collect::<Result<_>>()?;
            let Some(last) = keys.last().cloned() else {
                break;
            };
            let _guard = self.write_guard().await;
            let mut tx = self.pool.begin().await?;
            let mut written = 0;
            for (system, kind, record_id) in &keys {
                written += sqlx::query(&update)
                    .bind(system)
                    .bind(kind)
                    .bind(record_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
            tx.commit().await?;
            done.examined += keys.len() as u64;
            done.rewritten += written;
            done.skipped += keys.len() as u64 - written;
            progress(&done);
            after = Some(last);
        }
        Ok(done)
    }

    async fn hex_hashes(&self) -> Result<u64> {
        let sql = format!("SELECT COUNT(*) AS n FROM source_records WHERE {HEX_HASH}");
        let n: i64 = sqlx::query(&sql)
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        Ok(n as u64)
    }
}
