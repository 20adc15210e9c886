//! The dossier (一人一档): a pure function of the set of a person's current source records.
//!
//! Every choice between records is made by a total order on the records themselves (never by
//! arrival order), so any permutation or duplication of the input gives the same dossier.

use crate::codes::*;
use crate::identity::PersonKey;
use crate::policy::Policy;
use crate::record::*;
use chrono::{Datelike, NaiveDate};
use std::collections::BTreeMap;

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
    pub light: Light,
    pub required_hours: f64,
    pub credited_hours: f64,
    pub years: Vec<YearHours>,
    pub trainings: Vec<TrainingEntry>,
    pub flags: Vec<Flag>,
    pub policy_version: String,
    pub as_of: NaiveDate,
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
            status_since
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

    let mut years: BTreeMap<i32, YearHours> = BTreeMap::new();
    let mut credited_hours = 0.0;
    let mut off_job_days = 0i64;
    let mut has_party_off_job = false;
    for t in trainings.iter().filter(|t| t.credited) {
        if t.end_date < start || t.end_date > as_of {
            continue;
        }
        credited_hours += t.credited_hours;
        let y = years.entry(t.end_date.year()).or_insert_with(|| YearHours {
            year: t.end_date.year(),
            ..YearHours::default()
        });
        match t.format {
            Format::OffJob => {
                y.off_job_hours += t.credited_hours;
                off_job_days += (t.end_date - t.start_date).num_days() + 1;
                has_party_off_job |= t
                    .themes
                    .iter()
                    .any(|th| matches!(th, Theme::PartyTheory | Theme::PartySpirit));
            }
            Format::OnJob => y.on_job_hours += t.credited_hours,
            Format::Online => y.online_hours += t.credited_hours,
        }
    }

    let scope = in_scope(&person, as_of);
    let participated = trainings.iter().any(|t| {
        t.credited && t.credited_hours > 0.0 && t.end_date >= start && t.end_date <= as_of
    });
    let (mut results_in_window, mut results_passed) = (0, 0);
    for t in &trainings {
        let assessed = t.assessed_on.filter(|d| *d >= start && *d <= as_of);
        if assessed.is_some() {
            results_in_window += 1;
            results_passed += u32::from(t.failed_on.is_none());
        }
    }
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
    } else if credited_hours + 1e-9 < required_hours && (off_job_days as f64) < required_days {
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

    Some(Dossier {
        person_key: person_key.clone(),
        name: person.name.clone(),
        unit_code: person.unit_code.clone().unwrap_or_default(),
        unit_name: person.unit_name.clone().unwrap_or_default(),
        rank,
        category: person.category,
        status: person.status,
        region_code: person.region_code.clone().unwrap_or_default(),
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

/// Rounds to hundredths so sums do not depend on the order of float additions.
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{make_national_id, NationalId, PersonKeyer};

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn stored(id: &str, body: Body) -> StoredRecord {
        StoredRecord {
            source: SourceRef {
                system: "t".into(),
                kind: body.kind(),
                record_id: id.into(),
                version: 1,
            },
            received_at: String::new(),
            profile: String::new(),
            body,
        }
    }

    struct World {
        key: PersonKey,
        records: Vec<StoredRecord>,
    }

    impl World {
        fn new(rank: Rank, hired: &str) -> World {
            let id =
                NationalId::parse("id", &make_national_id(110105, d("1980-01-01"), 1)).unwrap();
            let key = PersonKeyer::new(b"k").key(&id);
            let person = Person {
                national_id: id,
                person_key: key.clone(),
                name: "测试".into(),
                gender: None,
                birth_date: None,
                ethnicity: None,
                education: None,
                rank: Some(rank),
                category: None,
                unit_code: None,
                unit_name: None,
                region_code: None,
                position: None,
                status: PersonStatus::Active,
                hired_on: Some(d(hired)),
                status_since: None,
            };
            World {
                records: vec![stored("p", Body::Person(person))],
                key,
            }
        }

        /// A completed off-job class with optional present and leave hours.
        fn class(
            &mut self,
            id: &str,
            start: &str,
            end: &str,
            planned: f64,
            present: Option<f64>,
            leave: f64,
        ) {
            let who = PersonRef::Key(self.key.clone());
            self.records.push(stored(
                &format!("c-{id}"),
                Body::TrainingClass(TrainingClass {
                    class_id: id.into(),
                    provider: "党校".into(),
                    title: id.into(),
                    topic: id.into(),
                    themes: vec![Theme::PartyTheory],
                    format: Format::OffJob,
                    category: None,
                    start_date: d(start),
                    end_date: d(end),
                    planned_hours: planned,
                    capacity: None,
                }),
            ));
            self.records.push(stored(
                &format!("e-{id}"),
                Body::Enrollment(Enrollment {
                    person: who.clone(),
                    class_id: id.into(),
                    status: EnrollmentStatus::Completed,
                    dispatch: None,
                    enrolled_at: None,
                }),
            ));
            for (kind, hours) in [
                (AttendanceKind::Present, present),
                (AttendanceKind::Leave, Some(leave)),
            ] {
                if let Some(hours) = hours.filter(|h| *h > 0.0) {
                    self.records.push(stored(
                        &format!("a-{id}-{kind}"),
                        Body::Attendance(Attendance {
                            person: who.clone(),
                            class_id: id.into(),
                            date: d(start),
                            hours,
                            kind,
                        }),
                    ));
                }
            }
        }

        fn dossier(&self, as_of: &str) -> Dossier {
            compute(&self.key, &self.records, d(as_of), &Policy::default()).unwrap()
        }
    }

    #[test]
    fn window_is_five_years_inclusive() {
        assert_eq!(window_start(d("2025-06-30"), 5), d("2020-07-01"));
        assert_eq!(window_start(d("2024-02-29"), 5), d("2019-03-01"));
    }

    #[test]
    fn a_training_ending_on_the_first_day_of_the_window_counts() {
        let mut w = World::new(Rank::County, "2000-01-01");
        w.class("edge", "2020-06-20", "2020-07-01", 60.0, None, 0.0);
        w.class("before", "2020-06-20", "2020-06-30", 50.0, None, 0.0);
        let dossier = w.dossier("2025-06-30");
        assert_eq!(dossier.credited_hours, 60.0);
        assert_eq!(dossier.light, Light::Yellow);
    }

    #[test]
    fn hours_are_present_hours_capped_at_planned() {
        let mut w = World::new(Rank::County, "2000-01-01");
        w.class("a", "2024-01-01", "2024-01-10", 80.0, Some(70.0), 0.0);
        w.class("b", "2024-02-01", "2024-02-10", 80.0, Some(95.0), 0.0);
        assert_eq!(w.dossier("2025-06-30").credited_hours, 150.0);
    }

    #[test]
    fn leave_of_exactly_one_seventh_is_allowed_and_more_voids_the_enrollment() {
        let mut w = World::new(Rank::County, "2000-01-01");
        w.class("ok", "2024-01-01", "2024-01-10", 70.0, Some(60.0), 10.0);
        w.class("over", "2024-03-01", "2024-03-10", 70.0, Some(59.0), 10.5);
        let dossier = w.dossier("2025-06-30");
        assert_eq!(dossier.credited_hours, 60.0);
        let leave: Vec<_> = dossier
            .flags
            .iter()
            .filter(|f| f.code == "LEAVE_LIMIT_EXCEEDED")
            .collect();
        assert_eq!(leave.len(), 1);
        assert!(leave[0].message.contains("over"));
    }

    #[test]
    fn appointment_form_marks_classes_of_sixty_days_or_more() {
        let mut w = World::new(Rank::County, "2000-01-01");
        w.class("d59", "2024-01-01", "2024-02-28", 300.0, None, 0.0);
        w.class("d60", "2023-01-01", "2023-03-01", 300.0, None, 0.0);
        let dossier = w.dossier("2025-06-30");
        let marks: Vec<_> = dossier
            .trainings
            .iter()
            .map(|t| (t.class_id.as_str(), t.appointment_form))
            .collect();
        assert_eq!(marks, [("d60", true), ("d59", false)]);
        assert_eq!(dossier.light, Light::Green);
    }

    #[test]
    fn junior_requirement_follows_in_scope_years() {
        let w = World::new(Rank::Staff, "2023-07-02");
        let dossier = w.dossier("2025-06-30");
        // In scope 2023-07-02 ..= 2025-06-30: 730 days / 365 = 2 years of 90 学时.
        assert_eq!(dossier.required_hours, 180.0);
        assert_eq!(dossier.light, Light::Red);
        let senior = World::new(Rank::Bureau, "1990-01-01").dossier("2025-06-30");
        assert_eq!(senior.required_hours, 550.0);
    }

    #[test]
    fn hired_after_as_of_is_exempt() {
        let w = World::new(Rank::Staff, "2026-01-01");
        assert_eq!(w.dossier("2025-06-30").light, Light::Exempt);
    }

    fn codes(d: &Dossier) -> Vec<(&'static str, Option<i32>)> {
        d.flags
            .iter()
            .map(|f| (f.code, f.year))
            .filter(|f| f.0 != "ONLINE_SHORTFALL")
            .collect()
    }

    fn fail(w: &mut World, class_id: &str, on: &str) {
        let who = PersonRef::Key(w.key.clone());
        w.records.push(stored(
            &format!("r-{class_id}"),
            Body::Result(ResultRecord {
                person: who,
                class_id: class_id.into(),
                outcome: Outcome::Fail,
                score: None,
                dimensions: Default::default(),
                certificate_no: None,
                assessed_at: on.into(),
                assessed_on: d(on),
            }),
        ));
    }

    #[test]
    fn a_failed_class_blocks_excellent_and_needs_a_remedial_class() {
        let mut w = World::new(Rank::County, "2000-01-01");
        w.class("f", "2023-03-01", "2023-03-05", 40.0, None, 0.0);
        fail(&mut w, "f", "2023-03-05");
        assert_eq!(
            codes(&w.dossier("2024-06-30")),
            [
                ("EXCELLENT_BLOCKED", Some(2023)),
                ("REMEDIAL_REQUIRED", Some(2023))
            ]
        );
        // A passed class on the same theme, starting after the failed one ends, remedies it.
        w.class("r", "2023-09-01", "2023-09-05", 40.0, None, 0.0);
        assert_eq!(
            codes(&w.dossier("2024-06-30")),
            [("EXCELLENT_BLOCKED", Some(2023))]
        );
    }

    #[test]
    fn long_classes_and_topics() {
        let mut w = World::new(Rank::County, "2000-01-01");
        w.class("d29", "2021-01-01", "2021-01-29", 100.0, None, 0.0);
        w.class("d30", "2022-01-01", "2022-01-30", 100.0, None, 0.0);
        assert_eq!(codes(&w.dossier("2025-06-30")), []);
        w.class("d30b", "2026-12-31", "2027-01-29", 100.0, None, 0.0);
        assert_eq!(
            codes(&w.dossier("2027-06-30")),
            [("LONG_TRAINING_LIMIT", Some(2026))]
        );
        // Same topic (the title, here the id) twice in one year.
        let mut t = World::new(Rank::County, "2000-01-01");
        t.class("x", "2024-01-01", "2024-01-03", 20.0, None, 0.0);
        t.records.push(t.records[1].clone());
        if let Body::TrainingClass(c) = &mut t.records.last_mut().unwrap().body {
            c.class_id = "x2".into();
            c.start_date = d("2024-11-01");
            c.end_date = d("2024-11-02");
        }
        t.records.push(t.records[2].clone());
        if let Body::Enrollment(e) = &mut t.records.last_mut().unwrap().body {
            e.class_id = "x2".into();
        }
        let last = t.records.len() - 1;
        t.records[last].source.record_id = "e-x2".into();
        t.records[last - 1].source.record_id = "c-x2".into();
        assert_eq!(
            codes(&t.dossier("2025-06-30")),
            [("SAME_TOPIC_REPEAT", Some(2024))]
        );
        // The same topic in different years is no repeat.
        let last = t.records.len() - 2;
        if let Body::TrainingClass(c) = &mut t.records[last].body {
            c.start_date = d("2025-01-02");
            c.end_date = d("2025-01-03");
        }
        assert_eq!(codes(&t.dossier("2025-06-30")), []);
    }

    #[test]
    fn retired_the_day_before_as_of_is_exempt_and_the_day_of_is_not_yet() {
        let mut w = World::new(Rank::Staff, "2000-01-01");
        if let Body::Person(p) = &mut w.records[0].body {
            p.status = PersonStatus::Retired;
            p.status_since = Some(d("2025-06-29"));
        }
        assert_eq!(w.dossier("2025-06-30").light, Light::Exempt);
        assert_eq!(w.dossier("2025-06-28").light, Light::Red);
    }

    #[test]
    fn online_minutes_follow_the_source_rule() {
        let mut w = World::new(Rank::Staff, "2000-01-01");
        let who = PersonRef::Key(w.key.clone());
        w.records.push(stored(
            "m",
            Body::Learning(Learning {
                person: who,
                course_id: "M".into(),
                course_title: "网课".into(),
                themes: vec![],
                amount: StudyAmount::Minutes(50.0),
                completed_at: "2025-01-01".into(),
                completed_on: d("2025-01-01"),
            }),
        ));
        assert_eq!(
            w.dossier("2025-06-30").credited_hours,
            1.11,
            "50 minutes at 45 per 学时"
        );
        let mut policy = Policy::default();
        let tiers = vec![
            crate::policy::Tier {
                min_minutes: 40.0,
                hours: 1.0,
            },
            crate::policy::Tier {
                min_minutes: 90.0,
                hours: 2.0,
            },
        ];
        policy.hours.sources.insert(
            "t".into(),
            crate::policy::HourRule {
                minutes_per_hour: 45.0,
                tiers,
            },
        );
        let tiered = compute(&w.key, &w.records, d("2025-06-30"), &policy).unwrap();
        assert_eq!(
            tiered.credited_hours, 1.0,
            "50 minutes reach the 40-minute tier"
        );
    }

    #[test]
    fn online_shortfall_only_for_whole_years_in_scope() {
        let w = World::new(Rank::Staff, "2022-03-01");
        let years: Vec<_> = w
            .dossier("2025-06-30")
            .flags
            .iter()
            .filter(|f| f.code == "ONLINE_SHORTFALL")
            .map(|f| f.year)
            .collect();
        assert_eq!(years, [Some(2023), Some(2024)]);
    }

    #[test]
    fn promotion_into_county_within_a_year_gives_grace() {
        let mut w = World::new(Rank::County, "2000-01-01");
        let who = PersonRef::Key(w.key.clone());
        w.records.push(stored(
            "ev",
            Body::PersonEvent(PersonEvent {
                person: who,
                event: EventKind::Promoted,
                effective_date: d("2024-07-01"),
                rank: Some(Rank::County),
                unit_code: None,
            }),
        ));
        assert_eq!(
            codes(&w.dossier("2025-06-30")),
            [("PROMOTION_GRACE", Some(2024))]
        );
        assert_eq!(codes(&w.dossier("2025-07-01")), []);
    }
}
