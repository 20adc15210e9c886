//! Mapping profiles (DESIGN §7): declarative, versioned TOML files that turn a partner's own
//! rows or documents into canonical records. Pure: a profile maps one [`Source`] (a CSV/XLSX
//! row, a JSON object, the elements of an XML file) to records; reading files and committing
//! are the readers' and the pipeline's business.
//!
//! Layout: [`source`] (where values are read), `spec` (the file's shapes and the checked spec),
//! `load` (file → spec, with errors naming file, line and field), `map` (source → records),
//! `dates` (the date formats).
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

mod dates;
mod load;
mod map;
pub mod source;
mod spec;

pub use dates::parse_date;
pub use source::Source;

use source::{matches, Scoped};
use spec::RecordSpec;
use std::collections::BTreeMap;
use std::sync::Arc;
use trainhub_model::{PersonKeyer, ReasonCode, Rejection, Stage};
use trainhub_proto::v1 as pb;

/// The profiles shipped with trainhub (`connectors/profiles/<name>/profile.toml`), by name.
pub const SHIPPED: &[(&str, &str)] = &[
    (
        "cadre-a01",
        include_str!("../../profiles/cadre-a01/profile.toml"),
    ),
    ("lrmx", include_str!("../../profiles/lrmx/profile.toml")),
    (
        "party-school-json",
        include_str!("../../profiles/party-school-json/profile.toml"),
    ),
];

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

/// A loaded profile.
#[derive(Debug, Clone)]
pub struct Profile {
    name: String,
    version: String,
    records: Vec<RecordSpec>,
    /// The file it was loaded from (absolute), if not shipped.
    file: Option<Arc<str>>,
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
        let mut profile = Profile::parse(&path.display().to_string(), &text)?;
        let absolute = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
        profile.file = Some(absolute.display().to_string().into());
        Ok(profile)
    }

    /// The file it was loaded from, if it is not a shipped profile.
    pub fn file(&self) -> Option<&Arc<str>> {
        self.file.as_ref()
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
        let (name, version, records) = load::parse(file, text)?;
        Ok(Profile {
            name,
            version,
            records,
            file: None,
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
                map::map_one(spec, system, source, keyer).map(|record| Mapped {
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

#[cfg(test)]
mod tests;
