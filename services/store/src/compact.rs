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

/// `source_records.content_hash`: content hashes as hex text (stores before migration 0024).
/// Not sealed: `label` only names the column in the report.
const HASH_TEXT: Target = Target {
    table: "source_records",
    key: &["system", "kind", "record_id"],
    int_key: false,
    column: "content_hash",
    label: "source_records.content_hash",
    text: true,
};

impl Store {
    /// Moves the content hashes still stored as hex text into `hash` as bytes (migration
    /// 0024), walked and written like the text values above; a row a hub replaced meanwhile
    /// holds bytes already and is skipped.
    async fn rewrite_hashes(&self, progress: &mut impl FnMut(&Rewritten)) -> Result<Rewritten> {
        let mut done = Rewritten {
            column: HASH_TEXT.label,
            total: self.hex_hashes().await?,
            ..Rewritten::default()
        };
        let mut cursor = None;
        loop {
            let rows = self.page(&HASH_TEXT, HEX_HASH, cursor.as_ref()).await?;
            let Some(last) = rows.last() else { break };
            cursor = Some(cursor_of(&HASH_TEXT, last)?);
            done.examined += rows.len() as u64;
            let changes = rows
                .iter()
                .map(|row| {
                    let key = cursor_of(&HASH_TEXT, row)?;
                    let hex: String = row.try_get("sealed")?;
                    let bytes = hex::decode(&hex).map_err(|e| {
                        Error::Corrupt(format!("content_hash of {}", describe(&key)), e.to_string())
                    })?;
                    Ok((key, Value::Text(hex), Value::Bytes(bytes)))
                })
                .collect::<Result<Vec<_>>>()?;
            let set = "hash = $1, content_hash = ''";
            let written = self.write_changes(&HASH_TEXT, set, &changes).await?;
            done.rewritten += written;
            done.skipped += changes.len() as u64 - written;
            progress(&done);
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
