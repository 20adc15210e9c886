//! One source into one record by its spec: the record id from its template, the version, and
//! each field through its conversion. A failure is a `map`-stage rejection naming the
//! partner's field.

use super::dates::parse_date;
use super::source::{scalar, Source};
use super::spec::{Convert, Field, Piece, RecordSpec, Version};
use std::borrow::Cow;
use trainhub_model::{NationalId, PersonKeyer, ReasonCode, Rejection, Stage};
use trainhub_proto::v1 as pb;

type Json = serde_json::Value;

fn reject(code: ReasonCode, field: &str, message: String) -> Rejection {
    Rejection {
        stage: Stage::Map,
        code,
        field: field.to_owned(),
        message,
    }
}

/// `source` mapped by `spec` into a record of `system`.
pub(super) fn map_one(
    spec: &RecordSpec,
    system: &str,
    source: &dyn Source,
    keyer: &PersonKeyer,
) -> Result<pb::Record, Rejection> {
    let record_id = record_id(spec, source, keyer)?;
    let version = version(spec, source)?;
    let mut body = serde_json::Map::new();
    for field in &spec.fields {
        let at = Place::new(spec, field);
        if let Some(value) = value(field, source, &at)? {
            insert(&mut body, &field.path, value);
        }
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

fn record_id(
    spec: &RecordSpec,
    source: &dyn Source,
    keyer: &PersonKeyer,
) -> Result<String, Rejection> {
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
    Ok(record_id)
}

fn version(spec: &RecordSpec, source: &dyn Source) -> Result<i64, Rejection> {
    let (from, formats) = match &spec.version {
        Version::Const(v) => return Ok(*v),
        Version::From(from, formats) => (from, formats),
    };
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
    })
}

/// Where a field's value comes from, for messages: the source path and the canonical field.
struct Place<'a> {
    label: &'a str,
    canonical: String,
}

impl<'a> Place<'a> {
    fn new(spec: &RecordSpec, field: &'a Field) -> Place<'a> {
        Place {
            label: field.from.as_deref().unwrap_or_default(),
            canonical: format!("{}.{}", spec.kind, field.path.join(".")),
        }
    }

    /// `A0104 → person.gender`, or the canonical field alone for a constant.
    fn named(&self) -> String {
        if self.label.is_empty() {
            self.canonical.clone()
        } else {
            format!("{} → {}", self.label, self.canonical)
        }
    }

    fn refuse(&self, code: ReasonCode, message: String) -> Rejection {
        reject(code, self.label, message)
    }

    fn missing(&self) -> Rejection {
        self.refuse(
            ReasonCode::MissingField,
            format!("`{}` is required and empty", self.named()),
        )
    }

    fn unknown(&self, item: &str, table: &str) -> Rejection {
        self.refuse(
            ReasonCode::UnknownCode,
            format!(
                "`{}`: `{item}` is not in code table `{table}`",
                self.named()
            ),
        )
    }
}

/// The field's value, `None` when the source has none (and the field is not required).
fn value(field: &Field, source: &dyn Source, at: &Place<'_>) -> Result<Option<Json>, Rejection> {
    if let Some(v) = &field.value {
        return Ok(Some(v.clone()));
    }
    match &field.convert {
        Convert::List { split, codes } => {
            let items = list_items(source, at.label, split.as_deref());
            if items.is_empty() {
                return if field.required {
                    Err(at.missing())
                } else {
                    Ok(None)
                };
            }
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match codes {
                    Some((table, name)) => match table.get(item.as_str()) {
                        Some(code) => out.push(code.clone()),
                        None => return Err(at.unknown(&item, name)),
                    },
                    None => out.push(item),
                }
            }
            Ok(Some(out.into()))
        }
        Convert::Scores => scores(source, at),
        convert => {
            let Some(text) = source.get(at.label) else {
                return if field.required {
                    Err(at.missing())
                } else {
                    Ok(None)
                };
            };
            scalar_value(convert, &text, at).map(Some)
        }
    }
}

/// A list's items: a JSON array's, or the text split on `split`, or the text as one item.
fn list_items(source: &dyn Source, label: &str, split: Option<&str>) -> Vec<String> {
    match (source.value(label), split) {
        (Some(Json::Array(items)), _) => items
            .iter()
            .filter_map(scalar)
            .map(Cow::into_owned)
            .collect(),
        (_, Some(sep)) => match source.get(label) {
            Some(text) => text
                .split(sep)
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect(),
            None => Vec::new(),
        },
        (_, None) => source
            .get(label)
            .map(|t| vec![t.into_owned()])
            .unwrap_or_default(),
    }
}

/// A map of scores (a JSON object of numbers).
fn scores(source: &dyn Source, at: &Place<'_>) -> Result<Option<Json>, Rejection> {
    let Some(Json::Object(scores)) = source.value(at.label) else {
        return Ok(None);
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
                return Err(at.refuse(
                    ReasonCode::OutOfRange,
                    format!("`{}`: the score of `{k}` is not a number", at.named()),
                ))
            }
        }
    }
    Ok(Some(out.into()))
}

/// One text value through its conversion.
fn scalar_value(convert: &Convert, text: &str, at: &Place<'_>) -> Result<Json, Rejection> {
    match convert {
        Convert::Text { upper: true } => Ok(text.to_uppercase().into()),
        Convert::Text { upper: false } => Ok(text.to_owned().into()),
        Convert::Code(table, name) => table
            .get(text)
            .map(|code| code.clone().into())
            .ok_or_else(|| at.unknown(text, name)),
        Convert::Date(formats) => parse_date(text, formats)
            .map(|(date, _)| date.into())
            .ok_or_else(|| {
                at.refuse(
                    ReasonCode::BadDate,
                    format!("`{}` is not a date in {}", at.named(), formats.join(", ")),
                )
            }),
        Convert::Number(factor, whole) => match text.replace(',', "").parse::<f64>() {
            Ok(n) if n.is_finite() && *whole => Ok(((n * factor).round() as i64).into()),
            Ok(n) if n.is_finite() => {
                let v = (n * factor * 100.0).round() / 100.0;
                Ok(serde_json::Number::from_f64(v).map_or(Json::Null, Into::into))
            }
            _ => Err(at.refuse(
                ReasonCode::OutOfRange,
                format!("`{}` is not a number", at.named()),
            )),
        },
        Convert::List { .. } | Convert::Scores => Ok(Json::Null),
    }
}

fn insert(map: &mut serde_json::Map<String, Json>, path: &[String], value: Json) {
    match path {
        [leaf] => {
            map.insert(leaf.clone(), value);
        }
        [head, rest @ ..] => {
            let inner = map
                .entry(head.clone())
                .or_insert_with(|| Json::Object(Default::default()));
            if let Json::Object(m) = inner {
                insert(m, rest, value);
            }
        }
        [] => {}
    }
}
