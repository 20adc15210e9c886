//! The date formats profiles name (`yyyyMMdd`, `yyyy.MM.dd`, `yyyyMM`, `iso`, each optionally
//! with `HHmmss`), read exactly as shaped.

pub(super) const DATE_PATTERNS: [&str; 6] = [
    "yyyyMMdd",
    "yyyy.MM.dd",
    "yyyy-MM-dd",
    "yyyyMM",
    "yyyy.MM",
    "iso",
];

pub(super) fn valid_date_pattern(p: &str) -> bool {
    let date = p.strip_suffix("HHmmss").unwrap_or(p);
    DATE_PATTERNS.contains(&date)
}

/// Parses `text` by the first of `formats` that fits: the date as `YYYY-MM-DD` (a month-only
/// date is the month's first day) and the time of day as `HHMMSS` (`000000` when absent).
pub fn parse_date(text: &str, formats: &[String]) -> Option<(String, String)> {
    formats.iter().find_map(|f| parse_with(text.trim(), f))
}

fn parse_with(text: &str, format: &str) -> Option<(String, String)> {
    use chrono::NaiveDate;
    if format == "iso" {
        let date = text.get(..10)?;
        let d = NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
        let rest = &text[10..];
        if !(rest.is_empty() || rest.starts_with('T') || rest.starts_with(' ')) {
            return None;
        }
        return Some((d.to_string(), "000000".into()));
    }
    let (date_pattern, with_time) = match format.strip_suffix("HHmmss") {
        Some(d) => (d, true),
        None => (format, false),
    };
    let (date_text, time) = if with_time {
        let cut = text.len().checked_sub(6)?;
        let time = text.get(cut..)?;
        if !time.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        (text.get(..cut)?, time.to_owned())
    } else {
        (text, "000000".to_owned())
    };
    let (chrono_pattern, month_only) = match date_pattern {
        "yyyyMMdd" => ("%Y%m%d", false),
        "yyyy.MM.dd" => ("%Y.%m.%d", false),
        "yyyy-MM-dd" => ("%Y-%m-%d", false),
        "yyyyMM" => ("%Y%m", true),
        "yyyy.MM" => ("%Y.%m", true),
        _ => return None,
    };
    // Exactly the pattern's shape: a digit wherever the pattern has a letter, the same
    // separators elsewhere (chrono alone would take `81.3.5`).
    let shaped = date_text.len() == date_pattern.len()
        && date_text.bytes().zip(date_pattern.bytes()).all(|(t, p)| {
            if p.is_ascii_alphabetic() {
                t.is_ascii_digit()
            } else {
                t == p
            }
        });
    if !shaped {
        return None;
    }
    // A month-only value is the month's first day.
    let d = if month_only {
        NaiveDate::parse_from_str(&format!("{date_text}01"), &format!("{chrono_pattern}%d")).ok()?
    } else {
        NaiveDate::parse_from_str(date_text, chrono_pattern).ok()?
    };
    Some((d.to_string(), time))
}
