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

fn body(b: &PbBody, keyer: &PersonKeyer) -> Result<Body, Rejection> {
    Ok(match b {
        PbBody::Person(p) => Body::Person(person(p, keyer)?),
        PbBody::PersonEvent(e) => Body::PersonEvent(m::PersonEvent {
            person: person_ref("person_event.person_ref", e.person_ref.as_ref(), keyer)?,
            event: EventKind::parse("person_event.event", &e.event)?,
            effective_date: date("person_event.effective_date", &e.effective_date)?,
            rank: Rank::parse_opt("person_event.rank", &e.rank)?,
            unit_code: text_opt(&e.unit_code),
        }),
        PbBody::Link(l) => {
            let id = NationalId::parse("link.national_id", &l.national_id)?;
            Body::Link(m::Link {
                person_key: keyer.key(&id),
                account_system: text("link.account_system", &l.account_system)?,
                account_id: text("link.account_id", &l.account_id)?,
            })
        }
        PbBody::TrainingClass(c) => Body::TrainingClass(training_class(c)?),
        PbBody::Enrollment(e) => Body::Enrollment(m::Enrollment {
            person: person_ref("enrollment.person_ref", e.person_ref.as_ref(), keyer)?,
            class_id: text("enrollment.class_id", &e.class_id)?,
            status: EnrollmentStatus::parse("enrollment.status", &e.status)?,
            dispatch: Dispatch::parse_opt("enrollment.dispatch", &e.dispatch)?,
            enrolled_at: instant_opt("enrollment.enrolled_at", &e.enrolled_at)?.map(|(t, _)| t),
        }),
        PbBody::Attendance(a) => Body::Attendance(m::Attendance {
            person: person_ref("attendance.person_ref", a.person_ref.as_ref(), keyer)?,
            class_id: text("attendance.class_id", &a.class_id)?,
            date: date("attendance.date", &a.date)?,
            hours: hours("attendance.hours", a.hours)?,
            kind: AttendanceKind::parse("attendance.kind", &a.kind)?,
        }),
        PbBody::Learning(l) => Body::Learning(learning(l, keyer)?),
        PbBody::Result(r) => Body::Result(result(r, keyer)?),
        PbBody::Evaluation(e) => Body::Evaluation(m::Evaluation {
            person: person_ref("evaluation.person_ref", e.person_ref.as_ref(), keyer)?,
            class_id: text("evaluation.class_id", &e.class_id)?,
            rater_role: RaterRole::parse("evaluation.rater_role", &e.rater_role)?,
            dimensions: dimensions("evaluation.dimensions", &e.dimensions)?,
            evaluated_at: instant_opt("evaluation.evaluated_at", &e.evaluated_at)?.map(|(t, _)| t),
        }),
    })
}

fn person(p: &pb::Person, keyer: &PersonKeyer) -> Result<m::Person, Rejection> {
    let national_id = NationalId::parse("person.national_id", &p.national_id)?;
    let status =
        PersonStatus::parse_opt("person.status", &p.status)?.unwrap_or(PersonStatus::Active);
    Ok(m::Person {
        person_key: keyer.key(&national_id),
        national_id,
        name: text("person.name", &p.name)?,
        gender: Gender::parse_opt("person.gender", &p.gender)?,
        birth_date: date_opt("person.birth_date", &p.birth_date)?,
        ethnicity: parse_ethnicity("person.ethnicity", &p.ethnicity)?,
        education: parse_education("person.education", &p.education)?,
        rank: Rank::parse_opt("person.rank", &p.rank)?,
        category: Category::parse_opt("person.category", &p.category)?,
        unit_code: text_opt(&p.unit_code),
        unit_name: text_opt(&p.unit_name),
        region_code: text_opt(&p.region_code),
        position: text_opt(&p.position),
        status,
        hired_on: date_opt("person.hired_on", &p.hired_on)?,
        status_since: date_opt("person.status_since", &p.status_since)?,
    })
}

fn learning(l: &pb::Learning, keyer: &PersonKeyer) -> Result<m::Learning, Rejection> {
    let minutes = hours("learning.minutes", l.minutes)?;
    let hrs = hours("learning.hours", l.hours)?;
    let amount = if hrs > 0.0 {
        m::StudyAmount::Hours(hrs)
    } else if minutes > 0.0 {
        m::StudyAmount::Minutes(minutes)
    } else {
        return Err(Rejection::missing("learning.minutes or learning.hours"));
    };
    let (completed_at, completed_on) = instant("learning.completed_at", &l.completed_at)?;
    Ok(m::Learning {
        person: person_ref("learning.person_ref", l.person_ref.as_ref(), keyer)?,
        course_id: text("learning.course_id", &l.course_id)?,
        course_title: text_opt(&l.course_title).unwrap_or_default(),
        themes: themes("learning.themes", &l.themes)?,
        amount,
        completed_at,
        completed_on,
    })
}

fn result(r: &pb::Result, keyer: &PersonKeyer) -> Result<m::ResultRecord, Rejection> {
    let (assessed_at, assessed_on) = instant("result.assessed_at", &r.assessed_at)?;
    Ok(m::ResultRecord {
        person: person_ref("result.person_ref", r.person_ref.as_ref(), keyer)?,
        class_id: text("result.class_id", &r.class_id)?,
        outcome: Outcome::parse("result.outcome", &r.outcome)?,
        score: if r.score == 0.0 {
            None
        } else {
            Some(score("result.score", r.score)?)
        },
        dimensions: dimensions("result.dimensions", &r.dimensions)?,
        certificate_no: text_opt(&r.certificate_no),
        assessed_at,
        assessed_on,
    })
}

/// Validates a training class (also used for the class of a dispatch plan).
pub fn training_class(c: &pb::TrainingClass) -> Result<m::TrainingClass, Rejection> {
    let title = text("training_class.title", &c.title)?;
    let start_date = date("training_class.start_date", &c.start_date)?;
    let end_date = date("training_class.end_date", &c.end_date)?;
    if end_date < start_date {
        return Err(Rejection::invalid(
            trainhub_model::ReasonCode::BadDateRange,
            "training_class.end_date",
            "`training_class.end_date` is before `training_class.start_date`",
        ));
    }
    Ok(m::TrainingClass {
        class_id: text("training_class.class_id", &c.class_id)?,
        provider: text("training_class.provider", &c.provider)?,
        topic: text_opt(&c.topic).unwrap_or_else(|| title.clone()),
        title,
        themes: themes("training_class.themes", &c.themes)?,
        format: Format::parse("training_class.format", &c.format)?,
        category: ClassCategory::parse_opt("training_class.category", &c.category)?,
        start_date,
        end_date,
        planned_hours: hours("training_class.planned_hours", c.planned_hours)?,
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
