//! Sources and sinks of partner data, one module (or folder) per connector kind. Each decodes
//! and maps its own input and hands envelopes to the pipeline's [`trainhub_pipeline::RecordSink`];
//! none touches the store.
//!
//! Layout:
//! - [`registry`]: every connector kind, one line each, and what a connector is given;
//! - [`status`]: a connector's state machine and counters;
//! - [`amqp`]: RabbitMQ queues bound to `trainhub.in` (in) and the `dossier.changed` relay
//!   (out);
//! - [`files`]: the readers of partners' files (CSV, XLSX, JSON, JSON lines, LRMX);
//! - [`profile`]: declarative mapping profiles (a partner's fields → canonical records);
//! - [`native`]: rows and payloads of partners' formats into envelopes, and the
//!   [`trainhub_pipeline::NativeDecoder`] the binary hands the pipeline;
//! - [`xapi`]: xAPI statements from online learning platforms;
//! - [`synthetic`]: a realistic generated population from three simulated partner systems (an
//!   HR system, a party school, an online learning platform), used by `serve --demo`, the
//!   benchmarks and the tests. It goes through the real ingest path like any partner.
//!
//! Every connector MUST acknowledge its source only after the hub has committed what it sent
//! (DESIGN §1, "no ack before durability").

#![forbid(unsafe_code)]

pub mod amqp;
pub mod files;
pub mod forms;
pub mod native;
pub mod profile;
pub mod registry;
pub mod status;
pub mod synthetic;
pub mod xapi;
