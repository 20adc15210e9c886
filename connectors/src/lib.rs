//! Sources of partner records, one module per connector kind.
//!
//! Layout:
//! - [`sink`]: what a connector hands its messages to (the pipeline, behind a trait);
//! - [`status`]: a connector's state machine and counters;
//! - [`amqp`]: RabbitMQ queues bound to `trainhub.in`;
//! - [`synthetic`]: a realistic generated population from three simulated partner systems (an
//!   HR system, a party school, an online learning platform), used by `serve --demo`, the
//!   benchmarks and the tests. It goes through the real ingest path like any partner.
//!
//! Every connector MUST acknowledge its source only after the hub has committed what it sent
//! (DESIGN §1, "no ack before durability").

#![forbid(unsafe_code)]

pub mod amqp;
pub mod files;
pub mod profile;
pub mod sink;
pub mod status;
pub mod synthetic;
pub mod xapi;
