//! `--hub`: the rows through a running hub's `SubmitNative`, re-encoded per call.

use super::{progress_bar, Summary};
use crate::cli::ImportArgs;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use trainhub_connectors::files::{FileFormat, Rows};
use trainhub_model::merge::OutcomeStatus;

/// `--hub`: the rows go to a running hub's `SubmitNative`, `batch` rows per call (a document
/// per call for LRMX), re-encoded as CSV (tables) or JSON lines (JSON); rejected records are
/// listed on stderr with their row.
pub(super) async fn send(
    hub: &str,
    args: &ImportArgs,
    files: &[(PathBuf, FileFormat)],
) -> Result<Summary> {
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
            let request = crate::remote::with_token(
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
                .map_err(crate::remote::refused)
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
