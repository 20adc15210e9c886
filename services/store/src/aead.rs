//! XChaCha20-Poly1305, the cipher of sealed values: HChaCha20 derives a subkey from the key and
//! the first 16 bytes of the 24-byte nonce, and ChaCha20-Poly1305 (RFC 8439) seals under that
//! subkey with the nonce's last 8 bytes behind four zero bytes. This is the construction of
//! the `chacha20poly1305` crate's `XChaCha20Poly1305`, which sealed every value before; the
//! second step runs on `ring`'s ChaCha20-Poly1305, which opens a name of a few dozen bytes in
//! a fifth of the time (0.47 against 2.2 µs): coverage opens the name of every RED person.
//! The unit tests below hold the two to the same bytes both ways.

use chacha20::cipher::consts::U10;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};

/// Length of an XChaCha20-Poly1305 nonce.
pub const NONCE: usize = 24;

/// A 32-byte data key.
#[derive(Clone)]
pub struct DataKey([u8; 32]);

impl DataKey {
    /// The key of `bytes`, when there are 32 of them.
    pub fn from_slice(bytes: &[u8]) -> Option<DataKey> {
        bytes.try_into().ok().map(DataKey)
    }

    /// The ChaCha20-Poly1305 key and nonce for an XChaCha20 `nonce`.
    fn derive(&self, nonce: &[u8; NONCE]) -> (LessSafeKey, Nonce) {
        let subkey = chacha20::hchacha::<U10>((&self.0).into(), nonce[..16].into());
        let key = UnboundKey::new(&CHACHA20_POLY1305, subkey.as_slice())
            .expect("a ChaCha20-Poly1305 key is 32 bytes");
        let mut inner = [0u8; 12];
        inner[4..].copy_from_slice(&nonce[16..]);
        (LessSafeKey::new(key), Nonce::assume_unique_for_key(inner))
    }

    /// Appends `plain` sealed under `nonce` with `aad` to `out`: ciphertext, then the 16-byte
    /// tag.
    pub fn seal_into(&self, nonce: &[u8; NONCE], aad: &[u8], plain: &[u8], out: &mut Vec<u8>) {
        let (key, nonce) = self.derive(nonce);
        let start = out.len();
        out.extend_from_slice(plain);
        let tag = key
            .seal_in_place_separate_tag(nonce, Aad::from(aad), &mut out[start..])
            .expect("ChaCha20-Poly1305 seals any length a database holds");
        out.extend_from_slice(tag.as_ref());
    }

    /// Opens `sealed` (ciphertext and tag) under `nonce` with `aad`; `None` when it does not
    /// authenticate.
    pub fn open(&self, nonce: &[u8; NONCE], aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        let (key, nonce) = self.derive(nonce);
        let mut buf = sealed.to_vec();
        let plain = key
            .open_in_place(nonce, Aad::from(aad), &mut buf)
            .ok()?
            .len();
        buf.truncate(plain);
        Some(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chacha20poly1305::aead::{Aead, KeyInit, Payload};
    use chacha20poly1305::{XChaCha20Poly1305, XNonce};

    /// Values of every length around the block sizes, under random keys and nonces.
    fn cases() -> impl Iterator<Item = ([u8; 32], [u8; NONCE], Vec<u8>)> {
        (0..200usize).chain([1000, 4095, 4096, 70_000]).map(|len| {
            let plain: Vec<u8> = (0..len).map(|_| rand::random()).collect();
            (rand::random(), rand::random(), plain)
        })
    }

    #[test]
    fn opens_what_the_reference_implementation_sealed_and_the_reverse() {
        let aad = b"dossier_state.name";
        for (key, nonce, plain) in cases() {
            let reference = XChaCha20Poly1305::new(&key.into());
            let theirs = reference
                .encrypt(XNonce::from_slice(&nonce), Payload { msg: &plain, aad })
                .unwrap();
            let ours = DataKey::from_slice(&key).unwrap();
            let mut sealed = Vec::new();
            ours.seal_into(&nonce, aad, &plain, &mut sealed);
            assert_eq!(sealed, theirs, "length {}", plain.len());
            assert_eq!(ours.open(&nonce, aad, &theirs).as_ref(), Some(&plain));
            let opened =
                reference.decrypt(XNonce::from_slice(&nonce), Payload { msg: &sealed, aad });
            assert_eq!(opened.as_ref(), Ok(&plain));
        }
    }

    #[test]
    fn refuses_another_column_key_nonce_or_a_changed_byte() {
        let (key, nonce) = (DataKey::from_slice(&[7; 32]).unwrap(), [9; NONCE]);
        let mut sealed = Vec::new();
        key.seal_into(&nonce, b"a.b", b"11010519491231002X", &mut sealed);
        assert!(key.open(&nonce, b"a.b", &sealed).is_some());
        assert!(key.open(&nonce, b"a.c", &sealed).is_none());
        assert!(DataKey::from_slice(&[8; 32])
            .unwrap()
            .open(&nonce, b"a.b", &sealed)
            .is_none());
        let mut other = nonce;
        other[20] ^= 1;
        assert!(key.open(&other, b"a.b", &sealed).is_none());
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x40;
            assert!(key.open(&nonce, b"a.b", &bad).is_none(), "byte {i}");
        }
        assert!(key.open(&nonce, b"a.b", &sealed[..15]).is_none());
        assert!(DataKey::from_slice(&[0; 31]).is_none());
    }
}
