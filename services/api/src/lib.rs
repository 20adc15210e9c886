//! trainhub's gRPC face (DESIGN §2): thin handlers that authorise, call the pipeline or its
//! queries, and convert. Depends on model, store, proto and the pipeline only.
//!
//! Layout:
//! - [`auth`]: callers, roles and scopes from the request's token or certificate;
//! - [`ingest`], [`dossier`], [`review`], [`sync_health`]: the `trainhub.v1` services;
//! - [`limits`]: size limits of requests;
//! - [`error`]: the single mapping from errors to `tonic::Status`;
//! - [`server`]: the router with health and reflection, served on a given listener.

#![forbid(unsafe_code)]

pub mod auth;
pub mod deadline;
pub mod dossier;
pub mod error;
pub mod feedback;
pub mod ingest;
pub mod limits;
pub mod review;
pub mod server;
pub mod sync_health;
