//! XLSX workbooks: the first sheet read cell by cell, as text.

use super::{read_limited_to, FileError, Input};

/// A sheet's size in bytes, its header row, and the rows after it with the row number a
/// spreadsheet shows (1-based; blank rows are skipped, so numbers may jump).
pub(super) type Sheet = (u64, Vec<String>, Vec<(u64, Vec<String>)>);

/// The first worksheet of a workbook as text: its size, the header row and the rows after it.
/// Date cells become `yyyy-MM-dd` (or a time with `T`), whole numbers lose their `.0`; error
/// cells are empty. Cells are read one by one and only those under a header column are kept,
/// so a hostile sheet that claims a huge size costs no more memory than its cells; a workbook
/// the parser cannot read (or panics on) is refused as a whole. A sheet is held in memory
/// (workbooks hold at most about a million rows); very large sets stream better as CSV.
pub(super) fn read_sheet(file: Input, name: &str) -> Result<Sheet, FileError> {
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

type Cells = (Vec<String>, Vec<(u64, Vec<String>)>);

fn sheet_cells(bytes: Vec<u8>) -> Result<Cells, String> {
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
    let mut rows = rows.into_iter();
    let (_, header) = rows.next().ok_or("the first worksheet is empty")?;
    let width = header.len();
    let body = rows
        .map(|(row, mut cells)| {
            // Cells missing at the end of a row are empty cells, not missing columns.
            if cells.len() < width {
                cells.resize(width, String::new());
            }
            (u64::from(row) + 1, cells)
        })
        .collect();
    Ok((header, body))
}
