//! Fuzzing the decoders of partners' own formats (issues 6 and 7): CSV, JSON, JSON-lines, XLSX
//! and LRMX files as partners drop them, read row by row and mapped through the shipped
//! profiles, and xAPI statements of any shape. Random bytes, and the shipped
//! sample damaged at random (cut short, bytes flipped, quotes and separators inserted): every
//! row is a source or a `decode` rejection, every mapping a record or a rejection — never a
//! panic. `PROPTEST_CASES` raises the 1,000 cases per property for a longer run.

use proptest::prelude::*;
use trainhub_connectors::files::{FileFormat, Rows};
use trainhub_connectors::profile::{Profile, SHIPPED};

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000)
}

const SAMPLE: &[u8] = include_bytes!("../profiles/cadre-a01/samples/a01.csv");
const FORM: &[u8] = include_bytes!("../profiles/lrmx/samples/zhang-weidong.lrmx");
const WORKBOOK: &[u8] = include_bytes!("../profiles/cadre-a01/samples/a01.xlsx");
const TERM: &[u8] = include_bytes!("../profiles/party-school-json/samples/term-2026-spring.json");

/// Reads `bytes` as a file of `format` and maps every row with every shipped profile.
fn read_and_map(bytes: &[u8], format: FileFormat) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("f.{}", format.as_str()));
    std::fs::write(&path, bytes).unwrap();
    let profiles: Vec<Profile> = SHIPPED
        .iter()
        .map(|(n, _)| Profile::resolve(n).unwrap())
        .collect();
    let keyer = trainhub_model::PersonKeyer::new(b"fuzz");
    let Ok(rows) = Rows::open(&path, format) else {
        return; // a file refused as a whole (no header): an error, not a panic
    };
    for row in rows {
        let Ok(row) = row else { return };
        assert!(row.number >= 1);
        if let Ok(source) = &row.source {
            for p in &profiles {
                for mapped in p.map("fuzz", source.as_ref(), &keyer) {
                    if let Err(r) = mapped {
                        assert!(!r.message.is_empty());
                    }
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Damage {
    Cut(usize),
    Flip(usize, u8),
    Insert(usize, &'static [u8]),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        any::<usize>().prop_map(Damage::Cut),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Damage::Flip(i, b)),
        (
            any::<usize>(),
            prop::sample::select(vec![
                b"\"".as_slice(),
                b",".as_slice(),
                b"\n".as_slice(),
                b"\r\n".as_slice(),
                b"\xff\xfe".as_slice(),
                b"\"\"\"".as_slice(),
                "\u{feff}".as_bytes(),
                b"<".as_slice(),
                b"&amp;".as_slice(),
                b"&#0;".as_slice(),
                b"<![CDATA[".as_slice(),
                b"<!DOCTYPE x>".as_slice(),
            ])
        )
            .prop_map(|(i, s)| Damage::Insert(i, s)),
    ]
}

fn apply(mut bytes: Vec<u8>, damages: &[Damage]) -> Vec<u8> {
    for d in damages {
        let n = bytes.len().max(1);
        match d {
            Damage::Cut(i) => bytes.truncate(i % n),
            Damage::Flip(i, b) if !bytes.is_empty() => bytes[i % n] ^= b | 1,
            Damage::Flip(..) => {}
            Damage::Insert(i, s) => {
                let at = i % (bytes.len() + 1);
                bytes.splice(at..at, s.iter().copied());
            }
        }
    }
    bytes
}

/// Any JSON value, a few levels deep.
fn json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<f64>().prop_map(|f| serde_json::json!(f)),
        ".{0,24}".prop_map(serde_json::Value::String),
        prop::sample::select(vec![
            "http://adlnet.gov/expapi/verbs/completed",
            "http://adlnet.gov/expapi/verbs/voided",
            "StatementRef",
            "PT1H30M",
            "P1DT",
            "6a4f0a1e-3b2c-4d5e-8f90-0123456789ab",
            "https://w3id.org/xapi/cmi5/context/categories/cmi5",
        ])
        .prop_map(|s| serde_json::Value::String(s.into())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "id",
                    "actor",
                    "verb",
                    "object",
                    "result",
                    "duration",
                    "account",
                    "homePage",
                    "name",
                    "mbox",
                    "context",
                    "registration",
                    "contextActivities",
                    "category",
                    "objectType",
                    "timestamp",
                    "definition",
                ]),
                inner,
                0..6
            )
            .prop_map(|m| serde_json::Value::Object(
                m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
            )),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn xapi_statements_of_any_shape(statement in json(), duration in ".{0,16}") {
        use trainhub_connectors::xapi;
        // Whatever arrives: checked or refused, mapped or refused — no panic.
        let _ = xapi::validate::statement(&statement);
        let _ = xapi::lrs::keys(&statement);
        let _ = xapi::lrs::ids(&statement);
        if let Ok(xapi::Meaning::Learning(r)) = xapi::meaning("fuzz", &statement, "2026-01-01T00:00:00Z") {
            assert_eq!(r.source.unwrap().kind, "learning");
        }
        let _ = xapi::tombstone("fuzz", &statement, &statement);
        if let Some(m) = xapi::duration_minutes(&duration) {
            assert!(m.is_finite());
        }
    }

    #[test]
    fn random_bytes_as_csv_or_json_lines(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        read_and_map(&bytes, FileFormat::Csv);
        read_and_map(&bytes, FileFormat::JsonLines);
        read_and_map(&bytes, FileFormat::Lrmx);
        read_and_map(&bytes, FileFormat::Xlsx);
        read_and_map(&bytes, FileFormat::Json);
    }

    #[test]
    fn the_school_export_damaged(damages in prop::collection::vec(damage(), 1..6)) {
        read_and_map(&apply(TERM.to_vec(), &damages), FileFormat::Json);
    }

    #[test]
    fn the_workbook_damaged(damages in prop::collection::vec(damage(), 1..4)) {
        read_and_map(&apply(WORKBOOK.to_vec(), &damages), FileFormat::Xlsx);
    }

    #[test]
    fn the_form_damaged(damages in prop::collection::vec(damage(), 1..6)) {
        read_and_map(&apply(FORM.to_vec(), &damages), FileFormat::Lrmx);
    }

    #[test]
    fn the_sample_damaged(damages in prop::collection::vec(damage(), 1..6)) {
        read_and_map(&apply(SAMPLE.to_vec(), &damages), FileFormat::Csv);
    }

    #[test]
    fn hostile_cells(cells in prop::collection::vec(".{0,40}", 12)) {
        // Any text in any column of a well-formed row: a record or a rejection.
        let mut file = String::from_utf8_lossy(SAMPLE).lines().next().unwrap().to_owned();
        file.push('\n');
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(&cells).unwrap();
        file.push_str(&String::from_utf8(w.into_inner().unwrap()).unwrap());
        read_and_map(file.as_bytes(), FileFormat::Csv);
        let header: Vec<String> = String::from_utf8_lossy(SAMPLE)
            .lines()
            .next()
            .unwrap()
            .split(',')
            .map(str::to_owned)
            .collect();
        let json: serde_json::Map<String, serde_json::Value> = header
            .into_iter()
            .zip(cells.iter())
            .map(|(h, c)| (h, serde_json::Value::String(c.clone())))
            .collect();
        read_and_map(serde_json::Value::Object(json).to_string().as_bytes(), FileFormat::JsonLines);
    }
}
