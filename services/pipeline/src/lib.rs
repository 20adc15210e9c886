//! trainhub's one ingest path (DESIGN §1) and the reads every front end shares.
//!
//! Layout:
//! - [`commit`]: the [`Pipeline`]: decode → validate → resolve → commit, one transaction per
//!   batch, outcomes only after it committed; rejected records dead-lettered in it;
//! - [`ordered`]: several batches of one sender committing at once, answered in order;
//! - [`convert`]: wire records to canonical records (validation);
//! - [`sink`]: the [`RecordSink`] trait every connector hands its envelopes to, and the
//!   pipeline's implementation of it;
//! - [`statements`]: the xAPI statements kept beside their records, for the Statements
//!   resource;
//! - [`native`]: the [`NativeDecoder`] trait through which `SubmitNative` and replay read
//!   partners' own formats (implemented by the connectors, wired by the binary);
//! - [`replay`]: dead-letter replay, with the history of each letter's attempts;
//! - [`projector`]: the loop that keeps the dossier projection and the outbox current;
//! - [`queries`]: dossiers, coverage and dispatch checks, for the gRPC services and the CLI;
//!   [`fresh`]: every person as the records say now, read only (reads never project);
//! - [`wire`]: every model → wire conversion; [`audit`]: what a read of personal data states
//!   and leaves in the trail (gRPC and CLI alike).
//!
//! Depends on model, store and proto only: readers of partners' formats and transports live
//! in the connectors crate, which depends on this one.

#![forbid(unsafe_code)]

pub mod audit;
pub mod commit;
pub mod convert;
pub mod fresh;
pub mod native;
pub mod ordered;
pub mod projector;
pub mod queries;
pub mod replay;
pub mod reports;
pub mod sink;
pub mod statements;
pub mod wire;

pub use commit::{CommitObserver, Inbound, Outcome, Pipeline, PreparedBatch};
pub use native::{Native, NativeDecoder};
pub use ordered::OrderedCommits;
pub use queries::{Queries, QueryError};
pub use sink::{Envelopes, ErrorKind, RecordSink, SinkError, Verdict};
pub use trainhub_store::outbox::OutboxRow;
pub use trainhub_store::xapi::{NewAttachment, NewStatement, StatementQuery, StoredStatement};
pub use trainhub_store::Error as StoreError;
