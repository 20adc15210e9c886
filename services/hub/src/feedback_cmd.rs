//! The organisation department's commands, read straight from the store (no running hub):
//! `coverage` (and its exports), `warnings`, `annual-form` and `lrmx-fill`. Like the page and
//! the gRPC reads they take a purpose and write the audit trail (principal `cli:<user>`)
//! before anything is printed or written.

use crate::cli::{
    AnnualFormArgs, CoverageArgs, ExportArgs, LrmxFillArgs, OutputFormat, WarningsArgs,
};
use crate::config::Config;
use crate::export::{self, Book, Meta};
use crate::report::principal;
use crate::startup::open_pipeline;
use anyhow::{Context, Result};
use std::path::Path;
use trainhub_api::feedback::{Feedback, Reader};
use trainhub_connectors::forms::LrmxForm;
use trainhub_model::warnings::WarningList;
use trainhub_pipeline::queries::Filter;
use trainhub_pipeline::Queries;
use trainhub_proto::v1 as pb;

fn refused(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{}", status.message())
}

async fn open(config: &Config, purpose: &str) -> Result<(Feedback, Reader)> {
    let reader = Reader::local(principal(), purpose)
        .map_err(|s| anyhow::anyhow!("--purpose: {}", s.message()))?;
    let pipeline = open_pipeline(config, false).await?;
    Ok((Feedback::new(Queries::new(pipeline)), reader))
}

/// Writes the workbook where `--xlsx` and `--csv` say, each file whole or not at all.
fn save(book: &Book, to: &ExportArgs) -> Result<()> {
    let write = |path: &Path, bytes: Vec<u8>| -> Result<()> {
        let partial = path.with_extension("partial");
        std::fs::write(&partial, bytes)
            .and_then(|()| std::fs::rename(&partial, path))
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
        Ok(())
    };
    if let Some(path) = &to.xlsx {
        write(path, book.xlsx()?)?;
    }
    if let Some(path) = &to.csv {
        write(path, book.csv()?)?;
    }
    Ok(())
}

/// Prints coverage per group; `--xlsx`/`--csv` write the report too.
pub async fn coverage(config: &Config, args: &CoverageArgs) -> Result<()> {
    let (feedback, reader) = open(config, &args.read.purpose).await?;
    let exporting = args.export.any();
    let what = if exporting {
        "ExportCoverage"
    } else {
        "GetCoverage"
    };
    let view = feedback
        .coverage(
            &reader,
            &args.group_by,
            Filter::default(),
            args.read.as_of,
            exporting,
            what,
        )
        .await
        .map_err(refused)?;
    if exporting {
        let meta = Meta::read_by(
            &reader,
            &view.policy_version,
            view.as_of,
            "培训覆盖情况 coverage",
        );
        let book = export::coverage_book(meta, &args.group_by, &view.groups, &view.trend);
        save(&book, &args.export)?;
    }
    crate::report::print_coverage(&args.group_by, args.read.format, view.as_of, &view.groups)
}

/// Prints a warning list; `--xlsx`/`--csv` write it too.
pub async fn warnings(config: &Config, args: &WarningsArgs) -> Result<()> {
    let list =
        WarningList::parse(&args.list).map_err(|r| anyhow::anyhow!("--list: {}", r.message))?;
    let filter = Filter::parse(Some(&pb::DossierFilter {
        authority: args.authority.clone().unwrap_or_default(),
        ..Default::default()
    }))
    .map_err(|r| anyhow::anyhow!("--authority: {}", r.message))?;
    let (feedback, reader) = open(config, &args.read.purpose).await?;
    let as_of = args
        .read
        .as_of
        .unwrap_or_else(trainhub_pipeline::queries::today);
    let exporting = args.export.any();
    let rows = feedback
        .warnings(
            &reader,
            list,
            &args.group_by,
            args.group.as_deref(),
            filter,
            Some(as_of),
            if exporting {
                "ExportWarnings"
            } else {
                "WarningList"
            },
        )
        .await
        .map_err(refused)?;
    if exporting {
        let meta = Meta::read_by(&reader, &feedback.policy_version(), as_of, list.title_zh());
        let book = export::warnings_book(meta, list, &rows);
        save(&book, &args.export)?;
    }
    if args.read.format == OutputFormat::Json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!("{} ({}) as of {as_of}", list.title_zh(), list.as_str());
    for r in &rows {
        println!(
            "{:<12} {:<10} {:<8} {:<6} {:>7.2}/{:<7.2} {}",
            r.unit_code, r.name, r.rank, r.light, r.credited_hours, r.required_hours, r.reason
        );
    }
    println!("{} persons", rows.len());
    Ok(())
}

/// Prints the annual form's trainings of a person for a year; `--xlsx`/`--csv` write them.
pub async fn annual_form(config: &Config, args: &AnnualFormArgs) -> Result<()> {
    use chrono::Datelike;
    let (feedback, reader) = open(config, &args.read.purpose).await?;
    let as_of = args
        .read
        .as_of
        .unwrap_or_else(trainhub_pipeline::queries::today);
    let year = args.year.unwrap_or(as_of.year());
    let (dossier, rows) = feedback
        .annual_form(&reader, &args.person, year, Some(as_of))
        .await
        .map_err(refused)?;
    if args.export.any() {
        let title = format!("年度考核登记表 {year} 脱产培训 {}", dossier.name);
        let meta = Meta::read_by(&reader, &dossier.policy_version, as_of, &title);
        save(&export::annual_book(meta, &rows), &args.export)?;
    }
    if args.read.format == OutputFormat::Json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!("{} 年度考核登记表 {year}: off-job training", dossier.name);
    for r in &rows {
        println!(
            "{} -- {} {:>4} days {:>7.2} 学时 {:<9} {} {}",
            r.start_date, r.end_date, r.days, r.hours, r.result, r.provider, r.title
        );
    }
    println!("{} trainings", rows.len());
    Ok(())
}

/// Fills a form's résumé with its person's appointment-form lines, in place (or `--output`).
pub async fn lrmx_fill(config: &Config, args: &LrmxFillArgs) -> Result<()> {
    let bytes =
        std::fs::read(&args.form).with_context(|| format!("reading {}", args.form.display()))?;
    let form = LrmxForm::read(&bytes).with_context(|| args.form.display().to_string())?;
    let id = form
        .national_id()
        .with_context(|| args.form.display().to_string())?;
    let (feedback, reader) = open(config, &args.purpose).await?;
    let (dossier, lines) = feedback
        .appointment_lines(&reader, &id, args.as_of)
        .await
        .map_err(refused)?;
    let filled = form
        .fill(&lines)
        .with_context(|| args.form.display().to_string())?;
    let target = args.output.as_deref().unwrap_or(&args.form);
    if filled.added.is_empty() && target == args.form.as_path() {
        println!(
            "{}: the {} line(s) of {} are already in the résumé; unchanged",
            args.form.display(),
            lines.len(),
            dossier.name
        );
        return Ok(());
    }
    let partial = target.with_extension("lrmx.partial");
    std::fs::write(&partial, &filled.bytes)
        .and_then(|()| std::fs::rename(&partial, target))
        .with_context(|| format!("writing {}", target.display()))?;
    println!(
        "{}: {} line(s) added to the résumé of {} ({}):",
        target.display(),
        filled.added.len(),
        dossier.name,
        filled.encoding
    );
    for line in &filled.added {
        println!("  {line}");
    }
    Ok(())
}
