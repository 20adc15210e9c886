//! Wire records (`trainhub.v1.Record`) to canonical records: every field validated by the
//! model's parsers, every failure a [`Rejection`] naming the field path.

use std::collections::BTreeMap;
use trainhub_model::codes::*;
use trainhub_model::record::{self as m, Body, CanonicalRecord, Kind, PersonRef, SourceRef};
use trainhub_model::values::{date, date_opt, hours, instant, instant_opt, score, text, text_opt};
use trainhub_model::{NationalId, PersonKeyer, Rejection};
use trainhub_proto::v1::{self as pb, record::Body as PbBody};

/// Validates `record` into its canonical form; person references are resolved to keys with
/// `keyer`.
pub fn canonical(record: &pb::Record, keyer: &PersonKeyer) -> Result<CanonicalRecord, Rejection> {
    let source = record
        .source
        .as_ref()
        .ok_or_else(|| Rejection::missing("source"))?;
    let source = SourceRef {
        system: text("source.system", &source.system)?,
        kind: Kind::parse("source.kind", &source.kind)?,
        record_id: text("source.record_id", &source.record_id)?,
        version: source.version,
    };
    let body = match &record.body {
        // Check the kind before the body, so a mismatch is reported as such rather than as
        // whatever the body's own first problem is.
        Some(b) if b.kind() != source.kind.as_str() => {
            return Err(m::kind_mismatch(source.kind, b.kind()))
        }
        Some(b) => Some(body(b, keyer)?),
        None => None,
    };
    CanonicalRecord::new(source, record.deleted, body)
}

fn person_ref(
    field: &str,
    r: Option<&pb::PersonRef>,
    keyer: &PersonKeyer,
) -> Result<PersonRef, Rejection> {
    let r = r.ok_or_else(|| Rejection::missing(field))?;
    if !r.national_id.trim().is_empty() {
        let id = NationalId::parse(&format!("{field}.national_id"), &r.national_id)?;
        return Ok(PersonRef::Key(keyer.key(&id)));
    }
    match (text_opt(&r.account_system), text_opt(&r.account_id)) {
        (Some(account_system), Some(account_id)) => Ok(PersonRef::Account {
            account_system,
            account_id,
        }),
        (Some(_), None) => Err(Rejection::missing(format!("{field}.account_id"))),
        (None, Some(_)) => Err(Rejection::missing(format!("{field}.account_system"))),
        (None, None) => Err(Rejection::missing(format!(
            "{field}.national_id or {field}.account_system/account_id"
        ))),
    }
}

fn themes(field: &str, themes: &[String]) -> Result<Vec<Theme>, Rejection> {
    let mut out = themes
        .iter()
        .map(|t| Theme::parse(field, t))
        .collect::<Result<Vec<_>, _>>()?;
    // A set: order and repetition carry no meaning, and must not change the content hash.
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

fn dimensions(
    field: &str,
    dims: &BTreeMap<String, f64>,
) -> Result<BTreeMap<String, f64>, Rejection> {
    dims.iter()
        .map(|(k, v)| {
            let name = text(&format!("{field} key"), k)?;
            Ok((name, score(&format!("{field}.{k}"), *v)?))
        })
        .collect()
}

/// Every rejection among a record's fields as one: the first one's code and field, and every
/// message, so a partner fixes all of them in one round rather than one per try.
fn all(errors: &[Option<&Rejection>]) -> Result<(), Rejection> {
    let found: Vec<&Rejection> = errors.iter().flatten().copied().collect();
    let Some(first) = found.first() else {
        return Ok(());
    };
    let mut combined = (*first).clone();
    if found.len() > 1 {
        let messages: Vec<&str> = found.iter().map(|r| r.message.as_str()).collect();
        combined.message = format!("{} field errors: {}", found.len(), messages.join("; "));
    }
    Err(combined)
}

fn body(b: &PbBody, keyer: &PersonKeyer) -> Result<Body, Rejection> {
    Ok(match b {
        PbBody::Person(p) => Body::Person(person(p, keyer)?),
        PbBody::PersonEvent(e) => {
            let person = person_ref("person_event.person_ref", e.person_ref.as_ref(), keyer);
            let event = EventKind::parse("person_event.event", &e.event);
            let effective_date = date("person_event.effective_date", &e.effective_date);
            let rank = Rank::parse_opt("person_event.rank", &e.rank);
            all(&[
                person.as_ref().err(),
                event.as_ref().err(),
                effective_date.as_ref().err(),
                rank.as_ref().err(),
            ])?;
            Body::PersonEvent(m::PersonEvent {
                person: person?,
                event: event?,
                effective_date: effective_date?,
                rank: rank?,
                unit_code: text_opt(&e.unit_code),
            })
        }
        PbBody::Link(l) => {
            let id = NationalId::parse("link.national_id", &l.national_id);
            let system = text("link.account_system", &l.account_system);
            let account = text("link.account_id", &l.account_id);
            all(&[
                id.as_ref().err(),
                system.as_ref().err(),
                account.as_ref().err(),
            ])?;
            Body::Link(m::Link {
                person_key: keyer.key(&id?),
                account_system: system?,
                account_id: account?,
            })
        }
        PbBody::TrainingClass(c) => Body::TrainingClass(training_class(c)?),
        PbBody::Enrollment(e) => Body::Enrollment(enrollment(e, keyer)?),
        PbBody::Attendance(a) => Body::Attendance(attendance(a, keyer)?),
        PbBody::Learning(l) => Body::Learning(learning(l, keyer)?),
        PbBody::Result(r) => Body::Result(result(r, keyer)?),
        PbBody::Evaluation(e) => Body::Evaluation(evaluation(e, keyer)?),
    })
}

fn person(p: &pb::Person, keyer: &PersonKeyer) -> Result<m::Person, Rejection> {
    let national_id = NationalId::parse("person.national_id", &p.national_id);
    let status = PersonStatus::parse_opt("person.status", &p.status);
    let name = text("person.name", &p.name);
    let gender = Gender::parse_opt("person.gender", &p.gender);
    let birth_date = date_opt("person.birth_date", &p.birth_date);
    let ethnicity = parse_ethnicity("person.ethnicity", &p.ethnicity);
    let education = parse_education("person.education", &p.education);
    let rank = Rank::parse_opt("person.rank", &p.rank);
    let category = Category::parse_opt("person.category", &p.category);
    let hired_on = date_opt("person.hired_on", &p.hired_on);
    let status_since = date_opt("person.status_since", &p.status_since);
    let authority = authority_code("person.authority", &p.authority);
    all(&[
        national_id.as_ref().err(),
        name.as_ref().err(),
        gender.as_ref().err(),
        birth_date.as_ref().err(),
        ethnicity.as_ref().err(),
        education.as_ref().err(),
        rank.as_ref().err(),
        category.as_ref().err(),
        status.as_ref().err(),
        hired_on.as_ref().err(),
        status_since.as_ref().err(),
        authority.as_ref().err(),
    ])?;
    let national_id = national_id?;
    Ok(m::Person {
        person_key: keyer.key(&national_id),
        national_id,
        name: name?,
        gender: gender?,
        birth_date: birth_date?,
        ethnicity: ethnicity?,
        education: education?,
        rank: rank?,
        category: category?,
        unit_code: text_opt(&p.unit_code),
        unit_name: text_opt(&p.unit_name),
        region_code: text_opt(&p.region_code),
        position: text_opt(&p.position),
        status: status?.unwrap_or(PersonStatus::Active),
        hired_on: hired_on?,
        status_since: status_since?,
        authority: authority?,
    })
}

/// A cadre-management authority code: letters, digits, `-` and `_` (it is a part of the
/// events' routing key), at most 64.
fn authority_code(field: &str, text: &str) -> Result<Option<String>, Rejection> {
    let Some(code) = text_opt(text) else {
        return Ok(None);
    };
    let ok = code.len() <= 64
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(Some(code))
    } else {
        Err(Rejection::invalid(
            trainhub_model::ReasonCode::UnknownCode,
            field,
            format!("`{field}` `{code}` is not an authority code (letters, digits, - and _, at most 64)"),
        ))
    }
}

fn enrollment(e: &pb::Enrollment, keyer: &PersonKeyer) -> Result<m::Enrollment, Rejection> {
    let person = person_ref("enrollment.person_ref", e.person_ref.as_ref(), keyer);
    let class_id = text("enrollment.class_id", &e.class_id);
    let status = EnrollmentStatus::parse("enrollment.status", &e.status);
    let dispatch = Dispatch::parse_opt("enrollment.dispatch", &e.dispatch);
    let enrolled_at = instant_opt("enrollment.enrolled_at", &e.enrolled_at);
    all(&[
        person.as_ref().err(),
        class_id.as_ref().err(),
        status.as_ref().err(),
        dispatch.as_ref().err(),
        enrolled_at.as_ref().err(),
    ])?;
    Ok(m::Enrollment {
        person: person?,
        class_id: class_id?,
        status: status?,
        dispatch: dispatch?,
        enrolled_at: enrolled_at?.map(|(t, _)| t),
    })
}

fn attendance(a: &pb::Attendance, keyer: &PersonKeyer) -> Result<m::Attendance, Rejection> {
    let person = person_ref("attendance.person_ref", a.person_ref.as_ref(), keyer);
    let class_id = text("attendance.class_id", &a.class_id);
    let day = date("attendance.date", &a.date);
    let hrs = hours("attendance.hours", a.hours);
    let kind = AttendanceKind::parse("attendance.kind", &a.kind);
    all(&[
        person.as_ref().err(),
        class_id.as_ref().err(),
        day.as_ref().err(),
        hrs.as_ref().err(),
        kind.as_ref().err(),
    ])?;
    Ok(m::Attendance {
        person: person?,
        class_id: class_id?,
        date: day?,
        hours: hrs?,
        kind: kind?,
    })
}

fn evaluation(e: &pb::Evaluation, keyer: &PersonKeyer) -> Result<m::Evaluation, Rejection> {
    let person = person_ref("evaluation.person_ref", e.person_ref.as_ref(), keyer);
    let class_id = text("evaluation.class_id", &e.class_id);
    let rater_role = RaterRole::parse("evaluation.rater_role", &e.rater_role);
    let dims = dimensions("evaluation.dimensions", &e.dimensions);
    let evaluated_at = instant_opt("evaluation.evaluated_at", &e.evaluated_at);
    all(&[
        person.as_ref().err(),
        class_id.as_ref().err(),
        rater_role.as_ref().err(),
        dims.as_ref().err(),
        evaluated_at.as_ref().err(),
    ])?;
    Ok(m::Evaluation {
        person: person?,
        class_id: class_id?,
        rater_role: rater_role?,
        dimensions: dims?,
        evaluated_at: evaluated_at?.map(|(t, _)| t),
    })
}

fn learning(l: &pb::Learning, keyer: &PersonKeyer) -> Result<m::Learning, Rejection> {
    let minutes = hours("learning.minutes", l.minutes);
    let hrs = hours("learning.hours", l.hours);
    let completed = instant("learning.completed_at", &l.completed_at);
    let person = person_ref("learning.person_ref", l.person_ref.as_ref(), keyer);
    let course_id = text("learning.course_id", &l.course_id);
    let themes = themes("learning.themes", &l.themes);
    let amount = match (&hrs, &minutes) {
        (Ok(h), _) if *h > 0.0 => Ok(m::StudyAmount::Hours(*h)),
        (_, Ok(m)) if *m > 0.0 => Ok(m::StudyAmount::Minutes(*m)),
        (Ok(_), Ok(_)) => Err(Rejection::missing("learning.minutes or learning.hours")),
        _ => Ok(m::StudyAmount::Hours(0.0)),
    };
    all(&[
        person.as_ref().err(),
        course_id.as_ref().err(),
        minutes.as_ref().err(),
        hrs.as_ref().err(),
        amount.as_ref().err(),
        completed.as_ref().err(),
        themes.as_ref().err(),
    ])?;
    let (completed_at, completed_on) = completed?;
    Ok(m::Learning {
        person: person?,
        course_id: course_id?,
        course_title: text_opt(&l.course_title).unwrap_or_default(),
        themes: themes?,
        amount: amount?,
        completed_at,
        completed_on,
    })
}

fn result(r: &pb::Result, keyer: &PersonKeyer) -> Result<m::ResultRecord, Rejection> {
    let assessed = instant("result.assessed_at", &r.assessed_at);
    let person = person_ref("result.person_ref", r.person_ref.as_ref(), keyer);
    let class_id = text("result.class_id", &r.class_id);
    let outcome = Outcome::parse("result.outcome", &r.outcome);
    let score = match r.score {
        0.0 => Ok(None),
        s => score("result.score", s).map(Some),
    };
    let dims = dimensions("result.dimensions", &r.dimensions);
    all(&[
        person.as_ref().err(),
        class_id.as_ref().err(),
        outcome.as_ref().err(),
        score.as_ref().err(),
        dims.as_ref().err(),
        assessed.as_ref().err(),
    ])?;
    let (assessed_at, assessed_on) = assessed?;
    Ok(m::ResultRecord {
        person: person?,
        class_id: class_id?,
        outcome: outcome?,
        score: score?,
        dimensions: dims?,
        certificate_no: text_opt(&r.certificate_no),
        assessed_at,
        assessed_on,
    })
}

/// Validates a training class (also used for the class of a dispatch plan).
pub fn training_class(c: &pb::TrainingClass) -> Result<m::TrainingClass, Rejection> {
    let title = text("training_class.title", &c.title);
    let start_date = date("training_class.start_date", &c.start_date);
    let end_date = date("training_class.end_date", &c.end_date);
    let range = match (&start_date, &end_date) {
        (Ok(start), Ok(end)) if end < start => Err(Rejection::invalid(
            trainhub_model::ReasonCode::BadDateRange,
            "training_class.end_date",
            "`training_class.end_date` is before `training_class.start_date`",
        )),
        _ => Ok(()),
    };
    let class_id = text("training_class.class_id", &c.class_id);
    let provider = text("training_class.provider", &c.provider);
    let themes = themes("training_class.themes", &c.themes);
    let format = Format::parse("training_class.format", &c.format);
    let category = ClassCategory::parse_opt("training_class.category", &c.category);
    let planned = hours("training_class.planned_hours", c.planned_hours);
    all(&[
        class_id.as_ref().err(),
        provider.as_ref().err(),
        title.as_ref().err(),
        themes.as_ref().err(),
        format.as_ref().err(),
        category.as_ref().err(),
        start_date.as_ref().err(),
        end_date.as_ref().err(),
        range.as_ref().err(),
        planned.as_ref().err(),
    ])?;
    let title = title?;
    Ok(m::TrainingClass {
        class_id: class_id?,
        provider: provider?,
        topic: text_opt(&c.topic).unwrap_or_else(|| title.clone()),
        title,
        themes: themes?,
        format: format?,
        category: category?,
        start_date: start_date?,
        end_date: end_date?,
        planned_hours: planned?,
        capacity: u32::try_from(c.capacity).ok().filter(|c| *c > 0),
    })
}

/// Validates a person reference of a reader's request, resolving it like a record's.
pub fn reader_person_ref(
    field: &str,
    r: &pb::PersonRef,
    keyer: &PersonKeyer,
) -> Result<PersonRef, Rejection> {
    person_ref(field, Some(r), keyer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person_with(gender: &str, rank: &str, birth_date: &str) -> pb::Record {
        pb::Record {
            source: Some(pb::SourceRef {
                system: "hr".into(),
                kind: "person".into(),
                record_id: "P1".into(),
                version: 1,
            }),
            deleted: false,
            body: Some(PbBody::Person(pb::Person {
                national_id: "11010519491231002X".into(),
                name: "张伟".into(),
                gender: gender.into(),
                rank: rank.into(),
                birth_date: birth_date.into(),
                ..Default::default()
            })),
        }
    }

    #[test]
    fn every_field_error_of_a_record_is_named_at_once() {
        let keyer = PersonKeyer::new(b"test secret");
        let bad = canonical(&person_with("x", "general", "1949-13-31"), &keyer).unwrap_err();
        assert_eq!(bad.field, "person.gender", "the first one's field");
        for field in ["person.gender", "person.rank", "person.birth_date"] {
            assert!(bad.message.contains(field), "{field}: {}", bad.message);
        }
        assert!(
            bad.message.starts_with("3 field errors: "),
            "{}",
            bad.message
        );
        let one = canonical(&person_with("1", "general", ""), &keyer).unwrap_err();
        assert_eq!(one.field, "person.rank");
        assert!(!one.message.contains("field errors"), "{}", one.message);
        assert!(canonical(&person_with("1", "county", "1949-12-31"), &keyer).is_ok());
    }
}
