//! The `trainhub` binary's library: configuration, wiring and the commands, so integration
//! tests can start a real hub in-process on port 0.
//!
//! It only wires: the pipeline (`trainhub-pipeline`) does the ingest work, the connectors
//! (`trainhub-connectors`, through their registry) read the partners, the gRPC services
//! (`trainhub-api`) answer them.
//!
//! Layout: [`cli`] (arguments), [`config`] (typed config with env overrides), [`startup`]
//! (wiring and serving), [`ops`] (health port, dashboard, the xAPI resource's admission),
//! [`health`] (connector registry of statuses, metrics), [`run`] (the commands), [`import`]
//! (`trainhub import`), [`remote`], [`review`] and [`submit`] (commands that ask a running
//! hub), [`dlq`] (dead letters on the command line), [`report`] (dossier and
//! coverage on the command line), [`keys`] (data key rotation), [`audit`] (CLI reads
//! audited), [`demo`] (synthetic partners). The benchmarks are a binary of their own
//! (`services/bench`).

#![forbid(unsafe_code)]

pub mod audit;
pub mod cli;
pub mod config;
pub mod demo;
pub mod dlq;
pub mod export;
pub mod feedback_cmd;
pub mod health;
pub mod import;
pub mod keys;
pub mod map;
pub mod ops;
pub mod remote;
pub mod report;
pub mod review;
pub mod run;
pub mod startup;
pub mod status_cmd;
pub mod submit;

/// `n` with the noun in the right number: `1 record`, `2 records`.
pub fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
