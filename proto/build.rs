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

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let fds = protox::compile(PROTOS, ["."])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("trainhub_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        // Ordered maps: the same message always encodes to the same bytes.
        .btree_map(".")
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
