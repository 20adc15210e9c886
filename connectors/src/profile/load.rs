//! A profile's text into its checked spec: every kind and field checked against the canonical
//! descriptor, every code table, date format and unit against what it is used for. An error
//! names the file, the line and the field.

use super::dates::valid_date_pattern;
use super::spec::{
    line_at, line_of, template, Convert, Field, FieldFile, ProfileFile, RecordFile, RecordSpec,
    Version, VersionFile,
};
use super::ProfileError;
use prost_reflect::{FieldDescriptor, MessageDescriptor};
use std::collections::BTreeMap;
use std::sync::Arc;

type Tables = BTreeMap<String, Arc<BTreeMap<String, String>>>;

/// What loading needs to hand: the file's name and text (for errors) and its code tables.
struct Loader<'a> {
    file: &'a str,
    text: &'a str,
    tables: Tables,
}

impl Loader<'_> {
    /// An error at the line where `needle` appears.
    fn fail(&self, needle: Option<&str>, message: String) -> ProfileError {
        ProfileError {
            file: self.file.to_owned(),
            line: needle.and_then(|n| line_of(self.text, n)),
            message,
        }
    }

    fn record(&self, spec: RecordFile) -> Result<RecordSpec, ProfileError> {
        let record = trainhub_proto::format::record_descriptor();
        let kind_field = record
            .get_field_by_name(&spec.kind)
            .filter(|f| f.containing_oneof().is_some() && f.kind().as_message().is_some());
        let Some(kind_field) = kind_field else {
            return Err(self.fail(
                Some(&format!("\"{}\"", spec.kind)),
                format!("kind `{}` is not a record kind", spec.kind),
            ));
        };
        let body = kind_field.kind().as_message().expect("checked").clone();
        let mut fields = Vec::new();
        let mut origin = BTreeMap::new();
        for (name, f) in spec.fields {
            if let Some(from) = &f.from {
                origin.insert(format!("{}.{name}", spec.kind), from.clone());
            }
            fields.push(self.field(&spec.kind, &body, &name, f)?);
        }
        let version = match spec.version {
            None => Version::Const(1),
            Some(VersionFile::Const(v)) => Version::Const(v),
            Some(VersionFile::From { from, date }) => Version::From(from, date.map(|d| d.list())),
        };
        Ok(RecordSpec {
            record_id: template(&spec.record_id)
                .map_err(|m| self.fail(Some(&spec.record_id), format!("record_id: {m}")))?,
            kind: spec.kind,
            version,
            when: spec.when,
            each: spec.each,
            fields,
            origin: Arc::new(origin),
        })
    }

    fn field(
        &self,
        kind: &str,
        body: &MessageDescriptor,
        name: &str,
        f: FieldFile,
    ) -> Result<Field, ProfileError> {
        let here = Some(name);
        let path: Vec<String> = name.split('.').map(str::to_owned).collect();
        let leaf = self.leaf(kind, body, name, &path)?;
        let convert = self.numeric(name, &leaf, self.convert(name, &leaf, &f)?)?;
        let value = match (&f.from, &f.value) {
            (Some(_), None) => None,
            (None, Some(v)) => Some(
                serde_json::to_value(v)
                    .map_err(|e| self.fail(here, format!("field `{name}`: value: {e}")))?,
            ),
            _ => {
                return Err(self.fail(
                    here,
                    format!("field `{name}` needs exactly one of `from` and `value`"),
                ))
            }
        };
        Ok(Field {
            path,
            from: f.from,
            value,
            required: f.required,
            convert,
        })
    }

    /// The canonical field a dotted path names inside the body.
    fn leaf(
        &self,
        kind: &str,
        body: &MessageDescriptor,
        name: &str,
        path: &[String],
    ) -> Result<FieldDescriptor, ProfileError> {
        let mut message = body.clone();
        for (i, part) in path.iter().enumerate() {
            let Some(field) = message.get_field_by_name(part) else {
                return Err(self.fail(
                    Some(name),
                    format!("field `{name}` is not a field of {kind}"),
                ));
            };
            if i + 1 == path.len() {
                return Ok(field);
            }
            match field.kind().as_message() {
                Some(m) => message = m.clone(),
                None => {
                    return Err(self.fail(
                        Some(name),
                        format!("field `{name}`: `{part}` has no fields"),
                    ))
                }
            }
        }
        Err(self.fail(Some(name), format!("field `{name}` is empty")))
    }

    fn table(
        &self,
        field: &str,
        table: &str,
    ) -> Result<Arc<BTreeMap<String, String>>, ProfileError> {
        self.tables.get(table).cloned().ok_or_else(|| {
            self.fail(
                Some(field),
                format!("field `{field}`: no code table `[codes.{table}]`"),
            )
        })
    }

    /// How the field's text becomes its value, as its settings say.
    fn convert(
        &self,
        name: &str,
        leaf: &FieldDescriptor,
        f: &FieldFile,
    ) -> Result<Convert, ProfileError> {
        let here = Some(name);
        if leaf.is_map() {
            return Ok(Convert::Scores);
        }
        if leaf.is_list() {
            if f.date.is_some() || f.unit.is_some() || f.number {
                return Err(self.fail(
                    here,
                    format!("field `{name}` is a list: it takes `split` and `codes` only"),
                ));
            }
            let codes = match &f.codes {
                Some(t) => Some((self.table(name, t)?, t.clone())),
                None => None,
            };
            return Ok(Convert::List {
                split: f.split.clone(),
                codes,
            });
        }
        if let Some(table) = &f.codes {
            return Ok(Convert::Code(self.table(name, table)?, table.clone()));
        }
        if let Some(formats) = &f.date {
            let formats = formats.list();
            if let Some(bad) = formats.iter().find(|p| !valid_date_pattern(p)) {
                return Err(self.fail(here, format!("field `{name}`: date format `{bad}` is not one of yyyyMMdd, yyyy.MM.dd, yyyy-MM-dd, yyyyMM, yyyy.MM, iso (or with HHmmss)")));
            }
            return Ok(Convert::Date(formats));
        }
        if let Some(unit) = &f.unit {
            return Ok(Convert::Number(self.unit(name, unit, f)?, false));
        }
        if f.number {
            return Ok(Convert::Number(1.0, false));
        }
        if f.split.is_some() {
            return Err(self.fail(
                here,
                format!("field `{name}`: `split` is for list fields only"),
            ));
        }
        Ok(Convert::Text { upper: f.upper })
    }

    /// The factor from a unit into 学时, by the source's rule.
    fn unit(&self, name: &str, unit: &str, f: &FieldFile) -> Result<f64, ProfileError> {
        let here = Some(name);
        match (unit, f.minutes_per_hour, f.hours_per_day) {
            ("hours", _, _) => Ok(1.0),
            ("minutes", Some(m), _) if m > 0.0 => Ok(1.0 / m),
            ("days", _, Some(h)) if h > 0.0 => Ok(h),
            ("minutes", ..) => Err(self.fail(here, format!("field `{name}`: unit minutes needs minutes_per_hour (the source's rule, e.g. 45)"))),
            ("days", ..) => Err(self.fail(here, format!("field `{name}`: unit days needs hours_per_day (the source's rule, e.g. 8)"))),
            (other, ..) => Err(self.fail(here, format!("field `{name}`: unit `{other}` is not hours, minutes or days"))),
        }
    }

    /// A number conversion fitted to the field: whole for integer fields; refused for others.
    fn numeric(
        &self,
        name: &str,
        leaf: &FieldDescriptor,
        convert: Convert,
    ) -> Result<Convert, ProfileError> {
        use prost_reflect::Kind as K;
        let Convert::Number(factor, _) = convert else {
            return Ok(convert);
        };
        match leaf.kind() {
            K::Double | K::Float => Ok(Convert::Number(factor, false)),
            K::Int32 | K::Int64 | K::Uint32 | K::Uint64 | K::Sint32 | K::Sint64 => {
                Ok(Convert::Number(factor, true))
            }
            _ => Err(self.fail(Some(name), format!("field `{name}` is not a number field"))),
        }
    }
}

/// Parses a profile's text (`file` names it in errors): its name, version and record specs.
pub(super) fn parse(
    file: &str,
    text: &str,
) -> Result<(String, String, Vec<RecordSpec>), ProfileError> {
    let parsed: ProfileFile = toml::from_str(text).map_err(|e| ProfileError {
        file: file.to_owned(),
        line: e.span().map(|s| line_at(text, s.start)),
        message: e.message().to_owned(),
    })?;
    let loader = Loader {
        file,
        text,
        tables: parsed
            .codes
            .into_iter()
            .map(|(k, v)| (k, Arc::new(v)))
            .collect(),
    };
    let records = parsed
        .records
        .into_iter()
        .map(|spec| loader.record(spec))
        .collect::<Result<Vec<_>, _>>()?;
    if records.is_empty() {
        return Err(loader.fail(None, "the profile has no [[records]]".into()));
    }
    Ok((parsed.profile.name, parsed.profile.version, records))
}
