//! The verb (Part Two §2.4.3) and the object (§2.4.4): activities with their definitions and
//! interactions, statement references and sub-statements.

use super::actor::agent_or_group;
use super::format::*;
use super::{at, bad, body, Checked};
use serde_json::{Map, Value};

/// A verb: an IRI id and an optional display (§2.4.3).
pub(super) fn verb(value: &Value, path: &str) -> Checked {
    let map = object(value, path, "2.4.3")?;
    known(map, &["id", "display"], path, "2.4.3")?;
    iri(
        required(map, "id", path, "2.4.3")?,
        &at(path, "id"),
        "2.4.3",
    )?;
    if let Some(d) = map.get("display") {
        language_map(d, &at(path, "display"))?;
    }
    Ok(())
}

/// The object: an activity, agent, group, statement reference or sub-statement (§2.4.4).
pub(super) fn statement_object(value: &Value, path: &str, in_sub: bool) -> Checked {
    let map = object(value, path, "2.4.4")?;
    let kind = match map.get("objectType") {
        Some(t) => text(t, &at(path, "objectType"), "2.4.4")?,
        None => "Activity",
    };
    match kind {
        "Activity" => activity(map, path),
        "Agent" | "Group" => agent_or_group(value, path, "2.4.4.2"),
        "StatementRef" => {
            known(map, &["objectType", "id"], path, "2.4.4.3")?;
            uuid(
                required(map, "id", path, "2.4.4.3")?,
                &at(path, "id"),
                "2.4.4.3",
            )
        }
        "SubStatement" if in_sub => {
            Err(bad("2.4.4.3", path, "a sub-statement cannot hold another"))
        }
        "SubStatement" => body(map, path, true),
        other => Err(bad(
            "2.4.4",
            &at(path, "objectType"),
            format!("`{other}` is not an object type"),
        )),
    }
}

/// An activity: an IRI id and an optional definition (§2.4.4.1).
pub(super) fn activity(map: &Map<String, Value>, path: &str) -> Checked {
    known(map, &["objectType", "id", "definition"], path, "2.4.4.1")?;
    iri(
        required(map, "id", path, "2.4.4.1")?,
        &at(path, "id"),
        "2.4.4.1",
    )?;
    let Some(d) = map.get("definition") else {
        return Ok(());
    };
    let p = at(path, "definition");
    let def = object(d, &p, "2.4.4.1")?;
    const COMPONENTS: [&str; 5] = ["choices", "scale", "source", "target", "steps"];
    let mut allowed = vec![
        "name",
        "description",
        "type",
        "moreInfo",
        "interactionType",
        "correctResponsesPattern",
        "extensions",
    ];
    allowed.extend(COMPONENTS);
    known(def, &allowed, &p, "2.4.4.1")?;
    for k in ["name", "description"] {
        if let Some(v) = def.get(k) {
            language_map(v, &at(&p, k))?;
        }
    }
    for k in ["type", "moreInfo"] {
        if let Some(v) = def.get(k) {
            iri(v, &at(&p, k), "2.4.4.1")?;
        }
    }
    if let Some(v) = def.get("extensions") {
        extensions(v, &at(&p, "extensions"))?;
    }
    interaction(def, &p, &COMPONENTS)
}

/// An interaction activity's type, responses and components (§2.4.4.1, interaction activities).
pub(super) fn interaction(def: &Map<String, Value>, path: &str, components: &[&str]) -> Checked {
    const TYPES: [&str; 10] = [
        "true-false",
        "choice",
        "fill-in",
        "long-fill-in",
        "matching",
        "performance",
        "sequencing",
        "likert",
        "numeric",
        "other",
    ];
    let kind = match def.get("interactionType") {
        Some(t) => Some(text(t, &at(path, "interactionType"), "2.4.4.1")?),
        None => None,
    };
    if let Some(k) = kind.filter(|k| !TYPES.contains(k)) {
        return Err(bad(
            "2.4.4.1",
            &at(path, "interactionType"),
            format!("`{k}` is not an interaction type"),
        ));
    }
    if let Some(c) = def.get("correctResponsesPattern") {
        let p = at(path, "correctResponsesPattern");
        let items = c
            .as_array()
            .ok_or_else(|| bad("2.4.4.1", &p, "must be an array of strings"))?;
        items
            .iter()
            .try_for_each(|i| text(i, &p, "2.4.4.1").map(|_| ()))?;
    }
    for k in components.iter().filter(|k| def.contains_key(**k)) {
        let p = at(path, k);
        if kind.is_none() {
            return Err(bad(
                "2.4.4.1",
                &p,
                "interaction components need an interactionType",
            ));
        }
        let items = def[*k]
            .as_array()
            .ok_or_else(|| bad("2.4.4.1", &p, "must be an array"))?;
        let mut seen = std::collections::HashSet::new();
        for (i, item) in items.iter().enumerate() {
            let ip = format!("{p}[{i}]");
            let c = object(item, &ip, "2.4.4.1")?;
            known(c, &["id", "description"], &ip, "2.4.4.1")?;
            let id = text(
                required(c, "id", &ip, "2.4.4.1")?,
                &at(&ip, "id"),
                "2.4.4.1",
            )?;
            if !seen.insert(id) {
                return Err(bad(
                    "2.4.4.1",
                    &at(&ip, "id"),
                    format!("`{id}` is used twice"),
                ));
            }
            if let Some(d) = c.get("description") {
                language_map(d, &at(&ip, "description"))?;
            }
        }
    }
    Ok(())
}
