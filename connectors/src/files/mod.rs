//! The files connector (DESIGN §7): partners' export files read as a stream of sources for a
//! mapping profile — CSV (UTF-8, header row of column names) and JSON lines (one object per
//! line). Rows are read one at a time, so a file of any size takes constant memory.
//!
//! Layout: this module (formats, rows, CSV, JSON, JSON lines), `sheet` (XLSX workbooks),
//! `lrmx` (干部任免审批表 forms).
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

mod encoding;
mod lrmx;
mod sheet;

pub use lrmx::parse_lrmx;
use sheet::read_sheet;

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
    /// The row's number as the file shows it, so an operator finds it: the line a CSV record
    /// starts on (the header is line 1), the row of a worksheet, the line of a JSON-lines
    /// file, the item of a JSON array (1-based).
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
    /// Set when a CSV file that is not UTF-8 is read as GB18030 (GBK).
    pub transcoded_from: Option<&'static str>,
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
        rows: std::vec::IntoIter<(u64, Vec<String>)>,
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
        let mut transcoded_from = None;
        let inner = match format {
            FileFormat::Csv => {
                let (file, gbk) =
                    encoding::utf8_or_gbk(file).map_err(|e| FileError::Io(name.clone(), e))?;
                transcoded_from = gbk.then_some("GB18030 (GBK)");
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
        Ok(Rows {
            inner,
            position: 0,
            transcoded_from,
        })
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
                // The line this record starts on (a quoted newline makes a record longer).
                let line = reader.position().line();
                let read = reader.read_record(&mut record);
                self.position = reader.position().byte();
                *number = line;
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
                let (row, cells) = rows.next()?;
                *number += 1;
                self.position = total.1 * *number / total.0.max(1);
                let sheet_row = row;
                let mut payload = header_line.clone();
                payload.extend(csv_line(&csv::StringRecord::from(cells.clone())));
                let record = csv::StringRecord::from(cells);
                Some(Ok(Row {
                    number: sheet_row,
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

/// A CSV error without the cell contents it may quote.
fn redact(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Utf8 { pos, err } => format!(
            "field {} is not UTF-8 (row starting at byte {}); export the file as UTF-8, or \
             convert it (e.g. `iconv -f GBK -t UTF-8 in.csv > out.csv`)",
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
mod tests;
