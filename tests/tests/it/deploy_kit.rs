//! `deploy/validate.sh` passes on the shipped kit and fails on a kit whose hub could run open,
//! that publishes a service without TLS, or that writes a credential into its files (issue 17).
//! Each case is a copy of `deploy/` with one change.

use std::path::{Path, PathBuf};
use std::process::Command;

fn kit() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// Copies the kit (without its generated secrets) into `to`.
fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            if entry.file_name() != "secrets" {
                copy(&entry.path(), &target);
            }
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Runs validate.sh on `dir`: its success and what it printed.
fn validate(dir: &Path) -> (bool, String) {
    let out = Command::new("bash")
        .arg(kit().join("validate.sh"))
        .arg(dir)
        .output()
        .expect("bash runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A copy of the kit with `file`'s `from` replaced by `to` (`CUT`: the file ends before `from`).
fn changed(root: &Path, case: &str, file: &str, from: &str, to: &str) -> PathBuf {
    // deploy/ inside a folder of its own: the compose file builds from `..`.
    let dir = root.join(case).join("deploy");
    copy(&kit(), &dir);
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{case}: {file} holds {from:?}");
    let text = match to {
        CUT => text[..text.find(from).unwrap()].to_owned(),
        _ => text.replacen(from, to, 1),
    };
    std::fs::write(&path, text).unwrap();
    dir
}

const CUT: &str = "<cut here>";

fn tools_present() -> bool {
    let present = ["check-jsonschema", "kubernetes-validate"]
        .iter()
        .all(|tool| {
            Command::new(tool)
                .arg("--help")
                .output()
                .is_ok_and(|o| o.status.success())
        });
    if !present {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI needs check-jsonschema and kubernetes-validate (pip install …)"
        );
        eprintln!("skipped: pip install check-jsonschema kubernetes-validate to run it");
    }
    present
}

#[test]
fn validate_passes_the_shipped_kit_and_fails_open_ones() {
    if !tools_present() {
        return;
    }
    let (ok, text) = validate(&kit());
    assert!(ok, "the shipped kit validates: {text}");
    let root = tempfile::tempdir().unwrap();
    let cases = [
        // The hubs' principals removed: every compose hub could run open.
        (
            "compose-open",
            "config/trainhub.toml",
            "# Who may call the hubs.",
            CUT,
            "compose.yaml hub-1: the hub has no partners or readers",
        ),
        (
            "k8s-open",
            "k8s/configmap.yaml",
            "    # Every call needs one of these tokens",
            CUT,
            "Deployment trainhub: the hub has no partners or readers",
        ),
        (
            "grafana-anonymous",
            "compose.yaml",
            "GF_AUTH_ANONYMOUS_ENABLED: \"false\"",
            "GF_AUTH_ANONYMOUS_ENABLED: \"true\"",
            "Grafana lets anonymous users in",
        ),
        (
            "broker-published",
            "compose.yaml",
            "    hostname: rabbitmq-1\n",
            "    hostname: rabbitmq-1\n    ports:\n      - \"5672:5672\"\n",
            "rabbitmq-1: port 5672 is published",
        ),
        (
            "envoy-without-tls",
            "envoy/envoy.yaml",
            "DownstreamTlsContext",
            "UpstreamTlsContext",
            "lb: port 50051 is published beyond the host's loopback without TLS",
        ),
        (
            "password-in-config",
            "config/trainhub.toml",
            "trainhub:${BROKER_PASSWORD}@rabbitmq-1",
            "trainhub:trainhub@rabbitmq-1",
            "events.url: a URL carries a password",
        ),
        (
            "password-in-compose",
            "compose.yaml",
            "POSTGRES_PASSWORD_FILE: /run/secrets/pg_password",
            "POSTGRES_PASSWORD: trainhub",
            "POSTGRES_PASSWORD is written into the kit",
        ),
        (
            "token-not-mounted",
            "compose.yaml",
            "    - token_ops\n  depends_on:",
            "  depends_on:",
            "`ops`: token_file /run/secrets/token_ops is not mounted",
        ),
    ];
    for (case, file, from, to, expected) in cases {
        let dir = changed(root.path(), case, file, from, to);
        let (ok, text) = validate(&dir);
        assert!(!ok, "{case}: validate.sh fails: {text}");
        assert!(
            text.contains(expected),
            "{case}: names {expected:?}: {text}"
        );
    }
}
