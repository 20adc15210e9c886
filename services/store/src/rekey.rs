//! Resealing every personal-data column under the keyring's active key: the second half of a
//! key rotation (see [`crate::seal`]). Rows stored before encryption are sealed too.
//!
//! Safe beside a running hub: each row is rewritten only if its value is still the one that
//! was read (`… AND column = old`), so a record a hub replaced meanwhile keeps the new version
//! (already sealed under the active key). Re-running resumes: rows already current are skipped.

use crate::seal::column;
use crate::{Error, Result, Store};
use sqlx::any::AnyRow;
use sqlx::Row;

/// One sealed column and how to walk its table.
pub(crate) struct Target {
    pub(crate) table: &'static str,
    /// Primary key columns, in index order.
    pub(crate) key: &'static [&'static str],
    /// Whether the key is one integer column (else text columns).
    pub(crate) int_key: bool,
    pub(crate) column: &'static str,
    /// The associated data of its values.
    pub(crate) label: &'static str,
    pub(crate) text: bool,
}

/// `source_records.body`: record bodies as text (stores before migration 0015).
pub(crate) const SOURCE_BODY: Target = Target {
    table: "source_records",
    key: &["system", "kind", "record_id"],
    int_key: false,
    column: "body",
    label: column::BODY,
    text: true,
};

/// `dossier_state.facts`: persons' facts as text (stores before migration 0015).
pub(crate) const STATE_FACTS: Target = Target {
    table: "dossier_state",
    key: &["person_key"],
    int_key: false,
    column: "facts",
    label: column::FACTS,
    text: true,
};

/// How many of a table's last rows, by key, [`Store::check_keys`] looks at.
const CHECKED_ROWS: usize = 1_000;

const TARGETS: [Target; 13] = [
    Target {
        table: "raw_log",
        key: &["id"],
        int_key: true,
        column: "bytes",
        label: column::RAW,
        text: false,
    },
    Target {
        table: "raw_batches",
        key: &["id"],
        int_key: true,
        column: "packed",
        label: column::RAW_BATCH,
        text: false,
    },
    Target {
        table: "dead_letters",
        key: &["id"],
        int_key: true,
        column: "payload",
        label: column::DEAD_LETTER,
        text: false,
    },
    Target {
        table: "dead_letters",
        key: &["id"],
        int_key: true,
        column: "headers",
        label: column::DEAD_LETTER_HEADERS,
        text: true,
    },
    SOURCE_BODY,
    Target {
        table: "source_records",
        key: &["system", "kind", "record_id"],
        int_key: false,
        column: "content",
        label: column::CONTENT,
        text: false,
    },
    Target {
        table: "pending_bodies",
        key: &["person_key", "system", "kind", "record_id"],
        int_key: false,
        column: "content",
        label: column::PENDING,
        text: false,
    },
    Target {
        table: "dossier_state",
        key: &["person_key"],
        int_key: false,
        column: "name",
        label: column::NAME,
        text: true,
    },
    STATE_FACTS,
    Target {
        table: "dossier_state",
        key: &["person_key"],
        int_key: false,
        column: "packed",
        label: column::PACKED,
        text: false,
    },
    Target {
        table: "xapi_statements",
        key: &["system", "id"],
        int_key: false,
        column: "statement",
        label: column::XAPI,
        text: false,
    },
    Target {
        table: "xapi_attachments",
        key: &["sha2"],
        int_key: false,
        column: "content",
        label: column::XAPI_ATTACHMENT,
        text: false,
    },
    Target {
        table: "review_conflicts",
        key: &["id"],
        int_key: false,
        column: "sides",
        label: column::REVIEW,
        text: true,
    },
];

/// Rows per page read and per transaction written.
pub const PAGE: usize = 500;

/// What `rekey` did to one column.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rekeyed {
    /// `table.column`.
    pub column: &'static str,
    /// Rows read.
    pub examined: u64,
    /// Rows resealed under the active key.
    pub resealed: u64,
    /// Rows changed by a writer between read and reseal (left as the writer wrote them).
    pub skipped: u64,
}

/// A position in a table's key order.
#[derive(Clone)]
pub(crate) enum Cursor {
    Int(i64),
    Text(Vec<String>),
}

/// A stored value, as its column holds it.
#[derive(Clone, PartialEq)]
pub(crate) enum Value {
    Bytes(Vec<u8>),
    Text(String),
    Int(i64),
}

impl Store {
    /// Reseals every personal-data column under the active key; `progress` is told after each
    /// page. Fails, naming the row, on a value no key of the keyring opens.
    pub async fn rekey(&self, mut progress: impl FnMut(&Rekeyed)) -> Result<Vec<Rekeyed>> {
        let mut report = Vec::with_capacity(TARGETS.len());
        for target in &TARGETS {
            let mut done = Rekeyed {
                column: target.label,
                ..Rekeyed::default()
            };
            let mut cursor = None;
            loop {
                let rows = self.page(target, "", cursor.as_ref()).await?;
                let Some(last) = rows.last() else { break };
                cursor = Some(cursor_of(target, last)?);
                done.examined += rows.len() as u64;
                let mut changes = Vec::new();
                for row in &rows {
                    if let Some((key, old, new)) = self.reseal(target, row)? {
                        changes.push((key, old, new));
                    }
                }
                let set = format!("{} = $1", target.column);
                let written = self.write_changes(target, &set, &changes).await?;
                done.resealed += written;
                done.skipped += changes.len() as u64 - written;
                progress(&done);
            }
            report.push(done);
        }
        Ok(report)
    }

    /// Opens the last value of every sealed column, by key, among the last [`CHECKED_ROWS`]
    /// rows of its table: a keyring that lacks the key the store is being written under fails
    /// here, at start, naming that key, rather than on a read.
    ///
    /// Only those rows: a column no new row fills (the text bodies and facts of stores before
    /// migration 0015) would otherwise be read to its first row on every start, a scan of the
    /// whole table (2.9 s for ten million records in memory, minutes from disk).
    pub async fn check_keys(&self) -> Result<()> {
        for t in &TARGETS {
            let keys = t.key.join(" DESC, ");
            let sql = format!(
                "SELECT {k}, sealed FROM (SELECT {k}, {col} AS sealed FROM {table} \
                 ORDER BY {keys} DESC LIMIT {CHECKED_ROWS}) t WHERE sealed IS NOT NULL \
                 ORDER BY {keys} DESC LIMIT 1",
                k = t.key.join(", "),
                col = t.column,
                table = t.table,
            );
            if let Some(row) = sqlx::query(&sql).fetch_optional(&self.pool).await? {
                let key = cursor_of(t, &row)?;
                let named =
                    |e| Error::Sealed(format!("{}.{} of {}", t.table, t.column, describe(&key)), e);
                if t.text {
                    let v: String = row.try_get("sealed")?;
                    self.keys().open_text(t.label, &v).map_err(named)?;
                } else {
                    let v: Vec<u8> = row.try_get("sealed")?;
                    self.keys().open(t.label, &v).map_err(named)?;
                }
            }
        }
        Ok(())
    }

    /// The next page of `t`'s rows after `after` (among those matching `filter`, an SQL
    /// condition or empty), with its key and the column's value as `sealed`.
    pub(crate) async fn page(
        &self,
        t: &Target,
        filter: &str,
        after: Option<&Cursor>,
    ) -> Result<Vec<AnyRow>> {
        let keys = t.key.join(", ");
        let place = (1..=t.key.len())
            .map(|n| format!("${n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let clause = match (after, filter) {
            (Some(_), "") => format!("WHERE ({keys}) > ({place})"),
            (Some(_), f) => format!("WHERE ({keys}) > ({place}) AND {f}"),
            (None, "") => String::new(),
            (None, f) => format!("WHERE {f}"),
        };
        let sql = format!(
            "SELECT {keys}, {col} AS sealed FROM {table} {clause} ORDER BY {keys} LIMIT {PAGE}",
            col = t.column,
            table = t.table,
        );
        let mut q = sqlx::query(&sql);
        match after {
            Some(Cursor::Int(id)) => q = q.bind(*id),
            Some(Cursor::Text(parts)) => {
                for p in parts {
                    q = q.bind(p.clone());
                }
            }
            None => {}
        }
        Ok(q.fetch_all(&self.pool).await?)
    }

    /// The row's key, its stored value and that value resealed; `None` when it is already
    /// sealed under the active key (or empty).
    fn reseal(&self, t: &Target, row: &AnyRow) -> Result<Option<(Cursor, Value, Value)>> {
        let keys = self.keys();
        let key = cursor_of(t, row)?;
        let named = |e| Error::Sealed(format!("{}.{} of {}", t.table, t.column, describe(&key)), e);
        if t.text {
            let Some(old) = row.try_get::<Option<String>, _>("sealed")? else {
                return Ok(None);
            };
            // Empty: text facts of a row whose facts are packed bytes.
            if old.is_empty() || keys.is_current_text(&old) {
                return Ok(None);
            }
            let new = keys.reseal_text(t.label, &old).map_err(named)?;
            Ok(Some((key, Value::Text(old), Value::Text(new))))
        } else {
            let Some(old) = row.try_get::<Option<Vec<u8>>, _>("sealed")? else {
                return Ok(None);
            };
            if keys.is_current(&old) {
                return Ok(None);
            }
            let plain = keys.open(t.label, &old).map_err(named)?;
            let new = keys.seal(t.label, &plain);
            Ok(Some((key, Value::Bytes(old), Value::Bytes(new))))
        }
    }

    /// Writes changed values in one transaction (`set` assigns `$1`, the new value), each only
    /// where the row's column still holds the value that was read; returns how many were
    /// written.
    pub(crate) async fn write_changes(
        &self,
        t: &Target,
        set: &str,
        changes: &[(Cursor, Value, Value)],
    ) -> Result<u64> {
        if changes.is_empty() {
            return Ok(0);
        }
        let matches = t
            .key
            .iter()
            .enumerate()
            .map(|(i, k)| format!("{k} = ${}", i + 3))
            .collect::<Vec<_>>()
            .join(" AND ");
        let sql = format!(
            "UPDATE {table} SET {set} WHERE {col} = $2 AND {matches}",
            table = t.table,
            col = t.column,
        );
        let _guard = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let mut written = 0;
        for (key, old, new) in changes {
            let mut q = sqlx::query(&sql);
            for v in [new, old] {
                q = match v {
                    Value::Bytes(b) => q.bind(b.clone()),
                    Value::Text(s) => q.bind(s.clone()),
                    Value::Int(n) => q.bind(*n),
                };
            }
            match key {
                Cursor::Int(id) => q = q.bind(*id),
                Cursor::Text(parts) => {
                    for p in parts {
                        q = q.bind(p.clone());
                    }
                }
            }
            written += q.execute(&mut *tx).await?.rows_affected();
        }
        tx.commit().await?;
        Ok(written)
    }
}

pub(crate) fn cursor_of(t: &Target, row: &AnyRow) -> Result<Cursor> {
    if t.int_key {
        Ok(Cursor::Int(row.try_get(t.key[0])?))
    } else {
        Ok(Cursor::Text(
            t.key
                .iter()
                .map(|k| row.try_get::<String, _>(*k))
                .collect::<Result<_, _>>()?,
        ))
    }
}

pub(crate) fn describe(key: &Cursor) -> String {
    match key {
        Cursor::Int(id) => format!("row {id}"),
        Cursor::Text(parts) => parts.join("/"),
    }
}
