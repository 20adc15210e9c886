//! A profile's shapes: the TOML file as written, and the checked spec it loads into.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ProfileFile {
    pub(super) profile: Header,
    #[serde(default)]
    pub(super) codes: BTreeMap<String, BTreeMap<String, String>>,
    pub(super) records: Vec<RecordFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Header {
    pub(super) name: String,
    pub(super) version: String,
    #[serde(default)]
    #[allow(dead_code)]
    pub(super) description: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RecordFile {
    pub(super) kind: String,
    pub(super) record_id: String,
    #[serde(default)]
    pub(super) version: Option<VersionFile>,
    /// Map only sources where this path has a value.
    #[serde(default)]
    pub(super) when: Option<String>,
    /// One record per element this pattern matches in a JSON document (`/classes/*/roster/*`).
    #[serde(default)]
    pub(super) each: Option<String>,
    pub(super) fields: BTreeMap<String, FieldFile>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum VersionFile {
    Const(i64),
    From {
        from: String,
        #[serde(default)]
        date: Option<OneOrMany>,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub(super) fn list(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FieldFile {
    pub(super) from: Option<String>,
    pub(super) value: Option<toml::Value>,
    #[serde(default)]
    pub(super) required: bool,
    pub(super) codes: Option<String>,
    pub(super) date: Option<OneOrMany>,
    pub(super) unit: Option<String>,
    pub(super) minutes_per_hour: Option<f64>,
    pub(super) hours_per_day: Option<f64>,
    #[serde(default)]
    pub(super) number: bool,
    pub(super) split: Option<String>,
    #[serde(default)]
    pub(super) upper: bool,
}

/// How a field's text becomes its canonical value.
#[derive(Debug, Clone)]
pub(super) enum Convert {
    Text {
        upper: bool,
    },
    Code(Arc<BTreeMap<String, String>>, String),
    Date(Vec<String>),
    /// A number, multiplied by the factor (unit conversion into 学时); whole for an integer
    /// field.
    Number(f64, bool),
    /// A list: text split on a separator, or a JSON array; each item through a code table.
    List {
        split: Option<String>,
        codes: Option<(Arc<BTreeMap<String, String>>, String)>,
    },
    /// A map of numbers (a JSON object), e.g. result dimensions.
    Scores,
}

#[derive(Debug, Clone)]
pub(super) struct Field {
    /// Dotted canonical path inside the body.
    pub(super) path: Vec<String>,
    pub(super) from: Option<String>,
    pub(super) value: Option<serde_json::Value>,
    pub(super) required: bool,
    pub(super) convert: Convert,
}

#[derive(Debug, Clone)]
pub(super) enum Version {
    Const(i64),
    From(String, Option<Vec<String>>),
}

#[derive(Debug, Clone)]
pub(super) struct RecordSpec {
    pub(super) kind: String,
    pub(super) record_id: Vec<Piece>,
    pub(super) version: Version,
    pub(super) when: Option<String>,
    pub(super) each: Option<String>,
    pub(super) fields: Vec<Field>,
    /// Canonical field (`kind.path`) → source path, for naming the source in rejections.
    pub(super) origin: Arc<BTreeMap<String, String>>,
}

#[derive(Debug, Clone)]
pub(super) enum Piece {
    Text(String),
    Field(String),
    /// `{FIELD|person_key}`: the person key of the national ID in the field — an id that
    /// names the person without showing the national ID.
    PersonKey(String),
}

pub(super) fn template(text: &str) -> Result<Vec<Piece>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            out.push(Piece::Text(rest[..open].to_owned()));
        }
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| format!("`{text}` has an unclosed `{{`"))?;
        let name = &rest[open + 1..open + close];
        if name.is_empty() {
            return Err(format!("`{text}` has an empty `{{}}`"));
        }
        match name.split_once('|') {
            None => out.push(Piece::Field(name.to_owned())),
            Some((field, "person_key")) if !field.is_empty() => {
                out.push(Piece::PersonKey(field.to_owned()))
            }
            Some((_, filter)) => {
                return Err(format!(
                    "`{text}`: unknown filter `{filter}` (known: person_key)"
                ))
            }
        }
        rest = &rest[open + close + 1..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest.to_owned()));
    }
    if out.iter().all(|p| matches!(p, Piece::Text(_))) {
        return Err(format!("`{text}` names no source field (e.g. `{{A0000}}`)"));
    }
    Ok(out)
}

/// The 1-based line where `needle` first appears: as a key (`needle =` or `"needle" =` at the
/// start of a line) if it is one, else anywhere.
pub(super) fn line_of(text: &str, needle: &str) -> Option<usize> {
    let bare = needle.trim_matches('"');
    let key = text.lines().position(|l| {
        let l = l.trim_start();
        [bare.to_owned(), format!("\"{bare}\"")].iter().any(|k| {
            l.strip_prefix(k.as_str())
                .is_some_and(|r| r.trim_start().starts_with('='))
        })
    });
    key.map(|i| i + 1)
        .or_else(|| text.find(needle).map(|at| line_at(text, at)))
}

pub(super) fn line_at(text: &str, offset: usize) -> usize {
    text[..offset].matches('\n').count() + 1
}
