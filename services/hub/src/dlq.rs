//! `trainhub dlq list|replay`: the dead letters of the store the config names, with or
//! without a running hub.

use crate::cli::{DlqListArgs, DlqReplayArgs, LetterArgs, OutputFormat};
use crate::config::Config;
use crate::startup::open_pipeline;
use anyhow::Result;
use std::collections::BTreeMap;
use std::fmt::Write;
use trainhub_store::read::{DeadLetter, LetterFilter};

fn filter(args: &LetterArgs, ids: Vec<i64>, include_replayed: bool) -> LetterFilter {
    LetterFilter {
        ids,
        connector: args.connector.clone().unwrap_or_default(),
        reason_code: args.reason.clone().unwrap_or_default(),
        include_replayed,
    }
}

/// The payload for a person to read: a protobuf record as its JSON form, text as it is, and
/// anything else (bytes that are not text, or text with control characters) as hex.
fn payload_text(l: &DeadLetter) -> (String, &'static str) {
    use trainhub_proto::Format;
    if l.format == Format::Protobuf.as_str() {
        if let Ok(record) = Format::Protobuf.decode(&l.payload) {
            let json = String::from_utf8_lossy(&trainhub_proto::encode_json(&record)).into_owned();
            return (json, "protobuf, shown as JSON");
        }
    }
    match std::str::from_utf8(&l.payload) {
        Ok(s)
            if !s
                .chars()
                .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) =>
        {
            (s.to_owned(), "utf-8")
        }
        _ => (hex::encode(&l.payload), "hex"),
    }
}

fn letter_json(l: &DeadLetter, with_payload: bool) -> serde_json::Value {
    let mut v = serde_json::json!({
        "id": l.id, "received_at": l.received_at, "connector": l.connector, "stage": l.stage,
        "reason_code": l.reason_code, "message": l.message, "system": l.system, "kind": l.kind,
        "record_id": l.record_id, "format": l.format, "replayed_at": l.replayed_at,
        "replay_attempts": l.replay_attempts, "attempts": l.attempts,
    });
    if with_payload {
        let (text, encoding) = payload_text(l);
        v["payload"] = text.into();
        v["payload_encoding"] = encoding.into();
        v["headers"] = l.headers.clone().into();
    }
    v
}

/// `dlq list`.
pub async fn list(config: &Config, args: &DlqListArgs) -> Result<()> {
    let pipeline = open_pipeline(config, false).await?;
    let letters = pipeline
        .store()
        .dead_letters(
            &filter(&args.letters, Vec::new(), args.all),
            None,
            args.letters.limit,
        )
        .await?;
    match args.format {
        OutputFormat::Json => {
            let all: Vec<_> = letters
                .iter()
                .map(|l| letter_json(l, args.payload))
                .collect();
            println!("{}", serde_json::to_string_pretty(&all)?);
        }
        OutputFormat::Text => print!("{}", letters_text(&letters, args.payload)),
    }
    Ok(())
}

/// Letters as a table, then the count per reason.
pub fn letters_text(letters: &[DeadLetter], with_payload: bool) -> String {
    let mut out = String::new();
    if letters.is_empty() {
        out.push_str("no dead letters\n");
        return out;
    }
    let _ = writeln!(
        out,
        "{:>7}  {:<24}  {:<14}  {:<9}  {:<20}  {:<32}  message",
        "id", "received", "connector", "stage", "reason", "record"
    );
    let mut by_reason: BTreeMap<&str, usize> = BTreeMap::new();
    for l in letters {
        *by_reason.entry(&l.reason_code).or_default() += 1;
        let record = format!("{}/{}/{}", l.system, l.kind, l.record_id);
        let replayed = l
            .replayed_at
            .as_ref()
            .map(|t| format!(" [replayed {t}]"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{:>7}  {:<24}  {:<14}  {:<9}  {:<20}  {:<32}  {}{replayed}",
            l.id, l.received_at, l.connector, l.stage, l.reason_code, record, l.message
        );
        if with_payload {
            let (text, encoding) = payload_text(l);
            let _ = writeln!(out, "         payload ({encoding}):");
            for line in text.trim_end().lines() {
                let _ = writeln!(out, "           {line}");
            }
        }
    }
    let _ = writeln!(
        out,
        "\n{}",
        crate::plural(letters.len(), "letter", "letters")
    );
    for (reason, n) in by_reason {
        let _ = writeln!(out, "  {reason:<20} {n}");
    }
    out
}

/// `dlq replay`.
pub async fn replay(config: &Config, args: &DlqReplayArgs) -> Result<()> {
    let pipeline = open_pipeline(config, false).await?;
    let replayed = pipeline
        .replay(
            &filter(&args.letters, args.ids.clone(), false),
            args.letters.limit,
        )
        .await?;
    // Statuses as on the wire and in DESIGN §6.2: ACCEPTED, DUPLICATE, …
    let status =
        |r: &trainhub_pipeline::replay::Replayed| r.outcome.status.as_str().to_ascii_uppercase();
    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    for r in &replayed {
        *by_status.entry(status(r)).or_default() += 1;
    }
    match args.format {
        OutputFormat::Json => {
            let all: Vec<_> = replayed
                .iter()
                .map(|r| {
                    let reason = r.outcome.rejection.as_ref();
                    serde_json::json!({
                        "id": r.id, "record_id": r.outcome.record_id, "kind": r.outcome.kind,
                        "status": status(r),
                        "reason_code": reason.map(|x| x.code.as_str()),
                        "message": reason.map(|x| x.describe()),
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&all)?);
        }
        OutputFormat::Text => {
            for r in &replayed {
                let why = r
                    .outcome
                    .rejection
                    .as_ref()
                    .map(|x| format!("  {} {}", x.code.as_str(), x.describe()))
                    .unwrap_or_default();
                println!(
                    "{:>7}  {:<11} {}/{}{why}",
                    r.id,
                    status(r),
                    r.outcome.kind,
                    r.outcome.record_id
                );
            }
            println!(
                "\nreplayed {}",
                crate::plural(replayed.len(), "letter", "letters")
            );
            for (status, n) in &by_status {
                println!("  {status:<11} {n}");
            }
        }
    }
    if !args.ids.is_empty() && replayed.len() < args.ids.len() {
        eprintln!(
            "{} of the given ids were not found or were already replayed",
            args.ids.len() - replayed.len()
        );
    }
    Ok(())
}
