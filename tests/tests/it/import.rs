//! `trainhub import` with a shipped mapping profile (issue 7): the cadre-a01 sample imports
//! with the expected counts, a second run is all `DUPLICATE`, and the broken sample rejects
//! exactly its broken rows, with reasons and the partner's field names, accepting the rest.

use std::path::{Path, PathBuf};
use trainhub::import::{import, Summary};
use trainhub_connectors::files::FileFormat;
use trainhub_connectors::profile::Profile;
use trainhub_proto::v1 as pb;
use trainhub_store::read::LetterFilter;
use trainhub_tests::{Backend, TestHub, TestStore};

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../connectors/profiles/cadre-a01/samples")
        .join(name)
}

/// The pipeline `trainhub import` opens on `test_store` (no running hub).
async fn pipeline_on(test_store: &TestStore) -> trainhub_pipeline::Pipeline {
    let config = TestHub::config_for(test_store);
    trainhub::startup::open_pipeline(&config, true)
        .await
        .unwrap()
}

async fn run(pipeline: &trainhub_pipeline::Pipeline, file: &Path, rejects: &Path) -> Summary {
    let profile = Profile::resolve("cadre-a01").unwrap();
    let format = FileFormat::of(file).unwrap();
    import(
        pipeline,
        &profile,
        "cadre-hr",
        &[(file.to_owned(), format)],
        7,
        rejects,
    )
    .await
    .unwrap()
}

async fn a01_sample(backend: Backend) {
    let Some(test_store) = TestStore::new(backend).await else {
        return;
    };
    let pipeline = pipeline_on(&test_store).await;
    let rejects = test_store.dir.path().join("rejects.csv");

    // 20 rows, in batches of 7: all accepted; again: all duplicate.
    let first = run(&pipeline, &sample("a01.csv"), &rejects).await;
    assert_eq!((first.rows, first.count("accepted")), (20, 20), "{first:?}");
    let again = run(&pipeline, &sample("a01.csv"), &rejects).await;
    assert_eq!(
        (again.rows, again.count("duplicate")),
        (20, 20),
        "{again:?}"
    );
    assert!(!rejects.exists(), "no rejects, no report");
    // The same export as a workbook (birth dates as date cells): the same records.
    let xlsx = run(&pipeline, &sample("a01.xlsx"), &rejects).await;
    assert_eq!((xlsx.rows, xlsx.count("duplicate")), (20, 20), "{xlsx:?}");
    assert!(!rejects.exists());

    // The broken sample: data rows 3, 5, 7, 9 (lines 4, 6, 8, 10 of the file, the numbers the
    // report gives) are broken; the other six are stored.
    let broken = run(&pipeline, &sample("a01-broken.csv"), &rejects).await;
    assert_eq!(broken.rows, 10);
    assert_eq!(broken.count("rejected"), 4, "{broken:?}");
    // Rows 1, 2, 4, 6, 8, 10 are persons already imported from a01.csv under other record ids.
    assert_eq!(broken.count("accepted"), 6, "{broken:?}");
    let report = std::fs::read_to_string(&rejects).unwrap();
    let lines: Vec<Vec<String>> = report
        .lines()
        .skip(1)
        .map(|l| {
            csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(l.as_bytes())
                .records()
                .next()
                .unwrap()
                .unwrap()
                .iter()
                .map(str::to_owned)
                .collect()
        })
        .collect();
    let got: Vec<(&str, &str, &str, &str)> = lines
        .iter()
        .map(|l| (l[1].as_str(), l[4].as_str(), l[5].as_str(), l[6].as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                "4",
                "A0184 (person.national_id)",
                "INVALID_NATIONAL_ID",
                "validate"
            ),
            ("6", "A0221", "UNKNOWN_CODE", "map"),
            ("8", "A0107", "BAD_DATE", "map"),
            ("10", "GXSJ", "MALFORMED_PAYLOAD", "decode"),
        ],
        "{report}"
    );
    // The broken workbook: the same rows refused (a short row is an empty cell in a sheet),
    // numbered as the spreadsheet shows them (the header is row 1).
    let xlsx_rejects = rejects.with_extension("xlsx.csv");
    let broken_xlsx = run(&pipeline, &sample("a01-broken.xlsx"), &xlsx_rejects).await;
    assert_eq!(broken_xlsx.count("rejected"), 4, "{broken_xlsx:?}");
    assert_eq!(broken_xlsx.count("duplicate"), 6, "{broken_xlsx:?}");
    let xlsx_report = std::fs::read_to_string(&xlsx_rejects).unwrap();
    for want in [
        ",4,person,",
        ",6,,,A0221,UNKNOWN_CODE,map,",
        ",8,,,A0107,BAD_DATE,map,",
        ",10,,,GXSJ,MISSING_FIELD,map,",
    ] {
        assert!(xlsx_report.contains(want), "{want} in {xlsx_report}");
    }
    // The report and the dead letters name no national ID and no name.
    let names: Vec<String> = std::fs::read_to_string(sample("a01-broken.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .flat_map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            [cells[1].to_owned(), cells[5].to_owned()]
        })
        .collect();
    for n in &names {
        assert!(!report.contains(n.as_str()), "{n} in the report");
    }
    let letters = pipeline
        .store()
        .dead_letters(&LetterFilter::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(letters.len(), 8);
    for l in &letters {
        assert!(
            l.format == "csv:cadre-a01@1.0.0" || l.format == "xlsx:cadre-a01@1.0.0",
            "{}",
            l.format
        );
        assert!(l.headers.contains("a01-broken."), "{}", l.headers);
        // The kept bytes are the header and the row: the letter explains itself.
        assert!(l.payload.starts_with(b"A0000,A0101,"));
    }

    // A dossier from the imported person: values mapped from display texts, provenance names
    // the profile and its version.
    let nid = std::fs::read_to_string(sample("a01.csv"))
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .nth(5)
        .unwrap()
        .to_owned();
    let hub = TestHub::start_on(test_store).await;
    let dossier: pb::Dossier = hub.dossier(&nid, "").await.unwrap();
    assert_eq!(
        (dossier.name.as_str(), dossier.rank.as_str()),
        ("王建国", "county")
    );
    assert_eq!(dossier.unit_code, "U3201001");
    let p = &dossier.provenance[0];
    assert_eq!(
        (
            p.system.as_str(),
            p.profile.as_str(),
            p.profile_version.as_str()
        ),
        ("cadre-hr", "cadre-a01", "1.0.0")
    );
    pipeline.store().close().await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a01_sample_sqlite() {
    a01_sample(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a01_sample_postgres() {
    a01_sample(Backend::Postgres).await;
}

/// The command line: the same flags as `serve`, a summary on stdout, a clear refusal for a file
/// whose header lacks a required column.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_refuses_a_file_without_a_required_column() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("no-id.csv");
    std::fs::write(&file, "A0000,A0101\nx,y\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_trainhub-under-test"))
        .args([
            "import",
            "--system",
            "cadre-hr",
            "--profile",
            "cadre-a01",
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("lacks the required columns A0184 (person.national_id)"),
        "{err}"
    );
    assert!(
        !dir.path().join("data").exists(),
        "nothing created for a refused file"
    );
}

/// A folder of `.lrmx` forms as the appointment-form editors write them — UTF-8 pretty-printed
/// with photo and family table, UTF-8 with a BOM on one line with CDATA, GB2312 with CRLF — and
/// one whose national ID has a bad check digit: three persons, one `INVALID_NATIONAL_ID`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_of_lrmx_forms() {
    let Some(test_store) = TestStore::new(Backend::Sqlite).await else {
        return;
    };
    let forms = test_store.dir.path().join("forms");
    std::fs::create_dir(&forms).unwrap();
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../connectors/profiles/lrmx/samples");
    for entry in std::fs::read_dir(&samples).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, forms.join(path.file_name().unwrap())).unwrap();
    }
    let pipeline = pipeline_on(&test_store).await;
    let profile = Profile::resolve("lrmx").unwrap();
    let mut files: Vec<_> = std::fs::read_dir(&forms)
        .unwrap()
        .map(|e| (e.unwrap().path(), FileFormat::Lrmx))
        .collect();
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let rejects = test_store.dir.path().join("forms.rejects.csv");
    let first = import(&pipeline, &profile, "hr-forms", &files, 100, &rejects)
        .await
        .unwrap();
    assert_eq!((first.rows, first.count("accepted")), (4, 3), "{first:?}");
    assert_eq!(
        first.rejected.get("INVALID_NATIONAL_ID"),
        Some(&1),
        "{first:?}"
    );
    let report = std::fs::read_to_string(&rejects).unwrap();
    assert!(
        report.contains("zhao-haiyan-bad-id.lrmx,1,,,ShenFenZheng,INVALID_NATIONAL_ID"),
        "{report}"
    );
    let again = import(&pipeline, &profile, "hr-forms", &files, 100, &rejects)
        .await
        .unwrap();
    assert_eq!(again.count("duplicate"), 3, "{again:?}");

    // Each form's person, read back: names from every encoding.
    let hub = TestHub::start_on(test_store).await;
    for (file, name, birth) in [
        ("zhang-weidong.lrmx", "张卫东", "1974-03-01"),
        ("li-xiuying.lrmx", "李秀英", "1975-06-01"),
        ("wang-jianguo.lrmx", "王建国", "1968-10-01"),
    ] {
        let bytes = std::fs::read(forms.join(file)).unwrap();
        let items = trainhub_connectors::files::parse_lrmx(&bytes).unwrap();
        assert_eq!(items["XingMing"], name);
        assert_eq!(
            items["ChuShengNianYue"].replace('.', "").get(..6),
            birth.replace('-', "").get(..6)
        );
        let dossier = hub.dossier(&items["ShenFenZheng"], "").await.unwrap();
        assert_eq!(dossier.name, name, "{file}");
        assert_eq!(dossier.provenance[0].profile, "lrmx");
    }
    pipeline.store().close().await;
    hub.stop().await;
}

/// `IngestService.SubmitNative`: the same profiles over gRPC, held to the partner's system,
/// with the same outcomes and dead letters as canonical records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_native_maps_payloads_by_profile() {
    use tonic::Code;
    const TOKEN: &str = "7d1c4e2b9a8f6e5d4c3b2a1908f7e6d5c4b3a29180f7e6d5c4b3a2918070605f";
    let Some(test_store) = TestStore::new(Backend::Postgres).await else {
        return;
    };
    let hub = TestHub::start_with(test_store, |c| {
        c.partners = vec![trainhub_tests::partner("cadre-system", "cadre-hr", TOKEN)];
    })
    .await;
    let mut client = hub.ingest().await;
    let call = |system: &str, profile: &str, content_type: &str, payload: Vec<u8>| {
        let mut request = tonic::Request::new(pb::NativeBatch {
            system: system.into(),
            profile: profile.into(),
            content_type: content_type.into(),
            payload,
        });
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
        request
    };
    let csv = std::fs::read(sample("a01.csv")).unwrap();
    let outcomes =
        |r: tonic::Response<pb::SubmitResponse>| trainhub_tests::statuses(&r.into_inner().outcomes);

    let first = outcomes(
        client
            .submit_native(call("cadre-hr", "cadre-a01", "text/csv", csv.clone()))
            .await
            .unwrap(),
    );
    assert_eq!(first, vec!["ACCEPTED"; 20]);
    let again = outcomes(
        client
            .submit_native(call(
                "cadre-hr",
                "cadre-a01",
                "text/csv; charset=utf-8",
                csv.clone(),
            ))
            .await
            .unwrap(),
    );
    assert_eq!(again, vec!["DUPLICATE"; 20]);

    let broken = client
        .submit_native(call(
            "cadre-hr",
            "cadre-a01",
            "text/csv",
            std::fs::read(sample("a01-broken.csv")).unwrap(),
        ))
        .await
        .unwrap()
        .into_inner()
        .outcomes;
    let refused: Vec<(usize, &str)> = broken
        .iter()
        .enumerate()
        .filter(|(_, o)| o.status() == pb::RecordStatus::Rejected)
        .map(|(i, o)| (i + 1, o.reason_code.as_str()))
        .collect();
    assert_eq!(
        refused,
        [
            (3, "INVALID_NATIONAL_ID"),
            (5, "UNKNOWN_CODE"),
            (7, "BAD_DATE"),
            (9, "MALFORMED_PAYLOAD")
        ]
    );
    assert!(
        broken[2].message.starts_with("A0184 (person.national_id)"),
        "{}",
        broken[2].message
    );

    // JSON: an array of objects keyed like the columns.
    let text = String::from_utf8(csv.clone()).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let objects: Vec<serde_json::Value> = lines
        .take(2)
        .map(|l| {
            header
                .iter()
                .zip(l.split(','))
                .map(|(h, v)| (h.to_string(), serde_json::Value::String(v.into())))
                .collect::<serde_json::Map<_, _>>()
                .into()
        })
        .collect();
    let json = serde_json::to_vec(&objects).unwrap();
    let from_json = outcomes(
        client
            .submit_native(call("cadre-hr", "cadre-a01", "application/json", json))
            .await
            .unwrap(),
    );
    assert_eq!(
        from_json,
        vec!["DUPLICATE"; 2],
        "the same records as the CSV rows"
    );

    // As another system: the whole call is refused, naming both systems; nothing stored.
    let other = client
        .submit_native(call("party-school", "cadre-a01", "text/csv", csv.clone()))
        .await
        .unwrap_err();
    assert_eq!(other.code(), Code::PermissionDenied, "{other:?}");
    assert!(
        other.message().contains("`cadre-hr`") && other.message().contains("`party-school`"),
        "{}",
        other.message()
    );

    // An LRMX form.
    let form = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../connectors/profiles/lrmx/samples/wang-jianguo.lrmx"),
    )
    .unwrap();
    let lrmx = outcomes(
        client
            .submit_native(call("cadre-hr", "lrmx", "application/xml", form))
            .await
            .unwrap(),
    );
    assert_eq!(lrmx, ["ACCEPTED"]);

    // Refused calls.
    for (profile, content_type, want) in [
        ("nope", "text/csv", "unknown profile"),
        ("cadre-a01", "application/pdf", "content_type"),
    ] {
        let err = client
            .submit_native(call("cadre-hr", profile, content_type, csv.clone()))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().contains(want), "{err:?}");
    }
    let err = client
        .submit_native(tonic::Request::new(pb::NativeBatch::default()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    hub.stop().await;
}

/// The party-school JSON export: classes, rosters, attendance and results from one document,
/// joined with the HR records of the same persons.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_party_school_term_joins_the_hr_records() {
    let Some(test_store) = TestStore::new(Backend::Sqlite).await else {
        return;
    };
    let pipeline = pipeline_on(&test_store).await;
    let rejects = test_store.dir.path().join("rejects.csv");
    let hr = run(&pipeline, &sample("a01.csv"), &rejects).await;
    assert_eq!(hr.count("accepted"), 20);
    let term = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../connectors/profiles/party-school-json/samples/term-2026-spring.json");
    let profile = Profile::resolve("party-school-json").unwrap();
    let files = [(term.clone(), FileFormat::Json)];
    let first = import(&pipeline, &profile, "party-school", &files, 50, &rejects)
        .await
        .unwrap();
    // 2 classes, 4 enrolments, 13 attendance days, 3 results (one student left, no result).
    assert_eq!((first.rows, first.count("accepted")), (1, 22), "{first:?}");
    assert!(!rejects.exists());
    let again = import(&pipeline, &profile, "party-school", &files, 50, &rejects)
        .await
        .unwrap();
    assert_eq!(again.count("duplicate"), 22, "{again:?}");

    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&term).unwrap()).unwrap();
    let student = &doc["classes"][0]["roster"][0];
    let hub = TestHub::start_on(test_store).await;
    let dossier = hub
        .dossier(student["idCard"].as_str().unwrap(), "2026-06-30")
        .await
        .unwrap();
    let entry = dossier
        .trainings
        .iter()
        .find(|t| t.class_id == "NJDX-2026-QT01")
        .expect("the class is in the dossier");
    assert_eq!(entry.outcome, "excellent");
    assert_eq!(entry.certificate_no, "NJDX-2026-QT01-001");
    assert_eq!(entry.themes, ["party_theory", "party_spirit"]);
    assert!(entry.credited_hours > 0.0, "{entry:?}");
    let from_school: Vec<_> = dossier
        .provenance
        .iter()
        .filter(|p| p.system == "party-school")
        .collect();
    assert!(!from_school.is_empty());
    assert!(from_school.iter().all(
        |p| (p.profile.as_str(), p.profile_version.as_str()) == ("party-school-json", "1.0.0")
    ));
    pipeline.store().close().await;
    hub.stop().await;
}

/// `trainhub import --hub`: the same files through a running hub's `SubmitNative`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_into_a_running_hub() {
    let Some(hub) = TestHub::start(Backend::Sqlite).await else {
        return;
    };
    let run = |file: PathBuf| {
        let grpc = format!("http://{}", hub.grpc_addr);
        async move {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_trainhub-under-test"))
                .args(["import", "--hub", &grpc, "--system", "cadre-hr"])
                .args(["--profile", "cadre-a01", "--batch", "6"])
                .arg(file)
                .output()
                .await
                .unwrap()
        }
    };
    let out = run(sample("a01.xlsx")).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("accepted            20"), "{stdout}");
    let out = run(sample("a01.csv")).await;
    assert!(String::from_utf8_lossy(&out.stdout).contains("duplicate           20"));
    let out = run(sample("a01-broken.csv")).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    for want in [
        "row 4: INVALID_NATIONAL_ID",
        "row 6: UNKNOWN_CODE",
        "row 8: BAD_DATE",
        "row 10: MALFORMED_PAYLOAD",
    ] {
        assert!(stderr.contains(want), "{want}: {stderr}");
    }
    assert_eq!(out.status.code(), Some(2), "some rows refused: exit code 2");
    // Every row refused: exit code 3, so a scheduled import can tell it did nothing.
    let text = std::fs::read_to_string(sample("a01.csv")).unwrap();
    let mut lines = text.lines();
    let (header, row) = (lines.next().unwrap(), lines.next().unwrap());
    let bad = row.replace("320102196501010101", "320102196501010100");
    let all_bad = hub.test_store.dir.path().join("all-bad.csv");
    std::fs::write(&all_bad, format!("{header}\n{bad}\n")).unwrap();
    let out = run(all_bad).await;
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stored =
        trainhub_tests::count(&hub.store, "SELECT COUNT(*) AS n FROM source_records").await;
    assert_eq!(stored, 26);
    hub.stop().await;
}
