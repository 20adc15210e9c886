//! The formatting rules (Part Two §2.2) and the special data types (§4): no null, only
//! defined properties, IRIs, UUIDs, timestamps, durations, language maps, extensions.

use super::{at, bad, Checked, Invalid};
use serde_json::{Map, Value};

/// No property may be `null`, except inside extensions (§2.2).
pub(super) fn no_nulls(value: &Value, path: &str) -> Checked {
    match value {
        Value::Null => Err(bad("2.2", path, "a property may not be null")),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| no_nulls(v, &format!("{path}[{i}]"))),
        Value::Object(map) => map.iter().try_for_each(|(k, v)| {
            if k == "extensions" {
                Ok(())
            } else {
                no_nulls(v, &at(path, k))
            }
        }),
        _ => Ok(()),
    }
}

pub(super) fn object<'a>(
    value: &'a Value,
    path: &str,
    section: &'static str,
) -> Result<&'a Map<String, Value>, Invalid> {
    value
        .as_object()
        .ok_or_else(|| bad(section, path, "must be a JSON object"))
}

pub(super) fn text<'a>(
    value: &'a Value,
    path: &str,
    section: &'static str,
) -> Result<&'a str, Invalid> {
    value
        .as_str()
        .ok_or_else(|| bad(section, path, "must be a string"))
}

pub(super) fn required<'a>(
    map: &'a Map<String, Value>,
    key: &str,
    path: &str,
    section: &'static str,
) -> Result<&'a Value, Invalid> {
    map.get(key)
        .ok_or_else(|| bad(section, &at(path, key), "is required"))
}

/// Only the properties the specification defines (keys are case sensitive).
pub(super) fn known(
    map: &Map<String, Value>,
    allowed: &[&str],
    path: &str,
    section: &'static str,
) -> Checked {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(bad(section, &at(path, k), "is not a property defined here")),
        None => Ok(()),
    }
}

/// An IRI with a scheme (§2.2, absolute IRIs).
pub(super) fn iri(value: &Value, path: &str, section: &'static str) -> Checked {
    let s = text(value, path, section)?;
    iri_string::types::IriStr::new(s)
        .map(|_| ())
        .map_err(|_| bad(section, path, format!("`{s}` is not an absolute IRI")))
}

/// A UUID in its 36-character hyphenated form, RFC 4122 variant (§4.4).
pub(super) fn uuid(value: &Value, path: &str, section: &'static str) -> Checked {
    let s = text(value, path, section)?;
    match uuid::Uuid::try_parse(s) {
        Ok(u) if s.len() == 36 && u.get_variant() == uuid::Variant::RFC4122 => Ok(()),
        _ => Err(bad(section, path, format!("`{s}` is not a UUID"))),
    }
}

/// A timestamp with its time zone (§4.5); the offset `-00:00` is refused.
pub(super) fn timestamp(value: &Value, path: &str, section: &'static str) -> Checked {
    let s = text(value, path, section)?;
    if s.ends_with("-00:00") || chrono::DateTime::parse_from_rfc3339(s).is_err() {
        return Err(bad(
            section,
            path,
            format!("`{s}` is not an ISO 8601 timestamp with a time zone"),
        ));
    }
    Ok(())
}

/// An ISO 8601 duration (§4.6).
pub(super) fn duration(value: &Value, path: &str) -> Checked {
    let s = text(value, path, "4.6")?;
    match crate::xapi::duration_minutes(s) {
        Some(_) => Ok(()),
        None => Err(bad(
            "4.6",
            path,
            format!("`{s}` is not an ISO 8601 duration"),
        )),
    }
}

/// Keys are RFC 5646 language tags, values strings (§4.2).
pub(super) fn language_map(value: &Value, path: &str) -> Checked {
    let map = object(value, path, "4.2")?;
    for (tag, v) in map {
        if oxilangtag::LanguageTag::parse(tag.as_str()).is_err() {
            return Err(bad(
                "4.2",
                &at(path, tag),
                format!("`{tag}` is not a language tag"),
            ));
        }
        text(v, &at(path, tag), "4.2")?;
    }
    Ok(())
}

/// Keys are IRIs; values anything (§4.1).
pub(super) fn extensions(value: &Value, path: &str) -> Checked {
    let map = object(value, path, "4.1")?;
    for key in map.keys() {
        iri(&Value::String(key.clone()), &at(path, key), "4.1")?;
    }
    Ok(())
}
