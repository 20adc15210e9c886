//! Readers: rows, bytes kept, refusals.

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
    // The lines the records start on, as an editor shows them: the header is line 1, and the
    // quoted newline makes the third record two lines long.
    assert_eq!(
        all.iter().map(|r| r.number).collect::<Vec<_>>(),
        [2, 3, 4, 6]
    );
    assert!(rows.position() > 0);
}

#[test]
fn gbk_is_read_as_gbk_and_other_bytes_are_refused_naming_no_value() {
    let mut text = b"ID,NAME\n1,".to_vec();
    text.extend([0xd5, 0xc5, 0xc8, 0xfd]); // 张三 in GBK
    text.extend(b"\n2,ok\n");
    let (_dir, path) = write("gbk.csv", &text);
    let mut rows = Rows::open(&path, FileFormat::Csv).unwrap();
    assert_eq!(rows.transcoded_from, Some("GB18030 (GBK)"));
    let all: Vec<Row> = rows.by_ref().map(Result::unwrap).collect();
    let first = all[0].source.as_ref().ok().unwrap();
    assert_eq!(first.get("NAME").as_deref(), Some("张三"));
    // Not UTF-8 and not GBK either: that row is refused, the file goes on.
    let mut text = b"ID,NAME\n1,".to_vec();
    text.extend([0xff, 0xfe, 0xff]);
    text.extend(b"\n2,ok\n");
    let (_dir, path) = write("bad.csv", &text);
    let all: Vec<Row> = Rows::open(&path, FileFormat::Csv)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let err = all[0].source.as_ref().err().unwrap();
    assert!(
        err.message.contains("not UTF-8") && err.message.contains("iconv"),
        "{}",
        err.message
    );
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
    // Numbered as the spreadsheet shows its rows: the header is row 1.
    assert_eq!((all[0].number, all[19].number), (2, 21));
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
    assert_eq!(
        all[1].number, 1_048_000,
        "the far row keeps its sheet row number"
    );
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
