//! trainhub end-to-end tests, one binary. Each test starts a real hub on port 0 against a
//! fresh SQLite file and, for the `_postgres` variants, a fresh PostgreSQL database.

mod amqp;
mod amqp_refused;
mod at_rest;
mod auth;
mod authority;
mod backlog;
mod bad_input;
mod bodies;
mod cli;
mod cluster;
mod concurrent;
mod crash;
mod deploy;
mod deploy_kit;
mod docs;
mod failover;
mod feedback;
mod fixtures;
mod health;
mod identity;
mod import;
mod ingest;
mod layout;
mod lrs;
mod map;
mod moves;
mod order;
pub mod quickstart;
mod reflection;
mod replay;
mod replay_formats;
mod review;
mod rules;
mod tls;
mod xapi;
mod xapi_commit;
