//! The xAPI Statements and About resources as an LRS client sees them (issue 16): what a
//! statement must be (`invalid`), what a GET finds and how (`queries`), attachments and signed
//! statements (`attachments`), and what the hub does with what it accepts (`effects`). Raw
//! HTTP here; `queries` also drives the third-party client `@xapi/xapi`.

mod attachments;
mod effects;
mod invalid;
mod queries;

use crate::fixtures::ACCOUNTS;
use crate::xapi::{base64_encode, xapi_hub, MOOC_TOKEN};
use serde_json::{json, Value};
use trainhub_tests::{Backend, TestHub, TestStore};

/// A hub with the partner `mooc` (and HR, a reader), and how to call its LRS.
pub(crate) struct Lrs {
    pub hub: TestHub,
    basic: String,
}

/// An HTTP answer.
pub(crate) struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| {
            panic!(
                "{} not JSON: {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Lrs {
    pub async fn start(backend: Backend) -> Option<Lrs> {
        let test_store = TestStore::new(backend).await?;
        let hub = xapi_hub(test_store).await;
        let basic = format!("Basic {}", base64_encode(&format!("mooc:{MOOC_TOKEN}")));
        Some(Lrs { hub, basic })
    }

    /// `method path` with the partner's credentials and the version header, and `extra`.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        extra: &[(&str, &str)],
        content_type: &str,
        body: &[u8],
    ) -> Answer {
        let mut headers = vec![
            ("Authorization", self.basic.as_str()),
            ("X-Experience-API-Version", "1.0.3"),
        ];
        headers.extend_from_slice(extra);
        raw(
            self.hub.http_addr,
            method,
            path,
            &headers,
            content_type,
            body,
        )
        .await
    }

    pub async fn post(&self, body: &Value) -> Answer {
        let bytes = serde_json::to_vec(body).unwrap();
        self.call("POST", "/xapi/statements", &[], "application/json", &bytes)
            .await
    }

    pub async fn get(&self, query: &str) -> Answer {
        let path = format!("/xapi/statements{query}");
        self.call("GET", &path, &[], "application/json", b"").await
    }

    /// Statements stored in all, by SQL.
    pub async fn stored(&self) -> i64 {
        trainhub_tests::count(&self.hub.store, "SELECT COUNT(*) AS n FROM xapi_statements").await
    }

    /// Dead letters in all, by SQL.
    pub async fn letters(&self) -> i64 {
        trainhub_tests::count(&self.hub.store, "SELECT COUNT(*) AS n FROM dead_letters").await
    }
}

/// One raw HTTP/1.1 request, the connection closed after the answer.
pub(crate) async fn raw(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    content_type: &str,
    body: &[u8],
) -> Answer {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for (k, v) in headers {
        head += &format!("{k}: {v}\r\n");
    }
    head += &format!(
        "Content-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP answer");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Answer {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = usize::from_str_radix(std::str::from_utf8(&data[..end]).unwrap().trim(), 16)
            .unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[end + 2..end + 2 + size]);
        data = &data[end + 2 + size + 2..];
    }
}

/// A valid statement of account `name` on the platform: `verb` (an ADL verb name), `minutes`
/// of study on `course`.
pub(crate) fn statement(id: &str, name: &str, verb: &str, course: &str, minutes: u32) -> Value {
    json!({
        "id": id,
        "actor": {"objectType": "Agent", "name": "学员", "account": {"homePage": ACCOUNTS, "name": name}},
        "verb": {"id": format!("http://adlnet.gov/expapi/verbs/{verb}"), "display": {"zh-CN": verb}},
        "object": {"objectType": "Activity", "id": course,
            "definition": {"name": {"zh-CN": "专题课程", "en-US": "Course"}}},
        "result": {"completion": true, "duration": format!("PT{minutes}M")},
        "timestamp": "2026-03-01T10:00:00+08:00"
    })
}

/// A fresh statement id.
pub(crate) fn new_id() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}
