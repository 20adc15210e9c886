//! The dossier state maintained on write (DESIGN §1 "dossier projection").
//!
//! The ingest transaction marks the persons a batch touched in `dossier_dirty`; the projector
//! drains that set, loads each person's current records once, computes the dossier at the
//! projection day and stores both the records (`facts`) and the summary columns in
//! `dossier_state`. Readers compute any `as_of` from `facts` without touching `source_records`;
//! coverage and listings at the projection day are plain SQL over the summary columns.
//! On PostgreSQL several hubs drain the set together: marks are locked in key order, a
//! conflicting round runs again, and links, enrollments and classes written concurrently are
//! caught by deferred account and class marks that the projector resolves after they commit,
//! before the persons' own marks.
//!
//! Layout: the dirty marks are [`crate::marks`]; `facts` (a person's current records), `lane`
//! (the projector's shares of the marks), `project` (the projector's rounds), `state` (reading
//! the projected state: facts, pages, coverage), `red` (coverage's RED lists).

mod bodies;
mod facts;
mod lane;
mod project;
mod red;
mod state;

pub(crate) use facts::reviewed_of;
pub use lane::Lane;
pub use state::StateFilter;
