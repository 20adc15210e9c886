//! The docs test (issue 20): every page of the README, `docs/` and `deploy/README.md` is
//! checked — relative links and their anchors resolve, files named in backticks exist, every
//! TOML block parses (configurations load through the hub's own loader), every `trainhub`
//! command line parses with the hub's own CLI, the reference lists every reason code and
//! metric the code has, and the README stays under 200 lines.

use clap::Parser;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

/// Every documentation page, relative to the repository root.
fn pages() -> Vec<PathBuf> {
    let mut out = vec![
        PathBuf::from("README.md"),
        PathBuf::from("deploy/README.md"),
    ];
    let mut dirs = vec![root().join("docs")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path.strip_prefix(root()).unwrap().to_owned());
            }
        }
    }
    out.sort();
    out
}

/// The fenced blocks of a page: (language, text).
fn blocks(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        if let Some(lang) = line.trim_start().strip_prefix("```") {
            match current.take() {
                Some(block) => out.push(block),
                None => current = Some((lang.trim().to_owned(), String::new())),
            }
        } else if let Some((_, body)) = current.as_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    out
}

/// GitHub's anchor for a heading.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| slug(l.trim_start_matches('#')))
        .collect()
}

/// Text outside fenced blocks.
fn prose(text: &str) -> String {
    let mut inside = false;
    let mut out = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            inside = !inside;
        } else if !inside {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[test]
fn links_and_file_references_resolve() {
    let (mut broken, mut links, mut files) = (Vec::new(), 0, 0);
    for page in pages() {
        let text = std::fs::read_to_string(root().join(&page)).unwrap();
        let dir = root().join(&page).parent().unwrap().to_owned();
        let body = prose(&text);
        for (at, _) in body.match_indices("](") {
            let target: String = body[at + 2..].chars().take_while(|c| *c != ')').collect();
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (file, anchor) = target.split_once('#').unwrap_or((&target, ""));
            let path = if file.is_empty() {
                root().join(&page)
            } else {
                dir.join(file)
            };
            links += 1;
            if !path.exists() {
                broken.push(format!("{}: link {target}", page.display()));
            } else if !anchor.is_empty()
                && !anchors(&std::fs::read_to_string(&path).unwrap()).contains(anchor)
            {
                broken.push(format!("{}: anchor {target}", page.display()));
            }
        }
        // `services/…`, `connectors/…` and the like, named in the prose, exist.
        for piece in body.split('`').skip(1).step_by(2) {
            let top = [
                "services/",
                "connectors/",
                "tests/",
                "deploy/",
                "docs/",
                "proto/",
                ".ci/",
            ];
            if !top.iter().any(|t| piece.starts_with(t)) || piece.contains(['<', '*', ' ', '…']) {
                continue;
            }
            let named = piece.split(['#', ':']).next().unwrap();
            files += 1;
            if !root().join(named).exists() {
                broken.push(format!("{}: file `{piece}`", page.display()));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "broken references:\n{}",
        broken.join("\n")
    );
    assert!(
        links >= 25 && files >= 25,
        "{links} links, {files} files checked"
    );
}

/// Top-level keys of the hub's configuration.
const CONFIG_SECTIONS: &[&str] = &[
    "server",
    "store",
    "policy",
    "identity",
    "events",
    "connectors",
    "partners",
    "readers",
    "limits",
    "telemetry",
];

#[test]
fn toml_blocks_parse_and_configurations_load() {
    let mut checked = 0;
    for page in pages() {
        let text = std::fs::read_to_string(root().join(&page)).unwrap();
        for (lang, body) in blocks(&text) {
            if lang != "toml" {
                continue;
            }
            let table: toml::Table = toml::from_str(&body).unwrap_or_else(|e| {
                panic!(
                    "{}: a TOML block does not parse: {e}\n{body}",
                    page.display()
                )
            });
            checked += 1;
            let is_config = table.keys().all(|k| CONFIG_SECTIONS.contains(&k.as_str()));
            // Blocks with an elided value (`"5d41…"`) show a shape, not a file to use.
            if !is_config || body.contains('…') {
                continue;
            }
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("trainhub.toml");
            std::fs::write(&file, &body).unwrap();
            let env = [("BROKER_PASSWORD".to_owned(), "secret".to_owned())];
            trainhub::config::Config::load(Some(&file), env.into_iter()).unwrap_or_else(|e| {
                panic!(
                    "{}: a configuration block does not load: {e:#}\n{body}",
                    page.display()
                )
            });
        }
    }
    assert!(checked >= 8, "{checked} TOML blocks");
}

/// Every `trainhub …` (or `cargo run --release -- …`) line of a shell block, as arguments.
fn command_lines(body: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut pending = String::new();
    for line in body.lines() {
        let line = line.split(" # ").next().unwrap().trim_end();
        if let Some(start) = line.strip_suffix('\\') {
            pending.push_str(start);
            continue;
        }
        let full = std::mem::take(&mut pending) + line;
        let command = full
            .trim()
            .strip_prefix("cargo run --release -- ")
            .or_else(|| full.trim().strip_prefix("trainhub "));
        if let Some(args) = command {
            let mut words = shlex::split(args).unwrap_or_else(|| panic!("quotes: {full}"));
            words.insert(0, "trainhub".into());
            out.push(words);
        }
    }
    out
}

#[test]
fn every_documented_command_line_parses() {
    let mut checked = 0;
    for page in pages() {
        let text = std::fs::read_to_string(root().join(&page)).unwrap();
        for (lang, body) in blocks(&text) {
            if lang != "sh" {
                continue;
            }
            for words in command_lines(&body) {
                // `…` stands for a value the reader supplies.
                let words: Vec<String> = words.iter().map(|w| w.replace('…', "x")).collect();
                if let Err(e) = trainhub::cli::Cli::try_parse_from(&words) {
                    panic!(
                        "{}: `{}` does not parse:\n{e}",
                        page.display(),
                        words.join(" ")
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 15, "{checked} command lines");
}

#[test]
fn the_reference_lists_every_reason_code_and_metric() {
    let read = |p: &str| std::fs::read_to_string(root().join(p)).unwrap();
    let reasons = read("docs/reference/reason-codes.md");
    let error_rs = read("services/model/src/error.rs");
    let codes: Vec<&str> = error_rs
        .lines()
        .filter_map(|l| l.trim().strip_prefix("ReasonCode::"))
        .filter_map(|l| l.split('"').nth(1))
        .collect();
    assert!(codes.len() >= 10, "{codes:?}");
    for code in codes {
        assert!(
            reasons.contains(&format!("`{code}`")),
            "reason-codes.md lacks {code}"
        );
    }
    let metrics = read("docs/reference/metrics.md");
    let mut names = BTreeSet::new();
    for file in [
        "services/hub/src/health/metrics.rs",
        "services/hub/src/health/mod.rs",
    ] {
        let text = read(file);
        for (at, _) in text.match_indices("\"trainhub_") {
            let name: String = text[at + 1..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            names.insert(name);
        }
    }
    assert!(names.len() >= 10, "{names:?}");
    for name in names {
        assert!(metrics.contains(&name), "metrics.md lacks {name}");
    }
}

#[test]
fn the_readme_is_a_front_door() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(lines < 200, "README.md has {lines} lines");
    for guide in ["operators.md", "partners.md", "ops.md", "organisation.md"] {
        assert!(
            readme.contains(&format!("docs/{guide}")),
            "README links {guide}"
        );
    }
    assert!(
        !readme.contains("../shared"),
        "the README points outside the repository"
    );
}
