//! What the hub does to a statement as an LRS (xAPI 1.0.3): the properties it sets when it
//! stores one (`stored`, `authority`, `version`; context activities as arrays), the form two
//! statements are compared in, what queries find a statement by, and the `ids` and
//! `canonical` formats of a GET.

use serde_json::{json, Map, Value};

/// Query key kinds (migration 0011): the actor, or an agent or group as the object.
pub const AGENT: i64 = 1;
/// Other agents: authority, instructor, team, group members, a sub-statement's agents.
pub const RELATED_AGENT: i64 = 2;
/// The verb.
pub const VERB: i64 = 3;
/// The object activity.
pub const ACTIVITY: i64 = 4;
/// Context activities, a sub-statement's activities.
pub const RELATED_ACTIVITY: i64 = 5;
/// The context's registration.
pub const REGISTRATION: i64 = 6;

/// The `authority` the hub sets on statements of partner `system`: the credentials used.
pub fn authority(system: &str) -> Value {
    json!({
        "objectType": "Agent",
        "name": system,
        "account": {"homePage": "https://trainhub.invalid/partners", "name": system}
    })
}

/// Sets what the LRS owns (Part Two §2.4.8–§2.4.10): `stored`, `authority` and, if absent,
/// `version`; single context activities become arrays (Part Two §2.4.6.2).
pub fn normalise(statement: &mut Value, stored: &str, authority: &Value) {
    let Some(s) = statement.as_object_mut() else {
        return;
    };
    s.insert("stored".into(), Value::String(stored.to_owned()));
    s.insert("authority".into(), authority.clone());
    s.entry("version").or_insert_with(|| json!("1.0.0"));
    arrays(s);
    if let Some(sub) = s.get_mut("object").and_then(Value::as_object_mut) {
        if sub.get("objectType").and_then(Value::as_str) == Some("SubStatement") {
            arrays(sub);
        }
    }
}

fn arrays(s: &mut Map<String, Value>) {
    let Some(ca) = s
        .get_mut("context")
        .and_then(|c| c.get_mut("contextActivities"))
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for v in ca.values_mut() {
        if v.is_object() {
            *v = Value::Array(vec![v.take()]);
        }
    }
}

/// The form two statements with one id are compared in (Part Two §2.3, statement
/// immutability): without what the LRS sets.
pub fn comparable(statement: &Value) -> Value {
    let mut c = statement.clone();
    if let Some(s) = c.as_object_mut() {
        for k in ["stored", "authority", "version"] {
            s.remove(k);
        }
        arrays(s);
    }
    c
}

/// An agent's or identified group's inverse functional identifier as one string.
pub fn agent_key(agent: &Value) -> Option<String> {
    if let Some(m) = agent.get("mbox").and_then(Value::as_str) {
        return Some(format!("mbox {}", m.to_lowercase()));
    }
    if let Some(m) = agent.get("mbox_sha1sum").and_then(Value::as_str) {
        return Some(format!("sha1 {}", m.to_lowercase()));
    }
    if let Some(o) = agent.get("openid").and_then(Value::as_str) {
        return Some(format!("openid {o}"));
    }
    let home = agent.pointer("/account/homePage").and_then(Value::as_str)?;
    let name = agent.pointer("/account/name").and_then(Value::as_str)?;
    Some(format!("account {home} {name}"))
}

/// What queries find `statement` by (Part Three §2.1.3): (kind, key).
pub fn keys(statement: &Value) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    let agent = |kind: i64, a: &Value, out: &mut Vec<(i64, String)>| {
        if let Some(k) = agent_key(a) {
            out.push((kind, k));
        }
        for m in a
            .get("member")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(k) = agent_key(m) {
                out.push((RELATED_AGENT, k));
            }
        }
    };
    if let Some(a) = statement.get("actor") {
        agent(AGENT, a, &mut out);
    }
    if let Some(a) = statement.get("authority") {
        agent(RELATED_AGENT, a, &mut out);
    }
    if let Some(v) = statement.pointer("/verb/id").and_then(Value::as_str) {
        out.push((VERB, v.to_owned()));
    }
    let object = statement.get("object").unwrap_or(&Value::Null);
    match object.get("objectType").and_then(Value::as_str) {
        Some("Agent" | "Group") => agent(AGENT, object, &mut out),
        Some("SubStatement") => {
            for (kind, key) in keys(object) {
                let related = match kind {
                    AGENT => RELATED_AGENT,
                    ACTIVITY => RELATED_ACTIVITY,
                    k => k,
                };
                if related != VERB && related != REGISTRATION {
                    out.push((related, key));
                }
            }
        }
        Some("StatementRef") => {}
        _ => {
            if let Some(id) = object.get("id").and_then(Value::as_str) {
                out.push((ACTIVITY, id.to_owned()));
            }
        }
    }
    if let Some(c) = statement.get("context") {
        for k in ["instructor", "team"] {
            if let Some(a) = c.get(k) {
                agent(RELATED_AGENT, a, &mut out);
            }
        }
        if let Some(r) = c.get("registration").and_then(Value::as_str) {
            out.push((REGISTRATION, r.to_lowercase()));
        }
        let activities = c.get("contextActivities").and_then(Value::as_object);
        for v in activities.into_iter().flat_map(|m| m.values()) {
            let items = v.as_array().map_or_else(|| vec![v], |a| a.iter().collect());
            for a in items {
                if let Some(id) = a.get("id").and_then(Value::as_str) {
                    out.push((RELATED_ACTIVITY, id.to_owned()));
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The statement another refers to (`object` is a StatementRef), if any.
pub fn target(statement: &Value) -> Option<&str> {
    let o = statement.get("object")?;
    (o.get("objectType")?.as_str()? == "StatementRef")
        .then(|| o.get("id")?.as_str())
        .flatten()
}

/// The `ids` format (Part Three §2.1.3): agents and groups by their identifier only,
/// activities and verbs by id.
pub fn ids(statement: &Value) -> Value {
    let mut s = statement.clone();
    reduce(&mut s, "");
    s
}

fn reduce(v: &mut Value, key: &str) {
    match v {
        Value::Object(map) => {
            let kind = map.get("objectType").and_then(Value::as_str).unwrap_or("");
            let is_agent = matches!(
                key,
                "actor" | "authority" | "instructor" | "team" | "member"
            ) || (key == "object" && matches!(kind, "Agent" | "Group"));
            if is_agent {
                let group = kind == "Group";
                map.retain(|k, _| {
                    matches!(
                        k.as_str(),
                        "objectType" | "mbox" | "mbox_sha1sum" | "openid" | "account"
                    ) || (group && k == "member")
                });
            } else if key == "verb" || (key == "object" && matches!(kind, "" | "Activity")) {
                map.retain(|k, _| k == "id" || k == "objectType");
            }
            if key == "contextActivities" {
                for list in map.values_mut() {
                    for a in list.as_array_mut().into_iter().flatten() {
                        if let Some(a) = a.as_object_mut() {
                            a.retain(|k, _| k == "id" || k == "objectType");
                        }
                    }
                }
                return;
            }
            for (k, child) in map.iter_mut() {
                if k != "extensions" {
                    reduce(child, k);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| reduce(i, key)),
        _ => {}
    }
}

/// The `canonical` format (Part Three §2.1.3): each language map reduced to the one entry
/// the caller's `Accept-Language` prefers (or the first).
pub fn canonical(statement: &Value, languages: &[String]) -> Value {
    let mut s = statement.clone();
    one_language(&mut s, languages, "");
    s
}

const LANGUAGE_MAPS: [&str; 3] = ["display", "name", "description"];

fn one_language(v: &mut Value, languages: &[String], key: &str) {
    match v {
        Value::Object(map)
            if LANGUAGE_MAPS.contains(&key) && map.values().all(Value::is_string) =>
        {
            let chosen = languages
                .iter()
                .find_map(|l| {
                    map.keys().find(|k| {
                        k.eq_ignore_ascii_case(l)
                            || k.to_ascii_lowercase()
                                .starts_with(&format!("{}-", l.to_ascii_lowercase()))
                    })
                })
                .or_else(|| map.keys().next())
                .cloned();
            map.retain(|k, _| Some(k) == chosen.as_ref());
        }
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if k != "extensions" {
                    one_language(child, languages, k);
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|i| one_language(i, languages, key)),
        _ => {}
    }
}

/// The languages an `Accept-Language` header asks for, most wanted first.
pub fn accepted_languages(header: Option<&str>) -> Vec<String> {
    let mut langs: Vec<(f32, String)> = header
        .unwrap_or_default()
        .split(',')
        .filter_map(|part| {
            let mut it = part.trim().split(';');
            let tag = it.next()?.trim();
            let q = it
                .find_map(|p| p.trim().strip_prefix("q=")?.parse::<f32>().ok())
                .unwrap_or(1.0);
            (!tag.is_empty() && tag != "*").then(|| (q, tag.to_owned()))
        })
        .collect();
    langs.sort_by(|a, b| b.0.total_cmp(&a.0));
    langs.into_iter().map(|(_, t)| t).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement() -> Value {
        json!({
            "id": "6a4f0a1e-3b2c-4d5e-8f90-0123456789ab",
            "actor": {"objectType": "Agent", "name": "王", "mbox": "mailto:Wang@Example.cn"},
            "verb": {"id": "http://adlnet.gov/expapi/verbs/completed", "display": {"en-US": "completed", "zh-CN": "完成"}},
            "object": {"id": "https://mooc.example.cn/c1", "definition": {"name": {"en-US": "History", "zh-CN": "党史"}}},
            "context": {"registration": "EC531277-B57B-4C15-8D91-D292C5B2B8F7",
                "instructor": {"account": {"homePage": "https://mooc.example.cn", "name": "t1"}},
                "contextActivities": {"parent": {"id": "https://mooc.example.cn/p"}}}
        })
    }

    #[test]
    fn normalising_sets_what_the_lrs_owns_and_arrays() {
        let mut s = statement();
        normalise(&mut s, "2026-01-01T00:00:00.000Z", &authority("mooc"));
        assert_eq!(s["stored"], "2026-01-01T00:00:00.000Z");
        assert_eq!(s["version"], "1.0.0");
        assert!(s["context"]["contextActivities"]["parent"].is_array());
        assert_eq!(comparable(&s), comparable(&statement()));
    }

    #[test]
    fn keys_cover_agents_verbs_activities_and_registrations() {
        let k = keys(&statement());
        assert!(k.contains(&(AGENT, "mbox mailto:wang@example.cn".into())));
        assert!(k.contains(&(RELATED_AGENT, "account https://mooc.example.cn t1".into())));
        assert!(k.contains(&(ACTIVITY, "https://mooc.example.cn/c1".into())));
        assert!(k.contains(&(RELATED_ACTIVITY, "https://mooc.example.cn/p".into())));
        assert!(k.contains(&(REGISTRATION, "ec531277-b57b-4c15-8d91-d292c5b2b8f7".into())));
    }

    #[test]
    fn ids_and_canonical_formats() {
        let s = ids(&statement());
        assert_eq!(
            s["actor"],
            json!({"objectType": "Agent", "mbox": "mailto:Wang@Example.cn"})
        );
        assert_eq!(s["object"], json!({"id": "https://mooc.example.cn/c1"}));
        assert_eq!(
            s["verb"],
            json!({"id": "http://adlnet.gov/expapi/verbs/completed"})
        );
        let c = canonical(&statement(), &accepted_languages(Some("zh;q=0.9, fr")));
        assert_eq!(c["verb"]["display"], json!({"zh-CN": "完成"}));
        assert_eq!(c["object"]["definition"]["name"], json!({"zh-CN": "党史"}));
    }
}
