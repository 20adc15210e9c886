//! `trainhub-bench xapi`: statements posted to `/xapi/statements` in batches of 1,000 (each
//! answered only after the statements and their records committed), against the hub's own
//! gRPC `IngestService.Submit` of the same records, in the same run, each on a fresh store of
//! the same kind; with the bytes the store holds per statement and per record.

use crate::ingest::{start_hub_http, tempfile_dir};
use crate::plain::BenchStore;
use crate::XapiBenchArgs;
use anyhow::Result;
use serde_json::{json, Value};
use std::time::Instant;
use trainhub_connectors::xapi;
use trainhub_proto::v1::{self as pb, ingest_service_client::IngestServiceClient};

const SYSTEM: &str = "mooc";
const HOME: &str = "https://mooc.example.cn";

/// Runs the benchmark and prints its figures.
pub async fn run(args: XapiBenchArgs) -> Result<()> {
    let statements = generate(args.statements);
    let stored = chrono::Utc::now().to_rfc3339();
    let records: Vec<pb::Record> = statements
        .iter()
        .filter_map(|s| match xapi::meaning(SYSTEM, s, &stored) {
            Ok(xapi::Meaning::Learning(r)) => Some(*r),
            _ => None,
        })
        .collect();
    println!(
        "bench: {} valid statements (completed, with a duration, 1,000 accounts), POSTed in \
         batches of {}; gRPC Submit of the {} records they make, same batches",
        statements.len(),
        args.batch,
        records.len()
    );
    let dir = tempfile_dir()?;
    let mut rows = Vec::new();
    for backend in ["sqlite", "postgres"] {
        if backend == "postgres" && args.no_postgres {
            continue;
        }
        let admin = &args.server.postgres;
        let store = BenchStore::fresh(backend, admin, dir.join(format!("{backend}-xapi"))).await?;
        let xapi_rate = posted(&store, &statements, args.batch).await;
        store.drop().await;
        let store = BenchStore::fresh(backend, admin, dir.join(format!("{backend}-grpc"))).await?;
        let grpc_rate = submitted(&store, &records, args.batch).await;
        store.drop().await;
        rows.push((backend, xapi_rate?, grpc_rate?));
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!();
    println!(
        "{:<9} {:>16} {:>16} {:>7} {:>14} {:>14}",
        "store", "xAPI stmt/s", "Submit rec/s", "ratio", "xAPI B/stmt", "Submit B/rec"
    );
    for (backend, (x, x_bytes), (g, g_bytes)) in rows {
        println!(
            "{backend:<9} {x:>16.0} {g:>16.0} {:>6.1}% {x_bytes:>14.0} {g_bytes:>14.0}",
            100.0 * x / g
        );
    }
    Ok(())
}

/// `n` statements of 1,000 accounts, each a completed course with a duration.
fn generate(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            json!({
                "id": uuid(i),
                "actor": {"objectType": "Agent", "account": {"homePage": HOME, "name": format!("u{}", i % 1000)}},
                "verb": {"id": "http://adlnet.gov/expapi/verbs/completed", "display": {"zh-CN": "完成"}},
                "object": {"objectType": "Activity", "id": format!("{HOME}/courses/c{}", i % 200),
                    "definition": {"name": {"zh-CN": "专题网络课程"}}},
                "result": {"completion": true, "duration": format!("PT{}M", 20 + i % 100)},
                "timestamp": "2026-03-01T10:00:00+08:00"
            })
        })
        .collect()
}

fn uuid(i: usize) -> String {
    format!("6a4f0a1e-3b2c-4d5e-8f90-{i:012x}")
}

/// POSTs `statements` in batches; (statements/s committed, bytes stored per statement).
async fn posted(store: &BenchStore, statements: &[Value], batch: usize) -> Result<(f64, f64)> {
    let (_, http, (stop, server)) = start_hub_http(&store.url, store.dir()).await?;
    let started = Instant::now();
    let mut latencies = Vec::new();
    for chunk in statements.chunks(batch) {
        let body = serde_json::to_vec(chunk)?;
        let sent = Instant::now();
        let (status, answer) = post(http, &body).await?;
        anyhow::ensure!(status == 200, "POST answered {status}: {answer}");
        latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
    }
    let (first, last) = (latencies[0], latencies[latencies.len() - 1]);
    println!("xAPI POST: batch latency first {first:.0} ms, last {last:.0} ms");
    let rate = statements.len() as f64 / started.elapsed().as_secs_f64();
    let _ = stop.send(());
    server.await??;
    let bytes = store.bytes().await? as f64 / statements.len() as f64;
    println!("xAPI POST: {rate:.0} statements/s, {bytes:.0} B stored per statement");
    Ok((rate, bytes))
}

/// Submits `records` in batches over gRPC; (records/s committed, bytes stored per record).
async fn submitted(store: &BenchStore, records: &[pb::Record], batch: usize) -> Result<(f64, f64)> {
    let (grpc, _, (stop, server)) = start_hub_http(&store.url, store.dir()).await?;
    let mut client = IngestServiceClient::connect(format!("http://{grpc}"))
        .await?
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20);
    let started = Instant::now();
    for chunk in records.chunks(batch) {
        let request = pb::SubmitRequest {
            records: chunk.to_vec(),
        };
        client.submit(request).await?;
    }
    let rate = records.len() as f64 / started.elapsed().as_secs_f64();
    let _ = stop.send(());
    server.await??;
    let bytes = store.bytes().await? as f64 / records.len() as f64;
    println!("gRPC Submit: {rate:.0} records/s, {bytes:.0} B stored per record");
    Ok((rate, bytes))
}

/// One POST of a batch to `/xapi/statements` (an open hub admits any name): status and body.
async fn post(addr: std::net::SocketAddr, body: &[u8]) -> Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let head = format!(
        "POST /xapi/statements HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Basic bW9vYzpiZW5jaA==\r\n\
         X-Experience-API-Version: 1.0.3\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, text.chars().take(300).collect()))
}
