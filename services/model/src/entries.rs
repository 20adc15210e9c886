//! What the rules work on and what they produce per training: the current records as the
//! store hands them over, the training entries a dossier lists, the flags, and the one
//! rounding for display. Shared by [`crate::credit`], [`crate::flags`],
//! [`crate::evaluation`] and [`crate::dossier`], which depend on this module and not on each
//! other's types.

use crate::codes::*;
use crate::record::*;
use chrono::NaiveDate;

/// A current source record as the store hands it over, with its provenance.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StoredRecord {
    /// Source identity and version.
    pub source: SourceRef,
    /// When the current version was received (RFC 3339).
    pub received_at: String,
    /// Mapping profile and version that produced it; empty for canonical submissions.
    pub profile: String,
    /// The body.
    pub body: Body,
}

/// One training in the dossier.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TrainingEntry {
    pub class_id: String,
    pub title: String,
    pub provider: String,
    pub themes: Vec<Theme>,
    pub format: Format,
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    pub credited_hours: f64,
    pub outcome: Option<Outcome>,
    pub certificate_no: Option<String>,
    pub annual_form: bool,
    pub appointment_form: bool,
    /// Whether the hours count (completed, not failed, leave within the cap).
    pub credited: bool,
    /// The class topic (the course title for online study).
    pub topic: String,
    /// The enrollment's status; `None` for online study.
    pub enrollment: Option<EnrollmentStatus>,
    /// When the failing result, if any, was assessed.
    pub failed_on: Option<NaiveDate>,
    /// When the result, if any, was assessed.
    pub assessed_on: Option<NaiveDate>,
}

impl TrainingEntry {
    /// Inclusive day count.
    pub fn days(&self) -> i64 {
        (self.end_date - self.start_date).num_days() + 1
    }
}

/// A rule finding about the person.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Flag {
    pub code: &'static str,
    pub year: Option<i32>,
    pub message: String,
}

/// Rounds to hundredths, for display. Entries keep exact hours; totals are summed from
/// them in a fixed order (trainings sorted by end date and id) and rounded once here, so
/// many small online entries do not drift (three 20-minute entries at 45 min/学时 are
/// 1.33 学时, not 3 × 0.44).
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
