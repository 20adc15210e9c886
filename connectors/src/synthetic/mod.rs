//! A synthetic population fed by three simulated partner systems:
//! `hr-province` (persons, promotions, account links), `party-school-prov` (classes,
//! enrollments, attendance, results, evaluations) and `elearning-cadre` (online study by
//! account). Deterministic for a given seed.

use chrono::{Datelike, Duration, NaiveDate};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use trainhub_proto::v1::{self as pb, record::Body};

/// The HR system's name.
pub const HR: &str = "hr-province";
/// The party school's name.
pub const SCHOOL: &str = "party-school-prov";
/// The online learning platform's name.
pub const ELEARNING: &str = "elearning-cadre";
/// The account system (xAPI `homePage`) of the online platform.
pub const ACCOUNT_SYSTEM: &str = "https://elearning.example.gov.cn";

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
];
const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "强", "磊", "军", "洋", "勇", "艳", "杰", "涛", "明", "超",
    "秀英", "建国", "志强", "海燕", "晓东",
];
const TOPICS: &[(&str, &[&str])] = &[
    ("学习贯彻党的创新理论专题班", &["party_theory"]),
    ("党性教育专题培训班", &["party_spirit"]),
    ("乡村振兴专题研讨班", &["professional", "party_theory"]),
    ("数字政府建设能力提升班", &["professional", "knowledge"]),
    (
        "中青年干部培训班",
        &["party_theory", "party_spirit", "professional"],
    ),
    ("新任职干部任职培训班", &["party_spirit", "professional"]),
    ("基层治理能力培训班", &["professional"]),
    ("经济金融知识更新班", &["knowledge"]),
];
const RANKS: &[(&str, u32)] = &[
    ("bureau", 4),
    ("county", 26),
    ("township", 40),
    ("staff", 30),
];
const CATEGORIES: &[&str] = &[
    "party_government_leader",
    "civil_servant",
    "soe_leader",
    "institution_leader",
    "young_cadre",
    "grassroots",
];

fn source(system: &str, kind: &str, record_id: String, version: i64) -> Option<pb::SourceRef> {
    Some(pb::SourceRef {
        system: system.into(),
        kind: kind.into(),
        record_id,
        version,
    })
}

fn record(system: &str, id: String, body: Body) -> pb::Record {
    pb::Record {
        source: source(system, body.kind(), id, 1),
        deleted: false,
        body: Some(body),
    }
}

fn by_id(national_id: &str) -> Option<pb::PersonRef> {
    Some(pb::PersonRef {
        national_id: national_id.into(),
        ..Default::default()
    })
}

fn pick_weighted<'a>(rng: &mut StdRng, items: &'a [(&'a str, u32)]) -> &'a str {
    let total: u32 = items.iter().map(|i| i.1).sum();
    let mut n = rng.gen_range(0..total);
    for (item, w) in items {
        if n < *w {
            return item;
        }
        n -= w;
    }
    items[0].0
}

/// A generated person, as the generator knows it (tests compute expectations from this).
#[derive(Debug, Clone)]
pub struct SynthPerson {
    /// Valid national ID.
    pub national_id: String,
    /// Online platform account, when the person has one.
    pub account: Option<String>,
    /// Unit code.
    pub unit_code: String,
}

/// The generated data set.
#[derive(Debug, Clone, Default)]
pub struct Population {
    /// Valid records from all three systems, in generation order.
    pub records: Vec<pb::Record>,
    /// The persons.
    pub persons: Vec<SynthPerson>,
    /// Where each person's own records are in `records` (same order as `persons`); the
    /// classes come before the first.
    pub spans: Vec<std::ops::Range<usize>>,
}

mod forms;
mod people;
pub use forms::{form_people, FORM_CLASS};
pub use people::{population, People};

struct SynthClass {
    id: String,
    start: NaiveDate,
    end: NaiveDate,
    planned: f64,
}

fn generate_classes(
    rng: &mut StdRng,
    out: &mut Vec<pb::Record>,
    n: usize,
    today: NaiveDate,
) -> Vec<SynthClass> {
    (0..n)
        .map(|i| {
            let (title, themes) = TOPICS[i % TOPICS.len()];
            let start = today - Duration::days(rng.gen_range(30..2400));
            let days: i64 = *[5i64, 7, 14, 30, 60, 90].choose(rng).expect("non-empty");
            let end = start + Duration::days(days - 1);
            let planned = (days as f64 * 6.0).min(480.0);
            let format = if i % 9 == 8 { "on_job" } else { "off_job" };
            let id = format!("PS-{}-{i:04}", start.year());
            out.push(record(
                SCHOOL,
                format!("class-{id}"),
                Body::TrainingClass(pb::TrainingClass {
                    class_id: id.clone(),
                    provider: "省委党校".into(),
                    title: format!("{}（{}期）", title, i + 1),
                    topic: String::new(),
                    themes: themes.iter().map(|t| t.to_string()).collect(),
                    format: format.into(),
                    category: ["thematic", "rotation", "in_service"][i % 3].into(),
                    start_date: start.to_string(),
                    end_date: end.to_string(),
                    planned_hours: planned,
                    capacity: 60,
                }),
            ));
            SynthClass {
                id,
                start,
                end,
                planned,
            }
        })
        .collect()
}

/// The cadre-management authority of a synthetic person: the province's organisation
/// department for bureau rank, otherwise one of two cities' by turns.
pub fn authority(rank: &str, n: usize) -> &'static str {
    match (rank, n % 2) {
        ("bureau", _) => AUTHORITIES[0],
        (_, 0) => AUTHORITIES[1],
        _ => AUTHORITIES[2],
    }
}

/// The authorities of the synthetic population: a province and two of its cities.
pub const AUTHORITIES: [&str; 3] = ["js-prov", "js-nanjing", "js-suzhou"];

fn person_records(
    rng: &mut StdRng,
    out: &mut Vec<pb::Record>,
    p: &SynthPerson,
    birth: NaiveDate,
    n: usize,
    today: NaiveDate,
) {
    let rank = pick_weighted(rng, RANKS);
    let retired = n % 20 == 19;
    let hired = NaiveDate::from_ymd_opt(birth.year() + 22, 9, 1).expect("valid date");
    let name = format!(
        "{}{}",
        SURNAMES[rng.gen_range(0..SURNAMES.len())],
        GIVEN[rng.gen_range(0..GIVEN.len())]
    );
    out.push(record(
        HR,
        format!("A01-{n:07}"),
        Body::Person(pb::Person {
            national_id: p.national_id.clone(),
            name,
            gender: ["1", "2"][n % 2].into(),
            birth_date: birth.to_string(),
            ethnicity: if n.is_multiple_of(11) {
                "03".into()
            } else {
                "01".into()
            },
            education: ["20", "14", "11"][n % 3].into(),
            rank: rank.into(),
            category: CATEGORIES[n % CATEGORIES.len()].into(),
            unit_code: p.unit_code.clone(),
            unit_name: format!("第{}局", &p.unit_code[1..]),
            region_code: "320000".into(),
            position: "处长".into(),
            status: if retired {
                "retired".into()
            } else {
                "active".into()
            },
            hired_on: hired.min(today).to_string(),
            status_since: if retired {
                (today - Duration::days(rng.gen_range(1..900))).to_string()
            } else {
                String::new()
            },
            authority: authority(rank, n).into(),
        }),
    ));
    if n.is_multiple_of(7) {
        out.push(record(
            HR,
            format!("EV-{n:07}"),
            Body::PersonEvent(pb::PersonEvent {
                person_ref: by_id(&p.national_id),
                event: "promoted".into(),
                effective_date: (today - Duration::days(rng.gen_range(30..1500))).to_string(),
                rank: rank.into(),
                unit_code: p.unit_code.clone(),
            }),
        ));
    }
    if let Some(account) = &p.account {
        out.push(record(
            HR,
            format!("LNK-{n:07}"),
            Body::Link(pb::Link {
                national_id: p.national_id.clone(),
                account_system: ACCOUNT_SYSTEM.into(),
                account_id: account.clone(),
            }),
        ));
    }
}

fn training_records(
    rng: &mut StdRng,
    out: &mut Vec<pb::Record>,
    p: &SynthPerson,
    classes: &[SynthClass],
    n: usize,
) {
    let picks = rng.gen_range(0..=3);
    for c in classes.choose_multiple(rng, picks) {
        let key = format!("{n:07}-{}", c.id);
        let roll: u32 = rng.gen_range(0..100);
        let status = if roll < 85 {
            "completed"
        } else if roll < 95 {
            "enrolled"
        } else {
            "withdrawn"
        };
        out.push(record(
            SCHOOL,
            format!("ENR-{key}"),
            Body::Enrollment(pb::Enrollment {
                person_ref: by_id(&p.national_id),
                class_id: c.id.clone(),
                status: status.into(),
                dispatch: if roll.is_multiple_of(3) {
                    "self_selected"
                } else {
                    "organised"
                }
                .into(),
                enrolled_at: format!("{}T09:00:00+08:00", c.start - Duration::days(7)),
            }),
        ));
        let leave = if roll.is_multiple_of(17) {
            c.planned / 5.0
        } else if roll.is_multiple_of(5) {
            6.0
        } else {
            0.0
        };
        out.push(record(
            SCHOOL,
            format!("ATT-{key}"),
            Body::Attendance(pb::Attendance {
                person_ref: by_id(&p.national_id),
                class_id: c.id.clone(),
                date: c.start.to_string(),
                hours: (c.planned - leave).max(0.0),
                kind: "present".into(),
            }),
        ));
        if leave > 0.0 {
            out.push(record(
                SCHOOL,
                format!("LV-{key}"),
                Body::Attendance(pb::Attendance {
                    person_ref: by_id(&p.national_id),
                    class_id: c.id.clone(),
                    date: c.end.to_string(),
                    hours: leave,
                    kind: "leave".into(),
                }),
            ));
        }
        if status == "completed" {
            assessment(out, p, c, &key, roll);
        }
    }
    online_study(rng, out, p, n);
}

/// The result and the evaluations of a completed class.
fn assessment(out: &mut Vec<pb::Record>, p: &SynthPerson, c: &SynthClass, key: &str, roll: u32) {
    let fail = roll.is_multiple_of(23);
    out.push(record(
        SCHOOL,
        format!("RES-{key}"),
        Body::Result(pb::Result {
            person_ref: by_id(&p.national_id),
            class_id: c.id.clone(),
            outcome: if fail {
                "fail"
            } else if roll.is_multiple_of(4) {
                "excellent"
            } else {
                "pass"
            }
            .into(),
            score: if fail {
                52.0
            } else {
                70.0 + f64::from(roll % 30)
            },
            dimensions: [
                ("virtue".to_string(), 80.0 + f64::from(roll % 20)),
                ("discussion_quality".to_string(), 75.0),
            ]
            .into(),
            certificate_no: if fail {
                String::new()
            } else {
                format!("CERT-{key}")
            },
            assessed_at: format!("{}T16:00:00+08:00", c.end),
        }),
    ));
    for (role, base) in [("class_teacher", 82.0), ("peer", 78.0)] {
        out.push(record(
            SCHOOL,
            format!("EVL-{role}-{key}"),
            Body::Evaluation(pb::Evaluation {
                person_ref: by_id(&p.national_id),
                class_id: c.id.clone(),
                rater_role: role.into(),
                dimensions: [
                    ("ability".to_string(), base + f64::from(roll % 15)),
                    ("diligence".to_string(), base),
                ]
                .into(),
                evaluated_at: format!("{}T17:00:00+08:00", c.end),
            }),
        ));
    }
}

/// Online courses of a person with a platform account.
fn online_study(rng: &mut StdRng, out: &mut Vec<pb::Record>, p: &SynthPerson, n: usize) {
    if let Some(account) = &p.account {
        for k in 0..rng.gen_range(2..8) {
            let done = NaiveDate::from_ymd_opt(
                rng.gen_range(2021..2027),
                rng.gen_range(1..=6),
                rng.gen_range(1..=28),
            )
            .expect("valid");
            let minutes = rng.gen_range(2..12) as f64 * 45.0;
            out.push(record(
                ELEARNING,
                format!("LRN-{n:07}-{k}"),
                Body::Learning(pb::Learning {
                    person_ref: Some(pb::PersonRef {
                        national_id: String::new(),
                        account_system: ACCOUNT_SYSTEM.into(),
                        account_id: account.clone(),
                    }),
                    course_id: format!("MOOC-{:03}", (n + k) % 120),
                    course_title: "习近平新时代中国特色社会主义思想专题课程".into(),
                    themes: vec!["party_theory".into()],
                    minutes,
                    hours: 0.0,
                    completed_at: format!("{done}T20:30:00+08:00"),
                }),
            ));
        }
    }
}

/// A second HR system of the demo (a city's), whose records disagree with the province's.
pub const CITY_HR: &str = "hr-city";

/// One case of each identity conflict for the review queue (DESIGN §4), built on `population`:
/// the city's HR record of one person under another name, the city's record of another person
/// with a birth date a year off the ID's, and a link tying a third person to an account that
/// already belongs to someone else.
pub fn review_cases(population: &Population) -> Vec<pb::Record> {
    let person_of = |national_id: &str| {
        population.records.iter().find_map(|r| match &r.body {
            Some(Body::Person(p)) if p.national_id == national_id => Some(p.clone()),
            _ => None,
        })
    };
    let mut out = Vec::new();
    let mut plain = population
        .persons
        .iter()
        .skip(2)
        .filter(|p| p.account.is_none());
    if let Some(mut p) = plain.next().and_then(|p| person_of(&p.national_id)) {
        let mut name: Vec<char> = p.name.chars().collect();
        if let Some(last) = name.last_mut() {
            *last = if *last == '华' { '化' } else { '华' };
        }
        p.name = name.into_iter().collect();
        out.push(record(CITY_HR, "CITY-0001".into(), Body::Person(p)));
    }
    if let Some(mut p) = plain.next().and_then(|p| person_of(&p.national_id)) {
        if let Ok(birth) = NaiveDate::parse_from_str(&p.birth_date, "%Y-%m-%d") {
            p.birth_date = (birth - Duration::days(365)).to_string();
            out.push(record(CITY_HR, "CITY-0002".into(), Body::Person(p)));
        }
    }
    let owner = population
        .persons
        .iter()
        .skip(2)
        .find(|p| p.account.is_some());
    if let (Some(owner), Some(other)) = (owner, plain.next()) {
        out.push(record(
            ELEARNING,
            "LINK-review".into(),
            Body::Link(pb::Link {
                national_id: other.national_id.clone(),
                account_system: ACCOUNT_SYSTEM.into(),
                account_id: owner.account.clone().unwrap_or_default(),
            }),
        ));
    }
    out
}

/// Deliberately bad records, one per reason the demo shows: bad check digit, unknown code,
/// bad date, missing field, negative hours, a kind that disagrees with its body.
pub fn bad_records(good_id: &str) -> Vec<pb::Record> {
    let mut bad_digit = good_id.to_owned();
    let last = bad_digit.pop().unwrap_or('0');
    bad_digit.push(if last == '0' { '1' } else { '0' });
    let person = |id: &str, rank: &str, birth: &str, name: &str| pb::Person {
        national_id: id.into(),
        name: name.into(),
        gender: "1".into(),
        birth_date: birth.into(),
        rank: rank.into(),
        status: "active".into(),
        ..Default::default()
    };
    vec![
        record(
            HR,
            "BAD-checkdigit".into(),
            Body::Person(person(&bad_digit, "county", "", "测试")),
        ),
        record(
            HR,
            "BAD-code".into(),
            Body::Person(person(good_id, "general", "", "测试")),
        ),
        record(
            HR,
            "BAD-date".into(),
            Body::Person(person(good_id, "county", "1980-02-30", "测试")),
        ),
        record(
            HR,
            "BAD-missing".into(),
            Body::Person(person(good_id, "county", "", "")),
        ),
        record(
            SCHOOL,
            "BAD-hours".into(),
            Body::Attendance(pb::Attendance {
                person_ref: by_id(good_id),
                class_id: "PS-X".into(),
                date: "2025-03-01".into(),
                hours: -4.0,
                kind: "present".into(),
            }),
        ),
        pb::Record {
            source: source(SCHOOL, "result", "BAD-kind".into(), 1),
            deleted: false,
            body: Some(Body::Enrollment(pb::Enrollment {
                person_ref: by_id(good_id),
                class_id: "PS-X".into(),
                status: "completed".into(),
                ..Default::default()
            })),
        },
    ]
}

/// Shuffles `records` deterministically.
pub fn shuffle(records: &mut [pb::Record], seed: u64) {
    records.shuffle(&mut StdRng::seed_from_u64(seed));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_review_cases_contradict_the_population() {
        let population = population(2026, 300);
        let cases = review_cases(&population);
        assert_eq!(cases.len(), 3);
        let province = |id: &str| {
            population.records.iter().find_map(|r| match &r.body {
                Some(Body::Person(p)) if p.national_id == id => Some(p.clone()),
                _ => None,
            })
        };
        let Some(Body::Person(renamed)) = &cases[0].body else {
            panic!("{:?}", cases[0])
        };
        let original = province(&renamed.national_id).unwrap();
        assert_ne!(renamed.name, original.name);
        assert_eq!(renamed.birth_date, original.birth_date);
        let Some(Body::Person(older)) = &cases[1].body else {
            panic!("{:?}", cases[1])
        };
        let id_birth = &older.national_id[6..14];
        assert_ne!(older.birth_date.replace('-', ""), id_birth);
        assert_eq!(older.name, province(&older.national_id).unwrap().name);
        let Some(Body::Link(link)) = &cases[2].body else {
            panic!("{:?}", cases[2])
        };
        let owner = population
            .persons
            .iter()
            .find(|p| p.account.as_deref() == Some(link.account_id.as_str()))
            .unwrap();
        assert_ne!(owner.national_id, link.national_id);
    }
}
