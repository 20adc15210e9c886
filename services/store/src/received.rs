//! When a record's current version was received, as `source_records` keeps it since migration
//! 0025: milliseconds since 1970 in `received`, with `received_at` left empty. A time is stored
//! as a number only when formatting that number gives back the very text it came as (RFC 3339,
//! UTC, milliseconds, as [`crate::now_rfc3339`] writes it); any other text stays in
//! `received_at`, so what a reader gets back is always the text the record was received with.

use crate::{Error, Result};
use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::any::AnyRow;
use sqlx::Row;

/// Rows whose time is still text (written before migration 0025, or not in the stored form).
pub(crate) const AS_TEXT: &str = "received_at <> ''";

/// The two columns to store for `text`: `(received_at, received)`.
pub(crate) fn columns(text: &str) -> (&str, Option<i64>) {
    match millis(text) {
        Some(ms) => ("", Some(ms)),
        None => (text, None),
    }
}

/// `text` as milliseconds since 1970, if formatting those gives back exactly `text`.
pub(crate) fn millis(text: &str) -> Option<i64> {
    let ms = DateTime::parse_from_rfc3339(text).ok()?.timestamp_millis();
    (format(ms)?.as_str() == text).then_some(ms)
}

fn format(ms: i64) -> Option<String> {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// The received time of a row that selected `received_at` and `received`, as text.
pub(crate) fn of_row(row: &AnyRow) -> Result<String> {
    let text: String = row.try_get("received_at")?;
    if !text.is_empty() {
        return Ok(text);
    }
    match row.try_get::<Option<i64>, _>("received")? {
        Some(ms) => format(ms)
            .ok_or_else(|| Error::Corrupt("received".into(), format!("{ms} is out of range"))),
        None => Ok(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_times_come_back_as_they_were() {
        let now = crate::now_rfc3339();
        let (text, ms) = columns(&now);
        assert_eq!(text, "");
        assert_eq!(format(ms.unwrap()).unwrap(), now);
        assert_eq!(
            columns("2026-11-29T08:15:00.250Z"),
            ("", Some(1_795_940_100_250))
        );
    }

    #[test]
    fn other_texts_stay_text() {
        for t in [
            "2026-11-29T08:15:00Z",
            "2026-11-29T08:15:00.250+08:00",
            "2026-11-29T08:15:00.250123Z",
            "yesterday",
            "",
        ] {
            assert_eq!(columns(t), (t, None), "{t}");
        }
    }
}
