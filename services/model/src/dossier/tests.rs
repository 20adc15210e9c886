//! The dossier's rules, case by case.
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
        let id = NationalId::parse("id", &make_national_id(110105, d("1980-01-01"), 1)).unwrap();
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
            authority: None,
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

impl World {
    /// An online course of `minutes`, completed on `on`.
    fn online(&mut self, id: &str, minutes: f64, on: &str) {
        let who = PersonRef::Key(self.key.clone());
        self.records.push(stored(
            id,
            Body::Learning(Learning {
                person: who,
                course_id: id.into(),
                course_title: "网课".into(),
                themes: vec![],
                amount: StudyAmount::Minutes(minutes),
                completed_at: on.into(),
                completed_on: d(on),
            }),
        ));
    }
}

#[test]
fn totals_are_rounded_once_not_per_entry() {
    let mut w = World::new(Rank::Staff, "2000-01-01");
    for i in 0..3 {
        w.online(&format!("m{i}"), 20.0, "2025-01-01");
    }
    let dossier = w.dossier("2025-06-30");
    assert_eq!(dossier.credited_hours, 1.33, "60 minutes at 45 per 学时");
    let year = dossier.years.iter().find(|y| y.year == 2025).unwrap();
    assert_eq!(year.online_hours, 1.33);
}

proptest::proptest! {
    #[test]
    fn credited_hours_are_the_exact_sum_of_the_entries(
        minutes in proptest::collection::vec(1u32..600, 1..40),
    ) {
        let mut w = World::new(Rank::Staff, "2000-01-01");
        for (i, m) in minutes.iter().enumerate() {
            w.online(&format!("m{i}"), f64::from(*m), "2024-03-01");
        }
        let dossier = w.dossier("2025-06-30");
        let exact: f64 = minutes.iter().map(|m| f64::from(*m) / 45.0).sum();
        proptest::prop_assert!(
            (dossier.credited_hours - exact).abs() <= 0.005 + 1e-9,
            "{} against {}", dossier.credited_hours, exact
        );
    }
}

#[test]
fn warning_lists_follow_the_light_this_years_hours_and_the_flags() {
    use crate::warnings::{annual_form, warning, WarningList};
    let p = Policy::default();
    let mut w = World::new(Rank::Township, "2000-01-01");
    let untrained = w.dossier("2024-06-30");
    assert!(warning(&untrained, WarningList::Red, &p).is_some());
    let behind = warning(&untrained, WarningList::Behind, &p).unwrap();
    assert!(
        behind.en.contains("online 0.00") && behind.en.contains("in all 0.00"),
        "{behind:?}"
    );
    assert!(
        behind.zh.starts_with("2024年网络学习0.00学时"),
        "{behind:?}"
    );
    assert!(warning(&untrained, WarningList::Remedial, &p).is_none());
    // A failed class is to be retaken, and is on the year's annual form.
    w.class("f", "2024-03-01", "2024-03-05", 40.0, None, 0.0);
    fail(&mut w, "f", "2024-03-05");
    let failed = w.dossier("2024-06-30");
    assert!(warning(&failed, WarningList::Remedial, &p).is_some());
    assert!(warning(&failed, WarningList::LongTraining, &p).is_none());
    assert_eq!(annual_form(&failed, 2024).len(), 1);
    assert!(annual_form(&failed, 2023).is_empty());
    // Out of scope: on no list.
    let later = World::new(Rank::Township, "2030-01-01").dossier("2024-06-30");
    assert!(WarningList::ALL
        .iter()
        .all(|l| warning(&later, *l, &p).is_none()));
}
