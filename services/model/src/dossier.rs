//! The dossier (一人一档): a pure function of the set of a person's current source records.
//!
//! Every choice between records is made by a total order on the records themselves (never by
//! arrival order), so any permutation or duplication of the input gives the same dossier.

use crate::codes::*;
pub use crate::entries::{round2, Flag, StoredRecord, TrainingEntry};
use crate::identity::PersonKey;
use crate::policy::Policy;
use crate::record::*;
use chrono::{Datelike, NaiveDate};
use std::collections::BTreeMap;

/// Light (红黄绿灯).
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Light {
    Red,
    Yellow,
    Green,
    Exempt,
}

impl Light {
    /// `RED`, `YELLOW`, `GREEN` or `EXEMPT`.
    pub fn as_str(self) -> &'static str {
        match self {
            Light::Red => "RED",
            Light::Yellow => "YELLOW",
            Light::Green => "GREEN",
            Light::Exempt => "EXEMPT",
        }
    }
}

/// Hours credited per calendar year.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
pub struct YearHours {
    pub year: i32,
    pub off_job_hours: f64,
    pub on_job_hours: f64,
    pub online_hours: f64,
}

/// Where a dossier value came from.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Provenance {
    pub source: SourceRef,
    pub received_at: String,
    pub profile: String,
    /// The training entry (class or course id) the record feeds; empty for person data.
    pub entry: String,
}

/// The unified record of one person at `as_of`.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Dossier {
    pub person_key: PersonKey,
    pub name: String,
    pub unit_code: String,
    pub unit_name: String,
    pub rank: Option<Rank>,
    pub category: Option<Category>,
    pub status: PersonStatus,
    pub region_code: String,
    /// The cadre-management authority that manages the person; empty when none is recorded.
    pub authority: String,
    pub light: Light,
    pub required_hours: f64,
    pub credited_hours: f64,
    pub years: Vec<YearHours>,
    pub trainings: Vec<TrainingEntry>,
    pub flags: Vec<Flag>,
    pub policy_version: String,
    pub as_of: NaiveDate,
    /// The first day of the window ending at `as_of`: trainings that end before it are listed
    /// but not credited.
    pub window_start: NaiveDate,
    pub provenance: Vec<Provenance>,
    pub evaluation: crate::evaluation::EvaluationSummary,
    /// In scope at `as_of` (hired, not retired or left).
    pub in_scope: bool,
    /// At least one credited class or online record in the window.
    pub participated: bool,
    /// Results assessed in the window, and how many of them are not `fail`.
    pub results_in_window: u32,
    /// Of those, the passed (not `fail`) ones.
    pub results_passed: u32,
}

/// The window of DESIGN §5: the `years` years ending at `as_of`, both ends inclusive.
pub fn window_start(as_of: NaiveDate, years: u32) -> NaiveDate {
    let back = as_of
        .with_year(as_of.year() - years as i32)
        // 29 February in a year without one: fall back to 28 February.
        .unwrap_or_else(|| NaiveDate::from_ymd_opt(as_of.year() - years as i32, 2, 28).unwrap());
    back.succ_opt().expect("dates far from the end of time")
}

fn order(r: &StoredRecord) -> (&str, &str) {
    (&r.source.system, &r.source.record_id)
}

/// Merges person records from several systems: for each field, the first value in
/// `(system, record_id)` order.
fn merged_person(records: &[&StoredRecord]) -> Option<Person> {
    let mut persons: Vec<(&StoredRecord, &Person)> = records
        .iter()
        .filter_map(|r| match &r.body {
            Body::Person(p) => Some((*r, p)),
            _ => None,
        })
        .collect();
    persons.sort_by(|a, b| order(a.0).cmp(&order(b.0)));
    let mut merged = persons.first()?.1.clone();
    for (_, p) in &persons[1..] {
        macro_rules! fill {
            ($($f:ident),*) => { $( if merged.$f.is_none() { merged.$f = p.$f.clone(); } )* };
        }
        fill!(
            gender,
            birth_date,
            ethnicity,
            education,
            rank,
            category,
            unit_code,
            unit_name,
            region_code,
            position,
            hired_on,
            status_since,
            authority
        );
    }
    Some(merged)
}

/// The person's rank at `as_of`: the latest event carrying a rank that is effective by then,
/// else the person record's rank.
pub fn rank_at(person: &Person, events: &[&PersonEvent], as_of: NaiveDate) -> Option<Rank> {
    events
        .iter()
        .filter(|e| e.rank.is_some() && e.effective_date <= as_of)
        .max_by_key(|e| (e.effective_date, e.rank))
        .and_then(|e| e.rank)
        .or(person.rank)
}

/// Whether the person is in scope at `as_of` (DESIGN §5).
pub fn in_scope(person: &Person, as_of: NaiveDate) -> bool {
    let hired = person.hired_on.is_none_or(|h| h <= as_of);
    let gone = matches!(person.status, PersonStatus::Retired | PersonStatus::Left)
        && person.status_since.is_none_or(|s| s <= as_of);
    hired && !gone
}

/// Computes the dossier of `person_key` from its current records. `None` when no person record
/// is among them (the person is not known yet; its other records stay parked).
pub fn compute(
    person_key: &PersonKey,
    records: &[StoredRecord],
    as_of: NaiveDate,
    policy: &Policy,
) -> Option<Dossier> {
    let refs: Vec<&StoredRecord> = records.iter().collect();
    let person = merged_person(&refs)?;
    let events: Vec<&PersonEvent> = records
        .iter()
        .filter_map(|r| match &r.body {
            Body::PersonEvent(e) => Some(e),
            _ => None,
        })
        .collect();
    let rank = rank_at(&person, &events, as_of);
    let start = window_start(as_of, policy.window_years);
    let trainings = crate::credit::trainings(records, policy);

    let Totals {
        years,
        credited_hours,
        off_job_days,
        has_party_off_job,
    } = totals(&trainings, start, as_of);

    let scope = in_scope(&person, as_of);
    let participated = trainings.iter().any(|t| {
        t.credited && t.credited_hours > 0.0 && t.end_date >= start && t.end_date <= as_of
    });
    let (results_in_window, results_passed) = results(&trainings, start, as_of);
    let class_end: BTreeMap<&str, NaiveDate> = records
        .iter()
        .filter_map(|r| match &r.body {
            Body::TrainingClass(c) => Some((c.class_id.as_str(), c.end_date)),
            _ => None,
        })
        .collect();
    let evaluation =
        crate::evaluation::summarise(records, |c| class_end.get(c).copied(), start, as_of, policy);
    let (required_hours, required_days) = requirement(&person, rank, start, as_of, policy);
    let light = if !scope {
        Light::Exempt
    } else if !has_party_off_job {
        Light::Red
    } else if round2(credited_hours) < required_hours && (off_job_days as f64) < required_days {
        Light::Yellow
    } else {
        Light::Green
    };
    let mut flags = crate::credit::leave_flags(&trainings, records, policy);
    if scope {
        flags.extend(crate::flags::rule_flags(&crate::flags::FlagInput {
            trainings: &trainings,
            events: &events,
            hired_on: person.hired_on,
            window_start: start,
            as_of,
            policy,
        }));
    }
    flags.sort_by(|a, b| (a.code, a.year, &a.message).cmp(&(b.code, b.year, &b.message)));

    let provenance = provenance(records);

    Some(Dossier {
        window_start: start,
        person_key: person_key.clone(),
        name: person.name.clone(),
        unit_code: person.unit_code.clone().unwrap_or_default(),
        unit_name: person.unit_name.clone().unwrap_or_default(),
        rank,
        category: person.category,
        status: person.status,
        region_code: person.region_code.clone().unwrap_or_default(),
        authority: person.authority.clone().unwrap_or_default(),
        light,
        required_hours,
        credited_hours: round2(credited_hours),
        years: years
            .into_values()
            .map(|mut y| {
                y.off_job_hours = round2(y.off_job_hours);
                y.on_job_hours = round2(y.on_job_hours);
                y.online_hours = round2(y.online_hours);
                y
            })
            .collect(),
        trainings,
        flags,
        policy_version: policy.version.clone(),
        as_of,
        provenance,
        evaluation,
        in_scope: scope,
        participated,
        results_in_window,
        results_passed,
    })
}

/// What the window's credited trainings add up to.
#[derive(Default)]
struct Totals {
    years: BTreeMap<i32, YearHours>,
    credited_hours: f64,
    off_job_days: i64,
    has_party_off_job: bool,
}

/// Sums the credited trainings ending in `[start, as_of]`, exactly (rounded for display only).
fn totals(trainings: &[TrainingEntry], start: NaiveDate, as_of: NaiveDate) -> Totals {
    let mut out = Totals::default();
    for t in trainings.iter().filter(|t| t.credited) {
        if t.end_date < start || t.end_date > as_of {
            continue;
        }
        out.credited_hours += t.credited_hours;
        let y = out
            .years
            .entry(t.end_date.year())
            .or_insert_with(|| YearHours {
                year: t.end_date.year(),
                ..YearHours::default()
            });
        match t.format {
            Format::OffJob => {
                y.off_job_hours += t.credited_hours;
                out.off_job_days += (t.end_date - t.start_date).num_days() + 1;
                out.has_party_off_job |= t
                    .themes
                    .iter()
                    .any(|th| matches!(th, Theme::PartyTheory | Theme::PartySpirit));
            }
            Format::OnJob => y.on_job_hours += t.credited_hours,
            Format::Online => y.online_hours += t.credited_hours,
        }
    }
    out
}

/// Results assessed in `[start, as_of]`, and how many of them passed.
fn results(trainings: &[TrainingEntry], start: NaiveDate, as_of: NaiveDate) -> (u32, u32) {
    let (mut results_in_window, mut results_passed) = (0, 0);
    for t in trainings {
        let assessed = t.assessed_on.filter(|d| *d >= start && *d <= as_of);
        if assessed.is_some() {
            results_in_window += 1;
            results_passed += u32::from(t.failed_on.is_none());
        }
    }
    (results_in_window, results_passed)
}

/// Where each value came from, in a stable order.
fn provenance(records: &[StoredRecord]) -> Vec<Provenance> {
    let mut provenance: Vec<Provenance> = records
        .iter()
        .map(|r| Provenance {
            source: r.source.clone(),
            received_at: r.received_at.clone(),
            profile: r.profile.clone(),
            entry: match &r.body {
                Body::Learning(l) => l.course_id.clone(),
                b => b.class_id().unwrap_or_default().to_owned(),
            },
        })
        .collect();
    provenance.sort_by(|a, b| {
        (
            &a.entry,
            a.source.kind,
            &a.source.system,
            &a.source.record_id,
        )
            .cmp(&(
                &b.entry,
                b.source.kind,
                &b.source.system,
                &b.source.record_id,
            ))
    });
    provenance
}

/// Hours and off-job days required in the window for the person's rank at `as_of`.
fn requirement(
    person: &Person,
    rank: Option<Rank>,
    start: NaiveDate,
    as_of: NaiveDate,
    policy: &Policy,
) -> (f64, f64) {
    if policy.is_senior(rank) {
        return (policy.senior_hours, policy.senior_days);
    }
    let from = person.hired_on.map_or(start, |h| h.max(start));
    let days = ((as_of - from).num_days() + 1).max(0) as f64;
    let years = (days / 365.0).min(policy.window_years as f64);
    (
        round2(policy.junior_hours_per_year * years),
        round2(policy.junior_days_per_year * years),
    )
}

#[cfg(test)]
mod tests;
