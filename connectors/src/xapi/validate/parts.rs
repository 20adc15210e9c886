//! The result (Part Two §2.4.5), the context (§2.4.6), the version (§2.4.10) and the
//! attachments (§2.4.11).

use super::actor::agent_or_group;
use super::format::*;
use super::object::{activity, statement_object};
use super::{at, bad, Checked, Invalid};
use serde_json::{Map, Value};

/// The result and its score (§2.4.5, §2.4.5.1).
pub(super) fn result(value: &Value, path: &str) -> Checked {
    let map = object(value, path, "2.4.5")?;
    known(
        map,
        &[
            "score",
            "success",
            "completion",
            "response",
            "duration",
            "extensions",
        ],
        path,
        "2.4.5",
    )?;
    for k in ["success", "completion"] {
        if map.get(k).is_some_and(|v| !v.is_boolean()) {
            return Err(bad("2.4.5", &at(path, k), "must be true or false"));
        }
    }
    if let Some(r) = map.get("response") {
        text(r, &at(path, "response"), "2.4.5")?;
    }
    if let Some(d) = map.get("duration") {
        duration(d, &at(path, "duration"))?;
    }
    if let Some(e) = map.get("extensions") {
        extensions(e, &at(path, "extensions"))?;
    }
    match map.get("score") {
        Some(s) => score(s, &at(path, "score")),
        None => Ok(()),
    }
}

pub(super) fn score(value: &Value, path: &str) -> Checked {
    let map = object(value, path, "2.4.5.1")?;
    known(map, &["scaled", "raw", "min", "max"], path, "2.4.5.1")?;
    let mut n = std::collections::HashMap::new();
    for (k, v) in map {
        let x = v
            .as_f64()
            .ok_or_else(|| bad("2.4.5.1", &at(path, k), "must be a number"))?;
        n.insert(k.as_str(), x);
    }
    if n.get("scaled").is_some_and(|s| !(-1.0..=1.0).contains(s)) {
        return Err(bad(
            "2.4.5.1",
            &at(path, "scaled"),
            "must lie between -1 and 1",
        ));
    }
    let (min, max, raw) = (n.get("min"), n.get("max"), n.get("raw"));
    if let (Some(lo), Some(hi)) = (min, max) {
        if lo >= hi {
            return Err(bad("2.4.5.1", &at(path, "min"), "must be less than max"));
        }
    }
    if let Some(r) = raw {
        if min.is_some_and(|lo| r < lo) || max.is_some_and(|hi| r > hi) {
            return Err(bad(
                "2.4.5.1",
                &at(path, "raw"),
                "must lie between min and max",
            ));
        }
    }
    Ok(())
}

/// The context (§2.4.6): `object` is the statement's, for `revision` and `platform`.
pub(super) fn context(value: &Value, path: &str, object: &Value) -> Checked {
    let map = object_of(value, path)?;
    known(
        map,
        &[
            "registration",
            "instructor",
            "team",
            "contextActivities",
            "revision",
            "platform",
            "language",
            "statement",
            "extensions",
        ],
        path,
        "2.4.6",
    )?;
    if let Some(r) = map.get("registration") {
        uuid(r, &at(path, "registration"), "2.4.6")?;
    }
    if let Some(i) = map.get("instructor") {
        agent_or_group(i, &at(path, "instructor"), "2.4.6")?;
    }
    if let Some(t) = map.get("team") {
        let p = at(path, "team");
        if t.get("objectType").and_then(Value::as_str) != Some("Group") {
            return Err(bad("2.4.6", &p, "the team is a group"));
        }
        agent_or_group(t, &p, "2.4.6")?;
    }
    let is_activity = !matches!(
        object.get("objectType").and_then(Value::as_str),
        Some("Agent" | "Group" | "StatementRef" | "SubStatement")
    );
    for k in ["revision", "platform"] {
        if let Some(v) = map.get(k) {
            text(v, &at(path, k), "2.4.6")?;
            if !is_activity {
                return Err(bad(
                    "2.4.6",
                    &at(path, k),
                    "is only used when the object is an activity",
                ));
            }
        }
    }
    if let Some(l) = map.get("language") {
        let tag = text(l, &at(path, "language"), "2.4.6")?;
        if oxilangtag::LanguageTag::parse(tag).is_err() {
            return Err(bad(
                "2.4.6",
                &at(path, "language"),
                format!("`{tag}` is not a language tag"),
            ));
        }
    }
    if let Some(s) = map.get("statement") {
        let p = at(path, "statement");
        if s.get("objectType").and_then(Value::as_str) != Some("StatementRef") {
            return Err(bad("2.4.6", &p, "must be a StatementRef"));
        }
        statement_object(s, &p, true)?;
    }
    if let Some(e) = map.get("extensions") {
        extensions(e, &at(path, "extensions"))?;
    }
    match map.get("contextActivities") {
        Some(c) => context_activities(c, &at(path, "contextActivities")),
        None => Ok(()),
    }
}

pub(super) fn object_of<'a>(
    value: &'a Value,
    path: &str,
) -> Result<&'a Map<String, Value>, Invalid> {
    object(value, path, "2.4.6")
}

/// `parent`, `grouping`, `category`, `other`: an activity or an array of them (§2.4.6.2).
pub(super) fn context_activities(value: &Value, path: &str) -> Checked {
    let map = object(value, path, "2.4.6.2")?;
    known(
        map,
        &["parent", "grouping", "category", "other"],
        path,
        "2.4.6.2",
    )?;
    for (k, v) in map {
        let p = at(path, k);
        let items: Vec<&Value> = match v {
            Value::Array(items) => items.iter().collect(),
            single => vec![single],
        };
        for (i, item) in items.into_iter().enumerate() {
            let ip = format!("{p}[{i}]");
            let a = object(item, &ip, "2.4.6.2")?;
            if a.get("objectType").is_some_and(|t| t != "Activity") {
                return Err(bad("2.4.6.2", &ip, "context activities are activities"));
            }
            activity(a, &ip)?;
        }
    }
    Ok(())
}

/// `1.0.x` only (§2.4.10).
pub(super) fn version(value: &Value, path: &str) -> Checked {
    let v = text(value, path, "2.4.10")?;
    let ok = v
        .strip_prefix("1.0.")
        .is_some_and(|patch| !patch.is_empty() && patch.bytes().all(|b| b.is_ascii_digit()))
        || v == "1.0";
    if ok {
        Ok(())
    } else {
        Err(bad("2.4.10", path, format!("version `{v}` is not 1.0.x")))
    }
}

/// Attachment metadata (§2.4.11).
pub(super) fn attachments(value: &Value, path: &str) -> Checked {
    let items = value
        .as_array()
        .ok_or_else(|| bad("2.4.11", path, "must be an array"))?;
    for (i, item) in items.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let a = object(item, &p, "2.4.11")?;
        known(
            a,
            &[
                "usageType",
                "display",
                "description",
                "contentType",
                "length",
                "sha2",
                "fileUrl",
            ],
            &p,
            "2.4.11",
        )?;
        iri(
            required(a, "usageType", &p, "2.4.11")?,
            &at(&p, "usageType"),
            "2.4.11",
        )?;
        language_map(required(a, "display", &p, "2.4.11")?, &at(&p, "display"))?;
        if let Some(d) = a.get("description") {
            language_map(d, &at(&p, "description"))?;
        }
        let ct = text(
            required(a, "contentType", &p, "2.4.11")?,
            &at(&p, "contentType"),
            "2.4.11",
        )?;
        if ct.parse::<mime::Mime>().is_err() {
            return Err(bad(
                "2.4.11",
                &at(&p, "contentType"),
                format!("`{ct}` is not a media type"),
            ));
        }
        let length = required(a, "length", &p, "2.4.11")?;
        if !length.is_u64() {
            return Err(bad(
                "2.4.11",
                &at(&p, "length"),
                "must be a whole number of octets",
            ));
        }
        let sha2 = text(
            required(a, "sha2", &p, "2.4.11")?,
            &at(&p, "sha2"),
            "2.4.11",
        )?;
        if ![56, 64, 96, 128].contains(&sha2.len()) || !sha2.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(bad(
                "2.4.11",
                &at(&p, "sha2"),
                "must be a SHA-2 hash in hex",
            ));
        }
        if let Some(u) = a.get("fileUrl") {
            iri(u, &at(&p, "fileUrl"), "2.4.11")?;
        }
    }
    Ok(())
}
