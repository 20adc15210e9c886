//! Decoding one canonical `Record` from the bytes a partner sent: protobuf, or the proto3 JSON
//! mapping with the original (snake_case) field names (DESIGN §6.3). Shared by the connectors
//! that receive bytes and by dead-letter replay, which decodes the kept bytes again.

use crate::v1;
use prost::Message;
use prost_reflect::{DescriptorPool, DeserializeOptions, DynamicMessage, MessageDescriptor};
use std::sync::OnceLock;

/// How a payload encodes its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// The protobuf encoding of `trainhub.v1.Record`.
    Protobuf,
    /// proto3 JSON of `trainhub.v1.Record`: `int64` as a string or a number, enums by name,
    /// unknown fields refused.
    Json,
}

impl Format {
    /// The name used in configuration and in the dead-letter table.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Protobuf => "protobuf",
            Format::Json => "json",
        }
    }

    /// Parses a configuration or stored name.
    pub fn parse(name: &str) -> Option<Format> {
        match name {
            "protobuf" => Some(Format::Protobuf),
            "json" => Some(Format::Json),
            _ => None,
        }
    }

    /// Decodes one record from `bytes`. The error is a sentence for operators that never
    /// repeats a value from the payload (it may hold a national ID or a name).
    pub fn decode(self, bytes: &[u8]) -> Result<v1::Record, String> {
        match self {
            Format::Protobuf => v1::Record::decode(bytes)
                .map_err(|e| format!("not a protobuf trainhub.v1.Record: {e}")),
            Format::Json => decode_json(bytes),
        }
    }
}

/// Encodes `record` as proto3 JSON with the original field names: what a partner publishes
/// with `format = "json"`.
pub fn encode_json(record: &v1::Record) -> Vec<u8> {
    serde_json::to_vec(record).expect("JSON serialisation into memory cannot fail")
}

/// Any `trainhub.v1` message as pretty proto3 JSON with the `.proto` field names; `name` is its
/// full name, e.g. `trainhub.v1.Dossier`.
pub fn to_json(message: &impl prost::Message, name: &str) -> Result<String, String> {
    let descriptor = DescriptorPool::decode(crate::FILE_DESCRIPTOR_SET)
        .map_err(|e| e.to_string())?
        .get_message_by_name(name)
        .ok_or_else(|| format!("no message {name}"))?;
    let dynamic = DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())
        .map_err(|e| e.to_string())?;
    let options = prost_reflect::SerializeOptions::new().use_proto_field_name(true);
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::pretty(&mut out);
    dynamic
        .serialize_with_options(&mut ser, &options)
        .map_err(|e| e.to_string())?;
    String::from_utf8(out).map_err(|e| e.to_string())
}

/// The descriptor of `trainhub.v1.Record`: mapping profiles check their field names against it.
pub fn record_descriptor() -> &'static MessageDescriptor {
    static DESCRIPTOR: OnceLock<MessageDescriptor> = OnceLock::new();
    DESCRIPTOR.get_or_init(|| {
        DescriptorPool::decode(crate::FILE_DESCRIPTOR_SET)
            .expect("the embedded descriptor set is valid")
            .get_message_by_name("trainhub.v1.Record")
            .expect("trainhub.v1.Record is in the descriptor set")
    })
}

/// Decodes proto3 JSON. The serde impls that `build.rs` generates for the prost types take a
/// record straight into `v1::Record`, five times as fast as the reflective decoder; they are
/// stricter in a few corners of the mapping (a `null` for a scalar field, which proto3 JSON
/// reads as the field's default), so what they refuse goes to the reflective decoder, which
/// decides, and whose message an operator sees.
fn decode_json(bytes: &[u8]) -> Result<v1::Record, String> {
    decode_json_direct(bytes).or_else(|_| decode_json_reflective(bytes))
}

fn decode_json_direct(bytes: &[u8]) -> serde_json::Result<v1::Record> {
    use serde::Deserialize;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let record = v1::Record::deserialize(&mut de)?;
    de.end().map(|()| record)
}

fn decode_json_reflective(bytes: &[u8]) -> Result<v1::Record, String> {
    let options = DeserializeOptions::new().deny_unknown_fields(true);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let message =
        DynamicMessage::deserialize_with_options(record_descriptor().clone(), &mut de, &options)
            .and_then(|m| de.end().map(|()| m))
            .map_err(|e| {
                format!(
                    "not a JSON trainhub.v1.Record: {}",
                    redact_values(&e.to_string())
                )
            })?;
    message
        .transcode_to::<v1::Record>()
        .map_err(|e| format!("not a JSON trainhub.v1.Record: {e}"))
}

/// Replaces every double-quoted value in a parser message with `"…"`: serde names the
/// offending value (`invalid type: string "…"`), which may be personal data. Field names are
/// quoted with backticks and stay.
fn redact_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut quoted = false;
    for c in message.chars() {
        if c == '"' {
            if quoted {
                out.push_str("…\"");
            } else {
                out.push('"');
            }
            quoted = !quoted;
        } else if !quoted {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PERSON: &str = r#"{"source":{"system":"hr","kind":"person","record_id":"p1","version":"3"},
        "person":{"national_id":"11010519491231002X","name":"张三","gender":"1"}}"#;

    #[test]
    fn json_uses_proto_field_names_and_string_int64() {
        let r = Format::Json.decode(PERSON.as_bytes()).expect("decodes");
        let source = r.source.expect("source");
        assert_eq!((source.system.as_str(), source.version), ("hr", 3));
        match r.body {
            Some(v1::record::Body::Person(p)) => assert_eq!(p.name, "张三"),
            other => panic!("unexpected body {other:?}"),
        }
        let numeric = PERSON.replace(r#""3""#, "3");
        assert_eq!(
            Format::Json
                .decode(numeric.as_bytes())
                .unwrap()
                .source
                .unwrap()
                .version,
            3
        );
    }

    #[test]
    fn unknown_fields_and_bad_values_are_refused_without_echoing_values() {
        let unknown = PERSON.replace(r#""gender":"1""#, r#""sex":"1""#);
        let e = Format::Json.decode(unknown.as_bytes()).unwrap_err();
        assert!(e.contains("sex"), "{e}");
        let bad = PERSON.replace(r#""version":"3""#, r#""version":"11010519491231002X""#);
        let e = Format::Json.decode(bad.as_bytes()).unwrap_err();
        assert!(!e.contains("11010519491231002X"), "{e}");
        assert!(Format::Json.decode(b"{\"source\":").is_err());
        assert!(Format::Json.decode(b"{} trailing").is_err());
    }

    #[test]
    fn protobuf_round_trips() {
        let r = Format::Json.decode(PERSON.as_bytes()).unwrap();
        assert_eq!(Format::Protobuf.decode(&r.encode_to_vec()).unwrap(), r);
        assert!(Format::Protobuf.decode(&[0xff, 0xff, 0xff]).is_err());
        let json = encode_json(&r);
        assert!(std::str::from_utf8(&json)
            .unwrap()
            .contains("\"record_id\""));
        assert_eq!(Format::Json.decode(&json).unwrap(), r);
    }

    /// One record of each kind, every field set, as a partner would send it.
    const SAMPLES: &[&str] = &[
        PERSON,
        r#"{"source":{"system":"hr","kind":"person_event","record_id":"e1","version":2},"deleted":false,
            "person_event":{"person_ref":{"national_id":"11010519491231002X"},"event":"promoted",
            "effective_date":"2024-01-02","rank":"chu","unit_code":"U1"}}"#,
        r#"{"source":{"system":"lms","kind":"link","record_id":"l1","version":"1"},
            "link":{"national_id":"11010519491231002X","account_system":"lms","account_id":"u9"}}"#,
        r#"{"source":{"system":"lms","kind":"training_class","record_id":"c1","version":"1"},
            "training_class":{"class_id":"c1","provider":"school","title":"t","topic":"x",
            "themes":["a","b"],"format":"in_person","category":"k","start_date":"2024-01-01",
            "end_date":"2024-01-05","planned_hours":40.5,"capacity":30}}"#,
        r#"{"source":{"system":"lms","kind":"enrollment","record_id":"n1","version":"1"},
            "enrollment":{"person_ref":{"account_system":"lms","account_id":"u9"},"class_id":"c1",
            "status":"enrolled","dispatch":"unit","enrolled_at":"2024-01-01"}}"#,
        r#"{"source":{"system":"lms","kind":"attendance","record_id":"a1","version":"4"},
            "attendance":{"person_ref":{"national_id":"11010519491231002X"},"class_id":"c1",
            "date":"2024-01-02","hours":3.5,"kind":"in_person"}}"#,
        r#"{"source":{"system":"lms","kind":"learning","record_id":"g1","version":"1"},
            "learning":{"person_ref":{"national_id":"11010519491231002X"},"course_id":"k1",
            "course_title":"c","themes":["a"],"minutes":45,"hours":0.75,"completed_at":"2024-02-01"}}"#,
        r#"{"source":{"system":"lms","kind":"result","record_id":"r1","version":"1"},
            "result":{"person_ref":{"national_id":"11010519491231002X"},"class_id":"c1",
            "outcome":"pass","score":88.5,"dimensions":{"a":1,"b":2.5},"certificate_no":"N1",
            "assessed_at":"2024-01-05"}}"#,
        r#"{"source":{"system":"lms","kind":"evaluation","record_id":"v1","version":"1"},"deleted":true,
            "evaluation":{"person_ref":{"national_id":"11010519491231002X"},"class_id":"c1",
            "rater_role":"peer","dimensions":{"a":4},"evaluated_at":"2024-01-06"}}"#,
    ];

    /// Every object member of `value` replaced, one at a time, by each of `hostile`.
    fn variants(
        value: &serde_json::Value,
        hostile: &[serde_json::Value],
    ) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        if let Some(map) = value.as_object() {
            for (key, inner) in map {
                for h in hostile {
                    let mut v = value.clone();
                    v[key.as_str()] = h.clone();
                    out.push(v);
                }
                for inner in variants(inner, hostile) {
                    let mut v = value.clone();
                    v[key.as_str()] = inner;
                    out.push(v);
                }
            }
        }
        out
    }

    /// The direct decoder never accepts what the reflective one refuses or reads differently:
    /// each sample with every member replaced by odd values, plus cases written out as text.
    #[test]
    fn direct_decoder_agrees_with_the_reflective_one() {
        use serde_json::json;
        let hostile = [
            json!(null),
            json!(true),
            json!(""),
            json!("7"),
            json!("-7"),
            json!("1.5"),
            json!("NaN"),
            json!("Infinity"),
            json!("-Infinity"),
            json!("1e3"),
            json!(" 7"),
            json!(7),
            json!(-7),
            json!(1.5),
            json!(1e300),
            json!(i64::MAX),
            json!(u64::MAX),
            json!(-0.0),
            json!([]),
            json!({}),
            json!([1.0]),
            json!({"a": 1}),
            json!("张三"),
        ];
        let mut inputs: Vec<Vec<u8>> = Vec::new();
        for sample in SAMPLES {
            let value: serde_json::Value = serde_json::from_str(sample).unwrap();
            inputs.push(sample.as_bytes().to_vec());
            inputs.extend(
                variants(&value, &hostile)
                    .iter()
                    .map(|v| v.to_string().into_bytes()),
            );
        }
        for text in [
            r#"{"source":{"system":"a","recordId":"x","version":"1"}}"#,
            r#"{"source":{"version":1e400}}"#,
            r#"{"source":{"version":"7.0"}}"#,
            r#"{"source":{"version":7.0}}"#,
            r#"{"source":{"version":"0x10"}}"#,
            r#"{"source":{"system":"a","system":"b"}}"#,
            r#"{"person":{"name":"a"},"link":{"account_id":"b"}}"#,
            r#"{"person":null}"#,
            r#"{"result":{"dimensions":{"a":null}}}"#,
            r#"{"result":{"dimensions":{"a":"NaN"}}}"#,
            r#"{"training_class":{"capacity":3000000000}}"#,
            r#"{"training_class":{"capacity":"-1"}}"#,
            r#"{"training_class":{"themes":null}}"#,
            r#"{"training_class":{"themes":[null]}}"#,
            r#"{} {}"#,
            "\u{feff}{}",
            r#"[]"#,
            r#"null"#,
        ] {
            inputs.push(text.as_bytes().to_vec());
        }
        let mut direct = 0;
        for input in &inputs {
            let text = String::from_utf8_lossy(input);
            let reference = decode_json_reflective(input).map(|r| r.encode_to_vec());
            if let Ok(record) = decode_json_direct(input) {
                direct += 1;
                let reference = reference.as_ref().unwrap_or_else(|e| {
                    panic!("direct accepts what the reflective decoder refuses: {text}: {e}")
                });
                assert_eq!(&record.encode_to_vec(), reference, "{text}");
            }
            let decoded = decode_json(input).map(|r| r.encode_to_vec());
            assert_eq!(decoded, reference, "{text}");
        }
        assert!(
            direct > SAMPLES.len(),
            "the direct decoder took {direct} inputs"
        );
    }
}
