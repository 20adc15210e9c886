//! Government exports are often GBK (GB18030) rather than UTF-8. A CSV file that is not UTF-8
//! but reads cleanly as GB18030 is transcoded while it streams; one that is neither is left
//! as it is, and its rows are refused naming the fix.

use super::Input;
use std::io::Read;

/// Bytes looked at to decide.
const SNIFF: usize = 64 * 1024;

/// `file` as UTF-8: as it is, or transcoded from GB18030 when it is not UTF-8 and reads as
/// GB18030 without a single error. The flag says whether it was transcoded.
pub(super) fn utf8_or_gbk(mut file: Input) -> std::io::Result<(Input, bool)> {
    let mut head = Vec::with_capacity(SNIFF);
    (&mut file).take(SNIFF as u64).read_to_end(&mut head)?;
    let complete = head.len() < SNIFF;
    let is_utf8 = match std::str::from_utf8(&head) {
        Ok(_) => true,
        // Cut in the middle of a character at the end of the sample: still UTF-8.
        Err(e) => e.error_len().is_none() && !complete,
    };
    let gbk = !is_utf8 && reads_as_gb18030(&head, complete);
    let whole: Input = Box::new(std::io::Cursor::new(head).chain(file));
    if gbk {
        Ok((Box::new(Transcode::new(whole)), true))
    } else {
        Ok((whole, false))
    }
}

/// Whether `head` decodes as GB18030 without errors (allowing a character cut at the end of a
/// sample that is not the whole file).
fn reads_as_gb18030(head: &[u8], complete: bool) -> bool {
    let cut = if complete { 0 } else { 3 };
    (0..=cut.min(head.len())).any(|drop| {
        encoding_rs::GB18030
            .decode_without_bom_handling_and_without_replacement(&head[..head.len() - drop])
            .is_some()
    })
}

/// A reader that decodes GB18030 into UTF-8 as it is read.
struct Transcode {
    inner: Input,
    decoder: encoding_rs::Decoder,
    input: Vec<u8>,
    start: usize,
    end: usize,
    output: Vec<u8>,
    taken: usize,
    ready: usize,
    eof: bool,
    done: bool,
}

impl Transcode {
    fn new(inner: Input) -> Transcode {
        Transcode {
            inner,
            decoder: encoding_rs::GB18030.new_decoder_without_bom_handling(),
            input: vec![0; 16 * 1024],
            start: 0,
            end: 0,
            output: vec![0; 64 * 1024],
            taken: 0,
            ready: 0,
            eof: false,
            done: false,
        }
    }
}

impl Read for Transcode {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if self.taken < self.ready {
                let n = buf.len().min(self.ready - self.taken);
                buf[..n].copy_from_slice(&self.output[self.taken..self.taken + n]);
                self.taken += n;
                return Ok(n);
            }
            if self.done {
                return Ok(0);
            }
            if self.start == self.end && !self.eof {
                self.start = 0;
                self.end = self.inner.read(&mut self.input)?;
                self.eof = self.end == 0;
            }
            let (result, read, written, _) = self.decoder.decode_to_utf8(
                &self.input[self.start..self.end],
                &mut self.output,
                self.eof,
            );
            self.start += read;
            self.taken = 0;
            self.ready = written;
            if self.eof && result == encoding_rs::CoderResult::InputEmpty {
                self.done = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(bytes: Vec<u8>) -> (String, bool) {
        let (mut reader, gbk) = utf8_or_gbk(Box::new(std::io::Cursor::new(bytes))).unwrap();
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        (String::from_utf8_lossy(&out).into_owned(), gbk)
    }

    #[test]
    fn gbk_is_transcoded_and_utf8_left_alone() {
        let text = "编号,姓名\n1,张三\n".repeat(20_000);
        let (gbk_bytes, _, _) = encoding_rs::GB18030.encode(&text);
        assert_eq!(read_all(gbk_bytes.into_owned()), (text.clone(), true));
        assert_eq!(read_all(text.clone().into_bytes()), (text, false));
        // Neither: left as it is, for the rows to be refused.
        let (_, gbk) = read_all(vec![b'a', 0xff, 0xff, 0xff, b'\n']);
        assert!(!gbk);
    }
}
