//! Exports for the organisation departments: the coverage report, each warning list and the
//! annual form's trainings as XLSX workbooks (and CSV), the same from the coverage page and
//! from the command line. Every workbook carries the as-of date, the policy version and the
//! purpose, at the top of each sheet and in its document properties.

use anyhow::{Context, Result};
use rust_xlsxwriter::{DocProperties, Format, Workbook};
use std::collections::BTreeMap;
use trainhub_model::dispatch::CoverageGroup;
use trainhub_model::warnings::WarningList;
use trainhub_pipeline::reports::{AnnualRow, WarningRow, YearPoint};

/// What every export says about itself.
#[derive(Debug, Clone)]
pub struct Meta {
    /// The workbook's title.
    pub title: String,
    /// The day the figures hold for.
    pub as_of: chrono::NaiveDate,
    /// The policy version they were computed under.
    pub policy_version: String,
    /// Why the data was read (as written to the audit trail).
    pub purpose: String,
    /// Who read it (the audit principal).
    pub principal: String,
}

impl Meta {
    /// The description of what `reader` reads: titled, at `as_of`, under `policy_version`.
    pub fn read_by(
        reader: &trainhub_api::feedback::Reader,
        policy_version: &str,
        as_of: chrono::NaiveDate,
        title: &str,
    ) -> Meta {
        Meta {
            title: title.to_owned(),
            as_of,
            policy_version: policy_version.to_owned(),
            purpose: reader.purpose.clone(),
            principal: reader.principal.clone(),
        }
    }
}

/// One cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Text.
    Text(String),
    /// A number, shown with two decimals.
    Number(f64),
    /// A count.
    Count(i64),
    /// A share in [0, 1], shown as a percentage.
    Rate(f64),
}

impl From<&str> for Cell {
    fn from(s: &str) -> Cell {
        Cell::Text(s.to_owned())
    }
}

/// One sheet: a name, column headers and rows.
#[derive(Debug, Clone)]
pub struct Sheet {
    /// The sheet's name (at most 31 characters).
    pub name: String,
    /// Column headers.
    pub columns: Vec<&'static str>,
    /// Rows of cells, one per column.
    pub rows: Vec<Vec<Cell>>,
}

/// A workbook: its description and its sheets (the first is what the CSV holds).
#[derive(Debug, Clone)]
pub struct Book {
    /// What it says about itself.
    pub meta: Meta,
    /// Its sheets.
    pub sheets: Vec<Sheet>,
}

/// The description rows above each sheet's table; the table's header row follows a blank row.
pub fn meta_rows(meta: &Meta) -> Vec<(&'static str, String)> {
    vec![
        ("标题 title", meta.title.clone()),
        ("截至日期 as of", meta.as_of.to_string()),
        ("政策版本 policy version", meta.policy_version.clone()),
        ("用途 purpose", meta.purpose.clone()),
        ("查询人 read by", meta.principal.clone()),
    ]
}

/// The row (0-based) of a sheet's header row: below the description and a blank row.
pub const HEADER_ROW: u32 = 6;

impl Book {
    /// The workbook as XLSX bytes.
    pub fn xlsx(&self) -> Result<Vec<u8>> {
        let mut workbook = Workbook::new();
        let properties = DocProperties::new()
            .set_title(&self.meta.title)
            .set_subject(format!("purpose: {}", self.meta.purpose))
            .set_author("trainhub")
            .set_comment(format!(
                "as of {}, policy {}, read by {}",
                self.meta.as_of, self.meta.policy_version, self.meta.principal
            ))
            .set_custom_property("as_of", self.meta.as_of.to_string())
            .set_custom_property("policy_version", self.meta.policy_version.as_str())
            .set_custom_property("purpose", self.meta.purpose.as_str());
        workbook.set_properties(&properties);
        let bold = Format::new().set_bold();
        let rate = Format::new().set_num_format("0.0%");
        let number = Format::new().set_num_format("0.00");
        for sheet in &self.sheets {
            let ws = workbook.add_worksheet();
            ws.set_name(&sheet.name)?;
            for (row, (key, value)) in (0u32..).zip(meta_rows(&self.meta)) {
                ws.write_string_with_format(row, 0, key, &bold)?;
                ws.write_string(row, 1, value)?;
            }
            for (col, header) in (0u16..).zip(&sheet.columns) {
                ws.write_string_with_format(HEADER_ROW, col, *header, &bold)?;
                ws.set_column_width(col, 16)?;
            }
            for (row, cells) in (HEADER_ROW + 1..).zip(&sheet.rows) {
                for (col, cell) in (0u16..).zip(cells) {
                    match cell {
                        Cell::Text(s) => ws.write_string(row, col, s)?,
                        Cell::Number(n) => ws.write_number_with_format(row, col, *n, &number)?,
                        Cell::Count(n) => ws.write_number(row, col, *n as f64)?,
                        Cell::Rate(r) => ws.write_number_with_format(row, col, *r, &rate)?,
                    };
                }
            }
        }
        workbook.save_to_buffer().context("writing the workbook")
    }

    /// The first sheet as CSV (UTF-8 with a byte-order mark, so spreadsheet programs read the
    /// Chinese right): the description rows, a blank row, then the table. Rates are fractions.
    pub fn csv(&self) -> Result<Vec<u8>> {
        let mut out = csv::WriterBuilder::new()
            .flexible(true)
            .from_writer(b"\xEF\xBB\xBF".to_vec());
        for (key, value) in meta_rows(&self.meta) {
            out.write_record([key, value.as_str()])?;
        }
        out.write_record([""])?;
        let Some(sheet) = self.sheets.first() else {
            return Ok(out.into_inner()?);
        };
        out.write_record(&sheet.columns)?;
        for cells in &sheet.rows {
            out.write_record(cells.iter().map(|c| match c {
                Cell::Text(s) => s.clone(),
                Cell::Number(n) => format!("{n:.2}"),
                Cell::Count(n) => n.to_string(),
                Cell::Rate(r) => format!("{r:.4}"),
            }))?;
        }
        Ok(out.into_inner()?)
    }
}

/// The coverage report: the groups, the RED list, and (when given) each year of the window.
pub fn coverage_book(
    meta: Meta,
    group_by: &str,
    groups: &BTreeMap<String, CoverageGroup>,
    trend: &[YearPoint],
) -> Book {
    let figures = |g: &CoverageGroup| {
        vec![
            Cell::Count(g.in_scope),
            Cell::Rate(g.participation_rate()),
            Cell::Rate(g.pass_rate()),
            Cell::Rate(g.coverage_rate()),
            Cell::Count(g.red),
            Cell::Count(g.yellow),
            Cell::Count(g.green),
        ]
    };
    let columns = |first: &'static str| {
        vec![
            first,
            "应训人数 in scope",
            "参训率 participation",
            "合格率 pass rate",
            "覆盖率 coverage",
            "红灯 red",
            "黄灯 yellow",
            "绿灯 green",
        ]
    };
    let mut sheets = vec![Sheet {
        name: format!("覆盖情况 by {group_by}"),
        columns: columns("分组 group"),
        rows: groups
            .iter()
            .map(|(key, g)| {
                let mut row = vec![Cell::Text(key.clone())];
                row.extend(figures(g));
                row
            })
            .collect(),
    }];
    sheets.push(Sheet {
        name: "红灯名单 red list".into(),
        columns: vec![
            "分组 group",
            "人员标识 person key",
            "姓名 name",
            "单位 unit",
        ],
        rows: groups
            .iter()
            .flat_map(|(key, g)| {
                g.red_list.iter().map(move |(person, name, unit)| {
                    vec![
                        Cell::Text(key.clone()),
                        Cell::Text(person.clone()),
                        Cell::Text(name.clone()),
                        Cell::Text(unit.clone()),
                    ]
                })
            })
            .collect(),
    });
    if !trend.is_empty() {
        sheets.push(Sheet {
            name: "按年度 by year".into(),
            columns: columns("年度 year"),
            rows: trend
                .iter()
                .map(|p| {
                    let mut row = vec![Cell::Text(p.year.to_string())];
                    row.extend(figures(&p.totals));
                    row
                })
                .collect(),
        });
    }
    Book { meta, sheets }
}

/// One warning list.
pub fn warnings_book(meta: Meta, list: WarningList, rows: &[WarningRow]) -> Book {
    let sheet = Sheet {
        name: list.as_str().to_owned(),
        columns: vec![
            "人员标识 person key",
            "姓名 name",
            "单位代码 unit",
            "单位 unit name",
            "职级 rank",
            "管理权限 authority",
            "灯 light",
            "已获学时 credited",
            "应修学时 required",
            "原因",
            "reason",
        ],
        rows: rows
            .iter()
            .map(|r| {
                vec![
                    Cell::Text(r.person_key.clone()),
                    Cell::Text(r.name.clone()),
                    Cell::Text(r.unit_code.clone()),
                    Cell::Text(r.unit_name.clone()),
                    Cell::Text(r.rank.clone()),
                    Cell::Text(r.authority.clone()),
                    Cell::Text(r.light.clone()),
                    Cell::Number(r.credited_hours),
                    Cell::Number(r.required_hours),
                    Cell::Text(r.reason_zh.clone()),
                    Cell::Text(r.reason.clone()),
                ]
            })
            .collect(),
    };
    Book {
        meta,
        sheets: vec![sheet],
    }
}

/// The training part of one person's annual assessment form (年度考核登记表) for a year.
pub fn annual_book(meta: Meta, rows: &[AnnualRow]) -> Book {
    let sheet = Sheet {
        name: "脱产培训 off-job training".into(),
        columns: vec![
            "开始 start",
            "结束 end",
            "天数 days",
            "培训机构 provider",
            "班次 title",
            "学时 hours",
            "结果 result",
        ],
        rows: rows
            .iter()
            .map(|r| {
                vec![
                    Cell::Text(r.start_date.clone()),
                    Cell::Text(r.end_date.clone()),
                    Cell::Count(r.days),
                    Cell::Text(r.provider.clone()),
                    Cell::Text(r.title.clone()),
                    Cell::Number(r.hours),
                    Cell::Text(r.result.clone()),
                ]
            })
            .collect(),
    };
    Book {
        meta,
        sheets: vec![sheet],
    }
}
