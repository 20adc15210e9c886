//! `trainhub-bench import`: the file importer against the database's own bulk load. A CSV in
//! the A01 layout of the shipped `cadre-a01` profile is generated (streamed to disk), imported
//! into a fresh PostgreSQL database exactly as `trainhub import` does — map, validate, seal,
//! raw log, current versions, dossier marks — and then loaded with `COPY … FROM STDIN` into an
//! equivalent table of twelve text columns. A second limit is the database's own load of what
//! the import stored: the same raw-log, current-version and mark rows, `COPY`'d into empty
//! tables with the hub's columns and indexes. Resident memory is sampled during the import: a
//! flat line means the file streams.

use crate::ImportBenchArgs;
use anyhow::{Context, Result};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};
use trainhub::config::Config;
use trainhub_connectors::files::FileFormat;
use trainhub_connectors::profile::Profile;
use trainhub_model::identity::make_national_id;

const HEADER: &str = "A0000,A0101,A0104,A0107,A0117,A0184,A0134,A0192A,A0221,A0201B,A0201A,GXSJ";

/// Writes `rows` A01 rows, every one a distinct person with a valid national ID.
fn generate(path: &Path, rows: usize) -> Result<()> {
    const SURNAMES: [&str; 10] = ["王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴"];
    const GIVEN: [&str; 10] = [
        "建国", "志强", "秀英", "丽华", "海燕", "国庆", "晓明", "文军", "红梅", "玉兰",
    ];
    const LEVELS: [&str; 6] = [
        "县处级正职",
        "县处级副职",
        "乡科级正职",
        "厅局级副职",
        "一级主任科员",
        "四级调研员",
    ];
    const ETHNIC: [&str; 4] = ["汉族", "回族", "满族", "壮族"];
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    writeln!(out, "{HEADER}")?;
    let base = chrono::NaiveDate::from_ymd_opt(1960, 1, 1).expect("valid");
    for n in 0..rows {
        let region = [320102u32, 320104, 320105, 320106, 320111][n % 5];
        let birth = base + chrono::Duration::days(((n / 5) % 14_000) as i64);
        let seq = (n / 70_000) as u32 % 1000;
        let id = make_national_id(region, birth, seq);
        let sex = if seq % 2 == 1 { "男" } else { "女" };
        let unit = n % 400;
        writeln!(
            out,
            "{n:08x}-0000-4000-8000-{n:012x},{}{},{sex},{},{},{id},{}.{:02},第{unit}单位{},{},U{unit:05},第{unit}单位,20260301093000",
            SURNAMES[n % 10],
            GIVEN[(n / 10) % 10],
            birth.format("%Y%m%d"),
            ETHNIC[n % 4],
            birth.format("%Y").to_string().parse::<i32>().unwrap_or(1960) + 22,
            n % 12 + 1,
            LEVELS[n % 6],
            LEVELS[n % 6],
        )?;
    }
    out.flush()?;
    Ok(())
}

/// Resident memory of this process, in MiB (Linux).
fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Runs the benchmark and prints its figures.
pub async fn run(args: ImportBenchArgs) -> Result<()> {
    let dir = crate::ingest::tempfile_dir()?;
    let file = dir.join("a01-bench.csv");
    let started = Instant::now();
    generate(&file, args.rows)?;
    let size = std::fs::metadata(&file)?.len();
    println!(
        "bench import: {} A01 rows, {:.1} MiB CSV (generated in {:.1} s), batches of {}",
        args.rows,
        size as f64 / (1 << 20) as f64,
        started.elapsed().as_secs_f64(),
        args.batch
    );
    let db = format!("trainhub_bench_import_{:08x}", rand::random::<u32>());
    let url = trainhub_store::create_postgres_database(&args.server.postgres, &db)
        .await
        .context("creating the benchmark database")?;
    let result = measure(&args, &dir, &file, &url).await;
    if args.keep_database {
        println!("kept the database {url}");
    } else {
        let _ = trainhub_store::drop_postgres_database(&args.server.postgres, &db).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn measure(args: &ImportBenchArgs, dir: &Path, file: &Path, url: &str) -> Result<()> {
    let mut config = Config::load(None, std::iter::empty())?;
    config.server.data_dir = dir.join("data");
    config.store.url = Some(url.to_owned());
    let pipeline = trainhub::startup::open_pipeline(&config, true).await?;
    let profile = Profile::resolve("cadre-a01").map_err(|e| anyhow::anyhow!("{e}"))?;

    // Memory, sampled while the import runs.
    let before = rss_mib();
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let sampler = tokio::spawn(async move {
        let mut samples = Vec::new();
        loop {
            samples.push(rss_mib());
            tokio::select! {
                _ = &mut stopped => return samples,
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
        }
    });
    let started = Instant::now();
    let summary = trainhub::import::import(
        &pipeline,
        &profile,
        "cadre-hr",
        &[(file.to_owned(), FileFormat::Csv)],
        args.batch,
        &dir.join("rejects.csv"),
    )
    .await?;
    let import_secs = started.elapsed().as_secs_f64();
    let _ = stop.send(());
    let samples = sampler.await?;
    pipeline.store().close().await;
    anyhow::ensure!(
        summary.count("accepted") == args.rows as u64,
        "not every row was accepted: {summary:?}"
    );

    // The limit: COPY of the same file into an equivalent table.
    use sqlx::Connection;
    let mut conn = sqlx::postgres::PgConnection::connect(url).await?;
    let (stored_secs, stored_bytes) = copy_what_import_stored(&mut conn, dir).await?;
    let columns: Vec<String> = HEADER.split(',').map(|c| format!("\"{c}\" text")).collect();
    sqlx::query(&format!("CREATE TABLE a01_copy ({})", columns.join(", ")))
        .execute(&mut conn)
        .await?;
    let started = Instant::now();
    let mut copy = conn
        .copy_in_raw("COPY a01_copy FROM STDIN WITH (FORMAT csv, HEADER true)")
        .await?;
    copy.read_from(tokio::fs::File::open(file).await?).await?;
    let copied = copy.finish().await?;
    let copy_secs = started.elapsed().as_secs_f64();
    conn.close().await?;
    anyhow::ensure!(copied == args.rows as u64, "COPY loaded {copied} rows");

    let import_rate = args.rows as f64 / import_secs;
    let copy_rate = args.rows as f64 / copy_secs;
    let quarter = |q: usize| samples[(samples.len() - 1) * q / 4];
    let peak = samples.iter().copied().fold(0.0, f64::max);
    println!();
    println!("{:<28} {:>10} {:>12}", "", "seconds", "rows/s");
    println!(
        "{:<28} {:>10.1} {:>12.0}",
        "trainhub import (PostgreSQL)", import_secs, import_rate
    );
    println!(
        "{:<28} {:>10.1} {:>12.0}",
        "COPY (the limit)", copy_secs, copy_rate
    );
    let stored_rate = args.rows as f64 / stored_secs;
    println!(
        "{:<28} {:>10.1} {:>12.0}",
        "COPY into the hub's tables", stored_secs, stored_rate
    );
    println!("import / COPY: {:.1}%", 100.0 * import_rate / copy_rate);
    println!(
        "import / COPY into the hub's tables ({:.0} MiB: raw log, current versions with their \
         indexes, dossier marks): {:.1}%",
        stored_bytes as f64 / (1 << 20) as f64,
        100.0 * import_rate / stored_rate
    );
    println!(
        "resident memory (MiB): before {before:.0}; during the import at 25% {:.0}, 50% {:.0}, \
         75% {:.0}, end {:.0}; peak {peak:.0} ({} samples)",
        quarter(1),
        quarter(2),
        quarter(3),
        quarter(4),
        samples.len()
    );
    Ok(())
}

/// The database's own limit for what the import stored: the rows the import wrote (raw log,
/// current versions, the bodies still pending, dossier marks) are exported, then loaded with
/// `COPY … FROM STDIN` into empty tables with the same columns and indexes. Returns the load's
/// seconds and the bytes loaded.
async fn copy_what_import_stored(
    conn: &mut sqlx::postgres::PgConnection,
    dir: &Path,
) -> Result<(f64, u64)> {
    use futures::StreamExt;
    use tokio::io::AsyncWriteExt;
    const TABLES: [(&str, &str); 4] = [
        ("raw_batches", "received_at, connector, records, packed"),
        (
            "source_records",
            "system, kind, record_id, version, deleted, content_hash, hash, person, \
             account_system, account_id, class_id, content, profile, received_at, received",
        ),
        (
            "pending_bodies",
            "person_key, system, kind, record_id, version, content",
        ),
        ("dossier_dirty", "person_key"),
    ];
    let mut bytes = 0;
    for (table, columns) in TABLES {
        let path = dir.join(format!("{table}.copy"));
        let mut file = tokio::fs::File::create(&path).await?;
        let mut out = conn
            .copy_out_raw(&format!("COPY {table} ({columns}) TO STDOUT"))
            .await?;
        while let Some(chunk) = out.next().await {
            let chunk = chunk?;
            bytes += chunk.len() as u64;
            file.write_all(&chunk).await?;
        }
        drop(out);
        file.flush().await?;
        sqlx::query(&format!(
            "CREATE TABLE {table}_copy (LIKE {table} INCLUDING ALL)"
        ))
        .execute(&mut *conn)
        .await?;
    }
    let started = Instant::now();
    for (table, columns) in TABLES {
        let mut copy = conn
            .copy_in_raw(&format!("COPY {table}_copy ({columns}) FROM STDIN"))
            .await?;
        copy.read_from(tokio::fs::File::open(dir.join(format!("{table}.copy"))).await?)
            .await?;
        copy.finish().await?;
    }
    Ok((started.elapsed().as_secs_f64(), bytes))
}
