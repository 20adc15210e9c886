//! Mapping profiles (DESIGN §7): declarative, versioned TOML files that turn a partner's own
//! rows or documents into canonical records. Pure: a profile maps one [`Source`] (a CSV/XLSX
//! row, a JSON object, the elements of an XML file) to records; reading files and committing
//! are the importer's and the pipeline's business.
//!
//! ```toml
//! [profile]
//! name = "cadre-a01"
//! version = "1.0.0"
//!
//! [codes.gender]            # code tables: source text or code → canonical code
//! "男" = "1"
//!
//! [[records]]
//! kind = "person"
//! record_id = "A01-{A0000}" # template over source fields
//! version = 1               # or { from = "UPDATED", date = "yyyyMMddHHmmss" }
//! [records.fields]
//! national_id = { from = "A0184", required = true }
//! gender = { from = "A0104", codes = "gender" }
//! birth_date = { from = "A0107", date = ["yyyyMMdd", "yyyy.MM.dd", "yyyy.MM", "iso"] }
//! category = { value = "civil_servant" }
//! hours = { from = "MINUTES", unit = "minutes", minutes_per_hour = 45 }
//! ```
//!
//! A source path is a column name (tables), a JSON pointer (`/a/b`, JSON) or an element name
//! (XML). Canonical fields are the body's proto field names, dotted into nested messages
//! (`person_ref.national_id`); `themes`-like repeated fields take `split = ","`.

use serde::Deserialize;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use trainhub_model::{NationalId, PersonKeyer, ReasonCode, Rejection, Stage};
use trainhub_proto::v1 as pb;

/// The profiles shipped with trainhub (`connectors/profiles/<name>/profile.toml`), by name.
pub const SHIPPED: &[(&str, &str)] = &[
    (
        "cadre-a01",
        include_str!("../profiles/cadre-a01/profile.toml"),
    ),
    ("lrmx", include_str!("../profiles/lrmx/profile.toml")),
    (
        "party-school-json",
        include_str!("../profiles/party-school-json/profile.toml"),
    ),
];

/// Where a profile reads its values.
pub trait Source {
    /// The value at `path`, if present and not blank (already trimmed).
    fn get(&self, path: &str) -> Option<Cow<'_, str>>;

    /// The structured value at `path` (an array for a list field, an object for a map
    /// field); only JSON sources have them.
    fn value(&self, _path: &str) -> Option<&serde_json::Value> {
        None
    }

    /// The whole document, for `each`; only JSON sources have one.
    fn document(&self) -> Option<&serde_json::Value> {
        None
    }
}

/// A JSON value as text: strings trimmed, numbers and booleans written out; blank is none.
fn scalar(value: &serde_json::Value) -> Option<Cow<'_, str>> {
    let text = match value {
        serde_json::Value::String(s) => Cow::Borrowed(s.trim()),
        serde_json::Value::Number(n) => Cow::Owned(n.to_string()),
        serde_json::Value::Bool(b) => Cow::Owned(b.to_string()),
        _ => return None,
    };
    (!text.is_empty()).then_some(text)
}

impl Source for serde_json::Value {
    fn get(&self, path: &str) -> Option<Cow<'_, str>> {
        scalar(Source::value(self, path)?)
    }

    fn value(&self, path: &str) -> Option<&serde_json::Value> {
        if path.starts_with('/') {
            self.pointer(path)
        } else {
            self.get(path)
        }
    }

    fn document(&self) -> Option<&serde_json::Value> {
        Some(self)
    }
}

/// One element matched by `each`, with the elements it sits in: `/x` is relative to the
/// element, `../x` to the enclosing matched element (`../../x` two up), `//x` to the document.
struct Scoped<'a> {
    chain: Vec<&'a serde_json::Value>,
}

impl Scoped<'_> {
    fn resolve(&self, path: &str) -> Option<&serde_json::Value> {
        if let Some(rest) = path.strip_prefix("//") {
            return self.chain[0].pointer(&format!("/{rest}"));
        }
        let mut rest = path;
        let mut up = 0;
        while let Some(r) = rest.strip_prefix("../") {
            up += 1;
            rest = r;
        }
        let at = self.chain.len().checked_sub(1 + up)?;
        let rest = if rest.starts_with('/') {
            rest.to_owned()
        } else {
            format!("/{rest}")
        };
        self.chain[at].pointer(&rest)
    }
}

impl Source for Scoped<'_> {
    fn get(&self, path: &str) -> Option<Cow<'_, str>> {
        scalar(self.resolve(path)?)
    }

    fn value(&self, path: &str) -> Option<&serde_json::Value> {
        self.resolve(path)
    }
}

/// The chains of elements an `each` pattern (`/classes/*/roster/*`) matches: the document,
/// then each element a `*` stepped into.
fn matches<'a>(root: &'a serde_json::Value, pattern: &str) -> Vec<Vec<&'a serde_json::Value>> {
    let mut chains = vec![vec![root]];
    let mut at: Vec<&'a serde_json::Value> = vec![root];
    for segment in pattern.trim_start_matches('/').split('/') {
        let mut next_chains = Vec::new();
        let mut next_at = Vec::new();
        for (chain, value) in chains.into_iter().zip(at) {
            if segment == "*" {
                let items: Vec<&serde_json::Value> = match value {
                    serde_json::Value::Array(a) => a.iter().collect(),
                    serde_json::Value::Object(o) => o.values().collect(),
                    _ => Vec::new(),
                };
                for item in items {
                    let mut c = chain.clone();
                    c.push(item);
                    next_chains.push(c);
                    next_at.push(item);
                }
            } else if let Some(v) = value.get(segment) {
                next_chains.push(chain);
                next_at.push(v);
            }
        }
        chains = next_chains;
        at = next_at;
    }
    // A pattern that ends on a name (no `*`) matches that value itself.
    chains
        .into_iter()
        .zip(at)
        .map(|(mut c, v)| {
            if !std::ptr::eq(*c.last().expect("starts with the root"), v) {
                c.push(v);
            }
            c
        })
        .collect()
}

impl Source for BTreeMap<String, String> {
    fn get(&self, path: &str) -> Option<Cow<'_, str>> {
        let text = self.get(path)?.trim();
        (!text.is_empty()).then_some(Cow::Borrowed(text))
    }
}

/// A profile that failed to load: the file, the line (when known) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ProfileError {
    /// The profile file.
    pub file: String,
    /// 1-based line of the offending entry.
    pub line: Option<usize>,
    /// What is wrong, naming the field.
    pub message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    profile: Header,
    #[serde(default)]
    codes: BTreeMap<String, BTreeMap<String, String>>,
    records: Vec<RecordFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    name: String,
    version: String,
    #[serde(default)]
    #[allow(dead_code)]
    description: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordFile {
    kind: String,
    record_id: String,
    #[serde(default)]
    version: Option<VersionFile>,
    /// Map only sources where this path has a value.
    #[serde(default)]
    when: Option<String>,
    /// One record per element this pattern matches in a JSON document (`/classes/*/roster/*`).
    #[serde(default)]
    each: Option<String>,
    fields: BTreeMap<String, FieldFile>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum VersionFile {
    Const(i64),
    From {
        from: String,
        #[serde(default)]
        date: Option<OneOrMany>,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn list(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldFile {
    from: Option<String>,
    value: Option<toml::Value>,
    #[serde(default)]
    required: bool,
    codes: Option<String>,
    date: Option<OneOrMany>,
    unit: Option<String>,
    minutes_per_hour: Option<f64>,
    hours_per_day: Option<f64>,
    #[serde(default)]
    number: bool,
    split: Option<String>,
    #[serde(default)]
    upper: bool,
}

/// How a field's text becomes its canonical value.
#[derive(Debug, Clone)]
enum Convert {
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
struct Field {
    /// Dotted canonical path inside the body.
    path: Vec<String>,
    from: Option<String>,
    value: Option<serde_json::Value>,
    required: bool,
    convert: Convert,
}

#[derive(Debug, Clone)]
enum Version {
    Const(i64),
    From(String, Option<Vec<String>>),
}

#[derive(Debug, Clone)]
struct RecordSpec {
    kind: String,
    record_id: Vec<Piece>,
    version: Version,
    when: Option<String>,
    each: Option<String>,
    fields: Vec<Field>,
    /// Canonical field (`kind.path`) → source path, for naming the source in rejections.
    origin: Arc<BTreeMap<String, String>>,
}

#[derive(Debug, Clone)]
enum Piece {
    Text(String),
    Field(String),
    /// `{FIELD|person_key}`: the person key of the national ID in the field — an id that
    /// names the person without showing the national ID.
    PersonKey(String),
}

/// A loaded profile.
#[derive(Debug, Clone)]
pub struct Profile {
    name: String,
    version: String,
    records: Vec<RecordSpec>,
}

/// One mapped record: the canonical record and where its fields came from.
#[derive(Debug, Clone)]
pub struct Mapped {
    /// The canonical record (validated later, by the pipeline).
    pub record: pb::Record,
    /// Canonical field path (`person.national_id`) → source path (`A0184`).
    pub origin: Arc<BTreeMap<String, String>>,
}

impl Profile {
    /// Loads a profile file.
    pub fn load(path: &std::path::Path) -> Result<Profile, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|e| ProfileError {
            file: path.display().to_string(),
            line: None,
            message: format!("cannot read: {e}"),
        })?;
        Profile::parse(&path.display().to_string(), &text)
    }

    /// A shipped profile by name, or a profile file by path.
    pub fn resolve(name_or_path: &str) -> Result<Profile, ProfileError> {
        if let Some((name, text)) = SHIPPED.iter().find(|(n, _)| *n == name_or_path) {
            return Profile::parse(&format!("{name} (shipped)"), text);
        }
        let path = std::path::Path::new(name_or_path);
        if path.exists() {
            return Profile::load(path);
        }
        Err(ProfileError {
            file: name_or_path.to_owned(),
            line: None,
            message: format!(
                "no such profile file, and no shipped profile of that name (shipped: {})",
                SHIPPED
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
    }

    /// The source paths of required fields (a file lacking one cannot map any row).
    pub fn required_paths(&self) -> Vec<(&str, String)> {
        self.records
            .iter()
            .flat_map(|r| {
                r.fields.iter().filter(|f| f.required).filter_map(move |f| {
                    Some((
                        f.from.as_deref()?,
                        format!("{}.{}", r.kind, f.path.join(".")),
                    ))
                })
            })
            .collect()
    }

    /// Parses a profile's text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Profile, ProfileError> {
        let fail = |needle: Option<&str>, message: String| ProfileError {
            file: file.to_owned(),
            line: needle.and_then(|n| line_of(text, n)),
            message,
        };
        let parsed: ProfileFile = toml::from_str(text).map_err(|e| ProfileError {
            file: file.to_owned(),
            line: e.span().map(|s| line_at(text, s.start)),
            message: e.message().to_owned(),
        })?;
        let tables: BTreeMap<String, Arc<BTreeMap<String, String>>> = parsed
            .codes
            .into_iter()
            .map(|(k, v)| (k, Arc::new(v)))
            .collect();
        let record = trainhub_proto::format::record_descriptor();
        let mut records = Vec::new();
        for spec in parsed.records {
            let kind_field = record
                .get_field_by_name(&spec.kind)
                .filter(|f| f.containing_oneof().is_some() && f.kind().as_message().is_some());
            let Some(kind_field) = kind_field else {
                return Err(fail(
                    Some(&format!("\"{}\"", spec.kind)),
                    format!("kind `{}` is not a record kind", spec.kind),
                ));
            };
            let body = kind_field.kind().as_message().expect("checked").clone();
            let mut fields = Vec::new();
            let mut origin = BTreeMap::new();
            for (name, f) in spec.fields {
                let here = Some(name.as_str());
                let path: Vec<String> = name.split('.').map(str::to_owned).collect();
                let mut message = body.clone();
                let mut leaf = None;
                for (i, part) in path.iter().enumerate() {
                    let Some(field) = message.get_field_by_name(part) else {
                        return Err(fail(
                            here,
                            format!("field `{name}` is not a field of {}", spec.kind),
                        ));
                    };
                    if i + 1 < path.len() {
                        match field.kind().as_message() {
                            Some(m) => message = m.clone(),
                            None => {
                                return Err(fail(
                                    here,
                                    format!("field `{name}`: `{part}` has no fields"),
                                ))
                            }
                        }
                    } else {
                        leaf = Some(field);
                    }
                }
                let leaf = leaf.expect("a path has a last part");
                let table = |name: &String| {
                    tables.get(name).cloned().ok_or_else(|| {
                        fail(
                            here,
                            format!("field `{name}`: no code table `[codes.{name}]`"),
                        )
                    })
                };
                let convert = if leaf.is_map() {
                    Convert::Scores
                } else if leaf.is_list() {
                    if f.date.is_some() || f.unit.is_some() || f.number {
                        return Err(fail(
                            here,
                            format!("field `{name}` is a list: it takes `split` and `codes` only"),
                        ));
                    }
                    Convert::List {
                        split: f.split.clone(),
                        codes: match &f.codes {
                            Some(t) => Some((table(t)?, t.clone())),
                            None => None,
                        },
                    }
                } else if let Some(table) = &f.codes {
                    let t = tables.get(table).ok_or_else(|| {
                        fail(
                            here,
                            format!("field `{name}`: no code table `[codes.{table}]`"),
                        )
                    })?;
                    Convert::Code(t.clone(), table.clone())
                } else if let Some(formats) = &f.date {
                    let formats = formats.list();
                    if let Some(bad) = formats.iter().find(|p| !valid_date_pattern(p)) {
                        return Err(fail(here, format!("field `{name}`: date format `{bad}` is not one of yyyyMMdd, yyyy.MM.dd, yyyy-MM-dd, yyyyMM, yyyy.MM, iso (or with HHmmss)")));
                    }
                    Convert::Date(formats)
                } else if let Some(unit) = &f.unit {
                    let factor = match (unit.as_str(), f.minutes_per_hour, f.hours_per_day) {
                        ("hours", _, _) => 1.0,
                        ("minutes", Some(m), _) if m > 0.0 => 1.0 / m,
                        ("days", _, Some(h)) if h > 0.0 => h,
                        ("minutes", ..) => {
                            return Err(fail(here, format!("field `{name}`: unit minutes needs minutes_per_hour (the source's rule, e.g. 45)")))
                        }
                        ("days", ..) => {
                            return Err(fail(here, format!("field `{name}`: unit days needs hours_per_day (the source's rule, e.g. 8)")))
                        }
                        (other, ..) => {
                            return Err(fail(here, format!("field `{name}`: unit `{other}` is not hours, minutes or days")))
                        }
                    };
                    Convert::Number(factor, false)
                } else if f.number {
                    Convert::Number(1.0, false)
                } else if f.split.is_some() {
                    return Err(fail(
                        here,
                        format!("field `{name}`: `split` is for list fields only"),
                    ));
                } else {
                    Convert::Text { upper: f.upper }
                };
                let convert = match convert {
                    Convert::Number(factor, _) => {
                        use prost_reflect::Kind as K;
                        match leaf.kind() {
                            K::Double | K::Float => Convert::Number(factor, false),
                            K::Int32 | K::Int64 | K::Uint32 | K::Uint64 | K::Sint32 | K::Sint64 => {
                                Convert::Number(factor, true)
                            }
                            _ => {
                                return Err(fail(
                                    here,
                                    format!("field `{name}` is not a number field"),
                                ))
                            }
                        }
                    }
                    other => other,
                };
                let value = match (&f.from, &f.value) {
                    (Some(_), None) => None,
                    (None, Some(v)) => Some(
                        serde_json::to_value(v)
                            .map_err(|e| fail(here, format!("field `{name}`: value: {e}")))?,
                    ),
                    _ => {
                        return Err(fail(
                            here,
                            format!("field `{name}` needs exactly one of `from` and `value`"),
                        ))
                    }
                };
                if let Some(from) = &f.from {
                    origin.insert(format!("{}.{name}", spec.kind), from.clone());
                }
                fields.push(Field {
                    path,
                    from: f.from,
                    value,
                    required: f.required,
                    convert,
                });
            }
            let version = match spec.version {
                None => Version::Const(1),
                Some(VersionFile::Const(v)) => Version::Const(v),
                Some(VersionFile::From { from, date }) => {
                    Version::From(from, date.map(|d| d.list()))
                }
            };
            records.push(RecordSpec {
                record_id: template(&spec.record_id)
                    .map_err(|m| fail(Some(&spec.record_id), format!("record_id: {m}")))?,
                kind: spec.kind,
                version,
                when: spec.when,
                each: spec.each,
                fields,
                origin: Arc::new(origin),
            });
        }
        if records.is_empty() {
            return Err(fail(None, "the profile has no [[records]]".into()));
        }
        Ok(Profile {
            name: parsed.profile.name,
            version: parsed.profile.version,
            records,
        })
    }

    /// The profile's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `name@version`, as provenance records it.
    pub fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// Every source path the profile reads (to check a file's header up front).
    pub fn paths(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self
            .records
            .iter()
            .flat_map(|r| r.fields.iter().filter_map(|f| f.from.as_deref()))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Maps one source into its records (one per `[[records]]` whose `when` holds), each a
    /// record of `system` or the `map`-stage rejection naming the source field.
    pub fn map(
        &self,
        system: &str,
        source: &dyn Source,
        keyer: &PersonKeyer,
    ) -> Vec<Result<Mapped, Rejection>> {
        let mut out = Vec::new();
        for spec in &self.records {
            let mapped = |source: &dyn Source| {
                map_one(spec, system, source, keyer).map(|record| Mapped {
                    record,
                    origin: spec.origin.clone(),
                })
            };
            let wanted =
                |source: &dyn Source| spec.when.as_ref().is_none_or(|w| source.get(w).is_some());
            match (&spec.each, source.document()) {
                (None, _) => {
                    if wanted(source) {
                        out.push(mapped(source));
                    }
                }
                (Some(pattern), Some(root)) => {
                    for chain in matches(root, pattern) {
                        let scoped = Scoped { chain };
                        if wanted(&scoped) {
                            out.push(mapped(&scoped));
                        }
                    }
                }
                (Some(_), None) => out.push(Err(Rejection {
                    stage: Stage::Map,
                    code: ReasonCode::MalformedPayload,
                    field: String::new(),
                    message: format!(
                        "`each` records of profile {} need a JSON document",
                        self.id()
                    ),
                })),
            }
        }
        out
    }
}

fn map_one(
    spec: &RecordSpec,
    system: &str,
    source: &dyn Source,
    keyer: &PersonKeyer,
) -> Result<pb::Record, Rejection> {
    let reject = |code, field: &str, message: String| Rejection {
        stage: Stage::Map,
        code,
        field: field.to_owned(),
        message,
    };
    let mut record_id = String::new();
    for piece in &spec.record_id {
        match piece {
            Piece::Text(t) => record_id.push_str(t),
            Piece::Field(f) | Piece::PersonKey(f) => {
                let Some(v) = source.get(f) else {
                    return Err(reject(
                        ReasonCode::MissingField,
                        f,
                        format!("`{f}` is empty: the record id is made from it"),
                    ));
                };
                if matches!(piece, Piece::PersonKey(_)) {
                    let id = NationalId::parse(f, &v).map_err(|r| r.at(Stage::Map))?;
                    record_id.push_str(keyer.key(&id).as_str());
                } else {
                    record_id.push_str(&v);
                }
            }
        }
    }
    let version = match &spec.version {
        Version::Const(v) => *v,
        Version::From(from, formats) => {
            let text = source.get(from).ok_or_else(|| {
                reject(
                    ReasonCode::MissingField,
                    from,
                    format!("`{from}` is empty: the version is made from it"),
                )
            })?;
            let digits = match formats {
                Some(formats) => parse_date(&text, formats)
                    .map(|(d, t)| format!("{}{t}", d.replace('-', "")))
                    .ok_or_else(|| {
                        reject(
                            ReasonCode::BadDate,
                            from,
                            format!("`{from}` is not a time in {}", formats.join(", ")),
                        )
                    })?,
                None => text.into_owned(),
            };
            digits.parse::<i64>().map_err(|_| {
                reject(
                    ReasonCode::OutOfRange,
                    from,
                    format!("`{from}` is not a whole-number version"),
                )
            })?
        }
    };
    let mut body = serde_json::Map::new();
    for field in &spec.fields {
        let label = field.from.as_deref().unwrap_or_default();
        let canonical = format!("{}.{}", spec.kind, field.path.join("."));
        let named = || {
            if label.is_empty() {
                canonical.clone()
            } else {
                format!("{label} → {canonical}")
            }
        };
        let missing = || {
            reject(
                ReasonCode::MissingField,
                label,
                format!("`{}` is required and empty", named()),
            )
        };
        let value = if let Some(v) = &field.value {
            v.clone()
        } else if let Convert::List { split, codes } = &field.convert {
            let items: Vec<String> = match (source.value(label), split) {
                (Some(serde_json::Value::Array(items)), _) => items
                    .iter()
                    .filter_map(scalar)
                    .map(Cow::into_owned)
                    .collect(),
                (_, Some(sep)) => match source.get(label) {
                    Some(text) => text
                        .split(sep.as_str())
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty())
                        .collect(),
                    None => Vec::new(),
                },
                (_, None) => source
                    .get(label)
                    .map(|t| vec![t.into_owned()])
                    .unwrap_or_default(),
            };
            if items.is_empty() {
                if field.required {
                    return Err(missing());
                }
                continue;
            }
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match codes {
                    Some((table, name)) => match table.get(item.as_str()) {
                        Some(code) => out.push(code.clone()),
                        None => {
                            return Err(reject(
                                ReasonCode::UnknownCode,
                                label,
                                format!("`{}`: `{item}` is not in code table `{name}`", named()),
                            ))
                        }
                    },
                    None => out.push(item),
                }
            }
            out.into()
        } else if let Convert::Scores = &field.convert {
            let Some(serde_json::Value::Object(scores)) = source.value(label) else {
                continue;
            };
            let mut out = serde_json::Map::new();
            for (k, v) in scores {
                let n = scalar(v)
                    .and_then(|t| t.parse::<f64>().ok())
                    .filter(|n| n.is_finite());
                match n.and_then(serde_json::Number::from_f64) {
                    Some(n) => {
                        out.insert(k.clone(), n.into());
                    }
                    None => {
                        return Err(reject(
                            ReasonCode::OutOfRange,
                            label,
                            format!("`{}`: the score of `{k}` is not a number", named()),
                        ))
                    }
                }
            }
            out.into()
        } else {
            let Some(text) = source.get(label) else {
                if field.required {
                    return Err(missing());
                }
                continue;
            };
            match &field.convert {
                Convert::Text { upper } if *upper => text.to_uppercase().into(),
                Convert::Text { .. } => text.into_owned().into(),
                Convert::Code(table, name) => match table.get(text.as_ref()) {
                    Some(code) => code.clone().into(),
                    None => {
                        return Err(reject(
                            ReasonCode::UnknownCode,
                            label,
                            format!("`{}`: `{text}` is not in code table `{name}`", named()),
                        ))
                    }
                },
                Convert::Date(formats) => match parse_date(&text, formats) {
                    Some((date, _)) => date.into(),
                    None => {
                        return Err(reject(
                            ReasonCode::BadDate,
                            label,
                            format!("`{}` is not a date in {}", named(), formats.join(", ")),
                        ))
                    }
                },
                Convert::Number(factor, whole) => match text.replace(',', "").parse::<f64>() {
                    Ok(n) if n.is_finite() && *whole => ((n * factor).round() as i64).into(),
                    Ok(n) if n.is_finite() => {
                        let v = (n * factor * 100.0).round() / 100.0;
                        serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, Into::into)
                    }
                    _ => {
                        return Err(reject(
                            ReasonCode::OutOfRange,
                            label,
                            format!("`{}` is not a number", named()),
                        ))
                    }
                },
                Convert::List { .. } | Convert::Scores => unreachable!("handled above"),
            }
        };
        insert(&mut body, &field.path, value);
    }
    let json = serde_json::json!({
        "source": {
            "system": system,
            "kind": spec.kind,
            "record_id": record_id,
            "version": version,
        },
        spec.kind.clone(): body,
    });
    trainhub_proto::Format::Json
        .decode(json.to_string().as_bytes())
        .map_err(|message| reject(ReasonCode::MalformedPayload, "", message))
}

fn insert(
    map: &mut serde_json::Map<String, serde_json::Value>,
    path: &[String],
    value: serde_json::Value,
) {
    match path {
        [leaf] => {
            map.insert(leaf.clone(), value);
        }
        [head, rest @ ..] => {
            let inner = map
                .entry(head.clone())
                .or_insert_with(|| serde_json::Value::Object(Default::default()));
            if let serde_json::Value::Object(m) = inner {
                insert(m, rest, value);
            }
        }
        [] => {}
    }
}

fn template(text: &str) -> Result<Vec<Piece>, String> {
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
fn line_of(text: &str, needle: &str) -> Option<usize> {
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

fn line_at(text: &str, offset: usize) -> usize {
    text[..offset].matches('\n').count() + 1
}

const DATE_PATTERNS: [&str; 6] = [
    "yyyyMMdd",
    "yyyy.MM.dd",
    "yyyy-MM-dd",
    "yyyyMM",
    "yyyy.MM",
    "iso",
];

fn valid_date_pattern(p: &str) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

    const PROFILE: &str = r#"
[profile]
name = "t"
version = "2"

[codes.gender]
"男" = "1"
"女" = "2"

[[records]]
kind = "person"
record_id = "P-{ID}"
[records.fields]
national_id = { from = "NID", required = true }
name = { from = "NAME", required = true }
gender = { from = "SEX", codes = "gender" }
birth_date = { from = "BIRTH", date = ["yyyyMMdd", "yyyy.MM"] }
category = { value = "civil_servant" }

[[records]]
kind = "learning"
record_id = "L-{ID}"
when = "MINUTES"
version = { from = "AT", date = "yyyyMMddHHmmss" }
[records.fields]
"person_ref.national_id" = { from = "NID" }
course_id = { from = "COURSE" }
minutes = { from = "MINUTES", number = true }
hours = { from = "MINUTES", unit = "minutes", minutes_per_hour = 45 }
themes = { from = "THEMES", split = ";" }
"#;

    fn keyer() -> PersonKeyer {
        PersonKeyer::new(b"profile test")
    }

    fn row(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn maps_codes_dates_units_and_nested_fields() {
        let p = Profile::parse("t.toml", PROFILE).unwrap();
        assert_eq!(p.id(), "t@2");
        let source = row(&[
            ("ID", "7"),
            ("NID", "110105198103150018"),
            ("NAME", "张三"),
            ("SEX", "男"),
            ("BIRTH", "1981.03"),
            ("MINUTES", "90"),
            ("COURSE", "c1"),
            ("AT", "20240501203000"),
            ("THEMES", "party_theory; knowledge"),
        ]);
        let out = p.map("hr", &source, &keyer());
        assert_eq!(out.len(), 2);
        let person = out[0].as_ref().unwrap();
        let Some(pb::record::Body::Person(b)) = &person.record.body else {
            panic!()
        };
        assert_eq!(
            (b.gender.as_str(), b.birth_date.as_str()),
            ("1", "1981-03-01")
        );
        assert_eq!(b.category, "civil_servant");
        assert_eq!(person.record.source.as_ref().unwrap().record_id, "P-7");
        assert_eq!(person.origin["person.national_id"], "NID");
        let learning = out[1].as_ref().unwrap();
        let Some(pb::record::Body::Learning(l)) = &learning.record.body else {
            panic!()
        };
        assert_eq!(
            learning.record.source.as_ref().unwrap().version,
            20240501203000
        );
        assert_eq!((l.minutes, l.hours), (90.0, 2.0));
        assert_eq!(l.themes, ["party_theory", "knowledge"]);
        assert_eq!(
            l.person_ref.as_ref().unwrap().national_id,
            "110105198103150018"
        );
    }

    #[test]
    fn bad_values_are_map_rejections_naming_the_source_field() {
        let p = Profile::parse("t.toml", PROFILE).unwrap();
        let base = [("ID", "7"), ("NID", "x"), ("NAME", "n")];
        type Case<'a> = (&'a [(&'a str, &'a str)], ReasonCode, &'a str);
        let cases: [Case; 4] = [
            (&[("SEX", "男性")], ReasonCode::UnknownCode, "SEX"),
            (&[("BIRTH", "1981-13")], ReasonCode::BadDate, "BIRTH"),
            (&[("NAME", " ")], ReasonCode::MissingField, "NAME"),
            (&[("ID", "")], ReasonCode::MissingField, "ID"),
        ];
        for (extra, code, field) in cases {
            let mut source = row(&base);
            source.extend(row(extra));
            let err = p.map("hr", &source, &keyer()).remove(0).unwrap_err();
            assert_eq!(
                (err.stage, err.code, err.field.as_str()),
                (Stage::Map, code, field)
            );
            assert!(!err.message.contains("张"), "{}", err.message);
        }
        // `when`: no minutes, no learning record.
        assert_eq!(p.map("hr", &row(&base), &keyer()).len(), 1);
    }

    #[test]
    fn shipped_profiles_load() {
        for (name, _) in SHIPPED {
            let p = Profile::resolve(name).unwrap();
            assert_eq!(p.name(), *name);
        }
        let err = Profile::resolve("no-such-profile").unwrap_err().to_string();
        assert!(
            err.contains("shipped: cadre-a01, lrmx, party-school-json"),
            "{err}"
        );
    }

    #[test]
    fn dates_in_every_listed_format() {
        let all: Vec<String> = DATE_PATTERNS.iter().map(|s| s.to_string()).collect();
        for (text, want) in [
            ("19810315", "1981-03-15"),
            ("1981.03.15", "1981-03-15"),
            ("1981-03-15", "1981-03-15"),
            ("198103", "1981-03-01"),
            ("1981.03", "1981-03-01"),
            ("1981-03-15T08:00:00+08:00", "1981-03-15"),
        ] {
            assert_eq!(parse_date(text, &all).unwrap().0, want, "{text}");
        }
        for bad in ["1981.3.150", "19811315", "1981.13", "", "1981", "81.03.15"] {
            assert!(parse_date(bad, &all).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_bad_profile_names_file_line_and_field() {
        let cases = [
            (
                PROFILE.replace("course_id =", "course_idd ="),
                "course_idd",
                27,
            ),
            (
                PROFILE.replace("codes = \"gender\"", "codes = \"sex\""),
                "code table `[codes.sex]`",
                16,
            ),
            (
                PROFILE.replace("\"yyyy.MM\"]", "\"dd/MM/yyyy\"]"),
                "dd/MM/yyyy",
                17,
            ),
            (
                PROFILE.replace("minutes_per_hour = 45", "number = false"),
                "needs minutes_per_hour",
                29,
            ),
            (
                PROFILE.replace("kind = \"learning\"", "kind = \"lesson\""),
                "not a record kind",
                21,
            ),
            (
                PROFILE.replace("version = \"2\"", "version = 2"),
                "invalid type",
                4,
            ),
        ];
        for (text, want, line) in cases {
            let err = Profile::parse("bad.toml", &text).unwrap_err();
            assert!(err.to_string().contains(want), "{err}");
            assert_eq!(err.line, Some(line), "{err}");
            assert!(
                err.to_string().starts_with(&format!("bad.toml:{line}: ")),
                "{err}"
            );
        }
    }
}
