//! The RED lists of a coverage report: the in-scope RED persons, read from the summary index
//! in person-key order, their names opened on every core.
//!
//! A province's list is hundreds of thousands of persons. On PostgreSQL each range of person
//! keys comes back as one value the database concatenates, not as a row per person: per row
//! the driver builds and frees a row of owned values, and at a million persons that cost more
//! than the database's read of the index. A person is its key (64 hex digits) and sealed name,
//! then its unit (and group), fields ended by U+001F and persons by U+001E. A range in which a
//! unit or group holds one of those characters does not parse, and is read again row by row,
//! as SQLite always reads.

use super::state::{filtered, StateFilter};
use crate::seal::column;
use crate::{Backend, Error, Keyring, Result, Store};
use futures::{StreamExt, TryStreamExt};
use sqlx::Row;
use trainhub_model::dispatch::GroupBy;

/// One in-scope RED person with its name opened.
pub(super) struct Red {
    /// Its group's key, when the group is not the unit.
    pub group: Option<String>,
    pub person: String,
    pub name: String,
    pub unit: String,
}

impl Red {
    /// The key of the group the person counts in.
    pub fn group(&self) -> &str {
        self.group.as_deref().unwrap_or(&self.unit)
    }
}

/// A range of person keys: at least the first bound, below the second.
type Range = (Option<&'static str>, Option<&'static str>);

impl Store {
    /// The in-scope RED persons under `filter`, grouped by `col`, in person-key order (as
    /// consecutive parts). Two ranges are read at a time while earlier ones are opened.
    pub(super) async fn red_persons(
        &self,
        col: &'static str,
        filter: &StateFilter,
    ) -> Result<Vec<Vec<Red>>> {
        let by_unit = col == GroupBy::Unit.column();
        let parts = match self.backend {
            Backend::Postgres => 16,
            Backend::Sqlite => cores().min(4),
        };
        // The reads made first, then driven a few at a time: a stream that maps ranges to
        // reads borrowing `self` is not `Send` for every lifetime a handler needs.
        let reads: Vec<_> = key_ranges(parts)
            .into_iter()
            .map(|range| self.red_range(col, by_unit, filter, range))
            .collect();
        futures::stream::iter(reads)
            .buffered(cores().max(2))
            .try_collect()
            .await
    }

    /// The RED persons of one range of person keys, names opened, in key order.
    async fn red_range(
        &self,
        col: &str,
        by_unit: bool,
        filter: &StateFilter,
        range: Range,
    ) -> Result<Vec<Red>> {
        let (mut clause, mut binds) = filter.clause(1);
        for (op, bound) in [(">=", range.0), ("<", range.1)] {
            if let Some(bound) = bound {
                clause.push_str(&format!(" AND person_key {op} ${}", binds.len() + 1));
                binds.push(bound.to_owned());
            }
        }
        if self.backend == Backend::Postgres {
            let text = self.red_text(col, by_unit, &clause, &binds).await?;
            let keys = self.keys.clone();
            let task = tokio::task::spawn_blocking(move || parse_red(&keys, &text, by_unit));
            if let Some(red) = crate::joined(task).await? {
                return Ok(red);
            }
        }
        let rows = self.red_rows(col, by_unit, &clause, &binds).await?;
        let keys = self.keys.clone();
        crate::joined(tokio::task::spawn_blocking(move || open_rows(&keys, rows))).await
    }

    /// PostgreSQL: the range as one text (see the module's doc).
    async fn red_text(
        &self,
        col: &str,
        by_unit: bool,
        clause: &str,
        binds: &[String],
    ) -> Result<String> {
        let group = if by_unit {
            String::new()
        } else {
            format!(" || {FIELD} || {col}")
        };
        let sql = format!(
            "SELECT string_agg(person_key || name || {FIELD} || unit_code{group}, {PERSON}) \
             AS red FROM dossier_state WHERE in_scope = 1 AND light = 'RED'{clause}"
        );
        let row = filtered(&sql, binds).fetch_one(&self.pool).await?;
        Ok(row.try_get::<Option<String>, _>("red")?.unwrap_or_default())
    }

    /// The range row by row (SQLite, and a PostgreSQL range whose text does not parse), the
    /// names still sealed: [`open_rows`] opens them.
    async fn red_rows(
        &self,
        col: &str,
        by_unit: bool,
        clause: &str,
        binds: &[String],
    ) -> Result<Vec<Red>> {
        let group = if by_unit {
            String::new()
        } else {
            format!("{col} AS k, ")
        };
        let sql = format!(
            "SELECT {group}person_key, name, unit_code FROM dossier_state \
             WHERE in_scope = 1 AND light = 'RED'{clause} ORDER BY person_key"
        );
        let mut rows = filtered(&sql, binds).fetch(&self.pool);
        let mut out = Vec::new();
        while let Some(row) = rows.try_next().await? {
            out.push(Red {
                group: if by_unit { None } else { row.try_get("k")? },
                person: row.try_get("person_key")?,
                name: row.try_get("name")?,
                unit: row.try_get("unit_code")?,
            });
        }
        Ok(out)
    }
}

/// Ends a field of the concatenated list, in SQL and here.
const FIELD: &str = "E'\\x1f'";
/// Ends a person of the concatenated list.
const PERSON: &str = "E'\\x1e'";

/// The persons of one range's text, names opened, in person-key order; `None` when the text
/// does not parse (a unit or group holding a separator).
fn parse_red(keys: &Keyring, text: &str, by_unit: bool) -> Result<Option<Vec<Red>>> {
    let mut out = Vec::new();
    if text.is_empty() {
        return Ok(Some(out));
    }
    for person in text.split('\x1e') {
        let Some((person, name, unit, group)) = fields(person, by_unit) else {
            return Ok(None);
        };
        out.push(Red {
            name: open_name(keys, person, name)?,
            person: person.to_owned(),
            unit: unit.to_owned(),
            group: group.map(str::to_owned),
        });
    }
    // The database concatenates in the order it reads; the order is set here.
    out.sort_unstable_by(|a, b| a.person.cmp(&b.person));
    Ok(Some(out))
}

/// Key, sealed name, unit and group of one person of the list.
fn fields(person: &str, by_unit: bool) -> Option<(&str, &str, &str, Option<&str>)> {
    let mut parts = person.split('\x1f');
    let (keyed, unit) = (parts.next()?, parts.next()?);
    let group = if by_unit { None } else { Some(parts.next()?) };
    if parts.next().is_some() {
        return None;
    }
    let key = keyed.get(..64)?;
    key.bytes()
        .all(|b| b.is_ascii_hexdigit())
        .then(|| (key, &keyed[64..], unit, group))
}

fn open_rows(keys: &Keyring, rows: Vec<Red>) -> Result<Vec<Red>> {
    rows.into_iter()
        .map(|r| {
            let name = open_name(keys, &r.person, &r.name)?;
            Ok(Red { name, ..r })
        })
        .collect()
}

fn open_name(keys: &Keyring, person: &str, sealed: &str) -> Result<String> {
    keys.open_text(column::NAME, sealed)
        .map_err(|e| Error::Sealed(format!("{} of person {person}", column::NAME), e))
}

pub(super) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `parts` consecutive ranges of person keys (hex digests), as bounds on the first digit:
/// together they hold every key once, in key order.
fn key_ranges(parts: usize) -> Vec<Range> {
    const DIGITS: [&str; 16] = [
        "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "a", "b", "c", "d", "e", "f",
    ];
    let parts = parts.clamp(1, 16);
    let bound = |i: usize| (i > 0 && i < parts).then(|| DIGITS[16 * i / parts]);
    (0..parts).map(|i| (bound(i), bound(i + 1))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_person_of_the_list_is_its_key_name_unit_and_group() {
        let key = "0f".repeat(32);
        let by_unit = format!("{key}th1:abc\x1fU:01");
        assert_eq!(
            fields(&by_unit, true),
            Some((key.as_str(), "th1:abc", "U:01", None))
        );
        let grouped = format!("{key}th1:abc\x1fU01\x1f处级");
        assert_eq!(
            fields(&grouped, false),
            Some((key.as_str(), "th1:abc", "U01", Some("处级")))
        );
    }

    #[test]
    fn a_person_that_does_not_parse_is_none_not_a_panic() {
        let key = "0f".repeat(32);
        for damaged in [
            String::new(),
            "abc".to_owned(),
            format!("{key}name"),
            format!("{key}name\x1fU01\x1fextra"),
            format!("{}name\x1fU01", "x".repeat(64)),
            format!("{}单\x1fU01", "0".repeat(63)),
        ] {
            assert_eq!(fields(&damaged, true), None, "{damaged:?}");
        }
    }

    #[test]
    fn the_key_ranges_hold_every_digit_once_in_order() {
        for parts in [1, 2, 3, 4, 16, 40] {
            let ranges = key_ranges(parts);
            assert_eq!(ranges.len(), parts.clamp(1, 16));
            let mut seen = Vec::new();
            for digit in "0123456789abcdef".chars() {
                let key = format!("{digit}00");
                let within: Vec<usize> = (0..ranges.len())
                    .filter(|&i| {
                        let (from, to) = ranges[i];
                        from.is_none_or(|f| key.as_str() >= f)
                            && to.is_none_or(|t| key.as_str() < t)
                    })
                    .collect();
                assert_eq!(within.len(), 1, "{key} in {parts} ranges: {within:?}");
                seen.push(within[0]);
            }
            assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{parts}: {seen:?}");
            assert_eq!(seen.last(), Some(&(ranges.len() - 1)));
        }
    }
}
