//! The store's layout migration (issue 18, criterion 6): a store as the previous release left
//! it (record bodies and persons' facts as sealed text, migration 0015 not applied) is opened
//! by this release, and `trainhub migrate --rewrite` moves its values into bytes while a hub
//! ingests new persons. Every dossier of the earlier persons reads the same, byte for byte;
//! nothing stays in text; a second run finds nothing to do.

use prost::Message;
use std::collections::BTreeMap;
use trainhub_connectors::synthetic;
use trainhub_store::seal::column;
use trainhub_store::Store;
use trainhub_tests::{count, projected, Backend, TestHub, TestStore};

/// Persons loaded before the migration; the population's others arrive during it.
const BEFORE: usize = 40;
const PERSONS: usize = 60;

/// Each person's dossier, as the bytes `GetDossier` answers with.
async fn dossiers(hub: &TestHub, persons: &[synthetic::SynthPerson]) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for p in persons {
        let d = hub.dossier(&p.national_id, "2026-06-30").await.unwrap();
        assert!(!d.provenance.is_empty(), "{} has records", p.national_id);
        out.insert(p.national_id.clone(), d.encode_to_vec());
    }
    out
}

/// Rewrites `store` into the layout the previous release wrote: bodies as sealed text
/// (`th1:`), facts as packed sealed text (`th1:z:`), no `content`/`packed` columns, and
/// migration 0015 not applied.
async fn to_previous_layout(store: &Store) {
    let keys = store.keys().clone();
    let rows = sqlx::query("SELECT system, kind, record_id, content FROM source_records")
        .fetch_all(store.pool())
        .await
        .unwrap();
    let mut tx = store.pool().begin().await.unwrap();
    for r in &rows {
        use sqlx::Row;
        let Some(packed) = r.get::<Option<Vec<u8>>, _>("content") else {
            continue;
        };
        let body = keys.open_packed(column::CONTENT, &packed).unwrap();
        let body = keys.seal_text(column::BODY, std::str::from_utf8(&body).unwrap());
        sqlx::query(
            "UPDATE source_records SET body = $1 WHERE system = $2 AND kind = $3 AND record_id = $4",
        )
        .bind(body)
        .bind(r.get::<String, _>("system"))
        .bind(r.get::<String, _>("kind"))
        .bind(r.get::<String, _>("record_id"))
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    let rows = sqlx::query("SELECT person_key, packed FROM dossier_state")
        .fetch_all(store.pool())
        .await
        .unwrap();
    for r in &rows {
        use sqlx::Row;
        let facts = keys
            .open_packed(column::PACKED, &r.get::<Vec<u8>, _>("packed"))
            .unwrap();
        let facts = keys.seal_text_packed(column::FACTS, std::str::from_utf8(&facts).unwrap());
        sqlx::query("UPDATE dossier_state SET facts = $1 WHERE person_key = $2")
            .bind(facts)
            .bind(r.get::<String, _>("person_key"))
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    for sql in [
        "ALTER TABLE source_records DROP COLUMN content",
        "ALTER TABLE dossier_state DROP COLUMN packed",
        "DELETE FROM store_features WHERE feature = 'binary_values'",
        "DELETE FROM _sqlx_migrations WHERE version = 15",
    ] {
        sqlx::query(sql).execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
}

fn migrate_rewrite(test_store: &TestStore) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_trainhub-under-test"))
        .args([
            "migrate",
            "--rewrite",
            "--store",
            &test_store.url,
            "--data-dir",
        ])
        .arg(test_store.dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("trainhub runs")
}

async fn a_previous_layout_is_rewritten_online(backend: Backend) {
    let Some(test_store) = TestStore::new(backend).await else {
        return;
    };
    let population = synthetic::population(31, PERSONS);
    let (early, late) = population.records.split_at(population.spans[BEFORE].start);
    let hub = TestHub::start_on(test_store).await;
    hub.stream(early, 500).await;
    projected(&hub.store).await;
    let before = dossiers(&hub, &population.persons[..BEFORE]).await;
    to_previous_layout(&hub.store).await;
    let text = count(
        &hub.store,
        "SELECT (SELECT COUNT(*) FROM source_records WHERE body IS NOT NULL) \
         + (SELECT COUNT(*) FROM dossier_state WHERE facts <> '') AS n",
    )
    .await;
    assert!(
        text > BEFORE as i64,
        "the previous layout holds text: {text}"
    );
    let test_store = hub.stop_keeping_store().await;

    // This release opens it (migration 0015 adds the columns) and reads the text as it is.
    let hub = TestHub::start_on(test_store).await;
    assert_eq!(dossiers(&hub, &population.persons[..BEFORE]).await, before);

    // The rewrite runs while the hub takes the other persons.
    let rewrite = migrate_rewrite(&hub.test_store);
    hub.stream(late, 50).await;
    let out = tokio::task::spawn_blocking(move || rewrite.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    assert!(said.contains("source_records.body"), "{said}");
    assert!(said.contains("stored as bytes"), "{said}");
    let text_left: u64 = hub
        .store
        .text_rows()
        .await
        .unwrap()
        .iter()
        .map(|(_, n)| n)
        .sum();
    assert_eq!(text_left, 0, "{said}");
    projected(&hub.store).await;
    assert_eq!(dossiers(&hub, &population.persons[..BEFORE]).await, before);
    let late_dossiers = dossiers(&hub, &population.persons[BEFORE..]).await;
    assert_eq!(late_dossiers.len(), PERSONS - BEFORE);

    // Again: nothing left to do.
    let again = tokio::task::spawn_blocking({
        let child = migrate_rewrite(&hub.test_store);
        move || child.wait_with_output()
    })
    .await
    .unwrap()
    .unwrap();
    let said = String::from_utf8_lossy(&again.stdout).into_owned();
    assert!(again.status.success(), "{said}");
    let rewritten: Vec<&str> = said
        .lines()
        .filter(|l| l.starts_with("source_records.body") || l.starts_with("dossier_state.facts"))
        .collect();
    assert_eq!(rewritten.len(), 2, "{said}");
    for line in rewritten {
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields[1..], ["0", "0", "0"], "{said}");
    }
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_previous_layout_store_rewritten_online_gives_the_same_dossiers_postgres() {
    a_previous_layout_is_rewritten_online(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_previous_layout_store_rewritten_online_gives_the_same_dossiers_sqlite() {
    a_previous_layout_is_rewritten_online(Backend::Sqlite).await;
}
