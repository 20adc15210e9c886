//! The numbers of the training rules (DESIGN §5). The built-in default equals the design; every
//! dossier reports the policy version it was computed under.

use crate::codes::Rank;

/// Rule parameters.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Reported in every dossier.
    pub version: String,
    /// Length of the look-back window ending at `as_of`.
    pub window_years: u32,
    /// 学时 required over the window for `county` and above.
    pub senior_hours: f64,
    /// Off-job days that satisfy the senior requirement instead.
    pub senior_days: f64,
    /// 学时 required per in-scope year for `township` and `staff`.
    pub junior_hours_per_year: f64,
    /// Off-job days per in-scope year that satisfy the junior requirement instead.
    pub junior_days_per_year: f64,
    /// Minutes of online study per 学时 when a source sends minutes.
    pub minutes_per_hour: f64,
    /// Leave above this share of planned hours voids an enrollment (1/7).
    pub leave_cap: f64,
    /// Classes of at least this many days appear on the appointment form.
    pub appointment_form_days: i64,
    /// Online self-study 学时 required per calendar year.
    pub online_hours_per_year: f64,
    /// Off-job classes of at least this many days are "long" (at most one per span).
    pub long_training_days: i64,
    /// Years within which a second long off-job class breaks the limit.
    pub long_training_span_years: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            version: "builtin-2023.1".into(),
            window_years: 5,
            senior_hours: 550.0,
            senior_days: 90.0,
            junior_hours_per_year: 90.0,
            junior_days_per_year: 12.0,
            minutes_per_hour: 45.0,
            leave_cap: 1.0 / 7.0,
            appointment_form_days: 60,
            online_hours_per_year: 50.0,
            long_training_days: 30,
            long_training_span_years: 5,
        }
    }
}

impl Policy {
    /// Whether the 5-year senior requirement applies to `rank`.
    pub fn is_senior(&self, rank: Option<Rank>) -> bool {
        rank.is_some_and(Rank::is_county_or_above)
    }
}
