//! Filling forms the organisation departments keep: the appointment approval form (干部任免审批表,
//! `.lrmx`) gets the person's off-job training lines in its résumé (`JianLi`).
//!
//! Only the résumé's content is rewritten, in place: every other byte of the file — other
//! elements, the declaration, a byte-order mark, line ends, the encoding (UTF-8, GB2312/GBK) —
//! stays as it was. Lines already in the résumé are not added again, so filling twice gives
//! the same file.

use quick_xml::events::Event;

/// Why a form cannot be filled.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FormError {
    /// The file is not a readable LRMX form.
    #[error("not a readable LRMX form: {0}")]
    Malformed(String),
    /// The form names no person.
    #[error("the form has no ShenFenZheng (national ID) to find the person by")]
    NoPerson,
    /// A line cannot be written in the form's encoding.
    #[error("a training line cannot be written in the form's encoding {0}: {1}")]
    Unencodable(&'static str, String),
}

/// A form read for filling.
#[derive(Debug)]
pub struct LrmxForm {
    original: Vec<u8>,
    encoding: &'static encoding_rs::Encoding,
    bom: usize,
    text: String,
    resume: Resume,
}

/// Where the résumé is in the decoded text.
#[derive(Debug)]
enum Resume {
    /// `<JianLi>…</JianLi>`: the content's span and whether it is one CDATA section.
    Content {
        start: usize,
        end: usize,
        cdata: bool,
        value: String,
    },
    /// `<JianLi/>`: the empty element's span.
    Empty { start: usize, end: usize },
    /// No `JianLi`: where the root's end tag starts.
    Missing { root_end: usize },
}

/// What filling did.
#[derive(Debug, PartialEq, Eq)]
pub struct Filled {
    /// The form's bytes, filled (the input itself when nothing was added).
    pub bytes: Vec<u8>,
    /// The lines added to the résumé.
    pub added: Vec<String>,
    /// The form's encoding.
    pub encoding: &'static str,
}

impl LrmxForm {
    /// Reads a form: its encoding (byte-order mark, else the XML declaration, else UTF-8) and
    /// where its résumé is.
    pub fn read(bytes: &[u8]) -> Result<LrmxForm, FormError> {
        let (encoding, bom) = match encoding_rs::Encoding::for_bom(bytes) {
            Some((e, len)) => (e, len),
            None => (declared(bytes), 0),
        };
        let body = &bytes[bom..];
        let text = encoding
            .decode_without_bom_handling_and_without_replacement(body)
            .ok_or_else(|| {
                FormError::Malformed(format!("the bytes are not valid {}", encoding.name()))
            })?
            .into_owned();
        let resume = locate(&text)?;
        Ok(LrmxForm {
            original: bytes.to_vec(),
            encoding,
            bom,
            text,
            resume,
        })
    }

    /// The national ID the form names (`ShenFenZheng`).
    pub fn national_id(&self) -> Result<String, FormError> {
        let items = crate::files::parse_lrmx(&self.original)
            .map_err(|r| FormError::Malformed(r.message))?;
        items
            .get("ShenFenZheng")
            .map(|s| s.trim().to_uppercase())
            .filter(|s| !s.is_empty())
            .ok_or(FormError::NoPerson)
    }

    /// The résumé's lines as they are.
    pub fn resume_lines(&self) -> Vec<String> {
        match &self.resume {
            Resume::Content { value, .. } => value.lines().map(str::to_owned).collect(),
            _ => Vec::new(),
        }
    }

    /// The form with `lines` in its résumé: each line not yet there is put before the first
    /// dated line that starts later (or at the end), so the résumé stays in date order.
    pub fn fill(&self, lines: &[String]) -> Result<Filled, FormError> {
        let mut resume = self.resume_lines();
        let mut added = Vec::new();
        for line in lines {
            if resume.iter().any(|l| same_line(l, line)) {
                continue;
            }
            let start = period_start(line);
            let at = resume
                .iter()
                .position(|l| period_start(l).is_some_and(|s| start.is_some_and(|t| s > t)))
                .unwrap_or(resume.len());
            resume.insert(at, line.clone());
            added.push(line.clone());
        }
        if added.is_empty() {
            return Ok(self.unchanged());
        }
        let eol = if self.text.contains("\r\n") {
            "\r\n"
        } else {
            "\n"
        };
        let joined = resume.join(eol);
        let text = self.splice(&joined);
        let (encoded, _, unmappable) = self.encoding.encode(&text);
        if unmappable {
            return Err(FormError::Unencodable(
                self.encoding.name(),
                "a character of the lines has no code in it".into(),
            ));
        }
        let mut bytes = self.original[..self.bom].to_vec();
        bytes.extend_from_slice(&encoded);
        Ok(Filled {
            bytes,
            added,
            encoding: self.encoding.name(),
        })
    }

    fn unchanged(&self) -> Filled {
        Filled {
            bytes: self.original.clone(),
            added: Vec::new(),
            encoding: self.encoding.name(),
        }
    }

    /// The decoded text with the résumé's content replaced by `joined`.
    fn splice(&self, joined: &str) -> String {
        let element = |content: String| format!("<JianLi>{content}</JianLi>");
        let (start, end, replacement) = match &self.resume {
            Resume::Content {
                start, end, cdata, ..
            } => {
                let content = if *cdata && !joined.contains("]]>") {
                    format!("<![CDATA[{joined}]]>")
                } else {
                    quick_xml::escape::escape(joined).into_owned()
                };
                (*start, *end, content)
            }
            Resume::Empty { start, end } => (
                *start,
                *end,
                element(quick_xml::escape::escape(joined).into_owned()),
            ),
            Resume::Missing { root_end } => (
                *root_end,
                *root_end,
                element(quick_xml::escape::escape(joined).into_owned()),
            ),
        };
        format!("{}{replacement}{}", &self.text[..start], &self.text[end..])
    }
}

/// The encoding the XML declaration names (UTF-8 when none or unknown). GB2312 is read and
/// written as GBK, its superset, as the forms' editors do.
fn declared(bytes: &[u8]) -> &'static encoding_rs::Encoding {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]);
    let Some(decl) = head
        .strip_prefix("<?xml")
        .and_then(|d| d.split("?>").next())
    else {
        return encoding_rs::UTF_8;
    };
    let Some(after) = decl.split("encoding").nth(1) else {
        return encoding_rs::UTF_8;
    };
    let label: String = after
        .trim_start_matches([' ', '='])
        .trim_start_matches(['"', '\''])
        .chars()
        .take_while(|c| !matches!(c, '"' | '\''))
        .collect();
    encoding_rs::Encoding::for_label(label.trim().as_bytes()).unwrap_or(encoding_rs::UTF_8)
}

/// Finds the résumé element in the decoded text.
fn locate(text: &str) -> Result<Resume, FormError> {
    let mut reader = quick_xml::Reader::from_str(text);
    let mut depth = 0usize;
    let mut open: Option<usize> = None;
    let mut value = String::new();
    let mut pieces = 0usize;
    let mut cdata = false;
    let bad = |e: String| FormError::Malformed(e);
    loop {
        let before = reader.buffer_position() as usize;
        let event = reader
            .read_event()
            .map_err(|e| bad(format!("not well-formed XML (byte {before}): {e}")))?;
        let after = reader.buffer_position() as usize;
        match event {
            Event::DocType(_) => return Err(bad("a DOCTYPE is not accepted".into())),
            Event::Start(e) => {
                depth += 1;
                if depth == 2 && e.local_name().as_ref() == b"JianLi" {
                    open = Some(after);
                }
            }
            Event::Empty(e) if depth == 1 && e.local_name().as_ref() == b"JianLi" => {
                return Ok(Resume::Empty {
                    start: before,
                    end: after,
                });
            }
            Event::Text(t) if open.is_some() => {
                value.push_str(&t.decode().map_err(|e| bad(e.to_string()))?);
                pieces += 1;
            }
            Event::GeneralRef(r) if open.is_some() => {
                let piece = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    _ => {
                        let name = r.decode().map_err(|e| bad(e.to_string()))?;
                        quick_xml::escape::resolve_predefined_entity(&name)
                            .ok_or_else(|| {
                                bad(format!("entity `&{name};` is not one of XML's own"))
                            })?
                            .to_owned()
                    }
                };
                value.push_str(&piece);
                pieces += 1;
            }
            Event::CData(c) if open.is_some() => {
                value.push_str(&c.decode().map_err(|e| bad(e.to_string()))?);
                pieces += 1;
                cdata = true;
            }
            Event::End(_) => {
                if let Some(start) = open.take() {
                    return Ok(Resume::Content {
                        start,
                        end: before,
                        cdata: cdata && pieces == 1,
                        value: value.replace("\r\n", "\n"),
                    });
                }
                if depth == 1 {
                    return Ok(Resume::Missing { root_end: before });
                }
                depth = depth.saturating_sub(1);
            }
            Event::Eof => return Err(bad("the form ends before its root element does".into())),
            _ => {}
        }
    }
}

/// Whether two résumé lines say the same (spaces aside).
fn same_line(a: &str, b: &str) -> bool {
    let squeeze = |s: &str| s.split_whitespace().collect::<String>();
    squeeze(a) == squeeze(b)
}

/// The `YYYY.MM` a résumé line starts with, if it starts with one.
fn period_start(line: &str) -> Option<&str> {
    let head = line.trim_start().get(..7)?;
    let b = head.as_bytes();
    (b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'.' && b[5..].iter().all(u8::is_ascii_digit))
        .then_some(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORM: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Person><XingMing>张三</XingMing><JianLi>1990.09--1994.07  某大学学习\n1994.08--  某局科员</JianLi><ShenFenZheng>11010519491231002x</ShenFenZheng></Person>\n";

    #[test]
    fn lines_go_in_date_order_once_and_nothing_else_changes() {
        let form = LrmxForm::read(FORM.as_bytes()).unwrap();
        assert_eq!(form.national_id().unwrap(), "11010519491231002X");
        let lines = vec!["1992.03--1992.06 在某党校参加青干班学习".to_owned()];
        let filled = form.fill(&lines).unwrap();
        assert_eq!(filled.added, lines);
        let text = String::from_utf8(filled.bytes.clone()).unwrap();
        assert!(text.contains("某大学学习\n1992.03--1992.06 在某党校参加青干班学习\n1994.08"));
        assert!(text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Person><XingMing>"));
        let again = LrmxForm::read(&filled.bytes).unwrap().fill(&lines).unwrap();
        assert!(again.added.is_empty());
        assert_eq!(again.bytes, filled.bytes);
    }

    #[test]
    fn an_empty_or_missing_resume_is_written_and_gbk_stays_gbk() {
        let gbk = |s: &str| encoding_rs::GBK.encode(s).0.into_owned();
        let empty = "<?xml version=\"1.0\" encoding=\"GB2312\"?><Person><JianLi/></Person>";
        let missing =
            "<?xml version=\"1.0\" encoding=\"GB2312\"?><Person><XingMing>李四</XingMing></Person>";
        let line = vec!["2020.03--2020.07 在中央党校参加中青班学习".to_owned()];
        for source in [empty, missing] {
            let filled = LrmxForm::read(&gbk(source)).unwrap().fill(&line).unwrap();
            assert_eq!(filled.encoding, "GBK");
            let (text, _, errors) = encoding_rs::GBK.decode(&filled.bytes);
            assert!(!errors);
            assert!(
                text.contains("<JianLi>2020.03--2020.07 在中央党校参加中青班学习</JianLi>"),
                "{text}"
            );
        }
        assert_eq!(
            LrmxForm::read(b"<Person><JianLi>x</Person>")
                .unwrap_err()
                .to_string()[..26]
                .to_owned(),
            "not a readable LRMX form: ".to_owned()
        );
    }
}
