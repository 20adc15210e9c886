//! `trainhub dossier` and the coverage table: the reports on the command line, read straight
//! from the store that `--data-dir` / `--store` / `--config` name (no running hub needed). Like
//! their gRPC counterparts they take a purpose and write the audit trail (principal
//! `cli:<user>`) before anything is printed.

use crate::cli::{DossierArgs, OutputFormat};
use crate::config::Config;
use crate::startup::open_pipeline;
use anyhow::Result;
use std::fmt::Write;
use trainhub_pipeline::{audit, Queries};
use trainhub_proto::v1 as pb;

/// The principal of a read on the command line: the operating-system user.
pub fn principal() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("cli:{user}")
}

fn purpose(stated: &str) -> Result<String> {
    audit::purpose(stated).map_err(|m| anyhow::anyhow!("--purpose: {m}"))
}

/// Writes the audit row; nothing is printed unless it is stored.
async fn account(service: &Queries, entry: trainhub_store::audit::AuditEntry) -> Result<()> {
    service
        .pipeline()
        .store()
        .audit(&[entry])
        .await
        .map_err(|e| anyhow::anyhow!("the audit trail cannot be written, so nothing is shown: {e}"))
}

/// Prints a dossier: from the store, or with `--hub` from a running hub.
pub async fn dossier(config: &Config, args: &DossierArgs) -> Result<()> {
    let purpose = purpose(&args.read.purpose)?;
    if args.remote.hub.is_some() {
        return remote_dossier(config, args, purpose).await;
    }
    let pipeline = open_pipeline(config, false).await?;
    let service = Queries::new(pipeline);
    let (id, key) = trainhub_pipeline::queries::national_id_or_key(&args.person);
    let dossier = service
        .dossier(id, key, args.read.as_of)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let entry = audit::dossier_read(
        &principal(),
        "GetDossier",
        &purpose,
        &trainhub_pipeline::wire::dossier(&dossier),
    );
    account(&service, entry).await?;
    match args.read.format {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&dossier)?),
        OutputFormat::Text => print!(
            "{}",
            dossier_text(&trainhub_pipeline::wire::dossier(&dossier))
        ),
    }
    Ok(())
}

/// `dossier --hub`: `GetDossier` of a running hub, which checks the token and writes the
/// audit row itself.
async fn remote_dossier(config: &Config, args: &DossierArgs, purpose: String) -> Result<()> {
    let hub = &args.remote;
    let mut client =
        pb::dossier_service_client::DossierServiceClient::new(hub.connect(config).await?);
    let (national_id, person_key) = trainhub_pipeline::queries::national_id_or_key(&args.person);
    let dossier = client
        .get_dossier(hub.request(pb::GetDossierRequest {
            national_id: national_id.to_owned(),
            person_key: person_key.to_owned(),
            as_of: args.read.as_of.map(|d| d.to_string()).unwrap_or_default(),
            purpose,
        })?)
        .await
        .map_err(crate::remote::refused)?
        .into_inner();
    match args.read.format {
        OutputFormat::Json => println!(
            "{}",
            trainhub_proto::format::to_json(&dossier, "trainhub.v1.Dossier")
                .map_err(anyhow::Error::msg)?
        ),
        OutputFormat::Text => print!("{}", dossier_text(&dossier)),
    }
    Ok(())
}

/// A dossier as a readable page (the same for a local read and one from a running hub).
pub fn dossier_text(d: &pb::Dossier) -> String {
    let mut out = String::new();
    let or_dash = |s: &str| {
        if s.is_empty() {
            "-".to_owned()
        } else {
            s.to_owned()
        }
    };
    let _ = writeln!(
        out,
        "{} ({})  unit {} {}  rank {}  status {}",
        d.name,
        d.person_key,
        d.unit_code,
        d.unit_name,
        or_dash(&d.rank),
        d.status
    );
    let _ = writeln!(
        out,
        "as of {}  light {}  credited {:.2} / required {:.2} 学时  policy {}",
        d.as_of,
        d.light().as_str_name().trim_start_matches("LIGHT_"),
        d.credited_hours,
        d.required_hours,
        d.policy_version
    );
    let _ = writeln!(
        out,
        "\n{:<6} {:>10} {:>10} {:>10}",
        "year", "off-job", "on-job", "online"
    );
    for y in &d.years {
        let _ = writeln!(
            out,
            "{:<6} {:>10.2} {:>10.2} {:>10.2}",
            y.year, y.off_job_hours, y.on_job_hours, y.online_hours
        );
    }
    trainings_text(&mut out, d);
    if !d.flags.is_empty() {
        let _ = writeln!(out, "\nflags:");
        for f in &d.flags {
            let year = if f.year == 0 {
                String::new()
            } else {
                f.year.to_string()
            };
            let _ = writeln!(out, "  {:<22} {:<5} {}", f.code, year, f.message);
        }
    }
    if let Some(e) = &d.evaluation {
        let _ = writeln!(out, "\nevaluation: weighted score {:.2}", e.weighted_score);
        for (criterion, score) in &e.capability {
            let _ = writeln!(out, "  {criterion:<12} {score:>6.2}");
        }
    }
    out
}

/// The trainings table: each one, marked when it is listed but not credited.
fn trainings_text(out: &mut String, d: &pb::Dossier) {
    let _ = writeln!(
        out,
        "\n{:<24} {:<10} {:<10} {:>5} {:>8} {:<9} {:<4} title",
        "class", "start", "end", "days", "学时", "outcome", "form"
    );
    let date = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
    for t in &d.trainings {
        let form = match (t.appointment_form, t.annual_form) {
            (true, _) => "任免",
            (false, true) => "年度",
            _ => "",
        };
        let days = match (date(&t.start_date), date(&t.end_date)) {
            (Some(s), Some(e)) => ((e - s).num_days() + 1).to_string(),
            _ => String::new(),
        };
        // Listed for the record, but outside the window or voided: say so, or the column would
        // not add up to the credited total.
        let note = if t.end_date < d.window_start {
            "  [before the window: not credited]"
        } else if !t.credited {
            "  [not credited]"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "{:<24} {:<10} {:<10} {:>5} {:>8.2} {:<9} {:<4} {}{note}",
            t.class_id, t.start_date, t.end_date, days, t.credited_hours, t.outcome, form, t.title
        );
    }
    let _ = writeln!(
        out,
        "(the window: {} to {}; only trainings inside it are credited)",
        d.window_start, d.as_of
    );
}

/// Prints coverage per group: a table, or JSON with the RED lists.
pub fn print_coverage(
    group_by: &str,
    format: OutputFormat,
    as_of: chrono::NaiveDate,
    groups: &std::collections::BTreeMap<String, trainhub_model::dispatch::CoverageGroup>,
) -> Result<()> {
    if format == OutputFormat::Json {
        let rows: Vec<_> = groups
            .iter()
            .map(|(k, g)| {
                serde_json::json!({
                    "key": k, "in_scope": g.in_scope, "participation_rate": g.participation_rate(),
                    "pass_rate": g.pass_rate(), "coverage_rate": g.coverage_rate(),
                    "red": g.red, "yellow": g.yellow, "green": g.green,
                    "red_list": g.red_list.iter().map(|(p, n, u)| serde_json::json!({"person_key": p, "name": n, "unit_code": u})).collect::<Vec<_>>(),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"as_of": as_of.to_string(), "groups": rows})
            )?
        );
        return Ok(());
    }
    println!("coverage by {group_by} as of {as_of}");
    println!(
        "{:<16} {:>8} {:>8} {:>8} {:>8} {:>6} {:>6} {:>6}",
        "group", "in scope", "partic.", "pass", "cover.", "red", "yellow", "green"
    );
    for (key, g) in groups {
        println!(
            "{:<16} {:>8} {:>7.1}% {:>7.1}% {:>7.1}% {:>6} {:>6} {:>6}",
            if key.is_empty() { "-" } else { key },
            g.in_scope,
            100.0 * g.participation_rate(),
            100.0 * g.pass_rate(),
            100.0 * g.coverage_rate(),
            g.red,
            g.yellow,
            g.green
        );
    }
    let red: usize = groups.values().map(|g| g.red_list.len()).sum();
    println!("{red} persons on the RED list (刚性调训); `--format json` lists them");
    Ok(())
}
