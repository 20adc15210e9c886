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
    let mut message = DynamicMessage::new(record_descriptor().clone());
    message
        .transcode_from(record)
        .expect("a Record transcodes to its own descriptor");
    let options = prost_reflect::SerializeOptions::new().use_proto_field_name(true);
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::new(&mut out);
    message
        .serialize_with_options(&mut ser, &options)
        .expect("JSON serialisation into memory cannot fail");
    out
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

fn decode_json(bytes: &[u8]) -> Result<v1::Record, String> {
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
}
