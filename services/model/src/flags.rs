//! Rule findings of DESIGN §5 beyond crediting: assessment consequences, dispatch limits, the
//! online self-study minimum and the promotion grace year.

use crate::codes::{EnrollmentStatus, EventKind, Format, Rank};
use crate::entries::{Flag, TrainingEntry};
use crate::policy::Policy;
use crate::record::PersonEvent;
use chrono::{Datelike, Months, NaiveDate};
use std::collections::{BTreeMap, BTreeSet};

/// What the flag rules read.
pub struct FlagInput<'a> {
    /// The person's trainings (classes and online study), as credited.
    pub trainings: &'a [TrainingEntry],
    /// Person events.
    pub events: &'a [&'a PersonEvent],
    /// Hiring date, when known.
    pub hired_on: Option<NaiveDate>,
    /// First day of the window.
    pub window_start: NaiveDate,
    /// The reference date.
    pub as_of: NaiveDate,
    /// The rules.
    pub policy: &'a Policy,
}

/// All rule flags for an in-scope person at `as_of`.
pub fn rule_flags(input: &FlagInput<'_>) -> Vec<Flag> {
    let mut out = Vec::new();
    assessment(input, &mut out);
    dispatch_limits(input, &mut out);
    online_shortfall(input, &mut out);
    promotion_grace(input, &mut out);
    out
}

fn flag(code: &'static str, year: Option<i32>, message: String) -> Flag {
    Flag {
        code,
        year,
        message,
    }
}

/// Trainings taken up (enrolled or completed) up to `as_of` that count for dispatch limits.
fn dispatched<'a>(input: &'a FlagInput<'_>) -> impl Iterator<Item = &'a TrainingEntry> {
    input.trainings.iter().filter(move |t| {
        t.format == Format::OffJob
            && matches!(
                t.enrollment,
                Some(EnrollmentStatus::Enrolled | EnrollmentStatus::Completed)
            )
            && t.start_date <= input.as_of
    })
}

fn assessment(input: &FlagInput<'_>, out: &mut Vec<Flag>) {
    let failed: Vec<&TrainingEntry> = input
        .trainings
        .iter()
        .filter(|t| t.failed_on.is_some_and(|d| d <= input.as_of))
        .collect();
    let years: BTreeSet<i32> = failed
        .iter()
        .filter_map(|t| t.failed_on.map(|d| d.year()))
        .collect();
    for year in years {
        out.push(flag(
            "EXCELLENT_BLOCKED",
            Some(year),
            format!(
                "a failed assessment in {year}: the annual assessment cannot be rated excellent"
            ),
        ));
    }
    for f in failed {
        let remedied = input.trainings.iter().any(|t| {
            t.credited
                && t.enrollment.is_some()
                && t.start_date > f.end_date
                && t.end_date <= input.as_of
                && t.themes.iter().any(|th| f.themes.contains(th))
        });
        if !remedied {
            out.push(flag(
                "REMEDIAL_REQUIRED",
                f.failed_on.map(|d| d.year()),
                format!(
                    "failed class {} needs a remedial class on one of its themes",
                    f.class_id
                ),
            ));
        }
    }
}

fn dispatch_limits(input: &FlagInput<'_>, out: &mut Vec<Flag>) {
    let policy = input.policy;
    let mut long: Vec<&TrainingEntry> = dispatched(input)
        .filter(|t| t.days() >= policy.long_training_days)
        .collect();
    long.sort_by_key(|t| (t.start_date, t.class_id.clone()));
    for pair in long.windows(2) {
        let limit = pair[0]
            .start_date
            .checked_add_months(Months::new(12 * policy.long_training_span_years))
            .unwrap_or(NaiveDate::MAX);
        if pair[1].start_date < limit {
            out.push(flag(
                "LONG_TRAINING_LIMIT",
                Some(pair[1].start_date.year()),
                format!(
                    "off-job classes {} and {} of {}+ days start less than {} years apart",
                    pair[0].class_id,
                    pair[1].class_id,
                    policy.long_training_days,
                    policy.long_training_span_years
                ),
            ));
        }
    }
    let mut by_topic: BTreeMap<(i32, &str), Vec<&str>> = BTreeMap::new();
    for t in dispatched(input) {
        by_topic
            .entry((t.start_date.year(), t.topic.as_str()))
            .or_default()
            .push(&t.class_id);
    }
    for ((year, topic), classes) in by_topic.into_iter().filter(|(_, c)| c.len() > 1) {
        out.push(flag(
            "SAME_TOPIC_REPEAT",
            Some(year),
            format!(
                "{} off-job classes on topic {topic:?} start in {year}: {}",
                classes.len(),
                classes.join(", ")
            ),
        ));
    }
}

fn online_shortfall(input: &FlagInput<'_>, out: &mut Vec<Flag>) {
    let mut hours: BTreeMap<i32, f64> = BTreeMap::new();
    for t in input.trainings.iter().filter(|t| t.enrollment.is_none()) {
        *hours.entry(t.end_date.year()).or_default() += t.credited_hours;
    }
    let in_scope_from = input
        .hired_on
        .map_or(input.window_start, |h| h.max(input.window_start));
    for year in input.window_start.year()..=input.as_of.year() {
        let (first, last) = (
            NaiveDate::from_ymd_opt(year, 1, 1).expect("valid"),
            NaiveDate::from_ymd_opt(year, 12, 31).expect("valid"),
        );
        // Only calendar years wholly inside the window and wholly in scope.
        if first < in_scope_from || last > input.as_of {
            continue;
        }
        let got = hours.get(&year).copied().unwrap_or(0.0);
        if got + 1e-9 < input.policy.online_hours_per_year {
            out.push(flag(
                "ONLINE_SHORTFALL",
                Some(year),
                format!(
                    "{:.2} 学时 of online self-study in {year}, below the {} required",
                    got, input.policy.online_hours_per_year
                ),
            ));
        }
    }
}

fn promotion_grace(input: &FlagInput<'_>, out: &mut Vec<Flag>) {
    let year_before = input
        .as_of
        .checked_sub_months(Months::new(input.policy.promotion_grace_months))
        .unwrap_or(NaiveDate::MIN);
    let promoted = input
        .events
        .iter()
        .filter(|e| {
            e.event == EventKind::Promoted
                && e.rank.is_some_and(Rank::is_county_or_above)
                && e.effective_date > year_before
                && e.effective_date <= input.as_of
        })
        .max_by_key(|e| e.effective_date);
    if let Some(e) = promoted {
        out.push(flag(
            "PROMOTION_GRACE",
            Some(e.effective_date.year()),
            format!(
                "promoted to {} on {}: the requirement is due within a year of promotion",
                e.rank.map(Rank::as_str).unwrap_or_default(),
                e.effective_date
            ),
        ));
    }
}
