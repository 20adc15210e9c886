//! `trainhub review`: the identity review queue of a running hub (`ReviewService`), for
//! operators with a `review:write` token — the conflicts, the records still waiting, and
//! deciding a conflict.

use crate::cli::{ReviewCommand, ReviewResolveArgs};
use crate::config::Config;
use crate::remote::{refused, HubArgs};
use anyhow::Result;
use trainhub_proto::v1 as pb;
use trainhub_proto::v1::review_service_client::ReviewServiceClient;

/// Runs one `review` subcommand.
pub async fn run(config: &Config, command: &ReviewCommand) -> Result<()> {
    match command {
        ReviewCommand::List(args) => {
            let conflicts = conflicts(config, &args.hub, args.all).await?;
            if conflicts.is_empty() {
                println!("No {}conflicts.", if args.all { "" } else { "open " });
            }
            for c in &conflicts {
                println!(
                    "{}  {}  {}  {} sides",
                    c.id,
                    kind(c),
                    c.status,
                    c.sides.len()
                );
            }
            Ok(())
        }
        ReviewCommand::Show(args) => {
            let all = conflicts(config, &args.hub, true).await?;
            let Some(c) = all.iter().find(|c| c.id == args.id) else {
                anyhow::bail!(
                    "no conflict `{}` (`trainhub review list --all` lists them)",
                    args.id
                );
            };
            print!("{}", show(c));
            Ok(())
        }
        ReviewCommand::Resolve(args) => resolve(config, args).await,
        ReviewCommand::Unmatched(args) => unmatched(config, args).await,
    }
}

async fn conflicts(config: &Config, hub: &HubArgs, all: bool) -> Result<Vec<pb::Conflict>> {
    let mut client = ReviewServiceClient::new(hub.connect(config).await?);
    let (mut out, mut page_token) = (Vec::new(), String::new());
    loop {
        let page = client
            .list_conflicts(hub.request(pb::ListConflictsRequest {
                include_closed: all,
                page_size: 1000,
                page_token,
            })?)
            .await
            .map_err(refused)?
            .into_inner();
        out.extend(page.conflicts);
        if page.next_page_token.is_empty() {
            return Ok(out);
        }
        page_token = page.next_page_token;
    }
}

fn kind(c: &pb::Conflict) -> &'static str {
    c.kind().as_str_name().trim_start_matches("CONFLICT_KIND_")
}

/// One conflict: what contradicts what, and the choice that decides for each side.
pub fn show(c: &pb::Conflict) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "conflict {}: {} ({})", c.id, kind(c), c.status);
    if !c.account_id.is_empty() {
        let _ = writeln!(out, "account  {} / {}", c.account_system, c.account_id);
    }
    let _ = writeln!(out, "detected {}", c.detected_at);
    for (i, side) in c.sides.iter().enumerate() {
        let source = side.source.clone().unwrap_or_default();
        let _ = writeln!(
            out,
            "side {}: {}/{}/{} v{}  person {}  name {}  birth {}\n        decide for it: trainhub review resolve {} '{}' --note …",
            i + 1,
            source.system,
            source.kind,
            source.record_id,
            source.version,
            side.person_key,
            side.name,
            if side.birth_date.is_empty() { "-" } else { &side.birth_date },
            c.id,
            side.choice
        );
    }
    if !c.resolved_at.is_empty() {
        let _ = writeln!(
            out,
            "decided {} by {} at {}: {}",
            c.choice, c.resolved_by, c.resolved_at, c.note
        );
    }
    out
}

async fn resolve(config: &Config, args: &ReviewResolveArgs) -> Result<()> {
    let mut client = ReviewServiceClient::new(args.hub.connect(config).await?);
    let decided = client
        .resolve_conflict(args.hub.request(pb::ResolveConflictRequest {
            conflict_id: args.id.clone(),
            choice: args.choice.clone(),
            note: args.note.clone(),
        })?)
        .await
        .map_err(refused)?
        .into_inner();
    println!(
        "conflict {} decided for `{}`; the records that waited on it join at the next projection",
        decided.id, decided.choice
    );
    Ok(())
}

async fn unmatched(config: &Config, args: &crate::cli::ReviewListArgs) -> Result<()> {
    let mut client = ReviewServiceClient::new(args.hub.connect(config).await?);
    let records = all_unmatched(&mut client, args.hub.token.as_deref()).await?;
    for r in &records {
        let s = r.source.clone().unwrap_or_default();
        println!(
            "{}/{}/{}  {}  {}",
            s.system, s.kind, s.record_id, r.reason, r.received_at
        );
    }
    println!(
        "{}",
        crate::plural(records.len(), "record waits", "records wait")
    );
    Ok(())
}

/// Every record in no dossier yet, page after page (the demo's banner counts them too).
pub async fn all_unmatched(
    client: &mut ReviewServiceClient<tonic::transport::Channel>,
    token: Option<&str>,
) -> Result<Vec<pb::UnmatchedRecord>> {
    let (mut out, mut page_token) = (Vec::new(), String::new());
    loop {
        let request = pb::ListUnmatchedRequest {
            page_size: 1000,
            page_token,
        };
        let page = client
            .list_unmatched(crate::remote::with_token(request, token)?)
            .await
            .map_err(refused)?
            .into_inner();
        out.extend(page.records);
        if page.next_page_token.is_empty() {
            return Ok(out);
        }
        page_token = page.next_page_token;
    }
}
