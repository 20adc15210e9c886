//! trainhub's gRPC face: thin handlers that validate, call the model and the store, and convert.
//!
//! Layout:
//! - [`pipeline`]: the ingest path every connector shares (validate → commit → outcomes);
//! - [`convert`]: wire records to canonical records;
//! - [`ingest`], [`dossier`], [`review`], [`sync_health`]: the `trainhub.v1` services;
//! - [`error`]: the single mapping from errors to `tonic::Status`; [`wire`]: model → wire;
//! - [`server`]: the router with health and reflection, served on a given listener.

#![forbid(unsafe_code)]

pub mod auth;
pub mod convert;
pub mod dossier;
pub mod error;
pub mod ingest;
pub mod limits;
pub mod native;
pub mod pipeline;
pub mod replay;
pub mod review;
pub mod server;
pub mod sync_health;
pub mod wire;

pub use pipeline::{CommitObserver, Inbound, Native, Outcome, Pipeline};
