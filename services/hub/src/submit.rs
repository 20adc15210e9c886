//! `trainhub submit FILE.json`: canonical records from a JSON file to a running hub's
//! `IngestService.Submit`, as a partner would send them — for trying the hub without a gRPC
//! client. The file holds one record, an array of them, or `{"records": [...]}`; each record
//! is the proto3 JSON mapping with the `.proto` field names (docs/reference/records.md).

use crate::cli::SubmitArgs;
use crate::config::Config;
use crate::remote::refused;
use crate::run::Refused;
use anyhow::{Context, Result};
use trainhub_proto::v1 as pb;
use trainhub_proto::Format;

/// Records per `Submit` call.
const BATCH: usize = 1000;

/// Reads the file, submits it and prints one line per record that was not simply accepted.
pub async fn run(config: &Config, args: &SubmitArgs) -> Result<()> {
    let records = read(&args.file)?;
    let mut client =
        pb::ingest_service_client::IngestServiceClient::new(args.hub.connect(config).await?);
    let (mut counts, mut refused_n) = (std::collections::BTreeMap::new(), 0u64);
    for (batch_no, batch) in records.chunks(BATCH).enumerate() {
        let answer = client
            .submit(args.hub.request(pb::SubmitRequest {
                records: batch.to_vec(),
            })?)
            .await
            .map_err(refused)?
            .into_inner();
        for (i, o) in answer.outcomes.iter().enumerate() {
            let status = o
                .status()
                .as_str_name()
                .trim_start_matches("RECORD_STATUS_");
            *counts.entry(status.to_owned()).or_insert(0u64) += 1;
            if o.status() == pb::RecordStatus::Rejected {
                refused_n += 1;
            }
            if o.status() != pb::RecordStatus::Accepted {
                let source = batch[i].source.clone().unwrap_or_default();
                println!(
                    "record {} ({}/{}/{}): {status} {} {}",
                    batch_no * BATCH + i + 1,
                    source.system,
                    source.kind,
                    source.record_id,
                    o.reason_code,
                    o.message
                );
            }
        }
    }
    let summary: Vec<String> = counts.iter().map(|(s, n)| format!("{s} {n}")).collect();
    println!(
        "{} submitted to {}: {}",
        crate::plural(records.len(), "record", "records"),
        args.hub.url(config),
        summary.join(", ")
    );
    if refused_n > 0 {
        return Err(Refused {
            refused: refused_n,
            records: records.len() as u64,
        }
        .into());
    }
    Ok(())
}

/// The records of a JSON file: one, an array, or `{"records": [...]}`; a record that does not
/// decode is an error naming its position and the reason.
pub fn read(path: &std::path::Path) -> Result<Vec<pb::Record>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not JSON", path.display()))?;
    let items = match value {
        serde_json::Value::Array(items) => items,
        serde_json::Value::Object(mut o) if o.contains_key("records") => {
            match o.remove("records") {
                Some(serde_json::Value::Array(items)) => items,
                _ => anyhow::bail!("{}: `records` must be an array", path.display()),
            }
        }
        one => vec![one],
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            Format::Json
                .decode(item.to_string().as_bytes())
                .map_err(|e| anyhow::anyhow!("{} record {}: {e}", path.display(), i + 1))
        })
        .collect()
}
