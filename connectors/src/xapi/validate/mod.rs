//! The statement rules an LRS must enforce before it stores anything (xAPI 1.0.3, Part Two:
//! Statement Data). Each refusal names the rule's section, the property's path and what is
//! wrong; a batch with one refused statement is refused whole (Part Three §2.1.2).
//!
//! Sections cited below are those of the xAPI 1.0.3 specification, Part Two:
//! 2.2 (formatting: no `null`, no unknown properties), 2.4.1 id, 2.4.2 actor (2.4.2.1 agent,
//! 2.4.2.2 group, 2.4.2.3 inverse functional identifiers, 2.4.2.4 account), 2.4.3 verb,
//! 2.4.4 object (2.4.4.1 activity and its definition, 2.4.4.2 agent or group as object,
//! 2.4.4.3 statement reference and sub-statement), 2.4.5 result (2.4.5.1 score), 2.4.6 context
//! (2.4.6.2 context activities), 2.4.7 timestamp, 2.4.8 stored, 2.4.9 authority, 2.4.10
//! version, 2.4.11 attachments, 4.1 extensions, 4.2 language maps, 4.4 UUIDs, 4.5 timestamps,
//! 4.6 durations.

mod actor;
mod format;
mod object;
mod parts;

use actor::agent_or_group;
use format::*;
use object::{statement_object, verb};
use parts::{attachments, context, result, version};
use serde_json::{Map, Value};

/// Why a statement is refused: the rule's section, where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The section of xAPI 1.0.3 Part Two the rule comes from.
    pub section: &'static str,
    /// The property, as a path from the statement (`actor.mbox`, `context.contextActivities`).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} (xAPI 1.0.3 Part Two §{})",
            self.path, self.message, self.section
        )
    }
}

type Checked = Result<(), Invalid>;

fn bad(section: &'static str, path: &str, message: impl Into<String>) -> Invalid {
    Invalid {
        section,
        path: path.to_owned(),
        message: message.into(),
    }
}

fn at(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Checks one statement as received (Part Two §2.2–§2.4).
pub fn statement(value: &Value) -> Checked {
    no_nulls(value, "")?;
    let s = object(value, "", "2.2")?;
    body(s, "", false)
}

/// Checks an agent or group given apart from a statement (a query's `agent`), as an actor.
pub fn agent(value: &Value) -> Checked {
    no_nulls(value, "agent")?;
    agent_or_group(value, "agent", "2.4.2")
}

/// The properties a statement and a sub-statement both have.
const PARTS: [&str; 7] = [
    "actor",
    "verb",
    "object",
    "result",
    "context",
    "timestamp",
    "attachments",
];

/// The properties a statement or a sub-statement may have.
fn body(s: &Map<String, Value>, path: &str, sub: bool) -> Checked {
    let own: &[&str] = if sub {
        &["objectType"]
    } else {
        &["id", "stored", "authority", "version"]
    };
    let allowed: Vec<&str> = PARTS.iter().chain(own).copied().collect();
    known(s, &allowed, path, if sub { "2.4.4.3" } else { "2.2" })?;
    if let Some(id) = s.get("id") {
        uuid(id, &at(path, "id"), "2.4.1")?;
    }
    let actor = required(s, "actor", path, "2.4.2")?;
    agent_or_group(actor, &at(path, "actor"), "2.4.2")?;
    verb(required(s, "verb", path, "2.4.3")?, &at(path, "verb"))?;
    let object = required(s, "object", path, "2.4.4")?;
    statement_object(object, &at(path, "object"), sub)?;
    if let Some(r) = s.get("result") {
        result(r, &at(path, "result"))?;
    }
    if let Some(c) = s.get("context") {
        context(c, &at(path, "context"), object)?;
    }
    if let Some(t) = s.get("timestamp") {
        timestamp(t, &at(path, "timestamp"), "2.4.7")?;
    }
    if let Some(t) = s.get("stored") {
        timestamp(t, &at(path, "stored"), "2.4.8")?;
    }
    if let Some(a) = s.get("authority") {
        agent_or_group(a, &at(path, "authority"), "2.4.9")?;
    }
    if let Some(v) = s.get("version") {
        version(v, &at(path, "version"))?;
    }
    if let Some(a) = s.get("attachments") {
        attachments(a, &at(path, "attachments"))?;
    }
    if verb_id(s) == Some(super::VOIDED) {
        let ok = object.get("objectType").and_then(Value::as_str) == Some("StatementRef");
        if !ok {
            return Err(bad(
                "2.4.4.3",
                &at(path, "object"),
                "a voiding statement's object must be a StatementRef",
            ));
        }
    }
    Ok(())
}

fn verb_id(s: &Map<String, Value>) -> Option<&str> {
    s.get("verb")?.get("id")?.as_str()
}
