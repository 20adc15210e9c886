//! Statements with attachments and signed statements (xAPI 1.0.3 Part Three §1.5.2, Part Two
//! §2.6), raw HTTP: an attachment's content is kept and returned with `attachments=true`; a
//! part whose hash does not match, a missing part or a part nobody names is refused; a signed
//! statement is accepted when its JWS payload is the statement and its certificate verifies
//! the signature, and refused when either is tampered with.

use super::{new_id, statement, Lrs};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};
use trainhub_tests::Backend;

const BOUNDARY: &str = "trainhub-test-boundary-7f3a";
const SIGNATURE: &str = "http://adlnet.gov/expapi/attachments/signature";

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A `multipart/mixed` body: the statements, then each part with the hash it is sent under.
fn mixed(statements: &Value, parts: &[(&str, &str, &[u8])]) -> Vec<u8> {
    let mut body =
        format!("--{BOUNDARY}\r\nContent-Type: application/json\r\n\r\n{statements}").into_bytes();
    for (content_type, hash, content) in parts {
        body.extend_from_slice(
            format!(
                "\r\n--{BOUNDARY}\r\nContent-Type: {content_type}\r\nContent-Transfer-Encoding: binary\r\n\
                 X-Experience-API-Hash: {hash}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(content);
    }
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

async fn post_mixed(lrs: &Lrs, body: &[u8]) -> super::Answer {
    let ct = format!("multipart/mixed; boundary={BOUNDARY}");
    lrs.call("POST", "/xapi/statements", &[], &ct, body).await
}

fn attachment(usage: &str, content_type: &str, content: &[u8]) -> Value {
    json!({"usageType": usage, "display": {"zh-CN": "附件"}, "contentType": content_type,
        "length": content.len(), "sha2": sha256(content)})
}

/// An RSA key and a self-signed certificate made by `openssl`: (key file, certificate DER).
fn key_and_certificate(dir: &std::path::Path) -> (std::path::PathBuf, Vec<u8>) {
    let (key, cert) = (dir.join("key.pem"), dir.join("cert.der"));
    let pem = dir.join("cert.pem");
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=mooc.example.cn",
        "-days",
        "2",
        "-keyout",
        key.to_str().unwrap(),
        "-out",
        pem.to_str().unwrap(),
    ]);
    run(&[
        "x509",
        "-in",
        pem.to_str().unwrap(),
        "-outform",
        "DER",
        "-out",
        cert.to_str().unwrap(),
    ]);
    (key, std::fs::read(cert).unwrap())
}

/// A JWS in compact form over `payload`, RS256 with `key`, carrying `cert` in `x5c`.
fn jws(
    dir: &std::path::Path,
    key: &std::path::Path,
    cert: &[u8],
    alg: &str,
    payload: &Value,
) -> String {
    let header = json!({"alg": alg, "x5c": [STANDARD.encode(cert)]});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    );
    let (message, signature) = (dir.join("input"), dir.join("signature"));
    std::fs::write(&message, &input).unwrap();
    let out = std::process::Command::new("openssl")
        .args([
            "dgst",
            "-sha256",
            "-sign",
            key.to_str().unwrap(),
            "-out",
            signature.to_str().unwrap(),
            message.to_str().unwrap(),
        ])
        .output()
        .expect("openssl runs");
    assert!(out.status.success());
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(std::fs::read(signature).unwrap())
    )
}

/// `unsigned` with its signature attachment, and the body that sends them.
fn signed(unsigned: &Value, token: &str) -> Vec<u8> {
    let mut s = unsigned.clone();
    s["attachments"] = json!([attachment(
        SIGNATURE,
        "application/octet-stream",
        token.as_bytes()
    )]);
    let hash = sha256(token.as_bytes());
    mixed(&s, &[("application/octet-stream", &hash, token.as_bytes())])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_are_kept_and_returned_and_their_hashes_checked() {
    let Some(lrs) = Lrs::start(Backend::Postgres).await else {
        return;
    };
    let content = "结业证书 №42 — binary follows: \u{0}\u{1}\u{2}".as_bytes();
    let id = new_id();
    let mut s = statement(&id, "u1", "completed", "https://mooc.example.cn/c1", 30);
    s["attachments"] = json!([attachment(
        "https://mooc.example.cn/usage/certificate",
        "application/pdf",
        content
    )]);
    let hash = sha256(content);
    let answer = post_mixed(&lrs, &mixed(&s, &[("application/pdf", &hash, content)])).await;
    assert_eq!(answer.status, 200, "{}", answer.text());

    let back = lrs
        .get(&format!("?statementId={id}&attachments=true"))
        .await;
    assert_eq!(back.status, 200);
    let ct = back.header("Content-Type").unwrap().to_owned();
    assert!(ct.starts_with("multipart/mixed; boundary="), "{ct}");
    assert!(
        back.body.windows(content.len()).any(|w| w == content),
        "the content comes back"
    );
    assert!(back
        .text()
        .contains(&format!("X-Experience-API-Hash: {hash}")));
    let plain = lrs.get(&format!("?statementId={id}")).await;
    assert_eq!(plain.header("Content-Type"), Some("application/json"));

    // A part whose content does not have its hash; a missing part; a part nobody names.
    let mut other = statement(
        &new_id(),
        "u1",
        "completed",
        "https://mooc.example.cn/c2",
        30,
    );
    other["attachments"] = s["attachments"].clone();
    let wrong = post_mixed(
        &lrs,
        &mixed(&other, &[("application/pdf", &hash, b"other bytes")]),
    )
    .await;
    assert_eq!(wrong.status, 400, "{}", wrong.text());
    let missing = lrs.post(&other).await;
    assert_eq!(missing.status, 400, "{}", missing.text());
    let plain_statement = statement(
        &new_id(),
        "u1",
        "completed",
        "https://mooc.example.cn/c3",
        30,
    );
    let stray = post_mixed(
        &lrs,
        &mixed(&plain_statement, &[("application/pdf", &hash, content)]),
    )
    .await;
    assert_eq!(stray.status, 400, "{}", stray.text());
    let no_hash = format!(
        "--{BOUNDARY}\r\nContent-Type: application/json\r\n\r\n{other}\r\n--{BOUNDARY}\r\n\
         Content-Type: application/pdf\r\nContent-Transfer-Encoding: binary\r\n\r\nx\r\n--{BOUNDARY}--\r\n"
    );
    assert_eq!(post_mixed(&lrs, no_hash.as_bytes()).await.status, 400);
    assert_eq!(lrs.stored().await, 1);
    assert_eq!(lrs.letters().await, 0);
    lrs.hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_statements_are_verified_and_tampering_refused() {
    let Some(lrs) = Lrs::start(Backend::Sqlite).await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (key, cert) = key_and_certificate(dir.path());

    let unsigned = statement(
        &new_id(),
        "u1",
        "completed",
        "https://mooc.example.cn/c1",
        30,
    );
    let token = jws(dir.path(), &key, &cert, "RS256", &unsigned);
    let answer = post_mixed(&lrs, &signed(&unsigned, &token)).await;
    assert_eq!(answer.status, 200, "a valid signature: {}", answer.text());
    let id = unsigned["id"].as_str().unwrap();
    let back = lrs
        .get(&format!("?statementId={id}&attachments=true"))
        .await;
    assert!(back.text().contains(&token), "the signature comes back");

    // The statement changed after it was signed.
    let other = statement(
        &new_id(),
        "u1",
        "completed",
        "https://mooc.example.cn/c2",
        30,
    );
    let token = jws(dir.path(), &key, &cert, "RS256", &other);
    let mut changed = other.clone();
    changed["result"]["duration"] = json!("PT300M");
    let answer = post_mixed(&lrs, &signed(&changed, &token)).await;
    assert_eq!(answer.status, 400);
    assert!(answer.text().contains("payload"), "{}", answer.text());

    // The signature bytes altered.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut sig = URL_SAFE_NO_PAD.decode(&parts[2]).unwrap();
    sig[10] ^= 0xff;
    parts[2] = URL_SAFE_NO_PAD.encode(sig);
    let answer = post_mixed(&lrs, &signed(&other, &parts.join("."))).await;
    assert_eq!(answer.status, 400);
    assert!(
        answer.text().contains("does not verify"),
        "{}",
        answer.text()
    );

    // An algorithm xAPI does not allow, and a signature that is not a JWS.
    let hs = jws(dir.path(), &key, &cert, "HS256", &other);
    assert_eq!(post_mixed(&lrs, &signed(&other, &hs)).await.status, 400);
    assert_eq!(
        post_mixed(&lrs, &signed(&other, "not a jws")).await.status,
        400
    );
    assert_eq!(
        lrs.stored().await,
        1,
        "only the statement signed as sent is stored"
    );
    assert_eq!(lrs.letters().await, 0);
    lrs.hub.stop().await;
}
