//! Forms for the organisation departments (issue 19, criterion 4 and the annual form): the
//! shipped LRMX sample forms (UTF-8 with a byte-order mark and CDATA; GB2312) filled with
//! their persons' appointment-form lines, from the command line and over HTTP — the lines in
//! the résumé, every other element and the encoding as they were, filling twice changing
//! nothing — and the annual assessment form's off-job trainings of a year.

use crate::fixtures::{self, rec, HR, SCHOOL};
use crate::map::{reader, TOKEN};
use std::path::Path;
use std::process::Output;
use trainhub_connectors::files::parse_lrmx;
use trainhub_proto::v1 as pb;
use trainhub_tests::{count, Backend, TestHub, TestStore};

/// Runs the trainhub program and expects success.
pub(crate) async fn cli(args: &[&str]) -> Output {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_trainhub-under-test"))
        .args(args)
        .env_remove("TRAINHUB_LOG")
        .output()
        .await
        .expect("the trainhub program runs");
    assert!(
        out.status.success(),
        "trainhub {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

const LI: &str = "321027197506120040"; // li-xiuying.lrmx: UTF-8, BOM, CRLF, résumé in CDATA
const WANG: &str = "32010219681001005X"; // wang-jianguo.lrmx: GB2312
const LONG_LINE: &str = "2024.03--2024.05 在省委党校参加C-LONG 专题班学习";

/// Two persons of the sample forms, each with a 71-day off-job class completed (on the
/// appointment form) and a 10-day one (on the annual form only).
fn records() -> Vec<pb::Record> {
    let mut out = vec![
        rec(
            SCHOOL,
            "C-LONG",
            1,
            fixtures::class(
                "C-LONG",
                "2024-03-01",
                "2024-05-10",
                320.0,
                &["party_theory"],
            ),
        ),
        rec(
            SCHOOL,
            "C-SHORT",
            1,
            fixtures::class(
                "C-SHORT",
                "2024-09-02",
                "2024-09-11",
                60.0,
                &["party_theory"],
            ),
        ),
    ];
    for (n, id) in [LI, WANG].into_iter().enumerate() {
        let mut person = rec(
            HR,
            &format!("P-{n}"),
            1,
            fixtures::person(id, "某", "county"),
        );
        if let Some(pb::record::Body::Person(p)) = &mut person.body {
            p.authority = "js-nanjing".into();
        }
        out.push(person);
        for class in ["C-LONG", "C-SHORT"] {
            out.push(rec(
                SCHOOL,
                &format!("E-{n}-{class}"),
                1,
                fixtures::enrollment(id, class, "completed"),
            ));
            out.push(rec(
                SCHOOL,
                &format!("R-{n}-{class}"),
                1,
                fixtures::result(id, class, "pass"),
            ));
        }
    }
    out
}

fn samples() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../connectors/profiles/lrmx/samples")
}

/// The decoded text of a form with its résumé's content cut out, and its items but the résumé.
fn outside_resume(bytes: &[u8]) -> (String, std::collections::BTreeMap<String, String>) {
    let gbk = bytes.starts_with(b"<?xml version=\"1.0\" encoding=\"GB2312\"");
    let text = if gbk {
        let (t, _, errors) = encoding_rs::GBK.decode(bytes);
        assert!(!errors, "still GB2312");
        t.into_owned()
    } else {
        String::from_utf8(bytes.to_vec()).expect("still UTF-8")
    };
    let (head, rest) = text.split_once("<JianLi>").expect("a résumé");
    let (_, tail) = rest.split_once("</JianLi>").unwrap();
    let mut items = parse_lrmx(bytes).expect("a form");
    items.remove("JianLi");
    (format!("{head}<JianLi/>{tail}"), items)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_forms_get_their_training_lines_once_and_keep_the_rest() {
    let Some(test_store) = TestStore::new(Backend::Sqlite).await else {
        return;
    };
    let open = TestHub::start_on(test_store).await;
    let outcomes = open.submit(records()).await;
    assert!(
        outcomes.iter().all(|o| o.reason_code.is_empty()),
        "{outcomes:?}"
    );
    let store = open.stop_keeping_store().await;

    // From the command line, on a copy of each sample form.
    let dir = tempfile::tempdir().unwrap();
    let data_dir = store.dir.path().display().to_string();
    let base = [
        "--store",
        store.url.as_str(),
        "--data-dir",
        data_dir.as_str(),
    ];
    let asked = ["--purpose", "任免审批", "--as-of", "2026-06-30"];
    for (file, id) in [("li-xiuying.lrmx", LI), ("wang-jianguo.lrmx", WANG)] {
        let original = std::fs::read(samples().join(file)).unwrap();
        let form = dir.path().join(file);
        std::fs::write(&form, &original).unwrap();
        let path = form.display().to_string();
        let out = cli(&[&["lrmx-fill", path.as_str()][..], &base, &asked].concat()).await;
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("1 line(s) added"),
            "{out:?}"
        );
        let filled = std::fs::read(&form).unwrap();
        let items = parse_lrmx(&filled).unwrap();
        let resume: Vec<&str> = items["JianLi"].lines().map(str::trim_end).collect();
        assert!(resume.contains(&LONG_LINE), "{file}: {resume:?}");
        assert!(
            !items["JianLi"].contains("C-SHORT"),
            "a 10-day class is not on the form"
        );
        assert_eq!(items["ShenFenZheng"], id);
        // Everything outside the résumé is as it was, byte for byte, in the same encoding.
        assert_eq!(outside_resume(&filled), outside_resume(&original), "{file}");
        assert_eq!(
            filled.starts_with(b"\xEF\xBB\xBF"),
            original.starts_with(b"\xEF\xBB\xBF")
        );
        // The old résumé lines are all still there, in order, around the new one.
        let before = parse_lrmx(&original).unwrap()["JianLi"].clone();
        let kept: Vec<&str> = resume.iter().copied().filter(|l| *l != LONG_LINE).collect();
        let old: Vec<&str> = before.lines().map(str::trim_end).collect();
        assert_eq!(kept, old, "{file}");
        // Twice: nothing changes.
        cli(&[&["lrmx-fill", path.as_str()][..], &base, &asked].concat()).await;
        assert_eq!(
            std::fs::read(&form).unwrap(),
            filled,
            "{file}: filled twice"
        );
    }

    // The annual form of 2024 as a workbook: both off-job classes, described.
    let annual = dir.path().join("annual.xlsx");
    let annual_arg = annual.display().to_string();
    let year = [
        "annual-form",
        LI,
        "--year",
        "2024",
        "--xlsx",
        annual_arg.as_str(),
    ];
    cli(&[&year[..], &base, &asked].concat()).await;
    let mut book = crate::map::open(std::fs::read(&annual).unwrap());
    let meta = crate::map::described(&mut book);
    assert_eq!(meta["截至日期 as of"], "2026-06-30", "as of: {meta:?}");
    assert_eq!(meta["用途 purpose"], "任免审批", "purpose: {meta:?}");
    let rows = crate::map::table(&mut book, 0);
    let titles: Vec<&str> = rows.iter().map(|r| r[4].as_str()).collect();
    assert_eq!(titles, ["C-LONG 专题班", "C-SHORT 专题班"]);

    // Over HTTP, with a reader token: the same form back; another city's reader is refused.
    let hub = TestHub::start_with(store, |c| {
        c.readers = vec![
            reader("org-dept", TOKEN, &["js-nanjing"]),
            reader("suzhou", "e9".repeat(32).as_str(), &["js-suzhou"]),
        ];
    })
    .await;
    let original = std::fs::read(samples().join("wang-jianguo.lrmx")).unwrap();
    let post = |token: String, body: Vec<u8>| {
        let addr = hub.http_addr;
        async move {
            let bearer = format!("Bearer {token}");
            crate::lrs::raw(
                addr,
                "POST",
                "/api/lrmx-fill?purpose=任免审批&as_of=2026-06-30",
                &[("Authorization", &bearer)],
                "application/xml",
                &body,
            )
            .await
        }
    };
    let answer = post(TOKEN.into(), original.clone()).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.header("x-trainhub-lines-added"), Some("1"));
    assert_eq!(outside_resume(&answer.body), outside_resume(&original));
    let again = post(TOKEN.into(), answer.body.clone()).await;
    assert_eq!(again.body, answer.body, "filled twice over HTTP");
    let refused = post("e9".repeat(32), original.clone()).await;
    assert_eq!(refused.status, 403, "{}", refused.text());
    let broken = post(TOKEN.into(), b"<Person><JianLi>".to_vec()).await;
    assert_eq!(broken.status, 400, "{}", broken.text());

    // The annual form of 2024: both off-job classes, with their dates, provider, hours, result.
    let bearer = format!("Bearer {TOKEN}");
    let annual = crate::lrs::raw(
        hub.http_addr,
        "GET",
        &format!("/api/annual-form?person={LI}&year=2024&purpose=年度考核&as_of=2026-06-30"),
        &[("Authorization", &bearer)],
        "text/plain",
        b"",
    )
    .await;
    assert_eq!(annual.status, 200, "{}", annual.text());
    let rows = annual.json()["rows"].as_array().unwrap().clone();
    let titles: Vec<&str> = rows.iter().map(|r| r["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["C-LONG 专题班", "C-SHORT 专题班"]);
    assert_eq!(rows[0]["provider"], "省委党校");
    assert_eq!(rows[0]["start_date"], "2024-03-01");
    assert_eq!(rows[0]["days"], 71);
    assert_eq!(rows[0]["hours"], 320.0);
    assert_eq!(rows[0]["result"], "pass");
    let none = crate::lrs::raw(
        hub.http_addr,
        "GET",
        &format!("/api/annual-form?person={LI}&year=2023&purpose=年度考核&as_of=2026-06-30"),
        &[("Authorization", &bearer)],
        "text/plain",
        b"",
    )
    .await;
    assert_eq!(none.json()["rows"].as_array().unwrap().len(), 0);
    let audited = count(&hub.store, "SELECT COUNT(*) AS n FROM audit_log WHERE method IN ('LrmxFill', 'http:LrmxFill', 'http:AnnualForm')").await;
    assert_eq!(
        audited,
        4 + 2 + 2,
        "each fill and each form read is audited"
    );
    hub.stop().await;
}
