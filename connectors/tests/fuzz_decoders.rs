//! Fuzzing the decoders that take outside bytes (issue 6): protobuf and JSON records as they
//! arrive over gRPC, AMQP or a dead-letter replay, then validation into the canonical model.
//! Random bytes, and valid records damaged at random — truncated, bytes flipped, fields given
//! hostile values. Whatever comes in, the answer is a record or a rejection with its stage;
//! never a panic. Each property runs a bounded number of cases (`PROPTEST_CASES` raises it for
//! a longer run); failures proptest finds are kept in `proptest-regressions/` and rerun first.

use proptest::prelude::*;
use prost::Message;
use trainhub_connectors::synthetic;
use trainhub_model::{PersonKeyer, Stage};
use trainhub_pipeline::convert::canonical;
use trainhub_pipeline::Inbound;
use trainhub_proto::v1 as pb;
use trainhub_proto::Format;

/// Cases per property: 2,000, or `PROPTEST_CASES` for a longer run.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

fn keyer() -> PersonKeyer {
    PersonKeyer::new(b"fuzz secret")
}

/// Some valid records of every kind the synthetic partners send.
fn samples() -> Vec<pb::Record> {
    let records = synthetic::population(101, 12).records;
    let mut kinds = std::collections::BTreeMap::new();
    for r in records {
        let kind = r
            .source
            .as_ref()
            .map(|s| s.kind.clone())
            .unwrap_or_default();
        kinds.entry(kind).or_insert_with(Vec::new).push(r);
    }
    kinds
        .into_values()
        .flat_map(|v| v.into_iter().take(3))
        .collect()
}

/// Decodes and validates as the pipeline does; checks the shape of any rejection.
fn decode_and_validate(payload: Vec<u8>, format: Format) {
    let inbound = Inbound::decode(payload, format, String::new());
    match inbound.record {
        Ok(record) => {
            if let Err(rejection) = canonical(&record, &keyer()) {
                assert_ne!(rejection.stage, Stage::Decode, "{rejection:?}");
                assert!(!rejection.message.is_empty());
            }
        }
        Err(rejection) => {
            assert_eq!(rejection.stage, Stage::Decode);
            assert!(!rejection.message.is_empty());
        }
    }
}

/// Replaces every string value of a JSON document by `hostile`, one at a time.
fn each_string_replaced(
    value: &serde_json::Value,
    hostile: &serde_json::Value,
) -> Vec<serde_json::Value> {
    fn paths(v: &serde_json::Value, at: String, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    paths(x, format!("{at}/{k}"), out);
                }
            }
            serde_json::Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    paths(x, format!("{at}/{i}"), out);
                }
            }
            _ => out.push(at),
        }
    }
    let mut leaves = Vec::new();
    paths(value, String::new(), &mut leaves);
    leaves
        .into_iter()
        .map(|p| {
            let mut v = value.clone();
            if let Some(slot) = v.pointer_mut(&p) {
                *slot = hostile.clone();
            }
            v
        })
        .collect()
}

fn hostile_json() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        any::<String>().prop_map(serde_json::Value::from),
        "[0-9]{1,40}".prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::json!(f)),
        Just(serde_json::Value::Null),
        Just(serde_json::json!({"nested": [1, {"deeper": "x"}]})),
        Just(serde_json::json!([])),
        Just(serde_json::Value::from(-1)),
        Just(serde_json::Value::from("9999-99-99")),
        Just(serde_json::Value::from("\u{0}\u{202e}")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_as_protobuf(payload in proptest::collection::vec(any::<u8>(), 0..2048)) {
        decode_and_validate(payload, Format::Protobuf);
    }

    #[test]
    fn random_bytes_as_json(payload in proptest::collection::vec(any::<u8>(), 0..2048)) {
        decode_and_validate(payload, Format::Json);
    }

    #[test]
    fn random_text_as_json(text in "\\PC{0,400}") {
        decode_and_validate(text.into_bytes(), Format::Json);
    }

    #[test]
    fn damaged_protobuf_records(
        pick in any::<prop::sample::Index>(),
        cut in any::<prop::sample::Index>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
    ) {
        let samples = samples();
        let mut bytes = pick.get(&samples).encode_to_vec();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= value;
        }
        let keep = cut.index(bytes.len() + 1);
        bytes.truncate(keep);
        decode_and_validate(bytes, Format::Protobuf);
    }

    #[test]
    fn json_records_with_hostile_values(
        pick in any::<prop::sample::Index>(),
        hostile in hostile_json(),
    ) {
        let samples = samples();
        let json: serde_json::Value =
            serde_json::from_slice(&trainhub_proto::encode_json(pick.get(&samples))).unwrap();
        for damaged in each_string_replaced(&json, &hostile) {
            decode_and_validate(serde_json::to_vec(&damaged).unwrap(), Format::Json);
        }
    }
}

/// Deep nesting must not exhaust the stack.
#[test]
fn deeply_nested_json_is_refused_not_a_crash() {
    let deep = "[".repeat(100_000) + &"]".repeat(100_000);
    decode_and_validate(deep.into_bytes(), Format::Json);
    let deep_object = "{\"source\":".repeat(50_000) + "{}" + &"}".repeat(50_000);
    decode_and_validate(deep_object.into_bytes(), Format::Json);
}

/// A protobuf length prefix claiming far more than the message holds is refused without
/// allocating what it claims.
#[test]
fn lying_length_prefixes_are_refused() {
    // Field 1 (source), length-delimited, claiming 2^62 bytes.
    let mut bytes = vec![0x0a];
    prost::encoding::encode_varint(1 << 62, &mut bytes);
    bytes.extend_from_slice(b"short");
    decode_and_validate(bytes, Format::Protobuf);
}
