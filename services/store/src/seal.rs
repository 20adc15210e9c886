//! Personal data at rest (DESIGN §3, §8): every column that can hold a national ID or a name —
//! the raw record log's bytes, current record bodies, dead-letter payloads, the dossier state's
//! name and facts, xAPI statements — is sealed with XChaCha20-Poly1305 under the
//! active key of a [`Keyring`]. Persons are found through the `person_key` blind index, never
//! by decrypting.
//!
//! A sealed value names the key that sealed it, so a keyring may hold several keys: the first
//! seals, all of them open. Rotating is: put a new key first, keep the old ones until
//! [`crate::Store::rekey`] has resealed every row, then drop them. The column a value belongs
//! to is its associated data: a value copied into another column does not open.
//!
//! Layout of a sealed value: [`MAGIC`], key id length (one byte), key id, 24-byte nonce,
//! ciphertext with its 16-byte tag. Text columns hold [`TEXT_PREFIX`] + base64 of that.

use crate::aead::{DataKey, NONCE};
use crate::pack::{deflate, inflate};
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use std::collections::BTreeMap;

/// First bytes of a sealed binary value. No protobuf message starts with a zero byte (field
/// number 0 does not exist) and no JSON text does, so a value without it predates encryption.
pub const MAGIC: &[u8; 4] = b"\0TH1";
/// First characters of a sealed text value.
pub const TEXT_PREFIX: &str = "th1:";
/// First characters of a sealed text value whose text was compressed (deflate) before it was
/// sealed — compress, then seal: sealed bytes do not compress. Used for large values (a
/// person's facts). Base64 has no `:`, so it never reads as a plain sealed value.
pub const PACKED_PREFIX: &str = "th1:z:";

/// The columns whose values are sealed, as `table.column`: each is the associated data of its
/// values.
pub mod column {
    /// `raw_log.bytes`: records as received (stores before migration 0018).
    pub const RAW: &str = "raw_log.bytes";
    /// `raw_batches.packed`: a batch's records as received, framed and packed.
    pub const RAW_BATCH: &str = "raw_batches.packed";
    /// `source_records.body`: the current version's canonical body, as text (stores written
    /// before migration 0015; `trainhub migrate --rewrite` moves them to [`CONTENT`]).
    pub const BODY: &str = "source_records.body";
    /// `source_records.content`: the current version's canonical body, packed (compressed,
    /// then sealed) as bytes.
    pub const CONTENT: &str = "source_records.content";
    /// A person's record body not (yet) held unchanged in its person's state, packed
    /// (migration 0022).
    pub const PENDING: &str = "pending_bodies.content";
    /// `dead_letters.payload`: refused records as received.
    pub const DEAD_LETTER: &str = "dead_letters.payload";
    /// `dead_letters.headers`: where a refused record came from (transport headers, the file
    /// and row of an import — a file may be named after its person).
    pub const DEAD_LETTER_HEADERS: &str = "dead_letters.headers";
    /// `dossier_state.name`.
    pub const NAME: &str = "dossier_state.name";
    /// `dossier_state.facts`: a person's current records, as text (before migration 0015).
    pub const FACTS: &str = "dossier_state.facts";
    /// `dossier_state.packed`: a person's current records, packed as bytes.
    pub const PACKED: &str = "dossier_state.packed";
    /// `xapi_statements.statement`: xAPI statements as received.
    pub const XAPI: &str = "xapi_statements.statement";
    /// `xapi_attachments.content`: statements' attachments (a certificate names its holder).
    pub const XAPI_ATTACHMENT: &str = "xapi_attachments.content";
    /// `review_conflicts.sides`: identity conflicts with every side (names, birth dates).
    pub const REVIEW: &str = "review_conflicts.sides";
}

/// Why a keyring could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct KeyringError(pub String);

/// Why a stored value could not be opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OpenError {
    /// Sealed under a key the keyring does not hold.
    #[error(
        "sealed under key {0:?}, which the keyring does not hold (add it back, or rekey with it)"
    )]
    UnknownKey(String),
    /// The value is shorter than its header says, or its tag does not verify: altered data,
    /// a value moved from another column, or a different key under the same id.
    #[error("does not open under key {0:?}: altered, moved from another column, or a different key with that id")]
    Damaged(String),
}

/// Data keys by id; the first one seals.
#[derive(Clone)]
pub struct Keyring {
    active: String,
    keys: BTreeMap<String, DataKey>,
    /// Per key id, a check value of the key (a hash, never the key): what the store records to
    /// tell the same id under another key.
    checks: BTreeMap<String, String>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("active", &self.active)
            .field("ids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Keyring {
    /// Reads a keyring: entries `id:hex` (a 32-byte key as 64 hex digits), one per line or
    /// separated by commas; `#` starts a comment. The first entry seals.
    pub fn parse(text: &str) -> Result<Keyring, KeyringError> {
        let mut active = None;
        let mut keys = BTreeMap::new();
        let mut checks = BTreeMap::new();
        let entries = text
            .lines()
            .map(|l| l.split('#').next().unwrap_or_default())
            .flat_map(|l| l.split(','))
            .map(str::trim)
            .filter(|e| !e.is_empty());
        for (n, entry) in entries.enumerate() {
            let n = n + 1;
            let (id, hex_key) = entry.split_once(':').ok_or_else(|| {
                KeyringError(format!(
                    "entry {n} is not `id:hex` (a key id, a colon, 64 hex digits)"
                ))
            })?;
            let (id, hex_key) = (id.trim(), hex_key.trim());
            if id.is_empty()
                || id.len() > 32
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(KeyringError(format!(
                    "entry {n}: key id {id:?} must be 1–32 letters, digits, `-` or `_`"
                )));
            }
            let key = hex::decode(hex_key)
                .ok()
                .filter(|k| k.len() == 32)
                .ok_or_else(|| {
                    KeyringError(format!(
                        "entry {n} (key {id:?}): the key must be 64 hex digits (32 bytes)"
                    ))
                })?;
            if keys
                .insert(id.to_owned(), DataKey::from_slice(&key).expect("32 bytes"))
                .is_some()
            {
                return Err(KeyringError(format!(
                    "entry {n}: key id {id:?} appears twice"
                )));
            }
            checks.insert(id.to_owned(), check_value("data key", &key));
            active.get_or_insert_with(|| id.to_owned());
        }
        let active = active.ok_or_else(|| KeyringError("the keyring holds no key".into()))?;
        Ok(Keyring {
            active,
            keys,
            checks,
        })
    }

    /// A keyring of one fresh random key named `id` (tests, and the keyring generated for an
    /// embedded hub's first start).
    pub fn generate(id: &str) -> Keyring {
        Keyring::parse(&Keyring::new_entry(id)).expect("a generated entry parses")
    }

    /// A fresh `id:hex` entry with a random key, as a keyring file holds it.
    pub fn new_entry(id: &str) -> String {
        let key: [u8; 32] = rand::random();
        format!("{id}:{}", hex::encode(key))
    }

    /// The id of the key that seals.
    pub fn active(&self) -> &str {
        &self.active
    }

    /// Each key's id and check value.
    pub fn checks(&self) -> impl Iterator<Item = (&str, &str)> {
        self.checks.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The ids of every key held.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// Seals `plain` as a value of `column` under the active key.
    pub fn seal(&self, column: &str, plain: &[u8]) -> Vec<u8> {
        let key = &self.keys[&self.active];
        let nonce: [u8; NONCE] = rand::random();
        let id = self.active.as_bytes();
        let mut out = Vec::with_capacity(MAGIC.len() + 1 + id.len() + NONCE + plain.len() + 16);
        out.extend_from_slice(MAGIC);
        out.push(id.len() as u8);
        out.extend_from_slice(id);
        out.extend_from_slice(&nonce);
        key.seal_into(&nonce, column.as_bytes(), plain, &mut out);
        out
    }

    /// Opens a value of `column`. A value without [`MAGIC`] was stored before encryption and
    /// is returned as it is (`rekey` seals such rows).
    pub fn open(&self, column: &str, stored: &[u8]) -> Result<Vec<u8>, OpenError> {
        let Some(id) = sealed_by(stored) else {
            return Ok(stored.to_vec());
        };
        let key = self
            .keys
            .get(id)
            .ok_or_else(|| OpenError::UnknownKey(id.to_owned()))?;
        let rest = &stored[MAGIC.len() + 1 + id.len()..];
        if rest.len() < NONCE {
            return Err(OpenError::Damaged(id.to_owned()));
        }
        let (nonce, sealed) = rest.split_at(NONCE);
        let nonce = nonce.try_into().expect("NONCE bytes");
        key.open(nonce, column.as_bytes(), sealed)
            .ok_or_else(|| OpenError::Damaged(id.to_owned()))
    }

    /// Seals text for a text column: [`TEXT_PREFIX`] + base64.
    pub fn seal_text(&self, column: &str, plain: &str) -> String {
        format!(
            "{TEXT_PREFIX}{}",
            STANDARD_NO_PAD.encode(self.seal(column, plain.as_bytes()))
        )
    }

    /// Seals text for a text column, compressed first: [`PACKED_PREFIX`] + base64.
    pub fn seal_text_packed(&self, column: &str, plain: &str) -> String {
        format!(
            "{PACKED_PREFIX}{}",
            STANDARD_NO_PAD.encode(self.seal(column, &deflate(plain.as_bytes())))
        )
    }

    /// Compresses `plain`, then seals it as a value of the binary `column`: the form of the
    /// columns whose values are always packed ([`column::CONTENT`], [`column::PACKED`]).
    pub fn seal_packed(&self, column: &str, plain: &[u8]) -> Vec<u8> {
        self.seal(column, &deflate(plain))
    }

    /// Opens a value sealed by [`Keyring::seal_packed`].
    pub fn open_packed(&self, column: &str, stored: &[u8]) -> Result<Vec<u8>, OpenError> {
        let sealed_by = sealed_by(stored).unwrap_or_default().to_owned();
        inflate(&self.open(column, stored)?).ok_or(OpenError::Damaged(sealed_by))
    }

    /// Opens a text column's value, sealed plain or packed; text without [`TEXT_PREFIX`]
    /// predates encryption.
    pub fn open_text(&self, column: &str, stored: &str) -> Result<String, OpenError> {
        let damaged = || OpenError::Damaged(String::new());
        let plain = if let Some(encoded) = stored.strip_prefix(PACKED_PREFIX) {
            inflate(&self.open(column, &sealed_text(encoded)?)?).ok_or_else(damaged)?
        } else if let Some(encoded) = stored.strip_prefix(TEXT_PREFIX) {
            self.open(column, &sealed_text(encoded)?)?
        } else {
            return Ok(stored.to_owned());
        };
        String::from_utf8(plain).map_err(|_| damaged())
    }

    /// The stored text value sealed again under the active key, in the same form (packed
    /// stays packed, without inflating it).
    pub fn reseal_text(&self, column: &str, stored: &str) -> Result<String, OpenError> {
        if let Some(encoded) = stored.strip_prefix(PACKED_PREFIX) {
            let packed = self.open(column, &sealed_text(encoded)?)?;
            return Ok(format!(
                "{PACKED_PREFIX}{}",
                STANDARD_NO_PAD.encode(self.seal(column, &packed))
            ));
        }
        Ok(self.seal_text(column, &self.open_text(column, stored)?))
    }

    /// `stored` itself when it is sealed under the active key and opens to `plain`, else
    /// `plain` sealed afresh. Writing back the same bytes leaves an indexed column unchanged,
    /// so the database can update the row in place.
    pub fn keep_or_seal_text(&self, column: &str, stored: Option<&str>, plain: &str) -> String {
        match stored {
            Some(s)
                if self.is_current_text(s)
                    && self.open_text(column, s).is_ok_and(|open| open == plain) =>
            {
                s.to_owned()
            }
            _ => self.seal_text(column, plain),
        }
    }

    /// Whether a stored binary value is sealed under the active key (nothing for `rekey` to do).
    pub fn is_current(&self, stored: &[u8]) -> bool {
        sealed_by(stored) == Some(self.active.as_str())
    }

    /// Whether a stored text value is sealed under the active key.
    pub fn is_current_text(&self, stored: &str) -> bool {
        stored
            .strip_prefix(PACKED_PREFIX)
            .or_else(|| stored.strip_prefix(TEXT_PREFIX))
            .and_then(|e| STANDARD_NO_PAD.decode(e).ok())
            .is_some_and(|s| self.is_current(&s))
    }
}

/// The sealed bytes a text value's base64 holds; damaged unless they carry a sealed header.
fn sealed_text(encoded: &str) -> Result<Vec<u8>, OpenError> {
    let damaged = || OpenError::Damaged(String::new());
    let sealed = STANDARD_NO_PAD.decode(encoded).map_err(|_| damaged())?;
    if sealed_by(&sealed).is_none() {
        return Err(damaged());
    }
    Ok(sealed)
}

/// The id of the key a stored value is sealed under; `None` for a value stored before
/// encryption (or too short to hold a header).
fn sealed_by(stored: &[u8]) -> Option<&str> {
    let rest = stored.strip_prefix(MAGIC.as_slice())?;
    let (&len, rest) = rest.split_first()?;
    let id = rest.get(..usize::from(len))?;
    std::str::from_utf8(id).ok()
}

/// A check value of a secret: SHA-256 over a fixed label, the secret's kind and the secret,
/// hex. It tells whether two secrets are the same without revealing either.
pub fn check_value(kind: &str, secret: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"trainhub check value v1\0");
    h.update(kind.as_bytes());
    h.update([0u8]);
    h.update(secret);
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unchanged_name_keeps_its_seal_and_anything_else_is_sealed_afresh() {
        let old_entry = Keyring::new_entry("k1");
        let old = Keyring::parse(&old_entry).unwrap();
        let keys = Keyring::parse(&format!("{}\n{old_entry}\n", Keyring::new_entry("k2"))).unwrap();
        let stored = keys.seal_text(column::NAME, "张三");
        let kept = keys.keep_or_seal_text(column::NAME, Some(&stored), "张三");
        assert_eq!(kept, stored);
        for (stored, plain) in [
            (Some(stored.as_str()), "李四"),
            // Sealed under a key that no longer seals, or never sealed: sealed afresh.
            (Some(&old.seal_text(column::NAME, "张三")), "张三"),
            (Some("张三"), "张三"),
            (None, "张三"),
        ] {
            let fresh = keys.keep_or_seal_text(column::NAME, stored, plain);
            assert_ne!(Some(fresh.as_str()), stored);
            assert!(keys.is_current_text(&fresh));
            assert_eq!(keys.open_text(column::NAME, &fresh).unwrap(), plain);
        }
    }

    #[test]
    fn sealed_values_open_and_hide_the_plain_text() {
        let keys = Keyring::generate("k1");
        let plain = "张三 110105198103150018".as_bytes();
        let sealed = keys.seal(column::RAW, plain);
        assert!(!sealed.windows(plain.len()).any(|w| w == plain));
        assert_eq!(keys.open(column::RAW, &sealed).unwrap(), plain);
        // Every seal draws a new nonce.
        assert_ne!(sealed, keys.seal(column::RAW, plain));
        let text = keys.seal_text(column::NAME, "张三");
        assert!(text.starts_with(TEXT_PREFIX) && !text.contains("张三"));
        assert_eq!(keys.open_text(column::NAME, &text).unwrap(), "张三");
    }

    #[test]
    fn a_value_opens_only_in_its_column_and_unaltered() {
        let keys = Keyring::generate("k1");
        let sealed = keys.seal(column::RAW, b"record");
        assert_eq!(
            keys.open(column::DEAD_LETTER, &sealed),
            Err(OpenError::Damaged("k1".into()))
        );
        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert!(keys.open(column::RAW, &altered).is_err());
        assert!(keys.open(column::RAW, &sealed[..MAGIC.len() + 5]).is_err());
        assert!(keys.open_text(column::NAME, "th1:!!").is_err());
    }

    #[test]
    fn rotation_keeps_old_values_readable_until_their_key_is_dropped() {
        let old_entry = Keyring::new_entry("2025");
        let old = Keyring::parse(&old_entry).unwrap();
        let sealed = old.seal(column::BODY, b"{}");
        let new_entry = Keyring::new_entry("2026");
        let rotated = Keyring::parse(&format!("{new_entry}\n# retired\n{old_entry}\n")).unwrap();
        assert_eq!(rotated.active(), "2026");
        assert_eq!(rotated.open(column::BODY, &sealed).unwrap(), b"{}");
        assert!(!rotated.is_current(&sealed));
        let resealed = rotated.seal(column::BODY, b"{}");
        assert!(rotated.is_current(&resealed));
        let only_new = Keyring::parse(&new_entry).unwrap();
        assert_eq!(
            only_new.open(column::BODY, &sealed),
            Err(OpenError::UnknownKey("2025".into()))
        );
        assert_eq!(only_new.open(column::BODY, &resealed).unwrap(), b"{}");
    }

    #[test]
    fn packed_values_are_smaller_open_like_the_others_and_reseal_packed() {
        let old_entry = Keyring::new_entry("2025");
        let old = Keyring::parse(&old_entry).unwrap();
        let facts = "{\"system\":\"hr\",\"kind\":\"enrollment\",\"name\":\"张三\"},".repeat(50);
        let packed = old.seal_text_packed(column::FACTS, &facts);
        assert!(packed.starts_with(PACKED_PREFIX) && packed.starts_with(TEXT_PREFIX));
        assert!(
            packed.len() * 5 < old.seal_text(column::FACTS, &facts).len(),
            "compressed"
        );
        assert!(!packed.contains("张三"));
        assert_eq!(old.open_text(column::FACTS, &packed).unwrap(), facts);
        assert!(old.is_current_text(&packed));
        // Another column, or altered bytes, do not open.
        assert!(old.open_text(column::NAME, &packed).is_err());
        assert!(old.open_text(column::FACTS, "th1:z:!!").is_err());
        // Rotation reseals it packed, without the old key afterwards.
        let new_entry = Keyring::new_entry("2026");
        let rotated = Keyring::parse(&format!("{new_entry}\n{old_entry}")).unwrap();
        assert!(!rotated.is_current_text(&packed));
        let resealed = rotated.reseal_text(column::FACTS, &packed).unwrap();
        assert!(resealed.starts_with(PACKED_PREFIX) && rotated.is_current_text(&resealed));
        let only_new = Keyring::parse(&new_entry).unwrap();
        assert_eq!(only_new.open_text(column::FACTS, &resealed).unwrap(), facts);
        // A plain sealed value reseals plain.
        let plain = old.seal_text(column::NAME, "张三");
        let resealed = rotated.reseal_text(column::NAME, &plain).unwrap();
        assert!(!resealed.starts_with(PACKED_PREFIX));
        assert_eq!(only_new.open_text(column::NAME, &resealed).unwrap(), "张三");
    }

    #[test]
    fn packed_bytes_are_smaller_than_packed_text_and_open_only_in_their_column() {
        let keys = Keyring::generate("k1");
        let facts = "{\"system\":\"hr\",\"kind\":\"enrollment\",\"name\":\"张三\"},".repeat(50);
        let bytes = keys.seal_packed(column::PACKED, facts.as_bytes());
        let text = keys.seal_text_packed(column::FACTS, &facts);
        // Base64 costs a third: the bytes are the sealed value itself.
        assert!(bytes.len() * 4 <= (text.len() - PACKED_PREFIX.len()) * 3 + 3);
        assert!(keys.is_current(&bytes));
        assert_eq!(
            keys.open_packed(column::PACKED, &bytes).unwrap(),
            facts.as_bytes()
        );
        assert!(keys.open_packed(column::CONTENT, &bytes).is_err());
        let mut altered = bytes.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert!(keys.open_packed(column::PACKED, &altered).is_err());
        assert!(
            keys.open_packed(column::PACKED, b"{}").is_err(),
            "not packed"
        );
    }

    #[test]
    fn values_from_before_encryption_read_as_they_are() {
        let keys = Keyring::generate("k1");
        assert_eq!(keys.open(column::RAW, b"{\"a\":1}").unwrap(), b"{\"a\":1}");
        assert_eq!(keys.open_text(column::NAME, "李四").unwrap(), "李四");
        assert!(!keys.is_current(b"{}") && !keys.is_current_text("李四"));
    }

    #[test]
    fn bad_keyrings_say_what_is_wrong() {
        let cases = [
            ("", "holds no key"),
            ("# only a comment", "holds no key"),
            ("k1", "entry 1 is not `id:hex`"),
            ("k1:abcd", "64 hex digits"),
            ("bad id:00", "key id \"bad id\""),
        ];
        for (text, why) in cases {
            let err = Keyring::parse(text).unwrap_err();
            assert!(err.0.contains(why), "{text:?}: {err}");
        }
        let entry = Keyring::new_entry("k1");
        let err = Keyring::parse(&format!("{entry},{entry}")).unwrap_err();
        assert!(err.0.contains("appears twice"), "{err}");
        // Key material never shows in Debug output.
        let dbg = format!("{:?}", Keyring::parse(&entry).unwrap());
        assert!(!dbg.contains(&entry[3..]), "{dbg}");
    }
}
