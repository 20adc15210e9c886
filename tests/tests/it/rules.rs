//! DESIGN §5 end to end: a mixed population from the three simulated partners, submitted in
//! random order over gRPC; dossiers, coverage and dispatch checks compared with expectations
//! computed here, independently of the model crate, from the generated records.

use crate::fixtures::*;
use chrono::{Datelike, Duration, NaiveDate};
use std::collections::{BTreeMap, HashMap};
use trainhub_connectors::synthetic;
use trainhub_proto::v1::{self as pb, record::Body};
use trainhub_tests::{statuses, Backend, TestHub};

fn date(s: &str) -> NaiveDate {
    s[..10].parse().unwrap()
}

/// What the test expects of one person at an `as_of`.
#[derive(Debug, Default, Clone, PartialEq)]
struct Expected {
    in_scope: bool,
    light: &'static str,
    credited: f64,
    required: f64,
    participated: bool,
    results: i64,
    passed: i64,
}

/// Per class: enrollment status, result outcome, present hours, leave hours.
type ClassSeen<'a> = (Option<&'a str>, Option<&'a str>, f64, f64);

struct World<'a> {
    persons: HashMap<&'a str, &'a pb::Person>,
    classes: HashMap<&'a str, &'a pb::TrainingClass>,
    by_person: HashMap<String, Vec<&'a Body>>,
    accounts: HashMap<&'a str, &'a str>,
}

impl<'a> World<'a> {
    fn new(records: &'a [pb::Record]) -> World<'a> {
        let mut w = World {
            persons: HashMap::new(),
            classes: HashMap::new(),
            by_person: HashMap::new(),
            accounts: HashMap::new(),
        };
        for r in records {
            match r.body.as_ref().unwrap() {
                Body::Person(p) => {
                    w.persons.insert(&p.national_id, p);
                }
                Body::TrainingClass(c) => {
                    w.classes.insert(&c.class_id, c);
                }
                Body::Link(l) => {
                    w.accounts.insert(&l.account_id, &l.national_id);
                }
                _ => {}
            }
        }
        for r in records {
            let b = r.body.as_ref().unwrap();
            let person_ref = match b {
                Body::Enrollment(x) => x.person_ref.as_ref(),
                Body::Attendance(x) => x.person_ref.as_ref(),
                Body::Result(x) => x.person_ref.as_ref(),
                Body::Learning(x) => x.person_ref.as_ref(),
                _ => None,
            };
            if let Some(p) = person_ref {
                let id = if p.national_id.is_empty() {
                    match w.accounts.get(p.account_id.as_str()) {
                        Some(id) => id.to_string(),
                        None => continue,
                    }
                } else {
                    p.national_id.clone()
                };
                w.by_person.entry(id).or_default().push(b);
            }
        }
        w
    }

    fn expected(&self, id: &str, as_of: NaiveDate) -> Expected {
        let p = self.persons[id];
        let start = NaiveDate::from_ymd_opt(as_of.year() - 5, as_of.month(), as_of.day()).unwrap()
            + Duration::days(1);
        let hired = date(&p.hired_on);
        let gone = p.status != "active" && date(&p.status_since) <= as_of;
        let mut e = Expected {
            in_scope: hired <= as_of && !gone,
            ..Default::default()
        };
        let in_window = |d: NaiveDate| d >= start && d <= as_of;
        let bodies = self.by_person.get(id).cloned().unwrap_or_default();
        let (mut party_off_job, mut off_job_days) = (false, 0i64);
        let mut per_class: BTreeMap<&str, ClassSeen> = BTreeMap::new();
        for b in &bodies {
            match b {
                Body::Enrollment(x) => {
                    per_class.entry(&x.class_id).or_default().0 = Some(&x.status)
                }
                Body::Result(x) => {
                    per_class.entry(&x.class_id).or_default().1 = Some(&x.outcome);
                    if in_window(date(&x.assessed_at)) {
                        e.results += 1;
                        e.passed += i64::from(x.outcome != "fail");
                    }
                }
                Body::Attendance(x) if x.kind == "present" => {
                    per_class.entry(&x.class_id).or_default().2 += x.hours
                }
                Body::Attendance(x) => per_class.entry(&x.class_id).or_default().3 += x.hours,
                Body::Learning(x) if in_window(date(&x.completed_at)) => {
                    e.credited += x.minutes / 45.0;
                    e.participated = true;
                }
                _ => {}
            }
        }
        for (class_id, (status, outcome, present, leave)) in per_class {
            let c = self.classes[class_id];
            let credited = status == Some("completed")
                && outcome != Some("fail")
                && leave * 7.0 <= c.planned_hours;
            if !credited || !in_window(date(&c.end_date)) {
                continue;
            }
            e.credited += present.min(c.planned_hours);
            e.participated |= present > 0.0;
            if c.format == "off_job" {
                off_job_days += (date(&c.end_date) - date(&c.start_date)).num_days() + 1;
                party_off_job |= c
                    .themes
                    .iter()
                    .any(|t| t == "party_theory" || t == "party_spirit");
            }
        }
        let senior = matches!(p.rank.as_str(), "provincial" | "bureau" | "county");
        let (hours, days) = if senior {
            (550.0, 90.0)
        } else {
            let from = hired.max(start);
            let y = (((as_of - from).num_days() + 1) as f64 / 365.0).min(5.0);
            ((90.0 * y * 100.0).round() / 100.0, 12.0 * y)
        };
        e.required = hours;
        e.credited = (e.credited * 100.0).round() / 100.0;
        e.light = if !e.in_scope {
            "EXEMPT"
        } else if !party_off_job {
            "RED"
        } else if e.credited + 1e-6 < hours && (off_job_days as f64) < days {
            "YELLOW"
        } else {
            "GREEN"
        };
        e
    }
}

fn light_name(l: i32) -> &'static str {
    match pb::Light::try_from(l).unwrap() {
        pb::Light::Red => "RED",
        pb::Light::Yellow => "YELLOW",
        pb::Light::Green => "GREEN",
        pb::Light::Exempt => "EXEMPT",
        pb::Light::Unspecified => "?",
    }
}

#[tokio::test]
async fn population_dossiers_coverage_and_dispatch() {
    let Some(hub) = TestHub::start(Backend::Postgres).await else {
        return;
    };
    let population = synthetic::population(2027, 1000);
    let mut records = population.records.clone();
    synthetic::shuffle(&mut records, 99);
    let rejected: usize = hub
        .stream(&records, 500)
        .await
        .iter()
        .map(|r| {
            statuses(&r.outcomes)
                .iter()
                .filter(|s| *s == "REJECTED")
                .count()
        })
        .sum();
    assert_eq!(rejected, 0);
    let world = World::new(&population.records);
    let as_of = NaiveDate::from_ymd_opt(2026, 6, 30).unwrap();

    // Every dossier: light, credited and required hours.
    let mut dossiers = hub.dossiers().await;
    let mut lights: BTreeMap<&str, usize> = BTreeMap::new();
    for p in &population.persons {
        let got = dossiers
            .get_dossier(pb::GetDossierRequest {
                national_id: p.national_id.clone(),
                as_of: as_of.to_string(),
                purpose: "test".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let want = world.expected(&p.national_id, as_of);
        assert_eq!(
            (
                light_name(got.light),
                got.credited_hours,
                got.required_hours
            ),
            (want.light, want.credited, want.required),
            "person in unit {}",
            p.unit_code
        );
        *lights.entry(want.light).or_default() += 1;
    }
    assert!(
        lights.len() >= 3,
        "the population exercises the lights: {lights:?}"
    );

    // Coverage by unit at the same as_of, against the same expectations.
    let report = dossiers
        .get_coverage(pb::CoverageRequest {
            purpose: "test".into(),
            group_by: "unit".into(),
            as_of: as_of.to_string(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut want: BTreeMap<&str, (i64, i64, i64, i64, i64, i64)> = BTreeMap::new();
    for p in &population.persons {
        let e = world.expected(&p.national_id, as_of);
        if !e.in_scope {
            continue;
        }
        let g = want.entry(&p.unit_code).or_default();
        g.0 += 1;
        g.1 += i64::from(e.participated);
        g.2 += e.results;
        g.3 += e.passed;
        g.4 += i64::from(e.light == "RED");
        g.5 += i64::from(e.light == "GREEN");
    }
    assert_eq!(report.groups.len(), want.len());
    for g in &report.groups {
        let w = want[g.key.as_str()];
        assert_eq!(
            (g.in_scope, g.red, g.green, g.red_list.len() as i64),
            (w.0, w.4, w.5, w.4),
            "unit {}",
            g.key
        );
        assert!(
            (g.participation_rate - w.1 as f64 / w.0 as f64).abs() < 1e-9,
            "unit {}",
            g.key
        );
        assert!(
            (g.pass_rate
                - if w.2 == 0 {
                    0.0
                } else {
                    w.3 as f64 / w.2 as f64
                })
            .abs()
                < 1e-9,
            "unit {}",
            g.key
        );
        assert!(
            (g.coverage_rate - (w.0 - w.4) as f64 / w.0 as f64).abs() < 1e-9,
            "unit {}",
            g.key
        );
    }

    // Coverage at today is computed by the database over the maintained state; it must agree
    // with the dossiers at today.
    let today = chrono::Local::now().date_naive();
    let report = dossiers
        .get_coverage(pb::CoverageRequest {
            purpose: "test".into(),
            group_by: "rank".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let in_scope_today: i64 = report.groups.iter().map(|g| g.in_scope).sum();
    let expected_today = population
        .persons
        .iter()
        .filter(|p| world.expected(&p.national_id, today).in_scope)
        .count();
    assert_eq!(in_scope_today as usize, expected_today);

    // Its RED lists, read from the summary index in ranges of person keys: every in-scope RED
    // person of the group with the name opened and the unit, in person-key order.
    let mut want_red: BTreeMap<String, Vec<(String, String, String)>> = BTreeMap::new();
    for p in &population.persons {
        let d = dossiers
            .get_dossier(pb::GetDossierRequest {
                national_id: p.national_id.clone(),
                purpose: "test".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        if world.expected(&p.national_id, today).in_scope && light_name(d.light) == "RED" {
            want_red
                .entry(d.rank)
                .or_default()
                .push((d.person_key, d.name, d.unit_code));
        }
    }
    want_red.values_mut().for_each(|list| list.sort());
    let got_red: BTreeMap<String, Vec<(String, String, String)>> = report
        .groups
        .iter()
        .filter(|g| !g.red_list.is_empty())
        .map(|g| {
            let list = g.red_list.iter();
            let list = list.map(|p| (p.person_key.clone(), p.name.clone(), p.unit_code.clone()));
            (g.key.clone(), list.collect())
        })
        .collect();
    assert!(want_red.values().map(Vec::len).sum::<usize>() > 16);
    assert_eq!(got_red, want_red);

    // CheckDispatch: a 30-day off-job class starting 2026-07-01, on the topic of an existing
    // 2026 class.
    let plan_start = NaiveDate::from_ymd_opt(2026, 7, 1).unwrap();
    let same_year_class = world
        .classes
        .values()
        .filter(|c| date(&c.start_date).year() == 2026 && c.format == "off_job")
        .min_by_key(|c| c.class_id.clone())
        .unwrap();
    let planned = pb::TrainingClass {
        class_id: "PLAN-1".into(),
        provider: "省委党校".into(),
        title: "计划班".into(),
        topic: same_year_class.title.clone(),
        themes: vec!["party_theory".into()],
        format: "off_job".into(),
        start_date: plan_start.to_string(),
        end_date: (plan_start + Duration::days(29)).to_string(),
        planned_hours: 180.0,
        ..Default::default()
    };
    let roster: Vec<&synthetic::SynthPerson> = population
        .persons
        .iter()
        .filter(|p| p.unit_code == "U0003")
        .collect();
    let check = dossiers
        .check_dispatch(pb::DispatchPlan {
            class: Some(planned.clone()),
            persons: roster
                .iter()
                .map(|p| who(&p.national_id).unwrap())
                .collect(),
            as_of: plan_start.to_string(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(check.persons.len(), roster.len());
    for (p, got) in roster.iter().zip(&check.persons) {
        let mut long = false;
        let mut topic = false;
        for b in world.by_person.get(&p.national_id).into_iter().flatten() {
            let Body::Enrollment(e) = b else { continue };
            let c = world.classes[e.class_id.as_str()];
            if !matches!(e.status.as_str(), "enrolled" | "completed") || c.format != "off_job" {
                continue;
            }
            let (s, end) = (date(&c.start_date), date(&c.end_date));
            long |=
                (end - s).num_days() + 1 >= 30 && s > NaiveDate::from_ymd_opt(2021, 7, 1).unwrap();
            topic |= c.title == planned.topic && s.year() == 2026;
        }
        let codes: Vec<_> = got.violations.iter().map(|v| v.code.as_str()).collect();
        assert_eq!(codes.contains(&"LONG_TRAINING_LIMIT"), long, "{codes:?}");
        assert_eq!(codes.contains(&"SAME_TOPIC_REPEAT"), topic, "{codes:?}");
        assert_eq!(
            got.red,
            world.expected(&p.national_id, plan_start).light == "RED"
        );
    }
    // A whole unit at once is far above the 20 % share.
    let unit = check.units.iter().find(|u| u.unit_code == "U0003").unwrap();
    assert!(unit.overloaded && !check.ok, "{unit:?}");
    hub.stop().await;
}

#[tokio::test]
async fn as_of_moves_trainings_out_of_the_window_and_retirees_out_of_scope() {
    let Some(hub) = TestHub::start(Backend::Sqlite).await else {
        return;
    };
    let (a, b) = (id(21), id(22));
    let mut retired = person(&b, "退休者", "staff");
    if let Body::Person(p) = &mut retired {
        p.status = "retired".into();
        p.status_since = "2025-06-29".into();
    }
    let out = hub
        .submit(vec![
            rec(HR, "P-a", 1, person(&a, "窗口", "county")),
            rec(HR, "P-b", 1, retired),
            rec(
                SCHOOL,
                "C-edge",
                1,
                class(
                    "C-edge",
                    "2020-06-01",
                    "2020-07-01",
                    120.0,
                    &["party_theory"],
                ),
            ),
            rec(SCHOOL, "N-edge", 1, enrollment(&a, "C-edge", "completed")),
        ])
        .await;
    assert_eq!(statuses(&out), ["ACCEPTED"; 4]);
    let inside = hub.dossier(&a, "2025-06-30").await.unwrap();
    assert_eq!(
        (inside.credited_hours, light_name(inside.light)),
        (120.0, "YELLOW")
    );
    let outside = hub.dossier(&a, "2025-07-01").await.unwrap();
    assert_eq!(
        (outside.credited_hours, light_name(outside.light)),
        (0.0, "RED")
    );
    assert_eq!(
        light_name(hub.dossier(&b, "2025-06-28").await.unwrap().light),
        "RED"
    );
    assert_eq!(
        light_name(hub.dossier(&b, "2025-06-30").await.unwrap().light),
        "EXEMPT"
    );
    hub.stop().await;
}

#[tokio::test]
async fn list_dossiers_filters_and_pages_and_appointment_lines() {
    let Some(hub) = TestHub::start(Backend::Sqlite).await else {
        return;
    };
    let mut batch = vec![rec(
        SCHOOL,
        "C-long",
        1,
        class(
            "C-long",
            "2024-03-01",
            "2024-04-29",
            300.0,
            &["party_theory"],
        ),
    )];
    let ids: Vec<String> = (30..36).map(id).collect();
    for (n, nid) in ids.iter().enumerate() {
        let mut p = person(nid, &format!("人员{n}"), "county");
        if let Body::Person(p) = &mut p {
            p.unit_code = if n % 2 == 0 {
                "U-A".into()
            } else {
                "U-B".into()
            };
        }
        batch.push(rec(HR, &format!("P{n}"), 1, p));
        if n < 2 {
            batch.push(rec(
                SCHOOL,
                &format!("N{n}"),
                1,
                enrollment(nid, "C-long", "completed"),
            ));
        }
    }
    assert!(statuses(&hub.submit(batch).await)
        .iter()
        .all(|s| s == "ACCEPTED"));

    // The 60-day class goes on the appointment form.
    let lines = hub
        .dossiers()
        .await
        .get_appointment_lines(pb::AppointmentLinesRequest {
            purpose: "test".into(),
            national_id: ids[0].clone(),
            as_of: "2025-06-30".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        lines.lines,
        ["2024.03--2024.04 在省委党校参加C-long 专题班学习"]
    );
    assert_eq!(lines.jianli, lines.lines[0]);

    // Unit U-A at today: three people; page by two.
    let list = |page_token: String, light: pb::Light| {
        let grpc = hub.grpc_addr;
        async move {
            let mut client =
                trainhub_proto::v1::dossier_service_client::DossierServiceClient::connect(format!(
                    "http://{grpc}"
                ))
                .await
                .unwrap();
            let mut stream = client
                .list_dossiers(pb::ListDossiersRequest {
                    purpose: "test".into(),
                    filter: Some(pb::DossierFilter {
                        unit_code: "U-A".into(),
                        light: light as i32,
                        ..Default::default()
                    }),
                    page_size: 2,
                    page_token,
                    // Right after the batch: the listing waits for the projector.
                    wait_for_projection: true,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            let mut out = Vec::new();
            while let Some(d) = stream.message().await.unwrap() {
                out.push(d);
            }
            out
        }
    };
    let first = list(String::new(), pb::Light::Unspecified).await;
    assert_eq!(first.len(), 2);
    let second = list(first[1].person_key.clone(), pb::Light::Unspecified).await;
    assert_eq!(second.len(), 1);
    assert!(first.iter().chain(&second).all(|d| d.unit_code == "U-A"));
    assert!(
        first[0].person_key < first[1].person_key && first[1].person_key < second[0].person_key
    );
    // Light filter: the person in U-A with the long party-theory class is YELLOW (300 of 550
    // 学时 and 60 of 90 days), everyone else RED.
    let red = list(String::new(), pb::Light::Red).await;
    assert_eq!(red.len(), 2);
    assert!(red.iter().all(|d| light_name(d.light) == "RED"));
    hub.stop().await;
}
