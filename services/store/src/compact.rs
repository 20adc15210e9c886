//! Rewriting a store's text values into the binary layout of migration 0015: each record
//! body from `source_records.body` (sealed text) into `source_records.content`, each person's
//! facts from `dossier_state.facts` into `dossier_state.packed` (compressed, then sealed, as
//! bytes). The plain values are moved as they are, so every dossier reads the same afterwards.
//! Then the bodies of persons' records leave `source_records` (migration 0022, see
//! [`crate::unshare`]), content hashes stored as hex text become bytes (migration 0024), and
//! received times stored as text become milliseconds (migration 0025).
//!
//! Online and resumable, like [`crate::Store::rekey`]: the tables are walked in key order a
//! page at a time, each page written in its own short transaction, and a row is rewritten only
//! if its text is still the one that was read (a hub that replaced the record meanwhile wrote
//! it in the binary layout already). Stopping loses nothing: the next run finds the rows still
//! in text and goes on.

use crate::rekey::{cursor_of, describe, Cursor, Target, Value, SOURCE_BODY, STATE_FACTS};
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
        for m in &PLAIN_MOVES {
            out.push((m.from.label, self.count_where(m.pending).await?));
        }
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
            let change = |row: &AnyRow| self.moved(m, row).map(Some);
            let done = self
                .walk(&m.from, m.pending, m.set, total, change, &mut progress)
                .await?;
            report.push(done);
        }
        report.push(self.move_person_bodies(&mut progress).await?);
        for m in &PLAIN_MOVES {
            report.push(self.rewrite_plain(m, &mut progress).await?);
        }
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

/// A plain (unsealed) text column of `source_records` whose values move into a compact column:
/// content hashes into bytes (migration 0024), received times into milliseconds (0025), person
/// keys into bytes (0027).
struct Plain {
    from: Target,
    /// The rows whose value is still text.
    pending: &'static str,
    /// The assignment that moves a value: `$1` into the compact column, `from` cleared.
    set: &'static str,
    /// The compact value of a row's text; `None` keeps the text (a form it cannot hold).
    convert: fn(&Cursor, String) -> Result<Option<Value>>,
}

/// A plain text column of `source_records` (not sealed: `label` only names it in the report).
const fn plain_text(column: &'static str, label: &'static str) -> Target {
    Target {
        table: "source_records",
        key: &["system", "kind", "record_id"],
        int_key: false,
        column,
        label,
        text: true,
    }
}

const PLAIN_MOVES: [Plain; 3] = [
    Plain {
        from: plain_text("content_hash", "source_records.content_hash"),
        pending: "content_hash <> ''",
        set: "hash = $1, content_hash = ''",
        convert: |key, hex| {
            let mut bytes = hex::decode(&hex).map_err(|e| {
                Error::Corrupt(format!("content_hash of {}", describe(key)), e.to_string())
            })?;
            // All a hash keeps since migration 0027.
            bytes.truncate(crate::prepared::HASH_BYTES);
            Ok(Some(Value::Bytes(bytes)))
        },
    },
    Plain {
        from: plain_text("received_at", "source_records.received_at"),
        pending: crate::received::AS_TEXT,
        set: "received = $1, received_at = ''",
        convert: |_, text| Ok(crate::received::millis(&text).map(Value::Int)),
    },
    Plain {
        from: plain_text("person_key", "source_records.person_key"),
        pending: "person_key IS NOT NULL",
        set: "person = $1, person_key = NULL",
        convert: |_, hex| Ok(Some(Value::Bytes(crate::person::to_bytes(&hex)?))),
    },
];

impl Store {
    /// Moves the values of `m` still stored as text into their compact column, walked and
    /// written like the text values above; a row a hub replaced meanwhile holds the compact
    /// form already and is skipped, and a text the compact form cannot hold stays as it is.
    async fn rewrite_plain(
        &self,
        m: &Plain,
        progress: &mut impl FnMut(&Rewritten),
    ) -> Result<Rewritten> {
        let total = self.count_where(m.pending).await?;
        let change = |row: &AnyRow| {
            let key = cursor_of(&m.from, row)?;
            let text: String = row.try_get("sealed")?;
            Ok((m.convert)(&key, text.clone())?.map(|new| (key, Value::Text(text), new)))
        };
        self.walk(&m.from, m.pending, m.set, total, change, progress)
            .await
    }

    /// Walks the rows of `from` that match `pending` page by page, and writes each page's
    /// changes (`change` of a row: its key, the value it holds and the new one; `None` leaves
    /// the row as it is) with `set`, guarded against rows a hub replaced meanwhile; `progress`
    /// is told after each page.
    async fn walk(
        &self,
        from: &Target,
        pending: &str,
        set: &str,
        total: u64,
        mut change: impl FnMut(&AnyRow) -> Result<Option<(Cursor, Value, Value)>>,
        progress: &mut impl FnMut(&Rewritten),
    ) -> Result<Rewritten> {
        let mut done = Rewritten {
            column: from.label,
            total,
            ..Rewritten::default()
        };
        let mut cursor = None;
        loop {
            let rows = self.page(from, pending, cursor.as_ref()).await?;
            let Some(last) = rows.last() else { break };
            cursor = Some(cursor_of(from, last)?);
            done.examined += rows.len() as u64;
            let mut changes = Vec::with_capacity(rows.len());
            for row in &rows {
                changes.extend(change(row)?);
            }
            let written = self.write_changes(from, set, &changes).await?;
            done.rewritten += written;
            done.skipped += changes.len() as u64 - written;
            progress(&done);
        }
        Ok(done)
    }

    /// Rows of `source_records` that match `filter`.
    async fn count_where(&self, filter: &str) -> Result<u64> {
        let sql = format!("SELECT COUNT(*) AS n FROM source_records WHERE {filter}");
        let n: i64 = sqlx::query(&sql)
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        Ok(n as u64)
    }
}
