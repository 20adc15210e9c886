//! `trainhub import`: partners' export files through a mapping profile into the store, with
//! the same pipeline (validation, dead letters, outcomes) as every other path. Rows stream:
//! one thread reads, maps and validates batches while this task commits the previous one, so
//! memory stays flat whatever the file size. Re-running is safe: the records keep their ids
//! and versions, so a second run finds them all `DUPLICATE`.

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
use trainhub_pipeline::PreparedBatch;
use trainhub_pipeline::{Inbound, Outcome, Pipeline};

/// Where each record of a batch came from: file and row.
struct Origin {
    file: usize,
    row: u64,
}

/// What the reading thread hands over: a prepared batch, where its records came from, and the
/// bytes read so far.
struct Work {
    batch: PreparedBatch,
    origins: Vec<Origin>,
    rows: u64,
    bytes: u64,
}

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
                    "{}: the header lacks required column(s) {} of profile {}",
                    path.display(),
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
            (send(hub, args, &files).await?, None)
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

/// Imports `files` as `system` through `profile` in batches of `batch` records; rejected
/// records are listed in a CSV report at `rejects` (written only when there are any).
pub async fn import(
    pipeline: &Pipeline,
    profile: &Profile,
    system: &str,
    files: &[(PathBuf, FileFormat)],
    batch: usize,
    rejects: &Path,
) -> Result<Summary> {
    let total: u64 = files
        .iter()
        .map(|(p, _)| std::fs::metadata(p).map_or(0, |m| m.len()))
        .sum();
    let bar = progress_bar(total);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Work>>(2);
    let reader = {
        let (pipeline, profile, system) = (pipeline.clone(), profile.clone(), system.to_owned());
        let files = files.to_vec();
        std::thread::spawn(move || read_all(&pipeline, &profile, &system, &files, batch, &tx))
    };
    let connector = format!("import/{system}");
    let mut summary = Summary::default();
    let mut report: Option<csv::Writer<std::fs::File>> = None;
    while let Some(work) = rx.recv().await {
        let work = work?;
        let outcomes = pipeline.commit(&connector, work.batch).await?;
        for (outcome, origin) in outcomes.iter().zip(&work.origins) {
            summary.add(outcome);
            if let Some(r) = &outcome.rejection {
                if report.is_none() {
                    let mut w = csv::Writer::from_path(rejects)
                        .with_context(|| format!("creating {}", rejects.display()))?;
                    w.write_record([
                        "file",
                        "row",
                        "kind",
                        "record_id",
                        "field",
                        "reason",
                        "stage",
                        "message",
                    ])?;
                    report = Some(w);
                }
                let w = report.as_mut().expect("created");
                w.write_record([
                    files[origin.file].0.display().to_string(),
                    origin.row.to_string(),
                    outcome.kind.clone(),
                    outcome.record_id.clone(),
                    r.field.clone(),
                    r.code.as_str().to_owned(),
                    r.stage.as_str().to_owned(),
                    r.message.clone(),
                ])?;
            }
        }
        summary.rows = work.rows;
        bar.set_position(work.bytes);
        bar.set_message(format!("{} rows", work.rows));
    }
    reader
        .join()
        .map_err(|_| anyhow::anyhow!("the file reader panicked"))?;
    if let Some(mut w) = report {
        w.flush()?;
    }
    bar.finish_and_clear();
    Ok(summary)
}

/// `--hub`: the rows go to a running hub's `SubmitNative`, `batch` rows per call (a document
/// per call for LRMX), re-encoded as CSV (tables) or JSON lines (JSON); rejected records are
/// listed on stderr with their row.
async fn send(hub: &str, args: &ImportArgs, files: &[(PathBuf, FileFormat)]) -> Result<Summary> {
    use trainhub_proto::v1 as pb;
    let mut client = pb::ingest_service_client::IngestServiceClient::connect(hub.to_owned())
        .await
        .with_context(|| format!("connecting to {hub}"))?
        .max_encoding_message_size(64 << 20);
    let total: u64 = files
        .iter()
        .map(|(p, _)| std::fs::metadata(p).map_or(0, |m| m.len()))
        .sum();
    let bar = progress_bar(total);
    let mut summary = Summary::default();
    let mut done_bytes = 0;
    for (path, format) in files {
        let mut rows = Rows::open(path, *format)?;
        let (content_type, header) = match format {
            FileFormat::Csv | FileFormat::Xlsx => ("text/csv", true),
            FileFormat::Json | FileFormat::JsonLines => ("application/x-ndjson", false),
            FileFormat::Lrmx => ("application/xml", false),
        };
        let per_call = if *format == FileFormat::Lrmx {
            1
        } else {
            args.batch as usize
        };
        loop {
            let (payload, numbers) = next_call(&mut rows, per_call, header, *format)?;
            if numbers.is_empty() {
                break;
            }
            summary.rows += numbers.len() as u64;
            let request = crate::status_cmd::with_token(
                pb::NativeBatch {
                    system: args.system.clone(),
                    profile: args.profile.clone(),
                    content_type: content_type.into(),
                    payload,
                },
                args.token.as_deref(),
            )?;
            let outcomes = client
                .submit_native(request)
                .await
                .with_context(|| {
                    format!(
                        "{}: rows {}–{}",
                        path.display(),
                        numbers[0],
                        numbers[numbers.len() - 1]
                    )
                })?
                .into_inner()
                .outcomes;
            tally_call(&mut summary, &outcomes, path, &numbers, &bar);
            bar.set_position(done_bytes + rows.position());
            bar.set_message(format!("{} rows", summary.rows));
        }
        done_bytes += std::fs::metadata(path).map_or(0, |m| m.len());
    }
    bar.finish_and_clear();
    Ok(summary)
}

/// The next call's payload (at most `per_call` rows, one header for a table) and the rows'
/// numbers; no numbers when the file is done.
fn next_call(
    rows: &mut Rows,
    per_call: usize,
    header: bool,
    format: FileFormat,
) -> Result<(Vec<u8>, Vec<u64>)> {
    let mut payload = Vec::new();
    let mut numbers = Vec::new();
    for row in rows.by_ref().take(per_call) {
        let row = row?;
        // A table row's bytes are the header line and the row: one header per call.
        let bytes = if header && !payload.is_empty() {
            let cut = row
                .payload
                .iter()
                .position(|b| *b == b'\n')
                .map_or(0, |i| i + 1);
            row.payload[cut..].to_vec()
        } else {
            row.payload
        };
        payload.extend(bytes);
        if !header && format != FileFormat::Lrmx {
            payload.push(b'\n');
        }
        numbers.push(row.number);
    }
    Ok((payload, numbers))
}

/// Counts a call's outcomes (the call sent rows `numbers` of `path`); rejected records are
/// listed on stderr with their row.
fn tally_call(
    summary: &mut Summary,
    outcomes: &[trainhub_proto::v1::RecordOutcome],
    path: &Path,
    numbers: &[u64],
    bar: &indicatif::ProgressBar,
) {
    use trainhub_proto::v1 as pb;
    // One record per row (the usual case) names the row; otherwise the call's rows.
    let one_to_one = outcomes.len() == numbers.len();
    for (i, o) in outcomes.iter().enumerate() {
        let status = match o.status() {
            pb::RecordStatus::Accepted => OutcomeStatus::Accepted,
            pb::RecordStatus::Duplicate => OutcomeStatus::Duplicate,
            pb::RecordStatus::Superseded => OutcomeStatus::Superseded,
            pb::RecordStatus::Parked => OutcomeStatus::Parked,
            _ => OutcomeStatus::Rejected,
        };
        let rejected = status == OutcomeStatus::Rejected;
        summary.tally(status, rejected.then_some(o.reason_code.as_str()));
        if rejected {
            let rows = if one_to_one {
                format!("row {}", numbers[i])
            } else {
                format!("rows {}–{}", numbers[0], numbers[numbers.len() - 1])
            };
            bar.suspend(|| eprintln!("{} {rows}: {} {}", path.display(), o.reason_code, o.message));
        }
    }
}

/// The reading thread: rows → profile → validated batches, sent to the committer.
fn read_all(
    pipeline: &Pipeline,
    profile: &Profile,
    system: &str,
    files: &[(PathBuf, FileFormat)],
    batch: usize,
    tx: &tokio::sync::mpsc::Sender<Result<Work>>,
) {
    let mut done_bytes = 0;
    let mut rows_read = 0;
    let mut items = Vec::with_capacity(batch);
    let mut origins = Vec::with_capacity(batch);
    let send = |items: &mut Vec<Inbound>, origins: &mut Vec<Origin>, rows, bytes| {
        let batch = pipeline.prepare_inbound(system, std::mem::take(items));
        tx.blocking_send(Ok(Work {
            batch,
            origins: std::mem::take(origins),
            rows,
            bytes,
        }))
        .is_ok()
    };
    for (index, (path, format)) in files.iter().enumerate() {
        let mut rows = match Rows::open(path, *format) {
            Ok(rows) => rows,
            Err(e) => {
                let _ = tx.blocking_send(Err(e.into()));
                return;
            }
        };
        let headers = |row: u64| {
            serde_json::json!({ "file": path.display().to_string(), "row": row }).to_string()
        };
        while let Some(row) = rows.next() {
            let row = match row {
                Ok(row) => row,
                Err(e) => {
                    let _ = tx.blocking_send(Err(e.into()));
                    return;
                }
            };
            rows_read += 1;
            let mapped = trainhub_connectors::native::inbound_of_row(
                profile,
                system,
                pipeline.keyer(),
                *format,
                &row,
                &headers(row.number),
            );
            origins.extend(mapped.iter().map(|_| Origin {
                file: index,
                row: row.number,
            }));
            items.extend(mapped);
            if items.len() >= batch
                && !send(
                    &mut items,
                    &mut origins,
                    rows_read,
                    done_bytes + rows.position(),
                )
            {
                return;
            }
        }
        done_bytes += std::fs::metadata(path).map_or(0, |m| m.len());
    }
    if !items.is_empty() {
        send(&mut items, &mut origins, rows_read, done_bytes);
    }
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
        "imported {} file(s), {} rows, as system {system} with profile {} in {:.1} s ({:.0} rows/s)",
        files.len(),
        summary.rows,
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
