//! `trainhub import`: partners' export files through a mapping profile into the store, with
//! the same pipeline (validation, dead letters, outcomes) as every other path. Rows stream:
//! one thread reads, maps and validates batches while this task commits the previous one, so
//! memory stays flat whatever the file size. Re-running is safe: the records keep their ids
//! and versions, so a second run finds them all `DUPLICATE`.
//!
//! Layout: this module (the command, the summary, progress), `store` (into the store:
//! reading thread and committer), `hub` (`--hub`: through a running hub's `SubmitNative`).

mod hub;
mod store;

pub use store::import;

use crate::cli::ImportArgs;
use crate::config::Config;
use crate::startup::open_pipeline;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;
use trainhub_connectors::files::{FileFormat, Rows};
use trainhub_connectors::profile::Profile;
use trainhub_model::merge::OutcomeStatus;
use trainhub_pipeline::Outcome;

/// Counts by outcome, and rejections by reason.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Source rows read.
    pub rows: u64,
    /// Records the rows mapped to, by outcome (`accepted`, …).
    pub outcomes: BTreeMap<&'static str, u64>,
    /// Rejected records by reason code.
    pub rejected: BTreeMap<String, u64>,
}

impl Summary {
    fn add(&mut self, outcome: &Outcome) {
        let reason = outcome.rejection.as_ref().map(|r| r.code.as_str());
        self.tally(outcome.status, reason);
    }

    /// Counts one record's outcome, and its rejection reason if it has one.
    fn tally(&mut self, status: OutcomeStatus, reason: Option<&str>) {
        *self.outcomes.entry(status.as_str()).or_default() += 1;
        if let Some(code) = reason {
            *self.rejected.entry(code.to_owned()).or_default() += 1;
        }
    }

    /// Records with outcome `status` (`accepted`, `duplicate`, …).
    pub fn count(&self, status: &str) -> u64 {
        self.outcomes.get(status).copied().unwrap_or(0)
    }
}

/// The files to read: each argument, and the supported files inside a folder argument.
fn expand(files: &[PathBuf]) -> Result<Vec<(PathBuf, FileFormat)>> {
    let mut out = Vec::new();
    for path in files {
        if path.is_dir() {
            // Reports of earlier runs are not input.
            let mut inside: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("reading folder {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && FileFormat::of(p).is_some())
                .filter(|p| !p.to_string_lossy().ends_with(".rejects.csv"))
                .collect();
            inside.sort();
            if inside.is_empty() {
                bail!(
                    "{}: no .csv, .jsonl or .lrmx files in the folder",
                    path.display()
                );
            }
            let mut kinds: Vec<&str> = inside
                .iter()
                .filter_map(|p| FileFormat::of(p).map(FileFormat::as_str))
                .collect();
            kinds.sort_unstable();
            kinds.dedup();
            if kinds.len() > 1 {
                bail!(
                    "{}: the folder mixes {} files; one profile reads one format, so name the \
                     files to import",
                    path.display(),
                    kinds.join(" and ")
                );
            }
            out.extend(inside.into_iter().map(|p| {
                let f = FileFormat::of(&p).expect("filtered");
                (p, f)
            }));
        } else {
            let format = FileFormat::of(path).with_context(|| {
                format!(
                    "{}: unsupported file type; import reads .csv, .xlsx, .json, .jsonl (JSON lines) and .lrmx",
                    path.display()
                )
            })?;
            if !path.is_file() {
                bail!("{}: no such file", path.display());
            }
            out.push((path.clone(), format));
        }
    }
    Ok(out)
}

/// Runs `trainhub import`.
pub async fn run(config: &Config, args: &ImportArgs) -> Result<()> {
    let profile = Profile::resolve(&args.profile).map_err(|e| anyhow::anyhow!("profile {e}"))?;
    let files = expand(&args.files)?;
    // Check every header before anything is written: a file without a required column maps
    // no row at all.
    for (path, format) in &files {
        let rows = Rows::open(path, *format)?;
        if let Some(encoding) = rows.transcoded_from {
            eprintln!("{}: not UTF-8; read as {encoding}", path.display());
        }
        if *format == FileFormat::Csv {
            let columns = rows.columns();
            let missing: Vec<String> = profile
                .required_paths()
                .into_iter()
                .filter(|(col, _)| !columns.contains(col))
                .map(|(col, field)| format!("{col} ({field})"))
                .collect();
            if !missing.is_empty() {
                bail!(
                    "{}: the header lacks the required {} {} of profile {}",
                    path.display(),
                    if missing.len() == 1 {
                        "column"
                    } else {
                        "columns"
                    },
                    missing.join(", "),
                    profile.id()
                );
            }
        }
    }
    let mut started = Instant::now();
    let (summary, rejects) = match &args.hub {
        Some(hub) => {
            if trainhub_connectors::native::shipped(&args.profile).is_none() {
                bail!(
                    "--hub: the hub maps with the profiles it ships ({}); `{}` is not one of \
                     them (a profile file works without --hub)",
                    trainhub_connectors::native::shipped_names().join(", "),
                    args.profile
                );
            }
            (hub::send(hub, args, &files).await?, None)
        }
        None => {
            let pipeline = open_pipeline(config, true).await?;
            started = Instant::now();
            // By default in the current folder, named after the first argument (never inside
            // a folder being imported, where a later run would take it for input).
            let rejects = args.rejects.clone().unwrap_or_else(|| {
                let first = args.files[0]
                    .file_name()
                    .map_or("import".into(), |n| n.to_string_lossy().into_owned());
                PathBuf::from(format!("{first}.rejects.csv"))
            });
            let summary = import(
                &pipeline,
                &profile,
                &args.system,
                &files,
                args.batch as usize,
                &rejects,
            )
            .await?;
            pipeline.store().close().await;
            (summary, Some(rejects))
        }
    };
    print_summary(
        &summary,
        &profile,
        &args.system,
        &files,
        started.elapsed(),
        rejects.as_deref(),
    );
    let refused = summary.count("rejected");
    if refused > 0 {
        // A scheduled import must be able to tell: a distinct exit code, the rest stored.
        return Err(crate::run::Refused {
            refused,
            records: summary.outcomes.values().sum(),
        }
        .into());
    }
    Ok(())
}

fn progress_bar(total: u64) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} · {msg}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar
}

fn print_summary(
    summary: &Summary,
    profile: &Profile,
    system: &str,
    files: &[(PathBuf, FileFormat)],
    took: std::time::Duration,
    rejects: Option<&Path>,
) {
    let secs = took.as_secs_f64().max(1e-3);
    println!(
        "imported {}, {}, as system {system} with profile {} in {:.1} s ({:.0} rows/s)",
        crate::plural(files.len(), "file", "files"),
        crate::plural(summary.rows as usize, "row", "rows"),
        profile.id(),
        secs,
        summary.rows as f64 / secs
    );
    for status in [
        OutcomeStatus::Accepted,
        OutcomeStatus::Duplicate,
        OutcomeStatus::Superseded,
        OutcomeStatus::Parked,
        OutcomeStatus::Rejected,
    ] {
        println!(
            "  {:<11} {:>10}",
            status.as_str(),
            summary.count(status.as_str())
        );
    }
    for (reason, n) in &summary.rejected {
        println!("    {reason:<24} {n:>7}");
    }
    if summary.count("rejected") > 0 {
        match rejects {
            Some(path) => println!("rejected rows: {}", path.display()),
            None => println!("rejected rows are listed above"),
        }
    }
    let _ = std::io::stdout().flush();
}
