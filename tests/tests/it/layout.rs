//! The store's layout migration (issue 18, criterion 6): a store as the previous release left
//! it (record bodies and persons' facts as sealed text, migration 0015 not applied) is opened
//! by this release, and `trainhub migrate --rewrite` moves its values into bytes while a hub
//! ingests new persons. Every dossier of the earlier persons reads the same, byte for byte;
//! nothing stays in text; a second run finds nothing to do. The raw log's rows of the earlier
//! layout (one per record, before migration 0018) read back beside the batches written since.
//! Its packed facts are deflated without the dictionary of migration 0019, as that release did.

use prost::Message;
use std::collections::BTreeMap;
use trainhub_connectors::synthetic;
use trainhub_proto::v1 as pb;
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

/// Every record of the raw log: source identity, version and bytes as received.
async fn received(store: &Store) -> Vec<trainhub_store::raw::RawRecord> {
    let mut out = Vec::new();
    store
        .received_each("0000", "9999", |r| out.push(r))
        .await
        .unwrap();
    out
}

/// Rewrites `store` into the layout an earlier release wrote: bodies as sealed text (`th1:`),
/// facts as packed sealed text (`th1:z:`) deflated without a dictionary, no `content`/`packed`
/// columns, a raw log row per record, the person index on (person key, kind), and migrations
/// 0015, 0018, 0019, 0020, 0022, 0024, 0025 and 0027 not applied (every body back in
/// `source_records`, whole content hashes as hex text, received times and person keys as
/// text).
async fn to_previous_layout(store: &Store) {
    let keys = store.keys().clone();
    let raw = received(store).await;
    let held = held_bodies(store).await;
    let rows = sqlx::query(
        "SELECT system, kind, record_id, deleted, content, received_at, received \
         FROM source_records",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    let mut tx = store.pool().begin().await.unwrap();
    for r in &rows {
        use sqlx::Row;
        let id = (r.get("system"), r.get("kind"), r.get("record_id"));
        let body = match r.get::<Option<Vec<u8>>, _>("content") {
            Some(packed) => Some(keys.open_packed(column::CONTENT, &packed).unwrap()),
            None => held.get(&id).cloned(),
        };
        // The whole SHA-256 as hex text (migrations 0024 and 0027 not applied).
        let hash = {
            use sha2::Digest;
            let mut hash = sha2::Sha256::new();
            hash.update(r.get::<String, _>("kind"));
            hash.update([r.get::<i64, _>("deleted") as u8]);
            hash.update(body.as_deref().unwrap_or_default());
            hex::encode(hash.finalize())
        };
        let body = body.map(|b| keys.seal_text(column::BODY, std::str::from_utf8(&b).unwrap()));
        // The received time as text (migration 0025 not applied).
        let received_at = match r.get::<Option<i64>, _>("received") {
            Some(ms) => chrono::DateTime::from_timestamp_millis(ms)
                .unwrap()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            None => r.get("received_at"),
        };
        sqlx::query(
            "UPDATE source_records SET body = $1, received_at = $5, content_hash = $6 \
             WHERE system = $2 AND kind = $3 AND record_id = $4",
        )
        .bind(body)
        .bind(r.get::<String, _>("system"))
        .bind(r.get::<String, _>("kind"))
        .bind(r.get::<String, _>("record_id"))
        .bind(received_at)
        .bind(hash)
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
        let facts = packed_as_before(&keys, &facts);
        sqlx::query("UPDATE dossier_state SET facts = $1 WHERE person_key = $2")
            .bind(facts)
            .bind(r.get::<String, _>("person_key"))
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    for r in raw {
        use sha2::Digest;
        sqlx::query(
            "INSERT INTO raw_log (received_at, connector, system, kind, record_id, version, \
             hash, bytes) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&r.received_at)
        .bind(&r.connector)
        .bind(&r.system)
        .bind(&r.kind)
        .bind(&r.record_id)
        .bind(r.version)
        .bind(hex::encode(sha2::Sha256::digest(&r.bytes)))
        .bind(keys.seal(column::RAW, &r.bytes))
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    let hex = match store.backend() {
        trainhub_store::Backend::Postgres => "encode(person, 'hex')",
        trainhub_store::Backend::Sqlite => "lower(hex(person))",
    };
    let persons_as_text =
        format!("UPDATE source_records SET person_key = {hex} WHERE person IS NOT NULL");
    for sql in [
        // Index fill (0028, PostgreSQL only): applied again, over the indexes of this layout.
        "DELETE FROM _sqlx_migrations WHERE version = 28",
        &persons_as_text,
        "DROP INDEX source_records_person_key",
        "DROP INDEX source_records_persons",
        "ALTER TABLE source_records DROP COLUMN person",
        "DELETE FROM store_features WHERE feature = 'binary_person'",
        "DELETE FROM _sqlx_migrations WHERE version = 27",
        "ALTER TABLE source_records DROP COLUMN received",
        "DELETE FROM store_features WHERE feature = 'received_time'",
        "DELETE FROM _sqlx_migrations WHERE version = 25",
        "ALTER TABLE source_records DROP COLUMN hash",
        "DELETE FROM store_features WHERE feature = 'binary_hash'",
        "DELETE FROM _sqlx_migrations WHERE version = 24",
        "DROP TABLE pending_bodies",
        "DELETE FROM store_features WHERE feature = 'state_bodies'",
        "DELETE FROM _sqlx_migrations WHERE version = 22",
        "ALTER TABLE source_records DROP COLUMN content",
        "ALTER TABLE dossier_state DROP COLUMN packed",
        "DELETE FROM store_features WHERE feature = 'binary_values'",
        "DELETE FROM _sqlx_migrations WHERE version = 15",
        "DROP TABLE raw_batches",
        "DELETE FROM store_features WHERE feature = 'raw_batches'",
        "DELETE FROM _sqlx_migrations WHERE version = 18",
        "DELETE FROM store_features WHERE feature = 'packed_dictionary'",
        "DELETE FROM _sqlx_migrations WHERE version = 19",
        "CREATE INDEX source_records_person ON source_records (person_key, kind)",
        "DELETE FROM _sqlx_migrations WHERE version = 20",
    ] {
        sqlx::query(sql).execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
}

/// The bodies this release keeps outside `source_records` (migration 0022), as JSON by record:
/// the pending ones and those inside the persons' states.
async fn held_bodies(store: &Store) -> BTreeMap<(String, String, String), Vec<u8>> {
    use sqlx::Row;
    let keys = store.keys();
    let mut out = BTreeMap::new();
    let persons = sqlx::query("SELECT person_key FROM dossier_state")
        .fetch_all(store.pool())
        .await
        .unwrap();
    for p in persons {
        let key = trainhub_model::PersonKey::parse("person_key", &p.get::<String, _>(0)).unwrap();
        for r in store.person_facts(&key).await.unwrap() {
            let id = (
                r.source.system,
                r.source.kind.as_str().into(),
                r.source.record_id,
            );
            out.insert(id, serde_json::to_vec(&r.body).unwrap());
        }
    }
    let pending = sqlx::query("SELECT system, kind, record_id, content FROM pending_bodies")
        .fetch_all(store.pool())
        .await
        .unwrap();
    for r in pending {
        let body = keys.open_packed(column::PENDING, &r.get::<Vec<u8>, _>("content"));
        out.insert(
            (r.get("system"), r.get("kind"), r.get("record_id")),
            body.unwrap(),
        );
    }
    out
}

/// Facts as packed sealed text the way the earlier release wrote it: raw deflate without the
/// dictionary of migration 0019.
fn packed_as_before(keys: &trainhub_store::Keyring, facts: &[u8]) -> String {
    use base64::Engine;
    let mut deflate = flate2::Compress::new(flate2::Compression::new(3), false);
    let mut packed = Vec::with_capacity(facts.len() + 64);
    let done = deflate
        .compress_vec(facts, &mut packed, flate2::FlushCompress::Finish)
        .unwrap();
    assert_eq!(done, flate2::Status::StreamEnd, "room enough for the facts");
    let sealed = keys.seal(column::FACTS, &packed);
    format!(
        "{}{}",
        trainhub_store::seal::PACKED_PREFIX,
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(sealed)
    )
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
    let early_received = received(&hub.store).await;
    assert_eq!(early_received.len(), early.len());
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
    let times = "SELECT COUNT(*) AS n FROM source_records WHERE received_at = ''";
    assert_eq!(count(&hub.store, times).await, 0, "received times as text");
    let test_store = hub.stop_keeping_store().await;

    // This release opens it (migrations 0015 and 0018 add the columns and the batch table,
    // 0020 and 0027 the person indexes) and reads the text and the raw log rows as they are.
    let hub = TestHub::start_on(test_store).await;
    assert_eq!(dossiers(&hub, &population.persons[..BEFORE]).await, before);
    assert_eq!(received(&hub.store).await, early_received);
    // Records sent again repeat what is stored: a whole hash of the earlier layout and the
    // cut one of this release compare equal, and no row is replaced.
    let as_text = "SELECT COUNT(*) AS n FROM source_records WHERE content_hash <> ''";
    let stored = count(&hub.store, as_text).await;
    assert!(stored > 0);
    let resent = &early[..100];
    let again = hub.stream(resent, 50).await;
    let outcomes: Vec<_> = again.iter().flat_map(|r| &r.outcomes).collect();
    assert_eq!(outcomes.len(), 100);
    for o in outcomes {
        assert_eq!(o.status(), pb::RecordStatus::Duplicate, "{o:?}");
    }
    assert_eq!(count(&hub.store, as_text).await, stored);

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
    // Each body of a person's record is kept once, inside its person's state.
    let shared = "SELECT COUNT(*) AS n FROM source_records \
                  WHERE person_key IS NOT NULL AND content IS NOT NULL";
    assert_eq!(count(&hub.store, shared).await, 0);
    let waiting = "SELECT COUNT(*) AS n FROM pending_bodies";
    assert_eq!(count(&hub.store, waiting).await, 0);
    // And each content hash as bytes.
    let hex = "SELECT COUNT(*) AS n FROM source_records WHERE content_hash <> '' OR hash IS NULL";
    assert_eq!(count(&hub.store, hex).await, 0);
    // And each person key as bytes.
    let text_person = "SELECT COUNT(*) AS n FROM source_records WHERE person_key IS NOT NULL";
    assert_eq!(count(&hub.store, text_person).await, 0);
    // And each received time as milliseconds.
    let text_time =
        "SELECT COUNT(*) AS n FROM source_records WHERE received_at <> '' OR received IS NULL";
    assert_eq!(count(&hub.store, text_time).await, 0);
    let late_dossiers = dossiers(&hub, &population.persons[BEFORE..]).await;
    assert_eq!(late_dossiers.len(), PERSONS - BEFORE);
    // The raw log: the old rows, then the batches received since, every record once as often
    // as it was sent.
    let all = received(&hub.store).await;
    assert_eq!(all[..early.len()], early_received[..]);
    assert_eq!(all.len(), early.len() + resent.len() + late.len());
    let raw = trainhub_store::read::Table::RawLog;
    assert_eq!(hub.store.table_count(raw).await.unwrap(), all.len() as i64);

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
        .filter(|l| {
            [
                "source_records.body ",
                "dossier_state.facts ",
                "source_records.content ",
                "source_records.content_hash ",
                "source_records.person_key ",
            ]
            .iter()
            .any(|c| l.starts_with(c))
        })
        .collect();
    assert_eq!(rewritten.len(), 5, "{said}");
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
