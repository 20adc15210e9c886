//! National IDs (GB 11643) and the `person_key` blind index.

use crate::error::{ReasonCode, Rejection};
use chrono::NaiveDate;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;

/// A validated 18-character resident identity number: check digit and birth date verified,
/// a lower-case `x` normalised to `X`. Its `Debug` output is redacted so it never reaches a log.
#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NationalId(String);

const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK: &[u8; 11] = b"10X98765432";

impl NationalId {
    /// Validates `text` as a GB 11643 ID; `field` names the field in the rejection.
    pub fn parse(field: &str, text: &str) -> Result<Self, Rejection> {
        let text = text.trim();
        if text.is_empty() {
            return Err(Rejection::missing(field));
        }
        let bad = |why: &str| {
            Rejection::invalid(
                ReasonCode::InvalidNationalId,
                field,
                format!("`{field}` is not a valid national ID: {why}"),
            )
        };
        let normalised = text.to_ascii_uppercase();
        let bytes = normalised.as_bytes();
        if bytes.len() != 18 {
            return Err(bad(&format!(
                "expected 18 characters, got {}",
                text.chars().count()
            )));
        }
        if !bytes[..17].iter().all(u8::is_ascii_digit)
            || !(bytes[17].is_ascii_digit() || bytes[17] == b'X')
        {
            return Err(bad("only digits and a final X are allowed"));
        }
        let sum: u32 = bytes[..17]
            .iter()
            .zip(WEIGHTS)
            .map(|(b, w)| u32::from(b - b'0') * w)
            .sum();
        if CHECK[(sum % 11) as usize] != bytes[17] {
            return Err(bad("check digit does not match"));
        }
        let birth = &normalised[6..14];
        if NaiveDate::parse_from_str(birth, "%Y%m%d")
            .ok()
            .filter(|d| d.format("%Y").to_string().as_str() >= "1900")
            .is_none()
        {
            return Err(bad("embedded birth date does not exist"));
        }
        Ok(NationalId(normalised))
    }

    /// The normalised ID. Handle with care: never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The birth date embedded in the ID (positions 7–14).
    pub fn birth_date(&self) -> NaiveDate {
        NaiveDate::parse_from_str(&self.0[6..14], "%Y%m%d").expect("validated in parse")
    }
}

impl fmt::Debug for NationalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NationalId(<redacted>)")
    }
}

impl TryFrom<String> for NationalId {
    type Error = Rejection;
    fn try_from(value: String) -> Result<Self, Rejection> {
        NationalId::parse("national_id", &value)
    }
}

impl From<NationalId> for String {
    fn from(id: NationalId) -> String {
        id.0
    }
}

/// Hex HMAC-SHA256 of a national ID under the hub secret: the only key persons are stored and
/// looked up by.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct PersonKey(String);

impl PersonKey {
    /// Accepts a key as given by a reader (64 lower-case hex digits).
    pub fn parse(field: &str, text: &str) -> Result<Self, Rejection> {
        let text = text.trim().to_ascii_lowercase();
        if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(PersonKey(text))
        } else if text.is_empty() {
            Err(Rejection::missing(field))
        } else {
            Err(Rejection::invalid(
                ReasonCode::OutOfRange,
                field,
                format!("`{field}` must be 64 hex digits"),
            ))
        }
    }

    /// The hex form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PersonKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Derives person keys with the hub secret.
#[derive(Clone)]
pub struct PersonKeyer {
    mac: Hmac<Sha256>,
}

impl PersonKeyer {
    /// A keyer for `secret` (any length; the hub generates 32 random bytes).
    pub fn new(secret: &[u8]) -> Self {
        PersonKeyer {
            mac: Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts any key length"),
        }
    }

    /// A keyed fingerprint of `parts` under the hub secret, for recognising the same bytes
    /// again without keeping them in clear. Labelled and length-prefixed, so it never equals a
    /// person key nor another split of the same bytes.
    pub fn fingerprint(&self, label: &str, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(b"trainhub fingerprint\0");
        mac.update(label.as_bytes());
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// The person key of `id`.
    pub fn key(&self, id: &NationalId) -> PersonKey {
        let mut mac = self.mac.clone();
        mac.update(id.expose().as_bytes());
        PersonKey(hex::encode(mac.finalize().into_bytes()))
    }
}

impl fmt::Debug for PersonKeyer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PersonKeyer(<secret>)")
    }
}

/// Builds a valid ID from a 6-digit region, a birth date and a 3-digit sequence: used by the
/// synthetic data generators and tests.
pub fn make_national_id(region: u32, birth: NaiveDate, seq: u32) -> String {
    let body = format!(
        "{:06}{}{:03}",
        region % 1_000_000,
        birth.format("%Y%m%d"),
        seq % 1000
    );
    let sum: u32 = body
        .bytes()
        .zip(WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    format!("{body}{}", CHECK[(sum % 11) as usize] as char)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_ids_and_normalises_x() {
        // 11010519491231002X is the standard's worked example.
        let id = NationalId::parse("id", "11010519491231002x").unwrap();
        assert_eq!(id.expose(), "11010519491231002X");
        assert_eq!(
            id.birth_date(),
            NaiveDate::from_ymd_opt(1949, 12, 31).unwrap()
        );
        let made = make_national_id(320102, NaiveDate::from_ymd_opt(1980, 2, 29).unwrap(), 7);
        assert!(NationalId::parse("id", &made).is_ok(), "{made}");
    }

    #[test]
    fn rejects_bad_check_digit_length_charset_and_birth_date() {
        let cases = [
            ("110105194912310021", "check digit"),
            ("11010519491231002", "18 characters"),
            ("1101051949123100AX", "digits"),
        ];
        for (text, why) in cases {
            let err = NationalId::parse("person.national_id", text).unwrap_err();
            assert_eq!(err.code, ReasonCode::InvalidNationalId, "{text}");
            assert!(err.message.contains(why), "{text}: {}", err.message);
            assert!(!err.message.contains(text), "the ID must not be echoed");
        }
        // 1981-02-30 with a correct check digit is still refused for its date.
        let impossible = {
            let mut s = make_national_id(110105, NaiveDate::from_ymd_opt(1981, 2, 28).unwrap(), 1);
            s.replace_range(12..14, "30");
            let body = &s[..17];
            let sum: u32 = body
                .bytes()
                .zip(WEIGHTS)
                .map(|(b, w)| u32::from(b - b'0') * w)
                .sum();
            format!("{body}{}", CHECK[(sum % 11) as usize] as char)
        };
        let err = NationalId::parse("id", &impossible).unwrap_err();
        assert!(err.message.contains("birth date"), "{}", err.message);
    }

    #[test]
    fn person_key_is_stable_hex_and_secret_dependent() {
        let id = NationalId::parse("id", "11010519491231002X").unwrap();
        let a = PersonKeyer::new(b"secret-a").key(&id);
        assert_eq!(a, PersonKeyer::new(b"secret-a").key(&id));
        assert_ne!(a, PersonKeyer::new(b"secret-b").key(&id));
        assert_eq!(a.as_str().len(), 64);
        assert!(PersonKey::parse("k", a.as_str()).is_ok());
        assert_eq!(format!("{id:?}"), "NationalId(<redacted>)");
    }
}
