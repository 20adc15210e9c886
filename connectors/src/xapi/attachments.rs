//! Statements with attachments (xAPI 1.0.3 Part Three §1.5.2; Part Two §2.4.11) and signed
//! statements (Part Two §2.6): a `multipart/mixed` request whose first part holds the
//! statements and whose other parts hold the attachments, each named by its SHA-2 hash; and
//! the same form for a GET with `attachments=true`.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::Value;
use sha2::Digest;
use trainhub_pipeline::NewAttachment;

/// The usage type of a statement's signature.
pub const SIGNATURE: &str = "http://adlnet.gov/expapi/attachments/signature";
const HASH_HEADER: &str = "X-Experience-API-Hash";

/// A `multipart/mixed` request taken apart: the statements' JSON and the attachments.
#[derive(Debug)]
pub struct Mixed {
    /// The first part's content: one statement or an array.
    pub statements: Vec<u8>,
    /// The other parts, by hash.
    pub parts: Vec<NewAttachment>,
}

/// Splits a `multipart/mixed` body (Part Three §1.5.2): the first part is `application/json`,
/// every other part names its hash in `X-Experience-API-Hash` and is sent as binary.
pub fn split(content_type: &str, body: &[u8]) -> Result<Mixed, String> {
    let mut message = format!("Content-Type: {content_type}\r\n\r\n").into_bytes();
    message.extend_from_slice(body);
    let mail = mailparse::parse_mail(&message).map_err(|e| format!("not a multipart body: {e}"))?;
    let mut parts = mail.subparts.iter();
    let first = parts
        .next()
        .ok_or("a multipart/mixed request has the statements as its first part")?;
    if first.ctype.mimetype != "application/json" {
        return Err(format!(
            "the first part is {}, not application/json",
            first.ctype.mimetype
        ));
    }
    let statements = first.get_body_raw().map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for (i, part) in parts.enumerate() {
        let n = i + 2;
        let header = |name: &str| {
            part.headers
                .iter()
                .find(|h| h.get_key().eq_ignore_ascii_case(name))
                .map(|h| h.get_value())
        };
        let hash =
            header(HASH_HEADER).ok_or_else(|| format!("part {n} has no {HASH_HEADER} header"))?;
        let encoding = header("Content-Transfer-Encoding").unwrap_or_default();
        if !encoding.trim().eq_ignore_ascii_case("binary") {
            return Err(format!(
                "part {n} is not sent with Content-Transfer-Encoding: binary"
            ));
        }
        let content = part.get_body_raw().map_err(|e| e.to_string())?;
        let hash = hash.trim().to_ascii_lowercase();
        if digest(&hash, &content).as_deref() != Some(hash.as_str()) {
            return Err(format!("part {n}'s content does not have the hash {hash}"));
        }
        out.push(NewAttachment {
            sha2: hash,
            content_type: part.ctype.mimetype.clone(),
            content,
        });
    }
    Ok(Mixed {
        statements,
        parts: out,
    })
}

/// A multipart body sent as `application/octet-stream` (the Node.js build of `@xapi/xapi`
/// loses its multipart header when it sends a Blob): its boundary is its first line.
pub fn sniffed(content_type: &str, body: &[u8]) -> Option<String> {
    if !content_type.eq_ignore_ascii_case("application/octet-stream") {
        return None;
    }
    let line = body.strip_prefix(b"--")?.split(|b| *b == b'\r').next()?;
    let boundary = std::str::from_utf8(line).ok()?;
    let plain = !boundary.is_empty()
        && boundary.len() <= 70
        && boundary
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"'()+_,-./:=?".contains(&b));
    plain.then(|| format!("multipart/mixed; boundary=\"{boundary}\""))
}

/// The SHA-2 of `content` with the length of `like` (224, 256, 384 or 512 bits), hex.
fn digest(like: &str, content: &[u8]) -> Option<String> {
    Some(match like.len() {
        56 => hex::encode(sha2::Sha224::digest(content)),
        64 => hex::encode(sha2::Sha256::digest(content)),
        96 => hex::encode(sha2::Sha384::digest(content)),
        128 => hex::encode(sha2::Sha512::digest(content)),
        _ => return None,
    })
}

/// The attachments `statement` names: (sha2, whether it has a fileUrl).
pub fn named(statement: &Value) -> Vec<(String, bool)> {
    let list = statement.get("attachments").and_then(Value::as_array);
    list.into_iter()
        .flatten()
        .filter_map(|a| {
            let sha2 = a.get("sha2")?.as_str()?.to_ascii_lowercase();
            Some((sha2, a.get("fileUrl").is_some()))
        })
        .collect()
}

/// Matches `parts` to the `statements`' attachments: each attachment without a `fileUrl` has
/// its part, and each part is named by some attachment (Part Three §1.5.2). Returns the parts
/// each statement keeps.
pub fn matched(
    statements: &[Value],
    parts: &[NewAttachment],
) -> Result<Vec<Vec<NewAttachment>>, String> {
    let mut used = vec![false; parts.len()];
    let mut out = Vec::new();
    for s in statements {
        let mut own = Vec::new();
        for (sha2, has_url) in named(s) {
            match parts.iter().position(|p| p.sha2 == sha2) {
                Some(i) => {
                    used[i] = true;
                    own.push(parts[i].clone());
                }
                None if has_url => {}
                None => {
                    return Err(format!(
                        "attachment {sha2} has neither a part nor a fileUrl"
                    ))
                }
            }
        }
        out.push(own);
    }
    if let Some(i) = used.iter().position(|u| !u) {
        return Err(format!(
            "part {} ({}) belongs to no attachment of the statements",
            i + 2,
            parts[i].sha2
        ));
    }
    Ok(out)
}

/// Checks a signed statement (Part Two §2.6): the signature attachment's part is a JWS with
/// RS256, RS384 or RS512 whose payload is the statement as it was before it was signed and,
/// when the JWS carries its certificate (`x5c`), whose signature that certificate verifies.
pub fn check_signature(statement: &Value, parts: &[NewAttachment]) -> Result<(), String> {
    let list = statement.get("attachments").and_then(Value::as_array);
    let Some(sig) = list
        .into_iter()
        .flatten()
        .find(|a| a.get("usageType").and_then(Value::as_str) == Some(SIGNATURE))
    else {
        return Ok(());
    };
    if sig.get("contentType").and_then(Value::as_str) != Some("application/octet-stream") {
        return Err("a signature attachment's contentType is application/octet-stream".into());
    }
    let sha2 = sig
        .get("sha2")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_ascii_lowercase();
    let part = parts
        .iter()
        .find(|p| p.sha2 == sha2)
        .ok_or("the signature has no part")?;
    let jws = std::str::from_utf8(&part.content)
        .map_err(|_| "the signature is not a JWS")?
        .trim();
    let [header, payload, signature] = jws.split('.').collect::<Vec<_>>()[..] else {
        return Err("the signature is not a JWS in compact form".into());
    };
    let decode = |s: &str| {
        URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| "the signature is not a JWS in compact form")
    };
    let header: Value =
        serde_json::from_slice(&decode(header)?).map_err(|_| "the JWS header is not JSON")?;
    let signed: Value =
        serde_json::from_slice(&decode(payload)?).map_err(|_| "the JWS payload is not JSON")?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let algorithm: &'static ring::signature::RsaParameters = match alg {
        "RS256" => &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        "RS384" => &ring::signature::RSA_PKCS1_2048_8192_SHA384,
        "RS512" => &ring::signature::RSA_PKCS1_2048_8192_SHA512,
        other => {
            return Err(format!(
                "the signature's algorithm is `{other}`, not RS256, RS384 or RS512"
            ))
        }
    };
    if !is_payload_of(statement, &signed) {
        return Err("the signature's payload is not this statement".into());
    }
    let Some(cert) = header.pointer("/x5c/0").and_then(Value::as_str) else {
        return Ok(());
    };
    let der = STANDARD
        .decode(cert)
        .map_err(|_| "the JWS x5c certificate is not base64")?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|_| "the JWS x5c certificate does not parse")?;
    let key = ring::signature::UnparsedPublicKey::new(
        algorithm,
        cert.public_key().subject_public_key.data.to_vec(),
    );
    let message = jws.rsplit_once('.').map(|(m, _)| m).unwrap_or_default();
    key.verify(message.as_bytes(), &decode(signature)?)
        .map_err(|_| "the signature does not verify with the certificate in x5c".into())
}

/// Whether `signed` (a JWS payload) is `statement` as it was before it was signed: compared
/// without the signature attachment, what the LRS sets, and an id the signer did not have.
fn is_payload_of(statement: &Value, signed: &Value) -> bool {
    let mut s = super::lrs::comparable(statement);
    if let Some(map) = s.as_object_mut() {
        if let Some(list) = map.get_mut("attachments").and_then(Value::as_array_mut) {
            list.retain(|a| a.get("usageType").and_then(Value::as_str) != Some(SIGNATURE));
            if list.is_empty() {
                map.remove("attachments");
            }
        }
        if signed.get("id").is_none() {
            map.remove("id");
        }
    }
    s == super::lrs::comparable(signed)
}

/// A `multipart/mixed` answer: `json` first, then each attachment once.
pub fn mixed(json: &[u8], attachments: &[NewAttachment]) -> (String, Vec<u8>) {
    let boundary = format!("trainhub-{}", hex::encode(rand::random::<[u8; 12]>()));
    let mut body = Vec::new();
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Type: application/json\r\n\r\n").as_bytes(),
    );
    body.extend_from_slice(json);
    for a in attachments {
        body.extend_from_slice(
            format!(
                "\r\n--{boundary}\r\nContent-Type: {}\r\nContent-Transfer-Encoding: binary\r\n{HASH_HEADER}: {}\r\n\r\n",
                a.content_type, a.sha2
            )
            .as_bytes(),
        );
        body.extend_from_slice(&a.content);
    }
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/mixed; boundary={boundary}"), body)
}
