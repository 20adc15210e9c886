//! The commands a newcomer needs without grpcurl (issue 20), against real hubs: the review
//! queue decided from the command line, canonical records submitted from a JSON file with
//! every field error of a record named at once, dead-letter payloads readable in every
//! format, and an import under the wrong system stopped at the first call.

use crate::quickstart::{Demo, BINARY};
use std::path::Path;

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn sample(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../connectors/profiles/cadre-a01/samples")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn the_review_cli_decides_a_demo_conflict() {
    let demo = Demo::start();
    let hub = format!("http://{}", demo.grpc);
    let list = demo.run(&["review", "list", "--hub", &hub]);
    let listed = text(&list);
    assert!(list.status.success(), "{listed}");
    let ids: Vec<&str> = listed
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(ids.len(), 3, "the demo's three conflicts: {listed}");
    let birth = *ids.iter().find(|i| i.starts_with("birth-")).unwrap();
    let show = text(&demo.run(&["review", "show", birth, "--hub", &hub]));
    assert!(show.contains("BIRTH_DATE_MISMATCH"), "{show}");
    assert!(
        show.contains(&format!("trainhub review resolve {birth} 'id'")),
        "show names the command for each side: {show}"
    );
    let resolved = demo.run(&[
        "review",
        "resolve",
        birth,
        "id",
        "--note",
        "per the ID card",
        "--hub",
        &hub,
    ]);
    assert!(resolved.status.success(), "{}", text(&resolved));
    let open = text(&demo.run(&["review", "list", "--hub", &hub]));
    assert_eq!(open.lines().count(), 2, "two left open: {open}");
    let all = text(&demo.run(&["review", "list", "--all", "--hub", &hub]));
    assert!(
        all.contains(&format!("{birth}  BIRTH_DATE_MISMATCH  resolved")),
        "{all}"
    );
    let bad = demo.run(&[
        "review", "resolve", birth, "neither", "--note", "x", "--hub", &hub,
    ]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(text(&bad).contains("InvalidArgument"), "{}", text(&bad));
    let waiting = text(&demo.run(&["review", "unmatched", "--hub", &hub]));
    assert!(
        waiting.contains("records wait") || waiting.contains("record waits"),
        "{waiting}"
    );
    demo.stop();
}

#[test]
fn submit_names_every_field_error_and_dead_letters_are_kept_once_and_readable() {
    let demo = Demo::start();
    let hub = format!("http://{}", demo.grpc);
    let file = demo.dir.path().join("records.json");
    let good = serde_json::json!({
        "source": {"system": "cli-test", "kind": "person", "record_id": "OK-1", "version": 1},
        "person": {"national_id": "11010519491231002X", "name": "张伟", "gender": "1",
                   "rank": "county", "status": "active"}
    });
    let bad = serde_json::json!({
        "source": {"system": "cli-test", "kind": "person", "record_id": "BAD-1", "version": 1},
        "person": {"national_id": "11010519491231002X", "name": "张伟", "gender": "x",
                   "rank": "general", "birth_date": "1949-13-31"}
    });
    std::fs::write(
        &file,
        serde_json::json!({ "records": [good, bad] }).to_string(),
    )
    .unwrap();
    let out = demo.run(&["submit", "records.json", "--hub", &hub]);
    let printed = text(&out);
    assert_eq!(out.status.code(), Some(2), "some refused: {printed}");
    let line = printed
        .lines()
        .find(|l| l.contains("BAD-1"))
        .unwrap_or_else(|| panic!("{printed}"));
    for field in ["person.gender", "person.rank", "person.birth_date"] {
        assert!(line.contains(field), "{field} on one line: {line}");
    }
    assert!(printed.contains("ACCEPTED 1"), "{printed}");

    // Letters of every kind of payload in one store: protobuf (Submit), CSV and XLSX rows.
    for file in ["a01-broken.csv", "a01-broken.xlsx"] {
        let out = demo.run(&[
            "import",
            "--system",
            "cadre-hr",
            "--profile",
            "cadre-a01",
            &sample(file),
        ]);
        assert_eq!(out.status.code(), Some(2), "{file}: {}", text(&out));
    }
    let count = || {
        let list = text(&demo.run(&["dlq", "list", "--limit", "1000"]));
        let total = list
            .lines()
            .find(|l| l.ends_with(" letters"))
            .unwrap_or_default();
        total
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .parse::<usize>()
            .unwrap()
    };
    let before = count();
    // Running an import again is safe: the same refused rows are not dead-lettered twice.
    let again = demo.run(&[
        "import",
        "--system",
        "cadre-hr",
        "--profile",
        "cadre-a01",
        &sample("a01-broken.csv"),
    ]);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert_eq!(count(), before, "no new letters for the same rows");
    // And an LRMX form (XML) whose ID is wrong.
    let form = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../connectors/profiles/lrmx/samples/zhao-haiyan-bad-id.lrmx");
    let out = demo.run(&[
        "import",
        "--system",
        "hr-forms",
        "--profile",
        "lrmx",
        &form.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let letters = text(&demo.run(&["dlq", "list", "--payload", "--limit", "1000"]));
    assert!(
        letters.contains("<XingMing>"),
        "the form as XML text: {letters}"
    );
    assert!(
        letters.contains("payload (protobuf, shown as JSON)"),
        "{letters}"
    );
    assert!(
        letters.contains("\"record_id\": \"BAD-1\"") || letters.contains("\"record_id\":\"BAD-1\""),
        "{letters}"
    );
    assert!(letters.contains("A0184"), "CSV rows as text: {letters}");
    assert!(
        !letters.contains("payload (hex)"),
        "nothing unreadable: {letters}"
    );
    assert!(
        !letters
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r')),
        "no control characters on the terminal"
    );
    demo.stop();
}

/// `import --hub` with a partner's token under another system stops at the first call with
/// the system the token speaks for, instead of refusing every row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_under_the_wrong_system_stops_at_once() {
    const TOKEN: &str = "5a1c4e2b9a8f6e5d4c3b2a1908f7e6d5c4b3a29180f7e6d5c4b3a2918070605f";
    let Some(test_store) = trainhub_tests::TestStore::new(trainhub_tests::Backend::Sqlite).await
    else {
        return;
    };
    let hub = trainhub_tests::TestHub::start_with(test_store, |c| {
        c.partners = vec![trainhub_tests::partner("mooc", "mooc", TOKEN)];
    })
    .await;
    let url = format!("http://{}", hub.grpc_addr);
    let out = tokio::process::Command::new(BINARY)
        .args([
            "import",
            "--hub",
            &url,
            "--token",
            TOKEN,
            "--system",
            "cadre-hr",
            "--profile",
            "cadre-a01",
            "--batch",
            "5",
            &sample("a01.csv"),
        ])
        .output()
        .await
        .unwrap();
    let printed = text(&out);
    assert_eq!(out.status.code(), Some(1), "{printed}");
    assert!(printed.contains("speaks for system `mooc`"), "{printed}");
    assert!(
        !printed.contains("SYSTEM_MISMATCH"),
        "no line per row: {printed}"
    );
    assert!(
        printed.contains("rows 2–6"),
        "names the first call's lines: {printed}"
    );
    hub.stop().await;
}

/// A read command pointed at the wrong store says which mistake it is, and creates nothing.
#[tokio::test]
async fn read_commands_say_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(BINARY)
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        text(&out)
    };
    assert!(run(&["dlq", "list"]).contains("no store at ./trainhub-data/trainhub.db"));
    if let Some(pg) = trainhub_tests::TestStore::new(trainhub_tests::Backend::Postgres).await {
        let no_secret = run(&["dlq", "list", "--store", &pg.url]);
        assert!(
            no_secret.contains("no hub secret") && no_secret.contains("data keys"),
            "{no_secret}"
        );
    }
    assert!(
        run(&["dlq", "list", "--store", "mysql://u@h/db"]).contains("not a store trainhub reads")
    );
    assert!(run(&["audit", "--store", "x.db"]).contains("sqlite://x.db"));
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "nothing created in the working folder"
    );
}

/// A GBK-encoded export (common in government systems) is read as GBK, said once, and its
/// rows stored with their names intact.
#[test]
fn a_gbk_csv_is_imported_as_gbk() {
    let dir = tempfile::tempdir().unwrap();
    let utf8 = std::fs::read_to_string(sample("a01.csv")).unwrap();
    assert!(!utf8.is_ascii(), "the sample has Chinese text");
    let (gbk, _, unmappable) = encoding_rs::GBK.encode(&utf8);
    assert!(!unmappable);
    let file = dir.path().join("a01-gbk.csv");
    std::fs::write(&file, &gbk).unwrap();
    assert!(std::str::from_utf8(&gbk).is_err(), "the file is not UTF-8");
    let out = std::process::Command::new(BINARY)
        .args(["import", "--system", "cadre-hr", "--profile", "cadre-a01"])
        .arg(&file)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let printed = text(&out);
    assert!(out.status.success(), "{printed}");
    assert!(
        printed.contains("not UTF-8; read as GB18030 (GBK)"),
        "{printed}"
    );
    assert!(printed.contains("accepted            20"), "{printed}");
    // The names came through: the dossier of the first row's person carries it as in UTF-8.
    let first = utf8.lines().nth(1).unwrap();
    let name = first.split(',').nth(1).unwrap();
    let id = first
        .split(',')
        .find(|c| c.len() == 18 && c.chars().take(17).all(|d| d.is_ascii_digit()))
        .unwrap();
    let dossier = std::process::Command::new(BINARY)
        .args(["dossier", id, "--purpose", "test"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        text(&dossier).starts_with(name),
        "{name}: {}",
        text(&dossier)
    );
}
