//! The files connector (DESIGN §7): partners' export files read as a stream of sources for a
//! mapping profile — CSV (UTF-8, header row of column names) and JSON lines (one object per
//! line). Rows are read one at a time, so a file of any size takes constant memory.
//!
//! Each row keeps bytes for the raw log and the dead letters that describe it on their own:
//! for CSV the header line and the row, for JSON lines the line.

use crate::profile::Source;
use std::borrow::Cow;
use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;
use std::sync::Arc;
use trainhub_model::{ReasonCode, Rejection, Stage};

/// A file format the importer reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON object per line.
    JsonLines,
    /// A 干部任免审批表 file (`.lrmx`): XML, root `Person`, one element per item.
    Lrmx,
    /// An Excel workbook (`.xlsx`): the first sheet, a header row of column names.
    Xlsx,
    /// A JSON document (`.json`): an object, or an array of objects (one row each).
    Json,
}

impl FileFormat {
    /// The format of `path`, by its extension.
    pub fn of(path: &Path) -> Option<FileFormat> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(FileFormat::Csv),
            "jsonl" | "ndjson" => Some(FileFormat::JsonLines),
            "lrmx" => Some(FileFormat::Lrmx),
            "xlsx" => Some(FileFormat::Xlsx),
            "json" => Some(FileFormat::Json),
            _ => None,
        }
    }

    /// The name kept with dead letters.
    pub fn as_str(self) -> &'static str {
        match self {
            FileFormat::Csv => "csv",
            FileFormat::JsonLines => "jsonl",
            FileFormat::Lrmx => "lrmx",
            FileFormat::Xlsx => "xlsx",
            FileFormat::Json => "json",
        }
    }
}

/// One row (or line) of a file.
pub struct Row {
    /// 1-based row number: the line of a JSON-lines file, the data row of a CSV file (the
    /// header is row 0).
    pub number: u64,
    /// The bytes kept for it.
    pub payload: Vec<u8>,
    /// The row as a source, or why it is not one (stage `decode`).
    pub source: Result<Box<dyn Source + Send>, Rejection>,
}

/// A CSV row: its cells by the header's column names.
struct CsvRow {
    columns: Arc<HashMap<String, usize>>,
    record: csv::StringRecord,
}

impl Source for CsvRow {
    fn get(&self, path: &str) -> Option<Cow<'_, str>> {
        let text = self.record.get(*self.columns.get(path)?)?.trim();
        (!text.is_empty()).then_some(Cow::Borrowed(text))
    }
}

/// Why a file cannot be read at all.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// Opening or reading failed.
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    /// The header row is missing or unreadable.
    #[error("{0}: {1}")]
    Header(String, String),
}

/// Rows of a file, read as they are consumed.
pub struct Rows {
    inner: Inner,
    /// Bytes consumed so far (for progress).
    position: u64,
}

type Input = Box<dyn std::io::Read + Send>;

enum Inner {
    Csv {
        reader: csv::Reader<Input>,
        columns: Arc<HashMap<String, usize>>,
        header_line: Vec<u8>,
        number: u64,
    },
    Lines {
        reader: std::io::BufReader<Input>,
        number: u64,
    },
    /// A whole-document file: one row, taken once.
    Document(Option<Row>),
    /// A JSON document's rows, parsed.
    Values(std::vec::IntoIter<Row>),
    /// A worksheet's rows after the header, as text cells.
    Sheet {
        rows: std::vec::IntoIter<Vec<String>>,
        columns: Arc<HashMap<String, usize>>,
        header_line: Vec<u8>,
        number: u64,
        /// Rows and bytes of the workbook, to report progress in bytes.
        total: (u64, u64),
    },
}

impl Rows {
    /// Opens `path` as `format`.
    pub fn open(path: &Path, format: FileFormat) -> Result<Rows, FileError> {
        let name = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|e| FileError::Io(name.clone(), e))?;
        let modified = std::fs::metadata(path)
            .and_then(|m| m.modified())
            .ok()
            .map(|t| {
                chrono::DateTime::<chrono::Utc>::from(t)
                    .format("%Y%m%d%H%M%S")
                    .to_string()
            });
        Rows::read(&name, Box::new(file), format, modified)
    }

    /// Rows of an in-memory payload (`SubmitNative`); `name` labels it in errors, `modified`
    /// stands in for a document's file time (`yyyyMMddHHmmss`).
    pub fn from_bytes(
        name: &str,
        bytes: Vec<u8>,
        format: FileFormat,
        modified: Option<String>,
    ) -> Result<Rows, FileError> {
        Rows::read(
            name,
            Box::new(std::io::Cursor::new(bytes)),
            format,
            modified,
        )
    }

    fn read(
        name: &str,
        file: Input,
        format: FileFormat,
        modified: Option<String>,
    ) -> Result<Rows, FileError> {
        let name = name.to_owned();
        let inner = match format {
            FileFormat::Csv => {
                let mut reader = csv::ReaderBuilder::new()
                    .flexible(true)
                    .trim(csv::Trim::None)
                    .from_reader(file);
                let headers = reader
                    .headers()
                    .map_err(|e| FileError::Header(name.clone(), e.to_string()))?
                    .clone();
                let columns = column_index(&name, headers.iter())?;
                Inner::Csv {
                    header_line: csv_line(&headers),
                    reader,
                    columns: Arc::new(columns),
                    number: 0,
                }
            }
            FileFormat::JsonLines => Inner::Lines {
                reader: std::io::BufReader::new(file),
                number: 0,
            },
            FileFormat::Xlsx => {
                let (size, header, rows) = read_sheet(file, &name)?;
                let columns = column_index(&name, header.iter().map(String::as_str))?;
                Inner::Sheet {
                    total: (rows.len() as u64, size),
                    rows: rows.into_iter(),
                    columns: Arc::new(columns),
                    header_line: csv_line(&csv::StringRecord::from(header)),
                    number: 0,
                }
            }
            FileFormat::Json => {
                let bytes = read_limited_to(file, &name, 256 << 20)?;
                let rows = match serde_json::from_slice::<serde_json::Value>(&bytes) {
                    Ok(serde_json::Value::Array(items)) => items
                        .into_iter()
                        .enumerate()
                        .map(|(i, item)| json_row(i as u64 + 1, item))
                        .collect(),
                    Ok(item) => vec![json_row(1, item)],
                    Err(e) => vec![Row {
                        number: 1,
                        payload: bytes,
                        source: Err(not_json(&e)),
                    }],
                };
                Inner::Values(rows.into_iter())
            }
            FileFormat::Lrmx => {
                let bytes = read_limited(file, &name)?;
                let source: Result<Box<dyn Source + Send>, Rejection> =
                    parse_lrmx(&bytes).map(|mut items| {
                        if let Some(m) = modified {
                            items.insert(MODIFIED.to_owned(), m);
                        }
                        Box::new(items) as Box<dyn Source + Send>
                    });
                Inner::Document(Some(Row {
                    number: 1,
                    payload: bytes,
                    source,
                }))
            }
        };
        Ok(Rows { inner, position: 0 })
    }

    /// The CSV header's column names (empty for JSON lines).
    pub fn columns(&self) -> Vec<&str> {
        match &self.inner {
            Inner::Csv { columns, .. } | Inner::Sheet { columns, .. } => {
                let mut names: Vec<(&usize, &str)> =
                    columns.iter().map(|(k, v)| (v, k.as_str())).collect();
                names.sort();
                names.into_iter().map(|(_, k)| k).collect()
            }
            Inner::Lines { .. } | Inner::Document(_) | Inner::Values(_) => Vec::new(),
        }
    }

    /// Bytes of the file read so far.
    pub fn position(&self) -> u64 {
        self.position
    }
}

/// Column name → position, from a header row.
fn column_index<'a>(
    name: &str,
    headers: impl Iterator<Item = &'a str>,
) -> Result<HashMap<String, usize>, FileError> {
    let mut columns = HashMap::new();
    for (i, h) in headers.enumerate() {
        // A UTF-8 byte order mark before the first name is not part of it.
        let h = h.trim_start_matches('\u{feff}').trim();
        if !h.is_empty() && columns.insert(h.to_owned(), i).is_some() {
            return Err(FileError::Header(
                name.to_owned(),
                format!("column `{h}` appears twice in the header"),
            ));
        }
    }
    if columns.is_empty() {
        return Err(FileError::Header(
            name.to_owned(),
            "the header row is empty".into(),
        ));
    }
    Ok(columns)
}

/// A worksheet read: the workbook's size, the header row, the rows after it.
type Sheet = (u64, Vec<String>, Vec<Vec<String>>);

/// The first worksheet of a workbook as text: its size, the header row and the rows after it.
/// Date cells become `yyyy-MM-dd` (or a time with `T`), whole numbers lose their `.0`; error
/// cells are empty. Cells are read one by one and only those under a header column are kept,
/// so a hostile sheet that claims a huge size costs no more memory than its cells; a workbook
/// the parser cannot read (or panics on) is refused as a whole. A sheet is held in memory
/// (workbooks hold at most about a million rows); very large sets stream better as CSV.
fn read_sheet(file: Input, name: &str) -> Result<Sheet, FileError> {
    let bytes = read_limited_to(file, name, 256 << 20)?;
    let size = bytes.len() as u64;
    // The workbook parser is third-party code fed outside bytes: a panic in it is a refusal.
    match std::panic::catch_unwind(move || sheet_cells(bytes)) {
        Ok(Ok((header, rows))) => Ok((size, header, rows)),
        Ok(Err(m)) => Err(FileError::Header(name.to_owned(), m)),
        Err(_) => Err(FileError::Header(
            name.to_owned(),
            "not a readable .xlsx workbook (the parser gave up on it)".into(),
        )),
    }
}

/// Most columns a sheet row is read to: past the header's width a row is refused anyway.
const MAX_COLUMNS: usize = 1024;

fn sheet_cells(bytes: Vec<u8>) -> Result<(Vec<String>, Vec<Vec<String>>), String> {
    use calamine::{DataRef, DataType, Reader};
    let mut book = calamine::Xlsx::new(std::io::Cursor::new(bytes))
        .map_err(|e| format!("not an .xlsx workbook: {e}"))?;
    let first = book
        .sheet_names()
        .into_iter()
        .next()
        .ok_or("the workbook has no worksheet")?;
    let mut cells = book
        .worksheet_cells_reader(&first)
        .map_err(|e| format!("the first worksheet is unreadable: {e}"))?;
    let text = |cell: &DataRef<'_>| -> String {
        match cell {
            DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => {
                s.trim().to_owned()
            }
            DataRef::SharedString(s) => s.trim().to_owned(),
            DataRef::Int(i) => i.to_string(),
            DataRef::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.0}"),
            DataRef::Float(f) => f.to_string(),
            DataRef::Bool(b) => b.to_string(),
            DataRef::DateTime(_) => match cell.as_datetime() {
                Some(t) if t.time() == chrono::NaiveTime::MIN => t.date().to_string(),
                Some(t) => t.format("%Y-%m-%dT%H:%M:%S").to_string(),
                None => String::new(),
            },
            DataRef::Error(_) | DataRef::Empty => String::new(),
        }
    };
    // Rows by their sheet row number, cells by column: only the cells present.
    let mut rows: std::collections::BTreeMap<u32, Vec<String>> = Default::default();
    while let Some(cell) = cells
        .next_cell()
        .map_err(|e| format!("the first worksheet is unreadable: {e}"))?
    {
        let (row, col) = cell.get_position();
        let col = col as usize;
        if col >= MAX_COLUMNS {
            continue;
        }
        let value = text(cell.get_value());
        if value.is_empty() {
            continue;
        }
        let cells = rows.entry(row).or_default();
        if cells.len() <= col {
            cells.resize(col + 1, String::new());
        }
        cells[col] = value;
    }
    let mut rows = rows.into_values();
    let header = rows.next().ok_or("the first worksheet is empty")?;
    let width = header.len();
    let body = rows
        .map(|mut cells| {
            // Cells missing at the end of a row are empty cells, not missing columns.
            if cells.len() < width {
                cells.resize(width, String::new());
            }
            cells
        })
        .collect();
    Ok((header, body))
}

fn csv_line(record: &csv::StringRecord) -> Vec<u8> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    writer.write_record(record).expect("writing into memory");
    writer.into_inner().expect("writing into memory")
}

/// One JSON document (or array element) as a row; anything but an object is refused.
fn json_row(number: u64, item: serde_json::Value) -> Row {
    let payload = serde_json::to_vec(&item).expect("a value serialises");
    let source: Result<Box<dyn Source + Send>, Rejection> = match item {
        v @ serde_json::Value::Object(_) => Ok(Box::new(v)),
        _ => Err(malformed("", "not a JSON object".into())),
    };
    Row {
        number,
        payload,
        source,
    }
}

/// A table row as a source, or a `decode` rejection when its width differs from the header's.
fn table_row(
    columns: &Arc<HashMap<String, usize>>,
    record: csv::StringRecord,
) -> Result<Box<dyn Source + Send>, Rejection> {
    let width = columns.len();
    if record.len() < width {
        let missing = columns
            .iter()
            .filter(|(_, i)| **i >= record.len())
            .min_by_key(|(_, i)| **i)
            .map(|(k, _)| k.clone())
            .unwrap_or_default();
        Err(malformed(
            &missing,
            format!(
                "the row has {} of the header's {width} columns; `{missing}` and after are missing",
                record.len()
            ),
        ))
    } else if record.len() > width {
        Err(malformed(
            "",
            format!(
                "the row has {} cells, the header {width} columns",
                record.len()
            ),
        ))
    } else {
        Ok(Box::new(CsvRow {
            columns: columns.clone(),
            record,
        }))
    }
}

/// Unparsable JSON, placed by line and column (serde's message would quote the text).
fn not_json(e: &serde_json::Error) -> Rejection {
    malformed(
        "",
        format!(
            "not JSON (line {}, column {}): {:?}",
            e.line(),
            e.column(),
            e.classify()
        ),
    )
}

fn malformed(field: &str, message: String) -> Rejection {
    Rejection {
        stage: Stage::Decode,
        code: ReasonCode::MalformedPayload,
        field: field.to_owned(),
        message,
    }
}

impl Iterator for Rows {
    type Item = Result<Row, FileError>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            Inner::Csv {
                reader,
                columns,
                header_line,
                number,
            } => {
                let mut record = csv::StringRecord::new();
                let read = reader.read_record(&mut record);
                self.position = reader.position().byte();
                *number += 1;
                let mut payload = header_line.clone();
                match read {
                    Ok(false) => None,
                    Ok(true) => {
                        payload.extend(csv_line(&record));
                        let source = table_row(columns, record);
                        Some(Ok(Row {
                            number: *number,
                            payload,
                            source,
                        }))
                    }
                    // Bad UTF-8 or a broken quote: this row is refused, the file goes on.
                    Err(e) if !e.is_io_error() => Some(Ok(Row {
                        number: *number,
                        payload,
                        source: Err(malformed("", format!("unreadable CSV row: {}", redact(&e)))),
                    })),
                    Err(e) => Some(Err(FileError::Io(
                        "csv".into(),
                        std::io::Error::other(e.to_string()),
                    ))),
                }
            }
            Inner::Sheet {
                rows,
                columns,
                header_line,
                number,
                total,
            } => {
                let cells = rows.next()?;
                *number += 1;
                self.position = total.1 * *number / total.0.max(1);
                let mut payload = header_line.clone();
                payload.extend(csv_line(&csv::StringRecord::from(cells.clone())));
                let record = csv::StringRecord::from(cells);
                Some(Ok(Row {
                    number: *number,
                    payload,
                    source: table_row(columns, record),
                }))
            }
            Inner::Values(rows) => {
                let row = rows.next()?;
                self.position += row.payload.len() as u64;
                Some(Ok(row))
            }
            Inner::Document(row) => {
                let row = row.take()?;
                self.position = row.payload.len() as u64;
                Some(Ok(row))
            }
            Inner::Lines { reader, number } => loop {
                let mut line = Vec::new();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) => return None,
                    Ok(n) => {
                        self.position += n as u64;
                        *number += 1;
                        if line.iter().all(u8::is_ascii_whitespace) {
                            continue;
                        }
                        while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                            line.pop();
                        }
                        let source: Result<Box<dyn Source + Send>, Rejection> =
                            match serde_json::from_slice::<serde_json::Value>(&line) {
                                Ok(v @ serde_json::Value::Object(_)) => Ok(Box::new(v)),
                                Ok(_) => Err(malformed("", "the line is not a JSON object".into())),
                                Err(e) => Err(not_json(&e)),
                            };
                        return Some(Ok(Row {
                            number: *number,
                            payload: line,
                            source,
                        }));
                    }
                    Err(e) => return Some(Err(FileError::Io("jsonl".into(), e))),
                }
            },
        }
    }
}

/// The source path of a document file's modification time (`yyyyMMddHHmmss`, UTC): LRMX
/// forms carry no version of their own.
pub const MODIFIED: &str = "@modified";

/// The largest document file read (an LRMX form with its photo is well under this).
const MAX_DOCUMENT: u64 = 16 << 20;

fn read_limited(file: Input, name: &str) -> Result<Vec<u8>, FileError> {
    read_limited_to(file, name, MAX_DOCUMENT)
}

fn read_limited_to(file: Input, name: &str, limit: u64) -> Result<Vec<u8>, FileError> {
    use std::io::Read;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| FileError::Io(name.to_owned(), e))?;
    if bytes.len() as u64 > limit {
        return Err(FileError::Header(
            name.to_owned(),
            format!("larger than {} MiB", limit >> 20),
        ));
    }
    Ok(bytes)
}

/// An LRMX form's items: the text of each child element of the root `Person`, by element
/// name (nested elements, such as the family table, are not items). The XML is read safely:
/// no DTD, so no external or custom entities; only the predefined and character references.
/// The declared encoding (UTF-8, GB2312/GBK, UTF-16 with a BOM) is honoured.
pub fn parse_lrmx(bytes: &[u8]) -> Result<std::collections::BTreeMap<String, String>, Rejection> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(bytes);
    let mut items = std::collections::BTreeMap::new();
    let mut buf = Vec::new();
    let mut depth = 0usize;
    let mut item: Option<(String, String)> = None;
    let bad = |message: String| malformed("", message);
    loop {
        let at = reader.buffer_position();
        let event = reader.read_event_into(&mut buf).map_err(|e| {
            bad(format!(
                "not well-formed XML (byte {at}): {}",
                xml_error(&e)
            ))
        })?;
        let name_of = |e: &quick_xml::events::BytesStart<'_>| {
            reader
                .decoder()
                .decode(e.local_name().as_ref())
                .map(|n| n.into_owned())
                .map_err(|_| bad("an element name is not readable".into()))
        };
        // Text of the current item, in pieces: text, CDATA, references.
        let mut piece: Option<String> = None;
        match event {
            Event::DocType(_) => {
                return Err(bad(
                    "a DOCTYPE is not accepted in an LRMX form (no DTDs, no entities)".into(),
                ))
            }
            Event::Start(ref e) | Event::Empty(ref e) if depth == 0 => {
                let name = name_of(e)?;
                if name != "Person" {
                    return Err(bad(format!("the root element is `{name}`, not `Person`")));
                }
                if matches!(event, Event::Empty(_)) {
                    return Err(bad("the `Person` element is empty".into()));
                }
                depth = 1;
            }
            Event::Start(e) => {
                if depth == 1 {
                    item = Some((name_of(&e)?, String::new()));
                }
                depth += 1;
            }
            Event::Empty(e) if depth == 1 => {
                items.entry(name_of(&e)?).or_insert_with(String::new);
            }
            Event::Text(t) if depth == 2 => {
                let text = t
                    .xml_content()
                    .map_err(|_| bad("text not in the declared encoding".into()))?;
                piece = Some(text.into_owned());
            }
            Event::CData(c) if depth == 2 => {
                let text = c
                    .decode()
                    .map_err(|_| bad("CDATA not in the declared encoding".into()))?;
                piece = Some(text.into_owned());
            }
            Event::GeneralRef(r) if depth == 2 => {
                piece = Some(match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => {
                        let name = r.decode().map_err(|_| bad("unreadable reference".into()))?;
                        quick_xml::escape::resolve_predefined_entity(&name)
                            .ok_or_else(|| {
                                bad(format!(
                                    "entity `&{name};` is not one of XML's own (no custom entities)"
                                ))
                            })?
                            .to_owned()
                    }
                    Err(_) => return Err(bad("a character reference is not a character".into())),
                });
            }
            Event::End(_) => {
                if depth == 2 {
                    if let Some((name, value)) = item.take() {
                        items.insert(name, value.trim().to_owned());
                    }
                }
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Ok(items);
                }
            }
            Event::Eof => return Err(bad("the document ends inside `Person`".into())),
            _ => {}
        }
        if let (Some(piece), Some((_, value))) = (piece, &mut item) {
            value.push_str(&piece);
        }
        buf.clear();
    }
}

/// A parser error without document text in it.
fn xml_error(e: &quick_xml::Error) -> String {
    match e {
        quick_xml::Error::Syntax(s) => s.to_string(),
        quick_xml::Error::IllFormed(i) => i.to_string(),
        quick_xml::Error::Encoding(_) => "not in the declared encoding".into(),
        quick_xml::Error::Escape(_) => "a bad escape".into(),
        _ => "unreadable".into(),
    }
}

/// A CSV error without the cell contents it may quote.
fn redact(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Utf8 { pos, err } => format!(
            "field {} is not UTF-8 (row starting at byte {}); export the file as UTF-8",
            err.field() + 1,
            pos.as_ref().map_or(0, |p| p.byte())
        ),
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => {
            format!("{len} cells where {expected_len} were expected")
        }
        _ => "malformed CSV".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn csv_rows_by_column_name_short_and_bad_rows_refused() {
        let (_dir, path) = write(
            "a.csv",
            "\u{feff}ID,NAME,UNIT\n1, 张三 ,U1\n2,李四\n3,\"王\nfive\",U3\n4,a,b,c\n".as_bytes(),
        );
        let mut rows = Rows::open(&path, FileFormat::Csv).unwrap();
        assert_eq!(rows.columns(), ["ID", "NAME", "UNIT"]);
        let all: Vec<Row> = rows.by_ref().map(Result::unwrap).collect();
        assert_eq!(all.len(), 4);
        let first = all[0].source.as_ref().ok().unwrap();
        assert_eq!(first.get("NAME").as_deref(), Some("张三"));
        assert_eq!(first.get("NOPE"), None);
        assert!(String::from_utf8_lossy(&all[0].payload).starts_with("ID,NAME,UNIT\n1,"));
        let short = all[1].source.as_ref().err().unwrap();
        assert_eq!(
            (short.code, short.field.as_str()),
            (ReasonCode::MalformedPayload, "UNIT")
        );
        assert!(all[2].source.is_ok(), "a quoted newline is one cell");
        assert!(all[3].source.is_err());
        assert_eq!(
            all.iter().map(|r| r.number).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        assert!(rows.position() > 0);
    }

    #[test]
    fn not_utf8_is_a_refused_row_that_names_no_value() {
        let mut text = b"ID,NAME\n1,".to_vec();
        text.extend([0xd5, 0xc5, 0xc8, 0xfd]); // 张三 in GBK
        text.extend(b"\n2,ok\n");
        let (_dir, path) = write("gbk.csv", &text);
        let all: Vec<Row> = Rows::open(&path, FileFormat::Csv)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let err = all[0].source.as_ref().err().unwrap();
        assert!(err.message.contains("not UTF-8"), "{}", err.message);
        assert!(all[1].source.is_ok());
    }

    #[test]
    fn json_lines_skip_blank_lines_and_refuse_non_objects() {
        let (_dir, path) = write("a.jsonl", b"{\"a\":1}\n\n[1]\n{bad\n{\"a\":\" x \"}\n");
        let all: Vec<Row> = Rows::open(&path, FileFormat::JsonLines)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            all.iter().map(|r| r.number).collect::<Vec<_>>(),
            [1, 3, 4, 5]
        );
        assert!(all[1].source.is_err() && all[2].source.is_err());
        assert_eq!(
            all[3].source.as_ref().ok().unwrap().get("/a").as_deref(),
            Some("x")
        );
    }

    #[test]
    fn lrmx_items_are_the_person_elements_text() {
        let form = "<?xml version=\"1.0\"?>\n<Person>\n <XingMing> 张三 </XingMing><NiRenZhiWu/>\
            <JianLi><![CDATA[1990--\n至今]]></JianLi><RenMianLiYou>a &amp; b &#x4E2D;</RenMianLiYou>\
            <JiaTingChengYuan><Item><XingMing>李四</XingMing></Item></JiaTingChengYuan></Person>";
        let items = parse_lrmx(form.as_bytes()).unwrap();
        assert_eq!(
            items["XingMing"], "张三",
            "the person's, not the family member's"
        );
        assert_eq!(items["NiRenZhiWu"], "");
        assert_eq!(items["JianLi"], "1990--\n至今");
        assert_eq!(items["RenMianLiYou"], "a & b 中");
        assert!(!items.contains_key("Item"));
    }

    #[test]
    fn lrmx_refuses_dtds_entities_and_strangers() {
        let xxe =
            "<?xml version=\"1.0\"?><!DOCTYPE Person [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>\
            <Person><XingMing>&x;</XingMing></Person>";
        let err = parse_lrmx(xxe.as_bytes()).unwrap_err();
        assert!(err.message.contains("DOCTYPE"), "{}", err.message);
        let custom = "<Person><XingMing>&x;</XingMing></Person>";
        assert!(parse_lrmx(custom.as_bytes())
            .unwrap_err()
            .message
            .contains("&x;"));
        for (bad, why) in [
            ("<Root><XingMing>a</XingMing></Root>", "not `Person`"),
            ("<Person/>", "empty"),
            ("<Person><XingMing>a</XingMing>", "ends inside"),
            ("<Person><XingMing>a</XingBie></Person>", "well-formed"),
            ("", "ends inside"),
        ] {
            let err = parse_lrmx(bad.as_bytes()).unwrap_err();
            assert!(err.message.contains(why), "{bad}: {}", err.message);
            assert_eq!(err.stage, Stage::Decode);
        }
    }

    #[test]
    fn xlsx_rows_read_as_text_with_dates_as_dates() {
        let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/cadre-a01/samples");
        let mut rows = Rows::open(&sample.join("a01.xlsx"), FileFormat::Xlsx).unwrap();
        assert_eq!(rows.columns().first(), Some(&"A0000"));
        let all: Vec<Row> = rows.by_ref().map(Result::unwrap).collect();
        assert_eq!(all.len(), 20);
        let first = all[0].source.as_ref().ok().unwrap();
        // A date cell, and an 18-digit ID kept as text.
        assert_eq!(first.get("A0107").as_deref(), Some("1965-01-01"));
        assert_eq!(first.get("A0184").map(|v| v.len()), Some(18));
        assert!(String::from_utf8_lossy(&all[0].payload).starts_with("A0000,A0101,"));
        let (_dir, bad) = write("bad.xlsx", b"PK\x03\x04 not really");
        assert!(Rows::open(&bad, FileFormat::Xlsx).is_err());
    }

    #[test]
    fn a_sheet_claiming_a_huge_size_costs_only_its_cells() {
        // Cells at XFD1048576 and C1048000: a dense range would be 17 billion cells.
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/huge-dimension.xlsx");
        let all: Vec<Row> = Rows::open(&path, FileFormat::Xlsx)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            all.len(),
            2,
            "the data row, and the far row with a cell past the header"
        );
        assert!(all[0].source.is_ok());
        assert!(
            all[1].source.is_err(),
            "more cells than the header has columns"
        );
    }

    #[test]
    fn header_problems_stop_the_file() {
        let (_dir, path) = write("d.csv", b"ID,ID\n1,2\n");
        assert!(Rows::open(&path, FileFormat::Csv)
            .err()
            .unwrap()
            .to_string()
            .contains("appears twice"));
        assert!(Rows::open(Path::new("/nonexistent.csv"), FileFormat::Csv).is_err());
    }
}
