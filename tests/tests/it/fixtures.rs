//! Hand-written records for the tests: one small, fully known world.

use trainhub_model::identity::make_national_id;
use trainhub_proto::v1::{self as pb, record::Body};

pub const HR: &str = "hr-test";
pub const SCHOOL: &str = "school-test";
pub const ONLINE: &str = "online-test";
pub const ACCOUNTS: &str = "https://mooc.example.cn";

pub fn id(n: u32) -> String {
    make_national_id(
        320102,
        chrono::NaiveDate::from_ymd_opt(1978, 3, 1 + n % 27).unwrap(),
        n,
    )
}

pub fn rec(system: &str, record_id: &str, version: i64, body: Body) -> pb::Record {
    pb::Record {
        source: Some(pb::SourceRef {
            system: system.into(),
            kind: body.kind().into(),
            record_id: record_id.into(),
            version,
        }),
        deleted: false,
        body: Some(body),
    }
}

pub fn tombstone(system: &str, kind: &str, record_id: &str, version: i64) -> pb::Record {
    pb::Record {
        source: Some(pb::SourceRef {
            system: system.into(),
            kind: kind.into(),
            record_id: record_id.into(),
            version,
        }),
        deleted: true,
        body: None,
    }
}

pub fn who(national_id: &str) -> Option<pb::PersonRef> {
    Some(pb::PersonRef {
        national_id: national_id.into(),
        ..Default::default()
    })
}

pub fn account(account_id: &str) -> Option<pb::PersonRef> {
    Some(pb::PersonRef {
        account_system: ACCOUNTS.into(),
        account_id: account_id.into(),
        ..Default::default()
    })
}

pub fn person(national_id: &str, name: &str, rank: &str) -> Body {
    Body::Person(pb::Person {
        national_id: national_id.into(),
        name: name.into(),
        gender: "1".into(),
        // The birth date embedded in the ID: another one is an identity conflict.
        birth_date: format!(
            "{}-{}-{}",
            &national_id[6..10],
            &national_id[10..12],
            &national_id[12..14]
        ),
        ethnicity: "01".into(),
        education: "20".into(),
        rank: rank.into(),
        category: "civil_servant".into(),
        unit_code: "U001".into(),
        unit_name: "组织部".into(),
        region_code: "320000".into(),
        position: "副处长".into(),
        status: "active".into(),
        hired_on: "2000-07-01".into(),
        status_since: String::new(),
        authority: String::new(),
    })
}

pub fn class(class_id: &str, start: &str, end: &str, planned: f64, themes: &[&str]) -> Body {
    Body::TrainingClass(pb::TrainingClass {
        class_id: class_id.into(),
        provider: "省委党校".into(),
        title: format!("{class_id} 专题班"),
        topic: String::new(),
        themes: themes.iter().map(|t| t.to_string()).collect(),
        format: "off_job".into(),
        category: "thematic".into(),
        start_date: start.into(),
        end_date: end.into(),
        planned_hours: planned,
        capacity: 50,
    })
}

pub fn enrollment(national_id: &str, class_id: &str, status: &str) -> Body {
    Body::Enrollment(pb::Enrollment {
        person_ref: who(national_id),
        class_id: class_id.into(),
        status: status.into(),
        dispatch: "organised".into(),
        enrolled_at: "2024-02-20T09:00:00+08:00".into(),
    })
}

pub fn attendance(national_id: &str, class_id: &str, hours: f64, kind: &str) -> Body {
    Body::Attendance(pb::Attendance {
        person_ref: who(national_id),
        class_id: class_id.into(),
        date: "2024-03-04".into(),
        hours,
        kind: kind.into(),
    })
}

pub fn result(national_id: &str, class_id: &str, outcome: &str) -> Body {
    Body::Result(pb::Result {
        person_ref: who(national_id),
        class_id: class_id.into(),
        outcome: outcome.into(),
        score: 88.0,
        dimensions: [("virtue".to_string(), 90.0)].into(),
        certificate_no: "CERT-1".into(),
        assessed_at: "2024-03-29T16:00:00+08:00".into(),
    })
}

pub fn learning_by_account(account_id: &str, course: &str, minutes: f64) -> Body {
    Body::Learning(pb::Learning {
        person_ref: account(account_id),
        course_id: course.into(),
        course_title: "网络专题课".into(),
        themes: vec!["party_theory".into()],
        minutes,
        hours: 0.0,
        completed_at: "2024-05-01T20:00:00+08:00".into(),
    })
}

pub fn link(national_id: &str, account_id: &str) -> Body {
    Body::Link(pb::Link {
        national_id: national_id.into(),
        account_system: ACCOUNTS.into(),
        account_id: account_id.into(),
    })
}

pub fn event(national_id: &str) -> Body {
    Body::PersonEvent(pb::PersonEvent {
        person_ref: who(national_id),
        event: "promoted".into(),
        effective_date: "2022-01-10".into(),
        rank: "county".into(),
        unit_code: "U001".into(),
    })
}

pub fn evaluation(national_id: &str, class_id: &str) -> Body {
    Body::Evaluation(pb::Evaluation {
        person_ref: who(national_id),
        class_id: class_id.into(),
        rater_role: "class_teacher".into(),
        dimensions: [("ability".to_string(), 85.0)].into(),
        evaluated_at: "2024-03-29T17:00:00+08:00".into(),
    })
}

/// All nine kinds for one person, person first.
pub fn nine_kinds(nid: &str) -> Vec<pb::Record> {
    vec![
        rec(HR, "P1", 1, person(nid, "张伟", "county")),
        rec(HR, "E1", 1, event(nid)),
        rec(HR, "L1", 1, link(nid, "acct-1")),
        rec(
            SCHOOL,
            "C1",
            1,
            class("C1", "2024-03-01", "2024-03-28", 160.0, &["party_theory"]),
        ),
        rec(SCHOOL, "N1", 1, enrollment(nid, "C1", "completed")),
        rec(SCHOOL, "A1", 1, attendance(nid, "C1", 150.0, "present")),
        rec(
            ONLINE,
            "M1",
            1,
            learning_by_account("acct-1", "MOOC-1", 90.0),
        ),
        rec(SCHOOL, "R1", 1, result(nid, "C1", "pass")),
        rec(SCHOOL, "V1", 1, evaluation(nid, "C1")),
    ]
}
