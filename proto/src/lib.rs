//! The `trainhub.v1` wire contract (DESIGN §6.1).
//!
//! Layout:
//! - `trainhub/v1/records.proto`: canonical `Record` and its nine bodies;
//! - `trainhub/v1/ingest.proto`: `IngestService` and record outcomes;
//! - `trainhub/v1/dossier.proto`: `DossierService` and the `Dossier`.
//!
//! The protos are compiled by `build.rs` with `protox`; [`FILE_DESCRIPTOR_SET`] is embedded so the
//! hub can serve reflection to generic clients (grpcurl, grpcio-reflection).

#![allow(missing_docs, clippy::large_enum_variant)]

pub mod format;
pub use format::{encode_json, Format};

/// Generated types and service stubs of package `trainhub.v1`.
pub mod v1 {
    tonic::include_proto!("trainhub.v1");
    include!(concat!(env!("OUT_DIR"), "/trainhub.v1.serde.rs"));
}

/// Encoded `FileDescriptorSet` of every trainhub proto, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/trainhub_descriptor.bin"));

impl v1::record::Body {
    /// The canonical kind name of this body, which is also its oneof field name.
    pub fn kind(&self) -> &'static str {
        use v1::record::Body;
        match self {
            Body::Person(_) => "person",
            Body::PersonEvent(_) => "person_event",
            Body::Link(_) => "link",
            Body::TrainingClass(_) => "training_class",
            Body::Enrollment(_) => "enrollment",
            Body::Attendance(_) => "attendance",
            Body::Learning(_) => "learning",
            Body::Result(_) => "result",
            Body::Evaluation(_) => "evaluation",
        }
    }
}
