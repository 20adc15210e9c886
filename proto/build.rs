//! Compiles `trainhub/v1/*.proto` with `protox` (pure Rust, no system `protoc`) and writes the
//! descriptor set that server reflection serves.

use prost::Message;
use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "trainhub/v1/records.proto",
    "trainhub/v1/ingest.proto",
    "trainhub/v1/dossier.proto",
    "trainhub/v1/sync_health.proto",
    "trainhub/v1/review.proto",
];

/// The messages a partner may send as proto3 JSON: `Record`, its bodies and references.
const JSON_MESSAGES: &[&str] = &[
    ".trainhub.v1.Record",
    ".trainhub.v1.SourceRef",
    ".trainhub.v1.PersonRef",
    ".trainhub.v1.Person",
    ".trainhub.v1.PersonEvent",
    ".trainhub.v1.Link",
    ".trainhub.v1.TrainingClass",
    ".trainhub.v1.Enrollment",
    ".trainhub.v1.Attendance",
    ".trainhub.v1.Learning",
    ".trainhub.v1.Result",
    ".trainhub.v1.Evaluation",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let fds = protox::compile(PROTOS, ["."])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let encoded = fds.encode_to_vec();
    std::fs::write(out.join("trainhub_descriptor.bin"), &encoded)?;
    // serde for `Record` and its parts alone: partners' JSON decodes straight into the prost
    // types (unknown fields refused), without a dynamic message in between.
    pbjson_build::Builder::new()
        .register_descriptors(&encoded)?
        .btree_map(["."])
        .preserve_proto_field_names()
        .build(JSON_MESSAGES)?;
    tonic_prost_build::configure()
        // Ordered maps: the same message always encodes to the same bytes.
        .btree_map(".")
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
