//! Every dead letter is replayable with the setting that refused it fixed (issue 15): letters
//! of each partner format — CSV and XLSX by a copy of `cadre-a01`, JSON lines by the same copy,
//! the party-school JSON, an LRMX form, a profile-format AMQP message, and an xAPI statement
//! refused by an older mapping — are stored on replay once the operator's profile file is
//! fixed, mapped by the profile's current version. Each letter keeps its first refusal and
//! gains the replay in its history.

use crate::fixtures::{self, rec, ACCOUNTS, HR, ONLINE};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use trainhub::import::import;
use trainhub_connectors::files::FileFormat;
use trainhub_connectors::profile::Profile;
use trainhub_connectors::registry::{ConnectorConfig, Context};
use trainhub_model::{ReasonCode, Rejection, Stage};
use trainhub_pipeline::{Inbound, Native, Pipeline};
use trainhub_store::read::{DeadLetter, LetterFilter};
use trainhub_tests::broker::{wait_for, Broker, Feed};
use trainhub_tests::{count, Backend, TestHub, TestStore};

fn profiles() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../connectors/profiles")
}

/// An operator's copy of shipped profile `shipped`, named `name`, with `line` left out of its
/// code tables (the refusal's cause) unless `fixed`, when its version is 1.0.1.
fn write_profile(dir: &Path, shipped: &str, name: &str, line: &str, fixed: bool) -> PathBuf {
    let text = std::fs::read_to_string(profiles().join(shipped).join("profile.toml")).unwrap();
    let mut text = text
        .replace(
            &format!("name = \"{shipped}\""),
            &format!("name = \"{name}\""),
        )
        .replace("version = \"1.0.0\"", "version = \"1.0.1\"");
    if !fixed {
        assert!(text.contains(line), "{shipped} has {line}");
        text = text
            .replace(&format!("{line}\n"), "")
            .replace("version = \"1.0.1\"", "version = \"1.0.0\"");
    }
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// `a01.csv` as JSON lines: one object per row, keyed by the header.
fn a01_as_json_lines(dir: &Path) -> PathBuf {
    let mut reader = csv::Reader::from_path(profiles().join("cadre-a01/samples/a01.csv")).unwrap();
    let header = reader.headers().unwrap().clone();
    let mut out = String::new();
    for row in reader.records() {
        let row = row.unwrap();
        let object: serde_json::Map<String, serde_json::Value> = header
            .iter()
            .zip(row.iter())
            .map(|(k, v)| (k.to_owned(), v.into()))
            .collect();
        out.push_str(&serde_json::Value::Object(object).to_string());
        out.push('\n');
    }
    let path = dir.join("a01.jsonl");
    std::fs::write(&path, out).unwrap();
    path
}

async fn import_file(pipeline: &Pipeline, profile: &Path, file: &Path, dir: &Path) -> u64 {
    let profile = Profile::load(profile).unwrap();
    let summary = import(
        pipeline,
        &profile,
        HR,
        &[(file.to_owned(), FileFormat::of(file).unwrap())],
        50,
        &dir.join("rejects.csv"),
    )
    .await
    .unwrap();
    summary.count("rejected")
}

/// A statement refused by the `xapi@1.0.0` mapping (no timestamp), as that version left it.
async fn xapi_letter_of_an_older_hub(pipeline: &Pipeline) {
    let statement = serde_json::json!({
        "id": "7d0c3c2a-1f4b-4e5d-9a6b-0c1d2e3f4a5b",
        "actor": {"account": {"homePage": ACCOUNTS, "name": "u1"}},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/completed"},
        "object": {"id": "https://mooc.example.cn/courses/c9"},
        "result": {"duration": "PT45M"}
    });
    let refused = Inbound {
        record: Err(Rejection {
            stage: Stage::Validate,
            code: ReasonCode::MissingField,
            field: "learning.completed_at".into(),
            message: "required".into(),
        }),
        payload: serde_json::to_vec(&statement).unwrap(),
        format: trainhub_proto::Format::Json,
        headers: r#"{"statement":"7d0c3c2a-1f4b-4e5d-9a6b-0c1d2e3f4a5b"}"#.into(),
        replay_of: None,
        native: Some(Native {
            profile: "xapi@1.0.0".into(),
            format: "xapi",
            origin: Default::default(),
            file: None,
        }),
    };
    let batch = pipeline.prepare_inbound(ONLINE, [refused]);
    pipeline
        .commit(&format!("xapi/{ONLINE}"), batch)
        .await
        .unwrap();
}

/// The format of each letter (`csv`, `xlsx`, …) and how many there are.
fn by_format(letters: &[DeadLetter]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for l in letters {
        let format = l.format.split(':').next().unwrap().to_owned();
        *out.entry(format).or_default() += 1;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn letters_of_every_format_are_stored_once_the_profile_is_fixed() {
    let Some(broker) = Broker::connect().await else {
        return;
    };
    let Some(test_store) = TestStore::new(Backend::Postgres).await else {
        return;
    };
    let config = TestHub::config_for(&test_store);
    let pipeline = trainhub::startup::open_pipeline(&config, true)
        .await
        .unwrap();
    let dir = test_store.dir.path().to_owned();
    let female = "\"女\" = \"2\"";
    let excellent = "\"优秀\" = \"excellent\"";
    let cadre = write_profile(&dir, "cadre-a01", "cadre-local", female, false);
    let school = write_profile(&dir, "party-school-json", "school-local", excellent, false);
    let form = write_profile(&dir, "lrmx", "lrmx-local", female, false);

    // Files: seven women in the A01 export, as CSV, a workbook and JSON lines; the term's one
    // 优秀 result; a form of a woman.
    let samples = profiles();
    let a01 = samples.join("cadre-a01/samples");
    assert_eq!(
        import_file(&pipeline, &cadre, &a01.join("a01.csv"), &dir).await,
        7
    );
    assert_eq!(
        import_file(&pipeline, &cadre, &a01.join("a01.xlsx"), &dir).await,
        7
    );
    let jsonl = a01_as_json_lines(&dir);
    assert_eq!(import_file(&pipeline, &cadre, &jsonl, &dir).await, 7);
    let term = samples.join("party-school-json/samples/term-2026-spring.json");
    assert_eq!(import_file(&pipeline, &school, &term, &dir).await, 1);
    let li = samples.join("lrmx/samples/li-xiuying.lrmx");
    assert_eq!(import_file(&pipeline, &form, &li, &dir).await, 1);

    // A profile-format AMQP connector: the term document as one message.
    let mut feed = Feed::new(10);
    feed.connectors.truncate(1);
    feed.connectors[0].system = HR.into();
    feed.connectors[0].bindings = Some(vec![format!("{}.{HR}.#", feed.prefix)]);
    feed.connectors[0].format = school.display().to_string();
    let amqp = feed.connectors[0].clone();
    feed.declare(&broker).await.unwrap();
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let status = std::sync::Arc::new(trainhub_connectors::status::ConnectorStatus::new(
        amqp.name.clone(),
        "amqp",
    ));
    let task = ConnectorConfig::Amqp(amqp.clone()).spawn(Context {
        sink: trainhub_pipeline::sink::PipelineSink::new(pipeline.clone()),
        keyer: pipeline.keyer().clone(),
        status,
        stop,
    });
    let message = std::fs::read(&term).unwrap();
    let key = format!("{}.{HR}.term", feed.prefix);
    broker
        .publish_all("trainhub.in", &[(key, message)])
        .await
        .unwrap();
    let all = LetterFilter::default();
    let arrived = wait_for(Duration::from_secs(60), || async {
        let letters = pipeline
            .store()
            .dead_letters(&all, None, 100)
            .await
            .unwrap();
        letters.iter().any(|l| l.connector == amqp.name)
    })
    .await;
    assert!(
        arrived,
        "the AMQP message's refused record is dead-lettered"
    );
    stop_tx.send(true).unwrap();
    task.await.unwrap();

    // xAPI: the person and the account's link, and a letter the 1.0.0 mapping left.
    let ada = fixtures::id(1);
    let records = vec![
        rec(HR, "P-ada", 1, fixtures::person(&ada, "甲", "county")),
        rec(ONLINE, "L-ada", 1, fixtures::link(&ada, "u1")),
    ];
    pipeline.submit("test", &records).await.unwrap();
    xapi_letter_of_an_older_hub(&pipeline).await;

    let letters = pipeline
        .store()
        .dead_letters(&all, None, 100)
        .await
        .unwrap();
    let formats = by_format(&letters);
    let want: BTreeMap<String, usize> = [
        ("csv", 7),
        ("xlsx", 7),
        ("jsonl", 8),
        ("json", 1),
        ("lrmx", 1),
        ("xapi", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(formats, want, "jsonl: seven rows and the AMQP message");

    // Replayed before the fix, each is refused again, and says so in its history.
    let again = pipeline.replay(&all, 100).await.unwrap();
    let refused = again
        .iter()
        .filter(|r| r.outcome.rejection.is_some())
        .count();
    assert_eq!(refused, letters.len() - 1, "all but the xAPI letter");

    // The operator fixes the profile files (version 1.0.1) and replays.
    write_profile(&dir, "cadre-a01", "cadre-local", female, true);
    write_profile(&dir, "party-school-json", "school-local", excellent, true);
    write_profile(&dir, "lrmx", "lrmx-local", female, true);
    let replayed = pipeline.replay(&all, 100).await.unwrap();
    assert_eq!(replayed.len(), letters.len() - 1);
    for r in &replayed {
        assert!(
            r.outcome.rejection.is_none(),
            "letter {}: {:?}",
            r.id,
            r.outcome
        );
    }
    let after = pipeline
        .store()
        .dead_letters(
            &LetterFilter {
                include_replayed: true,
                ..Default::default()
            },
            None,
            100,
        )
        .await
        .unwrap();
    for l in &after {
        assert!(l.replayed_at.is_some(), "{} {}", l.id, l.format);
        let first = if l.format.starts_with("xapi") {
            "MISSING_FIELD"
        } else {
            "UNKNOWN_CODE"
        };
        assert_eq!(
            l.reason_code, first,
            "the first refusal stays: {}",
            l.format
        );
        let outcomes: Vec<&str> = l.attempts.iter().map(|a| a.outcome.as_str()).collect();
        let last = *outcomes.last().unwrap();
        assert_ne!(last, "REJECTED", "{}: {outcomes:?}", l.format);
        if !l.format.starts_with("xapi") {
            assert_eq!(outcomes[0], "REJECTED", "{}: {outcomes:?}", l.format);
            assert_eq!(l.attempts[0].reason_code, "UNKNOWN_CODE");
        }
    }
    // Stored under the fixed versions, and the statement's hours count.
    for profile in [
        "cadre-local@1.0.1",
        "school-local@1.0.1",
        "lrmx-local@1.0.1",
    ] {
        let sql = format!("SELECT COUNT(*) AS n FROM source_records WHERE profile = '{profile}'");
        assert!(count(pipeline.store(), &sql).await > 0, "{profile}");
    }
    let xapi = "SELECT COUNT(*) AS n FROM source_records WHERE profile = 'xapi@1.1.0'";
    assert_eq!(count(pipeline.store(), xapi).await, 1);
    broker.delete(&feed.queues()).await;
}
