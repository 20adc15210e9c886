//! Profiles: loading, mapping, refusals.

use super::dates::DATE_PATTERNS;
use super::*;

const PROFILE: &str = r#"
[profile]
name = "t"
version = "2"

[codes.gender]
"男" = "1"
"女" = "2"

[[records]]
kind = "person"
record_id = "P-{ID}"
[records.fields]
national_id = { from = "NID", required = true }
name = { from = "NAME", required = true }
gender = { from = "SEX", codes = "gender" }
birth_date = { from = "BIRTH", date = ["yyyyMMdd", "yyyy.MM"] }
category = { value = "civil_servant" }

[[records]]
kind = "learning"
record_id = "L-{ID}"
when = "MINUTES"
version = { from = "AT", date = "yyyyMMddHHmmss" }
[records.fields]
"person_ref.national_id" = { from = "NID" }
course_id = { from = "COURSE" }
minutes = { from = "MINUTES", number = true }
hours = { from = "MINUTES", unit = "minutes", minutes_per_hour = 45 }
themes = { from = "THEMES", split = ";" }
"#;

fn keyer() -> PersonKeyer {
    PersonKeyer::new(b"profile test")
}

fn row(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn maps_codes_dates_units_and_nested_fields() {
    let p = Profile::parse("t.toml", PROFILE).unwrap();
    assert_eq!(p.id(), "t@2");
    let source = row(&[
        ("ID", "7"),
        ("NID", "110105198103150018"),
        ("NAME", "张三"),
        ("SEX", "男"),
        ("BIRTH", "1981.03"),
        ("MINUTES", "90"),
        ("COURSE", "c1"),
        ("AT", "20240501203000"),
        ("THEMES", "party_theory; knowledge"),
    ]);
    let out = p.map("hr", &source, &keyer());
    assert_eq!(out.len(), 2);
    let person = out[0].as_ref().unwrap();
    let Some(pb::record::Body::Person(b)) = &person.record.body else {
        panic!()
    };
    assert_eq!(
        (b.gender.as_str(), b.birth_date.as_str()),
        ("1", "1981-03-01")
    );
    assert_eq!(b.category, "civil_servant");
    assert_eq!(person.record.source.as_ref().unwrap().record_id, "P-7");
    assert_eq!(person.origin["person.national_id"], "NID");
    let learning = out[1].as_ref().unwrap();
    let Some(pb::record::Body::Learning(l)) = &learning.record.body else {
        panic!()
    };
    assert_eq!(
        learning.record.source.as_ref().unwrap().version,
        20240501203000
    );
    assert_eq!((l.minutes, l.hours), (90.0, 2.0));
    assert_eq!(l.themes, ["party_theory", "knowledge"]);
    assert_eq!(
        l.person_ref.as_ref().unwrap().national_id,
        "110105198103150018"
    );
}

#[test]
fn bad_values_are_map_rejections_naming_the_source_field() {
    let p = Profile::parse("t.toml", PROFILE).unwrap();
    let base = [("ID", "7"), ("NID", "x"), ("NAME", "n")];
    type Case<'a> = (&'a [(&'a str, &'a str)], ReasonCode, &'a str);
    let cases: [Case; 4] = [
        (&[("SEX", "男性")], ReasonCode::UnknownCode, "SEX"),
        (&[("BIRTH", "1981-13")], ReasonCode::BadDate, "BIRTH"),
        (&[("NAME", " ")], ReasonCode::MissingField, "NAME"),
        (&[("ID", "")], ReasonCode::MissingField, "ID"),
    ];
    for (extra, code, field) in cases {
        let mut source = row(&base);
        source.extend(row(extra));
        let err = p.map("hr", &source, &keyer()).remove(0).unwrap_err();
        assert_eq!(
            (err.stage, err.code, err.field.as_str()),
            (Stage::Map, code, field)
        );
        assert!(!err.message.contains("张"), "{}", err.message);
    }
    // `when`: no minutes, no learning record.
    assert_eq!(p.map("hr", &row(&base), &keyer()).len(), 1);
}

#[test]
fn shipped_profiles_load() {
    for (name, _) in SHIPPED {
        let p = Profile::resolve(name).unwrap();
        assert_eq!(p.name(), *name);
    }
    let err = Profile::resolve("no-such-profile").unwrap_err().to_string();
    assert!(
        err.contains("shipped: cadre-a01, lrmx, party-school-json"),
        "{err}"
    );
}

#[test]
fn dates_in_every_listed_format() {
    let all: Vec<String> = DATE_PATTERNS.iter().map(|s| s.to_string()).collect();
    for (text, want) in [
        ("19810315", "1981-03-15"),
        ("1981.03.15", "1981-03-15"),
        ("1981-03-15", "1981-03-15"),
        ("198103", "1981-03-01"),
        ("1981.03", "1981-03-01"),
        ("1981-03-15T08:00:00+08:00", "1981-03-15"),
    ] {
        assert_eq!(parse_date(text, &all).unwrap().0, want, "{text}");
    }
    for bad in ["1981.3.150", "19811315", "1981.13", "", "1981", "81.03.15"] {
        assert!(parse_date(bad, &all).is_none(), "{bad}");
    }
}

#[test]
fn a_bad_profile_names_file_line_and_field() {
    let cases = [
        (
            PROFILE.replace("course_id =", "course_idd ="),
            "course_idd",
            27,
        ),
        (
            PROFILE.replace("codes = \"gender\"", "codes = \"sex\""),
            "code table `[codes.sex]`",
            16,
        ),
        (
            PROFILE.replace("\"yyyy.MM\"]", "\"dd/MM/yyyy\"]"),
            "dd/MM/yyyy",
            17,
        ),
        (
            PROFILE.replace("minutes_per_hour = 45", "number = false"),
            "needs minutes_per_hour",
            29,
        ),
        (
            PROFILE.replace("kind = \"learning\"", "kind = \"lesson\""),
            "not a record kind",
            21,
        ),
        (
            PROFILE.replace("version = \"2\"", "version = 2"),
            "invalid type",
            4,
        ),
    ];
    for (text, want, line) in cases {
        let err = Profile::parse("bad.toml", &text).unwrap_err();
        assert!(err.to_string().contains(want), "{err}");
        assert_eq!(err.line, Some(line), "{err}");
        assert!(
            err.to_string().starts_with(&format!("bad.toml:{line}: ")),
            "{err}"
        );
    }
}
