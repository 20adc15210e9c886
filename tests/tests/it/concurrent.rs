//! Order independence under concurrent writers (DESIGN §1): the same record set — with
//! duplicates and out-of-order older versions — applied by several writers at once in random
//! interleavings, while projectors drain the dirty set, gives exactly the dossier state of a
//! sequential run, on PostgreSQL. And the same refused bytes in batches committing at once
//! are one dead letter, on both stores.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::sync::Arc;
use trainhub_connectors::synthetic;
use trainhub_model::policy::Policy;
use trainhub_model::PersonKeyer;
use trainhub_pipeline::Pipeline;
use trainhub_proto::v1 as pb;
use trainhub_store::Store;
use trainhub_tests::{Backend, TestStore};

async fn open(test_store: &TestStore) -> Pipeline {
    let store = Store::connect(&test_store.url, trainhub_store::Keyring::generate("test"))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    Pipeline::new(
        store,
        PersonKeyer::new(b"concurrency secret"),
        Arc::new(Policy::default()),
    )
}

/// The record set: a population, every tenth record also as an older version with other
/// content, every seventh sent twice.
fn record_set(seed: u64) -> Vec<pb::Record> {
    let base = synthetic::population(seed, 40).records;
    let mut out = base.clone();
    for (i, r) in base.iter().enumerate() {
        if i % 10 == 0 {
            let mut older = r.clone();
            let s = older.source.as_mut().unwrap();
            s.version -= 1;
            if let Some(pb::record::Body::Person(p)) = &mut older.body {
                p.name.push('旧');
            }
            out.push(older);
        }
        if i % 7 == 0 {
            out.push(r.clone());
        }
    }
    out
}

async fn concurrent_equals_sequential(seed: u64) {
    let Some(sequential_store) = TestStore::new(Backend::Postgres).await else {
        return;
    };
    let Some(concurrent_store) = TestStore::new(Backend::Postgres).await else {
        return;
    };
    let records = record_set(seed);
    let today = trainhub_pipeline::queries::today();

    let sequential = open(&sequential_store).await;
    for chunk in records.chunks(200) {
        sequential.submit("seq", chunk).await.unwrap();
    }
    sequential
        .store()
        .project_all(sequential.policy(), today)
        .await
        .unwrap();

    let concurrent = open(&concurrent_store).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut shuffled = records.clone();
    shuffled.shuffle(&mut rng);
    let writers = 4;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let mine: Vec<pb::Record> = shuffled.iter().skip(w).step_by(writers).cloned().collect();
        let pipeline = concurrent.clone();
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed * 31 + w as u64);
        tasks.push(tokio::spawn(async move {
            let mut rest = &mine[..];
            while !rest.is_empty() {
                let n = rng.gen_range(1..=60).min(rest.len());
                pipeline.submit("conc", &rest[..n]).await.unwrap();
                rest = &rest[n..];
            }
        }));
    }
    // Projectors drain the dirty set while the writers write, as hubs do.
    let (done_tx, done) = tokio::sync::watch::channel(false);
    let mut projectors = Vec::new();
    for _ in 0..2 {
        let pipeline = concurrent.clone();
        let done = done.clone();
        projectors.push(tokio::spawn(async move {
            while !*done.borrow() {
                pipeline
                    .store()
                    .project_dirty(pipeline.policy(), today, 50)
                    .await
                    .unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    done_tx.send(true).unwrap();
    for p in projectors {
        p.await.unwrap();
    }
    concurrent
        .store()
        .project_all(concurrent.policy(), today)
        .await
        .unwrap();

    let (seq_versions, seq_dossiers) = trainhub_tests::comparable_state(sequential.store()).await;
    let (conc_versions, conc_dossiers) = trainhub_tests::comparable_state(concurrent.store()).await;
    assert!(seq_dossiers.len() >= 30, "{}", seq_dossiers.len());
    assert_eq!(seq_versions, conc_versions, "seed {seed}: current versions");
    assert_eq!(seq_dossiers, conc_dossiers, "seed {seed}: dossiers");
    sequential.store().close().await;
    concurrent.store().close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_give_the_sequential_dossiers() {
    for seed in [71, 72, 73] {
        concurrent_equals_sequential(seed).await;
    }
}

/// The same bytes refused by batches committing at the same time are one waiting letter
/// (the AMQP connector commits several batches of one queue at once).
async fn same_bytes_at_once_are_one_letter(backend: Backend) {
    let Some(test_store) = TestStore::new(backend).await else {
        return;
    };
    let store = Arc::new(open(&test_store).await.store().clone());
    let letter = trainhub_store::DeadLetterInput {
        rejection: trainhub_model::error::Rejection::missing("source.record_id"),
        system: "hr".into(),
        kind: "person".into(),
        record_id: String::new(),
        payload: b"{\"source\":{\"system\":\"hr\"}}".to_vec(),
        format: "json".into(),
        headers: String::new(),
        scope: String::new(),
        replay_of: None,
        fingerprint: vec![7; 32],
    };
    let other = trainhub_store::DeadLetterInput {
        fingerprint: vec![8; 32],
        payload: b"{}".to_vec(),
        ..letter.clone()
    };
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = store.clone();
        // Half the batches carry the two in the other order.
        let batch = if i % 2 == 0 {
            vec![letter.clone(), other.clone()]
        } else {
            vec![other.clone(), letter.clone()]
        };
        tasks.push(tokio::spawn(async move {
            store.commit_batch("amqp-hr", &[], &batch).await.unwrap()
        }));
    }
    let mut ids = std::collections::BTreeSet::new();
    for t in tasks {
        ids.extend(t.await.unwrap().dead_letter_ids);
    }
    assert_eq!(ids.len(), 2, "one letter per distinct bytes: {ids:?}");
    let n = store
        .table_count(trainhub_store::read::Table::DeadLetters)
        .await
        .unwrap();
    assert_eq!(n, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_bytes_at_once_are_one_letter_postgres() {
    same_bytes_at_once_are_one_letter(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_bytes_at_once_are_one_letter_sqlite() {
    same_bytes_at_once_are_one_letter(Backend::Sqlite).await;
}
