//! The README's quick start, walked as a newcomer would (issue 20): its run command in the
//! background on a clean data folder, then every command of the "Quick start" block, each of
//! which must succeed and print what the README says it shows. The documented default ports
//! are mapped to the ports this hub got (port 0).

use std::path::Path;
use std::process::Command;

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).unwrap()
}

/// The first `sh` block after `heading`.
fn block_after(text: &str, heading: &str) -> String {
    let rest = &text[text.find(heading).unwrap_or_else(|| panic!("{heading}"))..];
    let start = rest.find("```sh\n").expect("a shell block") + 6;
    rest[start..start + rest[start..].find("```").unwrap()].to_owned()
}

fn lines(block: &str) -> Vec<String> {
    block
        .lines()
        .map(|l| l.split(" # ").next().unwrap().trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

/// `serve --demo` as a process in a fresh folder, once its banner is complete.
pub struct Demo {
    /// The data folder and working directory.
    pub dir: tempfile::TempDir,
    /// The hub process.
    pub child: std::process::Child,
    /// What it printed up to the sample dossier's command.
    pub banner: String,
    /// Its gRPC address.
    pub grpc: String,
    /// Its ops HTTP address.
    pub http: String,
}

impl Demo {
    /// Starts it and waits for the demo's banner.
    pub fn start() -> Demo {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("serve.out");
        let child = Command::new(BINARY)
            .args([
                "serve",
                "--demo",
                "--grpc-addr",
                "127.0.0.1:0",
                "--http-addr",
                "127.0.0.1:0",
            ])
            .current_dir(dir.path())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(dir.path().join("serve.log")).unwrap())
            .spawn()
            .expect("the hub starts");
        let mut banner = String::new();
        for _ in 0..1200 {
            banner = std::fs::read_to_string(&out).unwrap_or_default();
            if banner.contains("trainhub dossier ") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let found = |label: &str| -> String {
            let line = banner.lines().find(|l| l.trim().starts_with(label));
            let rest = line.unwrap_or_else(|| panic!("{label} in the banner:\n{banner}"));
            let rest = rest.trim()[label.len()..].trim();
            let rest = rest.split_once("://").map_or(rest, |(_, r)| r);
            rest.split(['/', ' ']).next().unwrap().to_owned()
        };
        let (grpc, http) = (found("gRPC"), found("ops HTTP"));
        Demo {
            dir,
            child,
            banner,
            grpc,
            http,
        }
    }

    /// Runs `trainhub args…` in the demo's folder.
    pub fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new(BINARY)
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap()
    }

    /// Stops the hub with SIGTERM; it must exit cleanly.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().unwrap();
        assert!(
            status.success(),
            "the hub stops cleanly on SIGTERM: {status}"
        );
    }
}

/// The `trainhub` program under test.
pub const BINARY: &str = env!("CARGO_BIN_EXE_trainhub-under-test");

#[test]
fn the_readme_quick_start_works_as_written() {
    let text = readme();
    let run = lines(&block_after(&text, "## The two commands"));
    assert_eq!(run[0], "cargo run --release -- serve --demo");
    let steps = lines(&block_after(&text, "## Quick start"));
    assert!(steps.len() >= 5, "{steps:?}");

    let demo = Demo::start();
    let (banner, grpc, http) = (demo.banner.clone(), demo.grpc.clone(), demo.http.clone());
    // The banner names the dashboard and the very command the README shows.
    assert!(
        banner.contains(&format!("demo: dashboard    http://{http}/")),
        "{banner}"
    );
    // The coverage map's URL, and persons of more than one cadre-management authority on it.
    assert!(
        banner.contains(&format!(
            "demo: coverage map http://{http}/coverage?purpose=demo"
        )),
        "{banner}"
    );
    for authority in ["js-prov", "js-nanjing", "js-suzhou"] {
        let url = format!("http://{http}/api/coverage?purpose=demo&authority={authority}");
        let out = Command::new("curl").args(["-sf", &url]).output().unwrap();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        let in_scope = report["totals"]["in_scope"].as_i64().unwrap();
        assert!(in_scope > 0, "{authority}: {report}");
    }
    let sample = banner
        .lines()
        .find(|l| l.trim().starts_with("trainhub dossier "))
        .unwrap()
        .trim();
    assert!(
        steps
            .iter()
            .any(|s| s.ends_with(sample.trim_start_matches("trainhub "))),
        "the README's sample dossier is the banner's: {sample}"
    );
    assert!(
        banner.contains("identity conflicts wait for review"),
        "{banner}"
    );

    for step in &steps {
        let step = step
            .replace("127.0.0.1:8080", &http)
            .replace("127.0.0.1:50051", &grpc);
        let mut words = shlex::split(&step).expect("quotes");
        let output = if words[0] == "curl" {
            Command::new("curl").args(&words[1..]).output().unwrap()
        } else {
            let prefix = ["cargo", "run", "--release", "--"];
            assert_eq!(words[..4], prefix, "a trainhub command: {step}");
            words.drain(..4);
            if words[0] == "status" || words[0] == "review" {
                words.extend(["--hub".into(), format!("http://{grpc}")]);
            }
            let words: Vec<&str> = words.iter().map(String::as_str).collect();
            demo.run(&words)
        };
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && !stdout.trim().is_empty(),
            "`{step}` failed: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let expect = match words.first().map(String::as_str) {
            Some("dossier") => "light",
            Some("coverage") => "unit",
            Some("dlq") => "BAD_DATE",
            Some("audit") => "cli:",
            Some("status") => "grpc/",
            Some("review") => "BIRTH_DATE_MISMATCH",
            _ => "ready",
        };
        assert!(
            stdout.contains(expect),
            "`{step}` prints {expect}: {stdout}"
        );
    }
    // The hub's log, written to a file, has no colour codes.
    let log = std::fs::read_to_string(demo.dir.path().join("serve.log")).unwrap();
    assert!(log.contains("INFO"), "{log}");
    assert!(!log.contains('\u{1b}'), "ANSI escape codes in a log file");
    demo.stop();
}

/// A command line that does not parse exits 64, never 2 or 3 (`import`'s refusal codes);
/// `--help` exits 0.
#[test]
fn a_command_line_that_does_not_parse_exits_64() {
    for args in [&["imprt"][..], &["import", "--no-such-flag"], &["dossier"]] {
        let out = Command::new(BINARY).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(64), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}: says why");
    }
    let help = Command::new(BINARY).arg("--help").output().unwrap();
    assert_eq!(help.status.code(), Some(0));
}

/// The README's LRS walkthrough against the demo: the sample's people and links, its
/// statements posted as a platform would, a statement query, and the hours in a dossier.
#[test]
fn the_readme_lrs_walkthrough_works_as_written() {
    let steps = lines(&block_after(&readme(), "## The LRS endpoint (xAPI)"));
    assert_eq!(steps.len(), 4, "{steps:?}");
    let demo = Demo::start();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut outputs = Vec::new();
    for step in &steps {
        let step = step
            .replace("127.0.0.1:8080", &demo.http)
            .replace("127.0.0.1:50051", &demo.grpc);
        let mut words = shlex::split(&step).expect("quotes");
        let output = if words[0] == "curl" {
            Command::new("curl")
                .args(&words[1..])
                .current_dir(&root)
                .output()
                .unwrap()
        } else {
            words.drain(..4);
            let mut command = Command::new(BINARY);
            command.args(&words).current_dir(demo.dir.path());
            if words[0] == "submit" {
                command.current_dir(&root);
            }
            command.output().unwrap()
        };
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success() && !stdout.trim().is_empty(),
            "`{step}` failed: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        outputs.push(stdout);
    }
    let ids: Vec<serde_json::Value> = serde_json::from_str(&outputs[1]).expect("the ids");
    assert_eq!(ids.len(), 7, "{}", outputs[1]);
    let result: serde_json::Value = serde_json::from_str(&outputs[2]).expect("a StatementResult");
    assert_eq!(
        result["statements"].as_array().unwrap().len(),
        1,
        "{result}"
    );
    assert!(result["more"]
        .as_str()
        .unwrap()
        .starts_with("/xapi/statements/more/"));
    // 90 + 120 minutes of online study at 45 minutes per 学时.
    assert!(outputs[3].contains("4.67"), "{}", outputs[3]);
    demo.stop();
}

/// The README's section for the organisation department against the demo: the map's page, the
/// exports, the annual form and the appointment form filled for a sample form's person.
#[test]
fn the_readme_organisation_section_works_as_written() {
    let steps = lines(&block_after(
        &readme(),
        "## For the organisation department",
    ));
    assert_eq!(steps.len(), 4, "{steps:?}");
    let demo = Demo::start();
    let page = Command::new("curl")
        .args([
            "-sf",
            &format!("http://{}/coverage?purpose=demo", demo.http),
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&page.stdout).contains("数字图谱"));
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut outputs = Vec::new();
    for step in &steps {
        let step = step.replace(" connectors/", &format!(" {}/connectors/", root.display()));
        let mut words = shlex::split(&step).expect("quotes");
        assert_eq!(words[..4], ["cargo", "run", "--release", "--"], "{step}");
        words.drain(..4);
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        let output = demo.run(&words);
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "`{step}` failed: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        outputs.push(stdout);
    }
    for workbook in ["coverage.xlsx", "red.xlsx"] {
        let path = demo.dir.path().join(workbook);
        let book: Result<calamine::Xlsx<_>, _> = calamine::open_workbook(&path);
        assert!(book.is_ok(), "{workbook} opens");
    }
    assert!(outputs[2].contains("中青年干部培训班"), "{}", outputs[2]);
    let filled = std::fs::read(demo.dir.path().join("filled.lrmx")).unwrap();
    let (text, _, errors) = encoding_rs::GBK.decode(&filled);
    assert!(!errors, "the form stays GB2312");
    assert!(
        text.contains("2024.03--2024.05 在江苏省委党校参加中青年干部培训班学习"),
        "{text}"
    );
    demo.stop();
}
