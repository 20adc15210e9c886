//! The `trainhub` binary's library: configuration, wiring and the commands, so integration
//! tests can start a real hub in-process on port 0.
//!
//! Layout: [`cli`] (arguments), [`config`] (typed config with env overrides), [`startup`]
//! (wiring and serving), [`ops`] (health port), [`demo`] (synthetic partners), [`bench`]
//! (throughput figures), [`report`] (dossier and coverage on the command line), [`keys`] (data key rotation).

#![forbid(unsafe_code)]

pub mod audit;
pub mod bench;
pub mod bench_amqp;
pub mod bench_dossier;
pub mod bench_import;
pub mod cli;
pub mod config;
pub mod demo;
pub mod dlq;
pub mod health;
pub mod import;
pub mod keys;
pub mod ops;
pub mod report;
pub mod run;
pub mod startup;
pub mod status_cmd;
