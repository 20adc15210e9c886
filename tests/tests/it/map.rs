//! Results back to the organisation departments (issue 19, criteria 2 and 3): the coverage
//! map in a browser shows what `GetCoverage` answers and drills down to the RED list; the
//! exports (page and command line) open in a spreadsheet reader, hold the gRPC answers' rows,
//! carry as-of, policy version and purpose, and are audited.

use crate::lrs::raw;
use calamine::{Data, Reader as _, Xlsx};
use std::collections::{BTreeMap, BTreeSet};
use trainhub::config::{Digests, ReaderConfig};
use trainhub_api::auth::token_digest;
use trainhub_connectors::synthetic;
use trainhub_proto::v1 as pb;
use trainhub_tests::{count, Backend, TestHub, TestStore};

pub(crate) const TOKEN: &str = "a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7";
const CITY_TOKEN: &str = "b8b8b8b8b8b8b8b8b8b8b8b8b8b8b8b8b8b8b8b8b8b8b8b8b8b8b8b8b8b8b8b8";
pub(crate) const AS_OF: &str = "2026-06-30";
const PURPOSE: &str = "年度培训计划";

pub(crate) fn reader(name: &str, token: &str, authorities: &[&str]) -> ReaderConfig {
    ReaderConfig {
        name: name.into(),
        token_sha256: Some(Digests::One(token_digest(token))),
        token_file: None,
        roles: vec!["dossier:read".into(), "coverage:read".into()],
        authorities: authorities.iter().map(|a| a.to_string()).collect(),
    }
}

/// A hub holding the synthetic population (three authorities, several units), restarted with
/// an organisation department's readers: one for everyone, one for a city.
async fn seeded(backend: Backend) -> Option<TestHub> {
    let test_store = TestStore::new(backend).await?;
    let open = TestHub::start_on(test_store).await;
    let population = synthetic::population(19, 150);
    for chunk in population.records.chunks(1000) {
        open.submit(chunk.to_vec()).await;
    }
    let store = open.stop_keeping_store().await;
    let hub = TestHub::start_with(store, |c| {
        c.readers = vec![
            reader("org-dept", TOKEN, &[]),
            reader("nanjing-org", CITY_TOKEN, &["js-nanjing"]),
        ];
    })
    .await;
    // The map reads the projected state: every person in it.
    trainhub_tests::projected(&hub.store).await;
    Some(hub)
}

pub(crate) fn with_token<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

async fn grpc_coverage(hub: &TestHub, token: &str) -> pb::CoverageReport {
    let request = pb::CoverageRequest {
        group_by: "unit".into(),
        as_of: AS_OF.into(),
        purpose: PURPOSE.into(),
        ..Default::default()
    };
    let mut client = hub.dossiers().await;
    client
        .get_coverage(with_token(token, request))
        .await
        .unwrap()
        .into_inner()
}

fn red_keys(report: &pb::CoverageReport) -> BTreeSet<String> {
    report
        .groups
        .iter()
        .flat_map(|g| g.red_list.iter().map(|p| p.person_key.clone()))
        .collect()
}

async fn get(hub: &TestHub, token: &str, path: &str) -> crate::lrs::Answer {
    let bearer = format!("Bearer {token}");
    raw(
        hub.http_addr,
        "GET",
        path,
        &[("Authorization", &bearer)],
        "text/plain",
        b"",
    )
    .await
}

/// The map in Chromium: the charts and the table of a seeded population, the numbers equal to
/// `GetCoverage` at the same as-of date, the drill-down equal to the group's RED list; a
/// screenshot of each view kept in `target/test-artifacts/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_coverage_map_in_a_browser_shows_what_get_coverage_answers() {
    let Some(browser_dir) = trainhub_tests::browser_dir() else {
        return;
    };
    let Some(hub) = seeded(Backend::Sqlite).await else {
        return;
    };
    let report = grpc_coverage(&hub, TOKEN).await;
    assert!(report.groups.len() >= 3, "{report:?}");
    let artifacts =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let output = tokio::process::Command::new("node")
        .arg(browser_dir.join("coverage.mjs"))
        .arg(format!("http://{}/coverage", hub.http_addr))
        .args([TOKEN, PURPOSE, AS_OF])
        .arg(&artifacts)
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let shown: serde_json::Value = serde_json::from_str(stdout.trim()).expect("the page's JSON");

    // The table: every group of GetCoverage, with its numbers.
    let rows = shown["groups"].as_array().unwrap();
    assert_eq!(rows.len(), report.groups.len());
    for (row, g) in rows.iter().zip(&report.groups) {
        assert_eq!(row["key"], g.key.as_str());
        assert_eq!(row["in_scope"].as_i64(), Some(g.in_scope), "{}", g.key);
        assert_eq!(row["red"].as_i64(), Some(g.red));
        assert_eq!(row["yellow"].as_i64(), Some(g.yellow));
        assert_eq!(row["green"].as_i64(), Some(g.green));
        for (name, value) in [
            ("participation_rate", g.participation_rate),
            ("pass_rate", g.pass_rate),
            ("coverage_rate", g.coverage_rate),
        ] {
            // serde_json's default float parser may land one unit in the last place off.
            let shown = row[name].as_f64().unwrap();
            assert!(
                (shown - value).abs() < 1e-12,
                "{} {name}: {shown} {value}",
                g.key
            );
            let text = row[format!("{name}_text")].as_str().unwrap();
            assert!(text.ends_with('%'), "{text}");
        }
    }
    let in_scope: i64 = report.groups.iter().map(|g| g.in_scope).sum();
    let red: i64 = report.groups.iter().map(|g| g.red).sum();
    assert_eq!(shown["totals"]["in_scope"].as_i64(), Some(in_scope));
    assert_eq!(shown["totals"]["red"].as_i64(), Some(red));

    // The charts: three bars per group, two trend lines over the five years, light bars.
    let charts = &shown["charts"];
    assert_eq!(
        charts["bars"].as_u64(),
        Some(3 * report.groups.len() as u64)
    );
    assert_eq!(charts["trend_lines"].as_u64(), Some(2));
    assert_eq!(charts["trend_points"].as_u64(), Some(10));
    assert_eq!(
        charts["light_bars"].as_u64(),
        Some(3 * report.groups.len() as u64)
    );

    // The drill-down lists the persons of the group's RED list, no one else.
    let group = shown["drill"]["group"].as_str().unwrap();
    let expected: BTreeSet<String> = report
        .groups
        .iter()
        .find(|g| g.key == group)
        .unwrap()
        .red_list
        .iter()
        .map(|p| p.person_key.clone())
        .collect();
    assert!(!expected.is_empty(), "a group with RED persons");
    let listed: BTreeSet<String> = shown["drill"]["persons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, expected);
    assert_eq!(shown["lists"]["red"], shown["drill"]["persons"]);
    for view in [
        "coverage-map",
        "coverage-drill-down",
        "coverage-list-behind",
        "coverage-list-remedial",
        "coverage-list-long-training",
        "coverage-map-en",
    ] {
        let shot = artifacts.join(format!("{view}.png"));
        assert!(std::fs::metadata(&shot).unwrap().len() > 10_000, "{view}");
    }
    hub.stop().await;
}

/// The rows of a sheet below its description (row 7 on: the header, then the table), as text.
pub(crate) fn table(book: &mut Xlsx<std::io::Cursor<Vec<u8>>>, sheet: usize) -> Vec<Vec<String>> {
    let range = book.worksheet_range_at(sheet).unwrap().unwrap();
    range
        .rows()
        .skip(trainhub::export::HEADER_ROW as usize + 1)
        .map(|r| r.iter().map(cell).collect())
        .collect()
}

fn cell(d: &Data) -> String {
    match d {
        Data::Float(f) => format!("{f}"),
        Data::Int(i) => i.to_string(),
        other => other.to_string(),
    }
}

/// The description rows of a sheet, by key.
pub(crate) fn described(book: &mut Xlsx<std::io::Cursor<Vec<u8>>>) -> BTreeMap<String, String> {
    let range = book.worksheet_range_at(0).unwrap().unwrap();
    range
        .rows()
        .take(5)
        .map(|r| (cell(&r[0]), cell(&r[1])))
        .collect()
}

pub(crate) fn open(bytes: Vec<u8>) -> Xlsx<std::io::Cursor<Vec<u8>>> {
    calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).expect("an XLSX workbook")
}

/// The coverage sheet's rows as GetCoverage's groups say them.
fn coverage_rows(report: &pb::CoverageReport) -> Vec<Vec<String>> {
    report
        .groups
        .iter()
        .map(|g| {
            vec![
                g.key.clone(),
                format!("{}", g.in_scope as f64),
                format!("{}", g.participation_rate),
                format!("{}", g.pass_rate),
                format!("{}", g.coverage_rate),
                format!("{}", g.red as f64),
                format!("{}", g.yellow as f64),
                format!("{}", g.green as f64),
            ]
        })
        .collect()
}

fn assert_described(book: &mut Xlsx<std::io::Cursor<Vec<u8>>>, principal: &str, policy: &str) {
    let meta = described(book);
    assert_eq!(meta["截至日期 as of"], AS_OF, "{meta:?}");
    assert_eq!(meta["政策版本 policy version"], policy, "{meta:?}");
    assert_eq!(meta["用途 purpose"], PURPOSE);
    assert!(meta["查询人 read by"].starts_with(principal), "{meta:?}");
}

/// The coverage report and the RED list as XLSX and CSV, from the page's routes and from the
/// command line: the same rows as `GetCoverage`, the description, and audit rows for each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_hold_the_grpc_rows_with_as_of_policy_and_purpose_and_are_audited() {
    let Some(hub) = seeded(Backend::Postgres).await else {
        return;
    };
    let report = grpc_coverage(&hub, TOKEN).await;
    let query = format!("purpose={PURPOSE}&as_of={AS_OF}&group_by=unit");
    let xlsx = get(&hub, TOKEN, &format!("/api/coverage?{query}&format=xlsx")).await;
    assert_eq!(xlsx.status, 200, "{}", xlsx.text());
    let mut book = open(xlsx.body.clone());
    assert_described(&mut book, "org-dept", &report.policy_version);
    assert_eq!(table(&mut book, 0), coverage_rows(&report));
    let red_sheet: BTreeSet<String> = table(&mut book, 1)
        .into_iter()
        .map(|r| r[1].clone())
        .collect();
    assert_eq!(red_sheet, red_keys(&report));
    assert_eq!(
        table(&mut book, 2).len(),
        5,
        "one row per year of the window"
    );

    let list = get(
        &hub,
        TOKEN,
        &format!("/api/warnings?{query}&list=red&format=xlsx"),
    )
    .await;
    assert_eq!(list.status, 200, "{}", list.text());
    let mut book = open(list.body.clone());
    assert_described(&mut book, "org-dept", &report.policy_version);
    let listed: BTreeSet<String> = table(&mut book, 0)
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(listed, red_keys(&report));

    let csv = get(&hub, TOKEN, &format!("/api/coverage?{query}&format=csv")).await;
    let text = csv.text();
    assert!(text.contains(&format!("截至日期 as of,{AS_OF}")), "{text}");
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(false)
        .from_reader(text.as_bytes());
    let csv_rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(csv_rows.len(), 5 + 1 + 1 + report.groups.len());

    // A city's reader exports its own persons only.
    let city = get(
        &hub,
        CITY_TOKEN,
        &format!("/api/warnings?{query}&list=red&format=json"),
    )
    .await;
    let city: serde_json::Value = serde_json::from_slice(&city.body).unwrap();
    let rows = city["rows"].as_array().unwrap();
    assert!(!rows.is_empty());
    assert!(
        rows.iter().all(|r| r["authority"] == "js-nanjing"),
        "{city}"
    );
    let unknown = get(&hub, TOKEN, &format!("/api/warnings?{query}&list=yellow")).await;
    assert_eq!(unknown.status, 400, "{}", unknown.text());
    let anonymous = raw(
        hub.http_addr,
        "GET",
        &format!("/api/coverage?{query}"),
        &[],
        "text/plain",
        b"",
    )
    .await;
    assert_eq!(anonymous.status, 401);

    // The same from the command line, on the store.
    let store = hub.stop_keeping_store().await;
    let dir = tempfile::tempdir().unwrap();
    let (cov, red) = (
        dir.path().join("coverage.xlsx"),
        dir.path().join("red.xlsx"),
    );
    let data_dir = store.dir.path().display().to_string();
    let base = [
        "--store",
        store.url.as_str(),
        "--data-dir",
        data_dir.as_str(),
    ];
    let asked = ["--purpose", PURPOSE, "--as-of", AS_OF];
    let cov_arg = cov.display().to_string();
    let red_arg = red.display().to_string();
    crate::feedback::cli(&[&["coverage", "--xlsx", cov_arg.as_str()][..], &base, &asked].concat())
        .await;
    crate::feedback::cli(
        &[
            &["warnings", "--list", "red", "--xlsx", red_arg.as_str()][..],
            &base,
            &asked,
        ]
        .concat(),
    )
    .await;
    let mut book = open(std::fs::read(&cov).unwrap());
    assert_described(&mut book, "cli:", &report.policy_version);
    assert_eq!(table(&mut book, 0), coverage_rows(&report));
    let mut book = open(std::fs::read(&red).unwrap());
    let listed: BTreeSet<String> = table(&mut book, 0)
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(listed, red_keys(&report));

    // Each export wrote its audit rows: one for a report, one per person on a list.
    let again = TestHub::start_on(store).await;
    let rows = |method: &str| {
        format!("SELECT COUNT(*) AS n FROM audit_log WHERE method = '{method}' AND purpose = '{PURPOSE}'")
    };
    let red_count = red_keys(&report).len() as i64;
    assert_eq!(
        count(&again.store, &rows("http:ExportCoverage.xlsx")).await,
        1
    );
    assert_eq!(
        count(&again.store, &rows("http:ExportCoverage.csv")).await,
        1
    );
    assert_eq!(
        count(&again.store, &rows("http:ExportWarnings.xlsx")).await,
        red_count
    );
    assert_eq!(count(&again.store, &rows("ExportCoverage")).await, 1);
    assert_eq!(
        count(&again.store, &rows("ExportWarnings")).await,
        red_count
    );
    again.stop().await;
}
