//! Personal data at rest (issue 6, DESIGN §3, §8): national IDs and names are found nowhere in
//! plain text — not in the SQLite file, not in any PostgreSQL table, not in the hub's log (at
//! debug level), not in `/metrics` — and a rotated data key keeps old rows readable.

use crate::fixtures::{self, rec, HR, ONLINE, SCHOOL};
use sqlx::Row;
use std::time::Duration;
use trainhub_proto::v1::{self as pb, record::Body};
use trainhub_store::read::{LetterFilter, Table};
use trainhub_store::seal::{column, MAGIC, TEXT_PREFIX};
use trainhub_store::Keyring;
use trainhub_tests::{count, http_get, statuses, Backend, HubProcess, TestHub, TestStore};

const NAMES: [&str; 3] = ["欧阳明远", "司马青衫", "诸葛云舒"];
/// The person whose record is refused (bad check digit): dead-lettered with its bytes.
const REFUSED_NAME: &str = "上官紫薇";

fn person(n: u32, national_id: &str, name: &str) -> pb::Record {
    let Body::Person(mut p) = fixtures::person(national_id, name, "county") else {
        unreachable!()
    };
    p.birth_date = format!("1978-03-{:02}", 1 + n % 27);
    rec(HR, &format!("A01-{n}"), 1, Body::Person(p))
}

/// Three persons with a class, enrolment, attendance, result, a link and online study each,
/// plus one person record with a bad national ID. Returns the records and every national ID
/// and name in them.
fn world(offset: u32) -> (Vec<pb::Record>, Vec<String>) {
    let mut records = vec![rec(
        SCHOOL,
        "C-rest",
        1,
        fixtures::class(
            "C-rest",
            "2024-03-04",
            "2024-03-08",
            40.0,
            &["party_theory"],
        ),
    )];
    let mut secrets = Vec::new();
    for (i, name) in NAMES.iter().enumerate() {
        let n = offset + i as u32 + 1;
        let nid = fixtures::id(n);
        let acct = format!("rest-{n}");
        records.push(person(n, &nid, name));
        records.push(rec(
            ONLINE,
            &format!("L-{n}"),
            1,
            fixtures::link(&nid, &acct),
        ));
        for (kind, body) in [
            ("E", fixtures::enrollment(&nid, "C-rest", "completed")),
            ("T", fixtures::attendance(&nid, "C-rest", 40.0, "present")),
            ("R", fixtures::result(&nid, "C-rest", "pass")),
        ] {
            records.push(rec(SCHOOL, &format!("{kind}-{n}"), 1, body));
        }
        let study = fixtures::learning_by_account(&acct, "course-1", 90.0);
        records.push(rec(ONLINE, &format!("S-{n}"), 1, study));
        secrets.push(nid);
        secrets.push((*name).to_owned());
    }
    // A wrong check digit: refused, kept as a dead letter with the bytes received.
    let mut bad = fixtures::id(offset + 9);
    let last = if bad.ends_with('0') { '1' } else { '0' };
    bad.pop();
    bad.push(last);
    records.push(person(offset + 9, &bad, REFUSED_NAME));
    secrets.push(bad);
    secrets.push(REFUSED_NAME.to_owned());
    (records, secrets)
}

/// The secrets found in `haystack`, as UTF-8 or as hex (how PostgreSQL prints `bytea`).
fn found_in(haystack: &[u8], secrets: &[String]) -> Vec<String> {
    let lower = String::from_utf8_lossy(haystack).to_lowercase();
    secrets
        .iter()
        .filter(|s| {
            haystack.windows(s.len()).any(|w| w == s.as_bytes())
                || lower.contains(&hex::encode(s.as_bytes()))
        })
        .cloned()
        .collect()
}

/// Every row of every table of the PostgreSQL database, as text.
async fn pg_dump(store: &trainhub_store::Store) -> (Vec<String>, String) {
    let tables: Vec<String> = sqlx::query(
        "SELECT table_name::text AS t FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1",
    )
    .fetch_all(store.pool())
    .await
    .unwrap()
    .iter()
    .map(|r| r.get("t"))
    .collect();
    let mut dump = String::new();
    for t in &tables {
        for row in sqlx::query(&format!("SELECT CAST(x AS TEXT) AS r FROM \"{t}\" x"))
            .fetch_all(store.pool())
            .await
            .unwrap()
        {
            dump.push_str(&row.get::<String, _>("r"));
            dump.push('\n');
        }
    }
    (tables, dump)
}

async fn nothing_in_plain_text(backend: Backend) {
    let Some(test_store) = TestStore::new(backend).await else {
        return;
    };
    let dir = test_store.dir.path().to_owned();
    let config = dir.join("trainhub.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\ngrpc_addr = \"127.0.0.1:0\"\nhttp_addr = \"127.0.0.1:0\"\n\
             data_dir = {:?}\n\n[store]\nurl = {:?}\n",
            dir.display().to_string(),
            test_store.url
        ),
    )
    .unwrap();
    // A first start: the hub makes its data key itself.
    std::fs::remove_file(dir.join("data.keys")).unwrap();
    // Debug level: whatever the hub would ever log about a record is in the file.
    let program = env!("CARGO_BIN_EXE_trainhub-under-test");
    let hub = HubProcess::start(program, &config, "hub", &[("TRAINHUB_LOG", "debug")]).await;
    let (records, secrets) = world(0);
    let mut ingest = pb::ingest_service_client::IngestServiceClient::connect(format!(
        "http://{}",
        hub.grpc_addr
    ))
    .await
    .unwrap();
    let outcomes = ingest
        .submit(pb::SubmitRequest {
            records: records.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .outcomes;
    let got = statuses(&outcomes);
    assert_eq!(
        got.iter().filter(|s| *s == "REJECTED").count(),
        1,
        "{got:?}"
    );
    assert_eq!(
        got.iter().filter(|s| *s == "ACCEPTED").count(),
        records.len() - 1
    );

    // Reads open what was sealed: the names come back.
    let mut dossiers = pb::dossier_service_client::DossierServiceClient::connect(format!(
        "http://{}",
        hub.grpc_addr
    ))
    .await
    .unwrap();
    let mut person_keys = Vec::new();
    for (i, name) in NAMES.iter().enumerate() {
        let d = dossiers
            .get_dossier(pb::GetDossierRequest {
                national_id: fixtures::id(i as u32 + 1),
                purpose: "appointment-review".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(d.name, *name);
        assert!(d.credited_hours > 0.0, "hours credited: {d:?}");
        person_keys.push(d.person_key);
    }
    let (code, metrics) = http_get(hub.http_addr, "/metrics").await.unwrap();
    assert_eq!(code, 200);
    assert!(metrics.contains("trainhub_"), "{metrics}");

    // The projection runs in the background: wait until every dossier state is written.
    let keys = trainhub::startup::load_keys(&TestHub::config_for(&test_store), false).unwrap();
    let store = trainhub_store::Store::connect(&test_store.url, keys)
        .await
        .unwrap();
    for _ in 0..300 {
        if store.table_count(Table::DossierState).await.unwrap() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(store.table_count(Table::DossierState).await.unwrap(), 3);
    // The refused record is kept, bytes and all, and opens for an operator.
    let letters = store
        .dead_letters(&LetterFilter::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].reason_code, "INVALID_NATIONAL_ID");
    assert_eq!(
        found_in(&letters[0].payload, &secrets).len(),
        2,
        "ID and name inside"
    );
    hub.stop().await;

    let log = std::fs::read(dir.join("hub.log")).unwrap();
    let log_text = String::from_utf8_lossy(&log);
    assert!(
        log_text.contains("Generated a local data key"),
        "the first start says it made a key: {log_text}"
    );
    assert!(log_text.contains("DEBUG"), "debug logging was on");
    assert_eq!(found_in(&log, &secrets), Vec::<String>::new(), "in the log");
    assert_eq!(
        found_in(metrics.as_bytes(), &secrets),
        Vec::<String>::new(),
        "in /metrics"
    );

    match backend {
        Backend::Sqlite => {
            // The database file and its write-ahead log (where recent pages still are).
            let mut files = Vec::new();
            let mut bytes = Vec::new();
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                let file = path.file_name().unwrap().to_string_lossy().into_owned();
                if file.starts_with("test.db") {
                    bytes.extend(std::fs::read(&path).unwrap());
                    files.push(file);
                }
            }
            assert!(files.iter().any(|f| f == "test.db"), "{files:?}");
            // The scan sees the data: every person key is in the files.
            assert_eq!(found_in(&bytes, &person_keys).len(), 3, "{files:?}");
            assert_eq!(
                found_in(&bytes, &secrets),
                Vec::<String>::new(),
                "in {files:?}"
            );
        }
        Backend::Postgres => {
            let (tables, dump) = pg_dump(&store).await;
            for t in [
                "raw_batches",
                "source_records",
                "dead_letters",
                "dossier_state",
                "audit_log",
            ] {
                assert!(tables.iter().any(|x| x == t), "{t} in {tables:?}");
            }
            for k in &person_keys {
                assert!(dump.contains(k.as_str()), "the dump holds the data");
            }
            assert_eq!(found_in(dump.as_bytes(), &secrets), Vec::<String>::new());
        }
    }

    // Every value of the sealed columns carries the seal.
    let sealed = |sql: &'static str| {
        let store = store.clone();
        async move {
            let rows = sqlx::query(sql).fetch_all(store.pool()).await.unwrap();
            assert!(!rows.is_empty(), "{sql}");
            rows
        }
    };
    for sql in [
        "SELECT packed AS v FROM raw_batches",
        "SELECT payload AS v FROM dead_letters",
        "SELECT content AS v FROM source_records WHERE content IS NOT NULL",
        "SELECT packed AS v FROM dossier_state",
    ] {
        for r in sealed(sql).await {
            assert!(r.get::<Vec<u8>, _>("v").starts_with(MAGIC), "{sql}");
        }
    }
    for sql in [
        "SELECT headers AS v FROM dead_letters",
        "SELECT name AS v FROM dossier_state",
    ] {
        for r in sealed(sql).await {
            assert!(r.get::<String, _>("v").starts_with(TEXT_PREFIX), "{sql}");
        }
    }
    // One copy each: bodies and facts are kept as bytes only, not also as text.
    let text_copies = count(
        &store,
        "SELECT (SELECT COUNT(*) FROM source_records WHERE body IS NOT NULL) \
         + (SELECT COUNT(*) FROM dossier_state WHERE facts <> '') AS n",
    )
    .await;
    assert_eq!(text_copies, 0);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_national_id_or_name_in_plain_text_sqlite() {
    nothing_in_plain_text(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_national_id_or_name_in_plain_text_postgres() {
    nothing_in_plain_text(Backend::Postgres).await;
}

/// The names in each dossier of persons 1..=3 after `offset`, read through the API.
async fn names(hub: &TestHub, offset: u32) -> Vec<String> {
    let mut out = Vec::new();
    for n in offset + 1..=offset + 3 {
        out.push(hub.dossier(&fixtures::id(n), "").await.unwrap().name);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_data_key_keeps_old_rows_readable() {
    let Some(test_store) = TestStore::new(Backend::Postgres).await else {
        return;
    };
    let key_file = test_store.dir.path().join("keys");
    let (old, new) = (Keyring::new_entry("k2025"), Keyring::new_entry("k2026"));
    let start = |test_store, keys: String| {
        std::fs::write(&key_file, keys).unwrap();
        let key_file = key_file.clone();
        async move {
            TestHub::start_with(test_store, move |c| {
                c.identity.data_key_file = Some(key_file);
            })
            .await
        }
    };

    // Stored under the old key.
    let hub = start(test_store, format!("{old}\n")).await;
    let (records, _) = world(0);
    hub.submit(records).await;
    assert_eq!(names(&hub, 0).await, NAMES);
    let today = chrono::Utc::now().date_naive();
    let policy = trainhub_model::policy::Policy::default();
    while hub.store.project_dirty(&policy, today, 1000).await.unwrap() > 0 {}
    let test_store = hub.stop_keeping_store().await;

    // Rotated: the new key first, the old one kept. Old rows read; new rows use the new key.
    let hub = start(test_store, format!("{new}\n{old}\n")).await;
    assert_eq!(hub.store.keys().active(), "k2026");
    assert_eq!(names(&hub, 0).await, NAMES);
    let (more, _) = world(100);
    hub.submit(more).await;
    assert_eq!(names(&hub, 100).await, NAMES);
    let letters = hub
        .store
        .dead_letters(&LetterFilter::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(letters.len(), 2, "both refused records, one per key");

    // Rekey while the hub runs: every row ends up under the new key; a second run has nothing
    // left to do.
    let mut config = TestHub::config_for(&hub.test_store);
    config.identity.data_key_file = Some(key_file.clone());
    let pipeline = trainhub::startup::open_pipeline(&config, false)
        .await
        .unwrap();
    let first = pipeline.store().rekey(|_| {}).await.unwrap();
    let resealed = |report: &[trainhub_store::rekey::Rekeyed], col: &str| {
        report.iter().find(|r| r.column == col).unwrap().resealed
    };
    // The first world's rows: 19 received, 1 refused, 19 current, 3 dossiers.
    // (in the batches they were committed in; the bodies of the classes' and accounts'
    // records in `source_records`, those of the persons' records inside their dossiers)
    assert!(resealed(&first, column::RAW_BATCH) >= 1, "{first:?}");
    assert_eq!(resealed(&first, column::DEAD_LETTER), 1, "{first:?}");
    assert!(resealed(&first, column::CONTENT) >= 1, "{first:?}");
    assert!(resealed(&first, column::PACKED) >= 3, "{first:?}");
    assert!(resealed(&first, column::NAME) >= 3, "{first:?}");
    let second = pipeline.store().rekey(|_| {}).await.unwrap();
    assert!(second.iter().all(|r| r.resealed == 0), "{second:?}");
    let test_store = hub.stop_keeping_store().await;

    // The old key dropped: everything still reads.
    let hub = start(test_store, format!("{new}\n")).await;
    assert_eq!(names(&hub, 0).await, NAMES);
    assert_eq!(names(&hub, 100).await, NAMES);
    let letters = hub
        .store
        .dead_letters(&LetterFilter::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(letters.len(), 2);

    // A keyring without the key in use fails, naming the key it needs.
    let stranger = trainhub_store::Store::connect(&hub.test_store.url, Keyring::generate("k1999"))
        .await
        .unwrap();
    let err = stranger
        .dead_letters(&LetterFilter::default(), None, 10)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("\"k2026\"") && err.contains("dead letter"),
        "{err}"
    );
    stranger.close().await;
    // A hub given such a keyring refuses to start, naming the key file and the key.
    let mut config = TestHub::config_for(&hub.test_store);
    let other = hub.test_store.dir.path().join("other.keys");
    std::fs::write(&other, Keyring::new_entry("k1999")).unwrap();
    config.identity.data_key_file = Some(other);
    let Err(err) = trainhub::startup::open_pipeline(&config, false).await else {
        panic!("a hub with the wrong keyring starts");
    };
    let err = format!("{err:#}");
    assert!(
        err.contains("other.keys") && err.contains("\"k2026\""),
        "{err}"
    );
    hub.stop().await;
}
