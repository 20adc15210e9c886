//! Compression of packed values — compress, then seal (sealed bytes do not compress): raw
//! deflate at a fast level, primed with [`DICTIONARY`]. Each thread keeps one compressor and
//! one decompressor and resets them between values.

/// What every packed value is compressed against: the field names and common codes of the
/// canonical bodies and of a person's facts (`pack.dict`, most frequent last). A record body
/// is a few hundred bytes, too short to repeat its own field names, so alone it compresses by
/// a fifth; against these it compresses by half. Part of the store's format (migration 0019):
/// a value packed against it does not inflate without it, so the bytes never change. A value
/// packed before it existed never refers to it and inflates the same with it.
const DICTIONARY: &[u8] = include_bytes!("pack.dict");

/// The most a packed value may inflate to: a person's facts are far smaller; a value claiming
/// more is damaged.
const PACKED_LIMIT: u64 = 256 << 20;

/// Values up to this many bytes are deflated at level 1 (see `DEFLATE_SHORT`).
const SHORT: usize = 1024;

thread_local! {
    // A compressor and a decompressor per thread, reset between values: each holds some
    // hundred KiB of tables, which allocating and clearing anew for every record body cost
    // more than compressing it.
    static DEFLATE: std::cell::RefCell<flate2::Compress> =
        std::cell::RefCell::new(flate2::Compress::new(flate2::Compression::new(3), false));
    // Level 1 for short values (a record body): its fixed codes skip building Huffman trees,
    // which for a body of a few hundred bytes is most of the work; it packs a body some 5%
    // larger at well under half the time. Longer values (facts, raw batches) keep level 3,
    // where fixed codes would cost a third more bytes.
    static DEFLATE_SHORT: std::cell::RefCell<flate2::Compress> =
        std::cell::RefCell::new(flate2::Compress::new(flate2::Compression::new(1), false));
    static INFLATE: std::cell::RefCell<flate2::Decompress> =
        std::cell::RefCell::new(flate2::Decompress::new(false));
}

/// Deflate (raw, no header) at a fast level — 1 up to [`SHORT`] bytes, 3 above: the hub packs
/// every record body it stores and every person the projector writes.
pub(crate) fn deflate(plain: &[u8]) -> Vec<u8> {
    let compressor = if plain.len() <= SHORT {
        &DEFLATE_SHORT
    } else {
        &DEFLATE
    };
    compressor.with(|cell| {
        let mut c = cell.borrow_mut();
        c.reset();
        c.set_dictionary(DICTIONARY)
            .expect("a reset raw deflate stream takes a dictionary");
        let mut out = Vec::with_capacity(plain.len() / 2 + 64);
        loop {
            let read = c.total_in() as usize;
            let status = c
                .compress_vec(&plain[read..], &mut out, flate2::FlushCompress::Finish)
                .expect("deflating memory cannot fail");
            if status == flate2::Status::StreamEnd {
                return out;
            }
            out.reserve(out.capacity().max(64));
        }
    })
}

/// Inflates a packed value; `None` when it is not deflate or exceeds [`PACKED_LIMIT`].
pub(crate) fn inflate(packed: &[u8]) -> Option<Vec<u8>> {
    INFLATE.with(|cell| {
        let mut d = cell.borrow_mut();
        d.reset(false);
        d.set_dictionary(DICTIONARY).ok()?;
        let mut out = Vec::with_capacity(packed.len() * 4);
        loop {
            let read = d.total_in() as usize;
            let before = (d.total_in(), d.total_out());
            let status = d
                .decompress_vec(&packed[read..], &mut out, flate2::FlushDecompress::Finish)
                .ok()?;
            if status == flate2::Status::StreamEnd {
                return Some(out);
            }
            let room = (PACKED_LIMIT as usize + 1).saturating_sub(out.len());
            if room == 0 {
                return None;
            }
            if out.len() < out.capacity() && before == (d.total_in(), d.total_out()) {
                // Room to write, and no progress: the input ends before the stream does.
                return None;
            }
            out.reserve(out.capacity().max(64).min(room));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deflate_and_inflate_reuse_their_tables_and_refuse_damage() {
        // Small and large, compressible and not, one after another on one thread.
        let noise: Vec<u8> = (0..70_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let repeated = b"{\"kind\":\"enrollment\"}".repeat(40_000);
        for plain in [&b""[..], b"{}", &noise, &repeated, b"{}"] {
            let packed = deflate(plain);
            assert_eq!(inflate(&packed).as_deref(), Some(plain));
        }
        let packed = deflate(&repeated);
        assert!(packed.len() * 50 < repeated.len());
        assert_eq!(inflate(&packed[..packed.len() / 2]), None, "cut short");
        assert_eq!(inflate(b"not deflate at all"), None);
    }

    #[test]
    fn the_dictionary_is_fixed_and_values_packed_before_it_still_open() {
        use sha2::{Digest, Sha256};
        // Changing a byte of the dictionary makes every stored value unreadable.
        assert_eq!(
            hex::encode(Sha256::digest(DICTIONARY)),
            "e3c2952b49c3b7bb6195cbf337e3243adb88a80b32ec6c84262b668bd9893920"
        );
        let body = br#"{"attendance":{"person":{"key":"9f2c"},"class_id":"C-7","date":"2025-03-01","hours":4.0,"kind":"present"}}"#;
        // As packed before migration 0019: raw deflate without a dictionary.
        let mut old = flate2::Compress::new(flate2::Compression::new(3), false);
        let mut before = Vec::with_capacity(256);
        old.compress_vec(body, &mut before, flate2::FlushCompress::Finish)
            .unwrap();
        assert_eq!(inflate(&before).as_deref(), Some(&body[..]));
        let now = deflate(body);
        assert!(
            now.len() * 3 < before.len() * 2,
            "{} vs {}",
            now.len(),
            before.len()
        );
        assert_eq!(inflate(&now).as_deref(), Some(&body[..]));
    }
}
