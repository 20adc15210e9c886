//! Validating parsers for the scalar values of the wire format: dates, instants, hours, scores.

use crate::error::{ReasonCode, Rejection};
use chrono::{DateTime, NaiveDate};

/// A required `YYYY-MM-DD` date.
pub fn date(field: &str, text: &str) -> Result<NaiveDate, Rejection> {
    date_opt(field, text)?.ok_or_else(|| Rejection::missing(field))
}

/// An optional `YYYY-MM-DD` date; empty is `None`.
pub fn date_opt(field: &str, text: &str) -> Result<Option<NaiveDate>, Rejection> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        Ok(d) if text.len() == 10 => Ok(Some(d)),
        _ => Err(Rejection::invalid(
            ReasonCode::BadDate,
            field,
            format!("`{field}` is {text:?}, not an existing YYYY-MM-DD date"),
        )),
    }
}

/// An instant: RFC 3339 (the wire format), or a bare `YYYY-MM-DD` date. Returns the normalised
/// text and its calendar date (the date as written, which is what the training rules use).
pub fn instant_opt(field: &str, text: &str) -> Result<Option<(String, NaiveDate)>, Rejection> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(Some((t.to_rfc3339(), t.date_naive())));
    }
    match date_opt(field, text) {
        Ok(Some(d)) => Ok(Some((text.to_owned(), d))),
        _ => Err(Rejection::invalid(
            ReasonCode::BadDate,
            field,
            format!("`{field}` is {text:?}, not an RFC 3339 instant or YYYY-MM-DD date"),
        )),
    }
}

/// A required instant.
pub fn instant(field: &str, text: &str) -> Result<(String, NaiveDate), Rejection> {
    instant_opt(field, text)?.ok_or_else(|| Rejection::missing(field))
}

/// Non-negative, finite hours or minutes.
pub fn hours(field: &str, value: f64) -> Result<f64, Rejection> {
    if !value.is_finite() {
        return Err(Rejection::invalid(
            ReasonCode::OutOfRange,
            field,
            format!("`{field}` is not a finite number"),
        ));
    }
    if value < 0.0 {
        return Err(Rejection::invalid(
            ReasonCode::NegativeHours,
            field,
            format!("`{field}` is {value}, hours cannot be negative"),
        ));
    }
    Ok(value)
}

/// A score in 0–100.
pub fn score(field: &str, value: f64) -> Result<f64, Rejection> {
    if value.is_finite() && (0.0..=100.0).contains(&value) {
        Ok(value)
    } else {
        Err(Rejection::invalid(
            ReasonCode::OutOfRange,
            field,
            format!("`{field}` is {value}, scores lie in 0–100"),
        ))
    }
}

/// A required non-empty text, trimmed.
pub fn text(field: &str, value: &str) -> Result<String, Rejection> {
    let value = value.trim();
    if value.is_empty() {
        Err(Rejection::missing(field))
    } else {
        Ok(value.to_owned())
    }
}

/// An optional text, trimmed; empty is `None`.
pub fn text_opt(value: &str) -> Option<String> {
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(date("d", "2024-02-29").unwrap().to_string(), "2024-02-29");
        for bad in ["2023-02-29", "2024/01/01", "2024-1-1", "yesterday"] {
            assert_eq!(
                date("d", bad).unwrap_err().code,
                ReasonCode::BadDate,
                "{bad}"
            );
        }
        assert_eq!(date("d", "").unwrap_err().code, ReasonCode::MissingField);
        let (_, d) = instant("t", "2024-05-01T23:30:00+08:00").unwrap();
        assert_eq!(d.to_string(), "2024-05-01");
        assert!(instant("t", "2024-13-01T00:00:00Z").is_err());
    }

    #[test]
    fn numbers() {
        assert_eq!(hours("h", 0.0).unwrap(), 0.0);
        assert_eq!(
            hours("h", -1.0).unwrap_err().code,
            ReasonCode::NegativeHours
        );
        assert_eq!(
            hours("h", f64::NAN).unwrap_err().code,
            ReasonCode::OutOfRange
        );
        assert!(score("s", 100.0).is_ok());
        assert_eq!(score("s", 100.5).unwrap_err().code, ReasonCode::OutOfRange);
    }
}
