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

#[test]
fn the_readme_quick_start_works_as_written() {
    let text = readme();
    let run = lines(&block_after(&text, "## The two commands"));
    assert_eq!(run[0], "cargo run --release -- serve --demo");
    let steps = lines(&block_after(&text, "## Quick start"));
    assert!(steps.len() >= 5, "{steps:?}");

    let dir = tempfile::tempdir().unwrap();
    let binary = env!("CARGO_BIN_EXE_trainhub-under-test");
    let out = dir.path().join("serve.out");
    let mut hub = Command::new(binary)
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
    // The banner names the dashboard and the very command the README shows.
    assert!(
        banner.contains(&format!("demo: dashboard    http://{http}/")),
        "{banner}"
    );
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
            if words[0] == "status" {
                words.extend(["--hub".into(), format!("http://{grpc}")]);
            }
            Command::new(binary)
                .args(&words)
                .current_dir(dir.path())
                .output()
                .unwrap()
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
            _ => "ready",
        };
        assert!(
            stdout.contains(expect),
            "`{step}` prints {expect}: {stdout}"
        );
    }
    let _ = Command::new("kill")
        .args(["-TERM", &hub.id().to_string()])
        .status();
    let status = hub.wait().unwrap();
    assert!(
        status.success(),
        "the hub stops cleanly on SIGTERM: {status}"
    );
}
