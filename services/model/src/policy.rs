//! The numbers of the training rules (DESIGN §5), loadable from a versioned TOML policy file.
//! The built-in default equals the design (and `policy/default.toml`, which a test keeps in
//! step); every dossier reports the version it was computed under.

use crate::codes::{Rank, RaterRole};
use crate::error::{ReasonCode, Rejection};
use std::collections::BTreeMap;

/// Rule parameters.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
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
    /// Online self-study 学时 required per calendar year.
    pub online_hours_per_year: f64,
    /// Leave above this share of planned hours voids an enrollment (1/7).
    pub leave_cap: f64,
    /// Off-job classes of at least this many days are "long" (at most one per span).
    pub long_training_days: i64,
    /// Years within which a second long off-job class breaks the limit.
    pub long_training_span_years: u32,
    /// Classes of at least this many days appear on the appointment form.
    pub appointment_form_days: i64,
    /// Months after a promotion into `county` or above during which `PROMOTION_GRACE` holds.
    pub promotion_grace_months: u32,
    /// Largest share of a unit's in-scope people away on off-job training at the same time.
    pub unit_overload_share: f64,
    /// Weight of each rater role; roles absent or at 0 are left out.
    pub rater_weights: BTreeMap<RaterRole, f64>,
    /// Evaluation dimensions → selection criteria (德能勤绩廉). The criteria map to themselves.
    pub indicators: BTreeMap<String, String>,
    /// Minutes → 学时 conversion, by default and per source system.
    pub hours: HourRules,
}

/// The five selection criteria: 德/能/勤/绩/廉.
pub const CRITERIA: [&str; 5] = ["virtue", "ability", "diligence", "achievement", "integrity"];

/// Conversion rules for online study sent in minutes.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HourRules {
    /// The rule for sources without one of their own.
    pub default: HourRule,
    /// Rules per source system.
    pub sources: BTreeMap<String, HourRule>,
}

/// Minutes → 学时: linear at `minutes_per_hour`, or tiered. With tiers, a record earns the hours
/// of the highest tier it reaches, and minutes beyond the top tier add at `minutes_per_hour`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HourRule {
    /// Minutes per 学时.
    pub minutes_per_hour: f64,
    /// Steps, ascending by `min_minutes`.
    #[serde(default)]
    pub tiers: Vec<Tier>,
}

/// One step of a tiered rule.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// Minutes needed to reach the tier.
    pub min_minutes: f64,
    /// 学时 credited at this tier.
    pub hours: f64,
}

impl Default for HourRule {
    fn default() -> Self {
        HourRule {
            minutes_per_hour: 45.0,
            tiers: Vec::new(),
        }
    }
}

impl HourRule {
    /// 学时 for `minutes` of study.
    pub fn hours(&self, minutes: f64) -> f64 {
        match self
            .tiers
            .iter()
            .rev()
            .find(|t| minutes + 1e-9 >= t.min_minutes)
        {
            None if self.tiers.is_empty() => minutes / self.minutes_per_hour,
            None => 0.0,
            Some(top) if std::ptr::eq(top, self.tiers.last().expect("non-empty")) => {
                top.hours + (minutes - top.min_minutes) / self.minutes_per_hour
            }
            Some(tier) => tier.hours,
        }
    }
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
            online_hours_per_year: 50.0,
            leave_cap: 1.0 / 7.0,
            long_training_days: 30,
            long_training_span_years: 5,
            appointment_form_days: 60,
            promotion_grace_months: 12,
            unit_overload_share: 0.2,
            rater_weights: [
                (RaterRole::ClassTeacher, 0.3),
                (RaterRole::Lecturer, 0.3),
                (RaterRole::Liaison, 0.2),
                (RaterRole::Peer, 0.2),
            ]
            .into(),
            indicators: [
                ("discussion_quality", "ability"),
                ("teamwork", "ability"),
                ("discipline", "diligence"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
            hours: HourRules::default(),
        }
    }
}

impl Policy {
    /// Parses a policy file and checks its numbers.
    pub fn from_toml(text: &str) -> Result<Policy, Rejection> {
        let policy: Policy = toml::from_str(text).map_err(|e| {
            Rejection::invalid(
                ReasonCode::MalformedPayload,
                "policy",
                format!("invalid policy file: {e}"),
            )
        })?;
        policy.check()?;
        Ok(policy)
    }

    /// Whether the 5-year senior requirement applies to `rank`.
    pub fn is_senior(&self, rank: Option<Rank>) -> bool {
        rank.is_some_and(Rank::is_county_or_above)
    }

    /// The conversion rule of `system`.
    pub fn hour_rule(&self, system: &str) -> &HourRule {
        self.hours
            .sources
            .get(system)
            .unwrap_or(&self.hours.default)
    }

    /// The criterion a dimension counts toward, if any.
    pub fn criterion<'a>(&'a self, dimension: &'a str) -> Option<&'a str> {
        if CRITERIA.contains(&dimension) {
            Some(dimension)
        } else {
            self.indicators.get(dimension).map(String::as_str)
        }
    }

    fn check(&self) -> Result<(), Rejection> {
        let bad = |field: &str, why: &str| {
            Err(Rejection::invalid(
                ReasonCode::OutOfRange,
                field,
                format!("policy `{field}` {why}"),
            ))
        };
        if self.window_years == 0 {
            return bad("window_years", "must be at least 1");
        }
        if !(0.0..=1.0).contains(&self.leave_cap)
            || !(0.0..=1.0).contains(&self.unit_overload_share)
        {
            return bad("leave_cap/unit_overload_share", "must lie in 0..=1");
        }
        for (name, rule) in std::iter::once(("default", &self.hours.default))
            .chain(self.hours.sources.iter().map(|(k, v)| (k.as_str(), v)))
        {
            if rule.minutes_per_hour <= 0.0 {
                return bad(
                    &format!("hours.{name}.minutes_per_hour"),
                    "must be positive",
                );
            }
            if rule
                .tiers
                .windows(2)
                .any(|w| w[0].min_minutes >= w[1].min_minutes)
            {
                return bad(&format!("hours.{name}.tiers"), "must ascend by min_minutes");
            }
        }
        for (dim, criterion) in &self.indicators {
            if !CRITERIA.contains(&criterion.as_str()) {
                return bad(
                    &format!("indicators.{dim}"),
                    "must name one of virtue, ability, diligence, achievement, integrity",
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_default_file_equals_the_builtin_default() {
        let shipped = Policy::from_toml(include_str!("../policy/default.toml")).unwrap();
        assert_eq!(shipped, Policy::default());
    }

    #[test]
    fn partial_files_keep_defaults_and_unknown_keys_are_named() {
        let p = Policy::from_toml("version = \"prov-2025\"\nsenior_hours = 600.0\n").unwrap();
        assert_eq!(
            (p.version.as_str(), p.senior_hours, p.window_years),
            ("prov-2025", 600.0, 5)
        );
        let err = Policy::from_toml("senior_hourz = 1.0").unwrap_err();
        assert!(err.message.contains("senior_hourz"), "{}", err.message);
        let err = Policy::from_toml("[indicators]\nspeed = \"fast\"").unwrap_err();
        assert!(err.message.contains("indicators.speed"), "{}", err.message);
    }

    #[test]
    fn minutes_convert_linearly_or_by_tiers() {
        let p = Policy::default();
        assert_eq!(p.hour_rule("any").hours(90.0), 2.0);
        let tiered = HourRule {
            minutes_per_hour: 45.0,
            tiers: vec![
                Tier {
                    min_minutes: 20.0,
                    hours: 0.5,
                },
                Tier {
                    min_minutes: 40.0,
                    hours: 1.0,
                },
            ],
        };
        assert_eq!(tiered.hours(19.0), 0.0);
        assert_eq!(tiered.hours(20.0), 0.5);
        assert_eq!(tiered.hours(39.0), 0.5);
        assert_eq!(tiered.hours(40.0), 1.0);
        assert_eq!(tiered.hours(85.0), 2.0);
    }
}
