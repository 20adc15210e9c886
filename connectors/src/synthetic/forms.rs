//! The persons of the shipped appointment-form samples (`connectors/profiles/lrmx/samples/`),
//! each with a completed two-month off-job class: the demo holds them, so `trainhub lrmx-fill`
//! on a sample form writes a real line into its résumé.

use super::{by_id, record, HR, SCHOOL};
use trainhub_proto::v1::{self as pb, record::Body};

/// The class every sample person completed: 66 days at the provincial party school.
pub const FORM_CLASS: &str = "DJ-2024-ZQB";

/// (national ID, name, gender, birth date, ethnicity, rank, authority) of the sample forms.
const PEOPLE: [(&str, &str, &str, &str, &str, &str, &str); 3] = [
    (
        "32010219681001005X",
        "王建国",
        "1",
        "1968-10-01",
        "11",
        "bureau",
        "js-prov",
    ),
    (
        "321027197506120040",
        "李秀英",
        "2",
        "1975-06-12",
        "03",
        "county",
        "js-nanjing",
    ),
    (
        "320106197403150039",
        "张卫东",
        "1",
        "1974-03-15",
        "01",
        "county",
        "js-nanjing",
    ),
];

/// The sample forms' persons, their class, enrolments and results.
pub fn form_people() -> Vec<pb::Record> {
    let mut out = vec![record(
        SCHOOL,
        FORM_CLASS.into(),
        Body::TrainingClass(pb::TrainingClass {
            class_id: FORM_CLASS.into(),
            provider: "江苏省委党校".into(),
            title: "中青年干部培训班".into(),
            topic: "党的创新理论".into(),
            themes: vec!["party_theory".into(), "party_spirit".into()],
            format: "off_job".into(),
            category: "thematic".into(),
            start_date: "2024-03-04".into(),
            end_date: "2024-05-08".into(),
            planned_hours: 320.0,
            capacity: 60,
        }),
    )];
    for (n, (id, name, gender, birth, ethnicity, rank, authority)) in PEOPLE.into_iter().enumerate()
    {
        out.push(record(
            HR,
            format!("A01-FORM-{n}"),
            Body::Person(pb::Person {
                national_id: id.into(),
                name: name.into(),
                gender: gender.into(),
                birth_date: birth.into(),
                ethnicity: ethnicity.into(),
                education: "20".into(),
                rank: rank.into(),
                category: "party_government_leader".into(),
                unit_code: "U0000".into(),
                unit_name: "第0000局".into(),
                region_code: "320000".into(),
                position: "局长".into(),
                status: "active".into(),
                hired_on: "1996-07-01".into(),
                status_since: String::new(),
                authority: authority.into(),
            }),
        ));
        out.push(record(
            SCHOOL,
            format!("ENR-FORM-{n}"),
            Body::Enrollment(pb::Enrollment {
                person_ref: by_id(id),
                class_id: FORM_CLASS.into(),
                status: "completed".into(),
                dispatch: "organised".into(),
                enrolled_at: "2024-02-20T09:00:00+08:00".into(),
            }),
        ));
        out.push(record(
            SCHOOL,
            format!("RES-FORM-{n}"),
            Body::Result(pb::Result {
                person_ref: by_id(id),
                class_id: FORM_CLASS.into(),
                outcome: "pass".into(),
                score: 90.0,
                certificate_no: format!("ZQB-2024-{n:03}"),
                assessed_at: "2024-05-08T16:00:00+08:00".into(),
                ..Default::default()
            }),
        ));
    }
    out
}
