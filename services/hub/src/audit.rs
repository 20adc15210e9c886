//! `trainhub audit`: the audit trail of reads from the store the config names (no running hub
//! needed). The trail itself is append-only; this command only reads it.

use crate::cli::{AuditArgs, OutputFormat};
use crate::config::Config;
use crate::startup::open_pipeline;
use anyhow::Result;
use trainhub_model::{NationalId, PersonKey};

/// Prints the newest rows matching `args`.
pub async fn run(config: &Config, args: &AuditArgs) -> Result<()> {
    let pipeline = open_pipeline(config, false).await?;
    // A person is named by national ID or person_key; the trail only holds keys.
    let person = match args.person.as_deref() {
        None => None,
        Some(p) => Some(match PersonKey::parse("person", p) {
            Ok(key) => key.to_string(),
            Err(_) => {
                let id = NationalId::parse("person", p).map_err(|r| {
                    anyhow::anyhow!(
                        "--person is neither a national ID nor a person_key: {}",
                        r.message
                    )
                })?;
                pipeline.keyer().key(&id).to_string()
            }
        }),
    };
    let rows = pipeline
        .store()
        .audit_log(person.as_deref(), args.principal.as_deref(), args.limit)
        .await?;
    match args.format {
        OutputFormat::Json => {
            let all: Vec<serde_json::Value> = rows
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "id": r.id, "at": r.at, "principal": r.entry.principal,
                        "method": r.entry.method, "person_key": r.entry.person_key,
                        "purpose": r.entry.purpose, "returned": r.entry.returned,
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&all)?);
        }
        OutputFormat::Text => {
            if rows.is_empty() {
                println!(
                    "No reads recorded{}.",
                    if person.is_some() {
                        " about this person"
                    } else {
                        ""
                    }
                );
            } else {
                println!(
                    "{:>6}  {:<24}  {:<20} {:<20} {:<18} {:<24} returned",
                    "id", "at", "principal", "method", "person", "purpose"
                );
            }
            for r in &rows {
                let who = if r.entry.person_key.is_empty() {
                    "(aggregate)".to_owned()
                } else {
                    r.entry.person_key.chars().take(16).collect::<String>() + "…"
                };
                println!(
                    "{:>6}  {}  {:<20} {:<20} {:<18} {:<24} {}",
                    r.id,
                    r.at,
                    r.entry.principal,
                    r.entry.method,
                    who,
                    r.entry.purpose,
                    r.entry.returned
                );
            }
        }
    }
    Ok(())
}
