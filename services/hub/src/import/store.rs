//! Into the store: one thread reads, maps and validates batches while this task commits the
//! previous ones, up to three at once; rejected rows go to the rejects report.

use super::{progress_bar, Summary};
use anyhow::{Context, Result};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use trainhub_connectors::files::{FileFormat, Rows};
use trainhub_connectors::profile::Profile;
use trainhub_pipeline::PreparedBatch;
use trainhub_pipeline::{Inbound, OrderedCommits, Pipeline};

/// Where each record of a batch came from: file and row.
struct Origin {
    file: usize,
    row: u64,
}

/// Batches of an import committing at once (see [`OrderedCommits`]).
const COMMITS: usize = trainhub_pipeline::ordered::AT_ONCE;

/// Where a batch's records came from and how far the reading got: kept while it commits.
struct Read {
    origins: Vec<Origin>,
    rows: u64,
    bytes: u64,
}

/// What the reading thread hands over: a prepared batch, where its records came from, and the
/// bytes read so far.
struct Work {
    batch: PreparedBatch,
    read: Read,
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
    let mut report = Report {
        path: rejects,
        writer: None,
    };
    // Several batches commit at once, accounted for in reading order.
    let mut commits = OrderedCommits::new(pipeline.clone(), connector, COMMITS);
    let mut waiting: VecDeque<Read> = VecDeque::new();
    let mut reading = true;
    while reading || !commits.is_empty() {
        if reading && commits.has_room() {
            match rx.recv().await {
                Some(work) => {
                    let work = work?;
                    commits.start(work.batch);
                    waiting.push_back(work.read);
                    continue;
                }
                None => reading = false,
            }
        }
        let Some(outcomes) = commits.next().await else {
            continue;
        };
        let outcomes = outcomes?;
        let read = waiting.pop_front().expect("one per batch started");
        for (outcome, origin) in outcomes.iter().zip(&read.origins) {
            summary.add(outcome);
            if let Some(r) = &outcome.rejection {
                report.add(&files[origin.file].0, origin.row, outcome, r)?;
            }
        }
        summary.rows = read.rows;
        bar.set_position(read.bytes);
        bar.set_message(format!("{} rows", read.rows));
    }
    reader
        .join()
        .map_err(|_| anyhow::anyhow!("the file reader panicked"))?;
    if let Some(mut w) = report.writer {
        w.flush()?;
    }
    bar.finish_and_clear();
    Ok(summary)
}

/// The rejects report, created with the first rejected row.
struct Report<'a> {
    path: &'a Path,
    writer: Option<csv::Writer<std::fs::File>>,
}

impl Report<'_> {
    fn add(
        &mut self,
        file: &Path,
        row: u64,
        outcome: &trainhub_pipeline::Outcome,
        r: &trainhub_model::Rejection,
    ) -> Result<()> {
        if self.writer.is_none() {
            let mut w = csv::Writer::from_path(self.path)
                .with_context(|| format!("creating {}", self.path.display()))?;
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
            self.writer = Some(w);
        }
        let w = self.writer.as_mut().expect("created");
        w.write_record([
            file.display().to_string(),
            row.to_string(),
            outcome.kind.clone(),
            outcome.record_id.clone(),
            r.field.clone(),
            r.code.as_str().to_owned(),
            r.stage.as_str().to_owned(),
            r.message.clone(),
        ])?;
        Ok(())
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
            read: Read {
                origins: std::mem::take(origins),
                rows,
                bytes,
            },
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
