//! `trainhub status`: the connectors of a running hub as a table (coloured on a terminal) or
//! JSON; exit code 1 when any connector has failed, so scripts and probes can use it.

use crate::cli::StatusArgs;
use crate::config::Config;
use anyhow::{Context, Result};
use std::fmt::Write;
use std::io::IsTerminal;
use trainhub_proto::v1 as pb;

pub(crate) use crate::remote::with_token;

/// Prints the status; returns whether every connector is healthy (none failed).
pub async fn run(config: &Config, args: &StatusArgs) -> Result<bool> {
    let url = args
        .hub
        .clone()
        .unwrap_or_else(|| format!("http://{}", config.server.grpc_addr));
    let mut client = pb::sync_health_service_client::SyncHealthServiceClient::connect(url.clone())
        .await
        .with_context(|| format!("no hub answers at {url}"))?;
    let request = with_token(pb::ListConnectorsRequest {}, args.token.as_deref())?;
    let connectors = client
        .list_connectors(request)
        .await
        .with_context(|| format!("asking {url} for its connectors"))?
        .into_inner()
        .connectors;
    let failed = connectors.iter().filter(|c| c.state == "failed").count();
    if args.json {
        let all: Vec<serde_json::Value> = connectors.iter().map(json).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "hub": url, "connectors": all }))?
        );
    } else {
        print!("{}", table(&connectors, std::io::stdout().is_terminal()));
    }
    Ok(failed == 0)
}

fn json(c: &pb::ConnectorStatus) -> serde_json::Value {
    let n = c.counters.unwrap_or_default();
    serde_json::json!({
        "name": c.name, "kind": c.kind, "state": c.state, "since": c.since,
        "instance": c.instance,
        "last_error": c.last_error.as_ref().map(|e| serde_json::json!({
            "stage": e.stage, "reason": e.reason, "message": e.message, "at": e.at })),
        "last_success": c.last_success,
        "counters": { "received": n.received, "accepted": n.accepted, "duplicate": n.duplicate,
            "superseded": n.superseded, "parked": n.parked, "rejected": n.rejected, "sent": n.sent,
            "statements": n.statements },
        "last_minute": c.last_minute,
        "queue_depth": (c.queue_depth >= 0).then_some(c.queue_depth),
        "oldest_unacked_seconds": c.oldest_unacked_seconds,
        "silence_seconds": (c.silence_seconds >= 0.0).then_some(c.silence_seconds),
    })
}

/// The connectors as a table; with `colour`, states in green, yellow and red.
pub fn table(connectors: &[pb::ConnectorStatus], colour: bool) -> String {
    let paint = |state: &str| {
        let code = match state {
            "running" => "32",
            "degraded" | "starting" => "33",
            "failed" => "31",
            _ => "90",
        };
        if colour {
            format!("\x1b[{code}m{state:<9}\x1b[0m")
        } else {
            format!("{state:<9}")
        }
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<32} {:<7} {:<9} {:>9} {:>9} {:>9} {:>8} {:>8} {:>8}  {:<14} last error",
        "connector",
        "kind",
        "state",
        "received",
        "accepted",
        "duplicate",
        "parked",
        "rejected",
        "per min",
        "lag"
    );
    for c in connectors {
        let n = c.counters.unwrap_or_default();
        let lag = if c.kind == "xapi" {
            // An xAPI source: its statements (the records they made are `received`).
            format!("{} statements", n.statements)
        } else if c.queue_depth >= 0 {
            format!("queue {}", c.queue_depth)
        } else if c.silence_seconds >= 0.0 {
            format!("silent {:.0}s", c.silence_seconds)
        } else {
            String::new()
        };
        let error = c
            .last_error
            .as_ref()
            .map(|e| format!("{} {}: {}", e.stage, e.reason, e.message))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{:<32} {:<7} {} {:>9} {:>9} {:>9} {:>8} {:>8} {:>8}  {:<14} {}",
            c.name,
            c.kind,
            paint(&c.state),
            n.received,
            n.accepted,
            n.duplicate,
            n.parked,
            n.rejected,
            c.last_minute,
            lag,
            error
        );
    }
    if connectors.is_empty() {
        out.push_str("no connectors\n");
    }
    out
}
