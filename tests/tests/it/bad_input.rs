//! Bad input is rejected with the right reason, dead-lettered with its bytes, and costs the
//! rest of the batch nothing.

use crate::fixtures::*;
use prost::Message;
use trainhub_proto::v1::{self as pb, record::Body};
use trainhub_tests::{statuses, Backend, TestHub};

fn with_person(f: impl FnOnce(&mut pb::Person)) -> Body {
    let Body::Person(mut p) = person(&id(3), "王芳", "county") else {
        unreachable!()
    };
    f(&mut p);
    Body::Person(p)
}

async fn rejects(backend: Backend) {
    let Some(hub) = TestHub::start(backend).await else {
        return;
    };
    let good = id(3);
    let mut wrong_digit = good.clone();
    let last = wrong_digit.pop().unwrap();
    wrong_digit.push(if last == '1' { '2' } else { '1' });
    let mut kind_mismatch = rec(SCHOOL, "K1", 1, enrollment(&good, "C9", "completed"));
    kind_mismatch.source.as_mut().unwrap().kind = "result".into();
    let batch = vec![
        rec(HR, "ok-1", 1, person(&good, "王芳", "county")),
        rec(
            HR,
            "bad-digit",
            1,
            with_person(|p| p.national_id = wrong_digit.clone()),
        ),
        // 1981-02-29 does not exist; the check digit is made valid for it.
        rec(
            HR,
            "bad-birth",
            1,
            with_person(|p| {
                let mut s = format!("{}19810229{}", &good[..6], &good[14..17]);
                let w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
                let sum: u32 = s.bytes().zip(w).map(|(b, w)| u32::from(b - b'0') * w).sum();
                s.push(b"10X98765432"[(sum % 11) as usize] as char);
                p.national_id = s;
            }),
        ),
        rec(
            HR,
            "bad-code",
            1,
            with_person(|p| p.rank = "marshal".into()),
        ),
        rec(
            HR,
            "bad-missing",
            1,
            with_person(|p| p.name = String::new()),
        ),
        rec(
            SCHOOL,
            "bad-hours",
            1,
            attendance(&good, "C9", -2.5, "present"),
        ),
        kind_mismatch,
        rec(
            SCHOOL,
            "bad-date",
            1,
            class("C9", "2024-02-30", "2024-03-01", 8.0, &["other"]),
        ),
        rec(
            SCHOOL,
            "ok-2",
            1,
            class("C10", "2024-02-01", "2024-02-03", 24.0, &["knowledge"]),
        ),
    ];
    let out = hub.submit(batch.clone()).await;
    assert_eq!(
        statuses(&out),
        [
            "ACCEPTED", "REJECTED", "REJECTED", "REJECTED", "REJECTED", "REJECTED", "REJECTED",
            "REJECTED", "ACCEPTED"
        ]
    );
    let reasons: Vec<_> = out.iter().map(|o| o.reason_code.as_str()).collect();
    assert_eq!(
        reasons,
        [
            "",
            "INVALID_NATIONAL_ID",
            "INVALID_NATIONAL_ID",
            "UNKNOWN_CODE",
            "MISSING_FIELD",
            "NEGATIVE_HOURS",
            "KIND_MISMATCH",
            "BAD_DATE",
            ""
        ]
    );
    assert!(out[1].message.contains("check digit"), "{}", out[1].message);
    assert!(out[2].message.contains("birth date"), "{}", out[2].message);
    assert!(out[3].message.contains("person.rank"), "{}", out[3].message);
    assert!(out[4].message.contains("person.name"), "{}", out[4].message);
    assert!(
        out[7].message.contains("training_class.start_date"),
        "{}",
        out[7].message
    );
    for o in &out {
        assert!(
            !o.message.contains(&good) && !o.message.contains(&wrong_digit),
            "no ID in messages"
        );
    }

    // Every rejected record is in the dead-letter table with its original bytes.
    let letters = hub
        .store
        .dead_letters(
            &trainhub_store::read::LetterFilter {
                connector: "grpc".into(),
                ..Default::default()
            },
            None,
            100,
        )
        .await
        .unwrap();
    assert_eq!(letters.len(), 7);
    for (i, record) in batch
        .iter()
        .enumerate()
        .filter(|(i, _)| out[*i].status == pb::RecordStatus::Rejected as i32)
    {
        let letter = letters
            .iter()
            .find(|l| l.record_id == record.source.as_ref().unwrap().record_id)
            .expect("dead-lettered");
        assert_eq!(letter.reason_code, out[i].reason_code);
        assert_eq!(letter.stage, "validate");
        assert_eq!(
            letter.payload,
            record.encode_to_vec(),
            "original bytes kept"
        );
    }
    // Nothing else in the batch was lost.
    assert_eq!(hub.dossier(&good, "2025-01-01").await.unwrap().name, "王芳");
    let stored = hub
        .store
        .table_count(trainhub_store::read::Table::SourceRecords)
        .await
        .unwrap();
    assert_eq!(stored, 2);
    let raw = hub
        .store
        .table_count(trainhub_store::read::Table::RawLog)
        .await
        .unwrap();
    assert_eq!(
        raw, 2,
        "the raw log holds what was stored; rejects live in dead_letters"
    );

    // A record without a source at all is rejected, not dropped.
    let out = hub
        .submit(vec![pb::Record {
            source: None,
            deleted: false,
            body: Some(person(&good, "x", "county")),
        }])
        .await;
    assert_eq!(
        (statuses(&out)[0].as_str(), out[0].reason_code.as_str()),
        ("REJECTED", "MISSING_FIELD")
    );
    hub.stop().await;
}

#[tokio::test]
async fn rejects_sqlite() {
    rejects(Backend::Sqlite).await;
}

#[tokio::test]
async fn rejects_postgres() {
    rejects(Backend::Postgres).await;
}
