//! Order independence (DESIGN §1), as a property: any permutation of a record set, with random
//! duplicates and any batching, yields the same dossiers as applying it in order.

use crate::fixtures::*;
use proptest::prelude::*;
use std::sync::Arc;
use trainhub_model::dossier::{compute, Dossier};
use trainhub_model::policy::Policy;
use trainhub_model::{NationalId, PersonKeyer};
use trainhub_pipeline::Pipeline;
use trainhub_proto::v1 as pb;
use trainhub_store::Store;
use trainhub_tests::{Backend, TestStore};

/// Record templates over two people; a generated record picks one, a version and a tombstone
/// flag. Same template and version with different content models a partner re-sending.
fn template(t: usize, version: i64, deleted: bool) -> pb::Record {
    let (a, b) = (id(10), id(11));
    let v = version as f64;
    let mut r = match t {
        0 => rec(
            HR,
            "P-a",
            version,
            person(&a, if version % 2 == 0 { "赵敏" } else { "赵明" }, "county"),
        ),
        1 => rec(
            HR,
            "P-b",
            version,
            person(&b, "孙强", if version > 2 { "county" } else { "staff" }),
        ),
        2 => rec(
            SCHOOL,
            "C-1",
            version,
            class(
                "C-1",
                "2023-05-01",
                "2023-05-30",
                120.0 + v,
                &["party_theory"],
            ),
        ),
        3 => rec(
            SCHOOL,
            "C-2",
            version,
            class(
                "C-2",
                "2024-09-01",
                "2024-11-20",
                300.0,
                &["party_spirit", "professional"],
            ),
        ),
        4 => rec(
            SCHOOL,
            "N-a1",
            version,
            enrollment(
                &a,
                "C-1",
                if version == 2 {
                    "withdrawn"
                } else {
                    "completed"
                },
            ),
        ),
        5 => rec(SCHOOL, "N-b2", version, enrollment(&b, "C-2", "completed")),
        6 => rec(
            SCHOOL,
            "A-a1",
            version,
            attendance(&a, "C-1", 100.0 + v, "present"),
        ),
        7 => rec(
            SCHOOL,
            "LV-a1",
            version,
            attendance(&a, "C-1", 10.0 * v, "leave"),
        ),
        8 => rec(
            SCHOOL,
            "R-a1",
            version,
            result(&a, "C-1", if version == 3 { "fail" } else { "pass" }),
        ),
        9 => rec(HR, "L-b", version, link(&b, "acct-b")),
        10 => rec(
            ONLINE,
            "M-b",
            version,
            learning_by_account("acct-b", "MOOC-9", 45.0 * v),
        ),
        11 => rec(SCHOOL, "N-a2", version, enrollment(&a, "C-2", "completed")),
        _ => rec(SCHOOL, "R-b2", version, result(&b, "C-2", "excellent")),
    };
    if deleted {
        r.deleted = true;
        r.body = None;
    }
    r
}

const TEMPLATES: usize = 13;

async fn dossiers(records: &[pb::Record], batches: &[usize]) -> Vec<Option<Dossier>> {
    let test_store = TestStore::new(Backend::Sqlite).await.expect("sqlite");
    let store = Store::connect(&test_store.url, trainhub_store::Keyring::generate("test"))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let keyer = PersonKeyer::new(b"property secret");
    let policy = Policy::default();
    let pipeline = Pipeline::new(store.clone(), keyer.clone(), Arc::new(policy.clone()));
    let mut rest = records;
    let mut sizes = batches.iter().cycle();
    while !rest.is_empty() {
        let n = (*sizes.next().unwrap()).clamp(1, rest.len());
        pipeline.submit("prop", &rest[..n]).await.unwrap();
        rest = &rest[n..];
    }
    let as_of = chrono::NaiveDate::from_ymd_opt(2025, 6, 30).unwrap();
    let mut out = Vec::new();
    for nid in [id(10), id(11)] {
        let key = keyer.key(&NationalId::parse("id", &nid).unwrap());
        let records = store.person_records(&key).await.unwrap();
        out.push(compute(&key, &records, as_of, &policy).map(|mut d| {
            // When a version arrived differs by run; everything derived from the records must not.
            d.provenance.iter_mut().for_each(|p| p.received_at.clear());
            d
        }));
    }
    store.close().await;
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn permutations_with_duplicates_give_identical_dossiers(
        picks in proptest::collection::vec((0..TEMPLATES, 1i64..4, proptest::bool::weighted(0.1)), 4..40),
        order in any::<u64>(),
        dup_every in 2usize..6,
        batches in proptest::collection::vec(1usize..8, 1..5),
    ) {
        let records: Vec<pb::Record> = picks.iter().map(|&(t, v, d)| template(t, v, d)).collect();
        let mut shuffled = records.clone();
        shuffled.extend(records.iter().step_by(dup_every).cloned());
        trainhub_connectors::synthetic::shuffle(&mut shuffled, order);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let in_order = rt.block_on(dossiers(&records, &[records.len()]));
        let permuted = rt.block_on(dossiers(&shuffled, &batches));
        prop_assert_eq!(in_order, permuted);
    }
}
