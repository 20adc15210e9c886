//! trainhub's domain: canonical records, their validation, the merge rule and the training
//! rules that turn a person's records into a dossier.
//!
//! Layout:
//! - [`error`]: rejections with a stage, a stable reason code and a message;
//! - [`codes`]: the closed code tables of DESIGN §3;
//! - [`identity`]: national IDs (GB 11643) and the `person_key` blind index;
//! - [`values`]: parsers for dates, instants, hours and scores;
//! - [`record`]: the nine canonical bodies and [`record::CanonicalRecord`];
//! - [`merge`]: which version of a source record wins;
//! - [`review`]: identity conflicts and what waits for a reviewer;
//! - [`policy`]: the numbers of the rules; [`entries`]: what the rules read and list;
//!   [`credit`], [`flags`], [`evaluation`] and [`dossier`]: the rules.
//!
//! Nothing here does I/O or needs a runtime, so every rule is unit-testable on its own.

#![forbid(unsafe_code)]

pub mod authority;
pub mod codes;
pub mod credit;
pub mod dispatch;
pub mod dossier;
pub mod entries;
pub mod error;
pub mod evaluation;
pub mod flags;
pub mod identity;
pub mod merge;
pub mod policy;
pub mod record;
pub mod review;
pub mod values;
pub mod warnings;

pub use error::{ReasonCode, Rejection, Stage};
pub use identity::{NationalId, PersonKey, PersonKeyer};
