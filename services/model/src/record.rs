//! Canonical records (DESIGN §3): a [`SourceRef`], a tombstone flag and one of nine bodies.
//!
//! Bodies hold only validated values. Person references are already resolved to a
//! [`PersonKey`] (by national ID) or kept as a platform account to resolve through links,
//! so stored non-person records never carry a raw national ID.

use crate::codes::*;
use crate::error::{ReasonCode, Rejection};
use crate::identity::{NationalId, PersonKey};
use chrono::NaiveDate;
use std::collections::BTreeMap;

/// The nine record kinds; the wire name is the body's field name.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A person (HR master data).
    Person,
    /// Hiring, promotion, transfer, retirement.
    PersonEvent,
    /// A platform account tied to a person.
    Link,
    /// A class (班次).
    TrainingClass,
    /// 参训登记.
    Enrollment,
    /// Attendance and leave per day.
    Attendance,
    /// Online self-study.
    Learning,
    /// 考核结业.
    Result,
    /// 多元评价.
    Evaluation,
}

impl Kind {
    /// All kinds.
    pub const ALL: [Kind; 9] = [
        Kind::Person,
        Kind::PersonEvent,
        Kind::Link,
        Kind::TrainingClass,
        Kind::Enrollment,
        Kind::Attendance,
        Kind::Learning,
        Kind::Result,
        Kind::Evaluation,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Person => "person",
            Kind::PersonEvent => "person_event",
            Kind::Link => "link",
            Kind::TrainingClass => "training_class",
            Kind::Enrollment => "enrollment",
            Kind::Attendance => "attendance",
            Kind::Learning => "learning",
            Kind::Result => "result",
            Kind::Evaluation => "evaluation",
        }
    }

    /// Parses a wire name.
    pub fn parse(field: &str, text: &str) -> Result<Self, Rejection> {
        match Kind::ALL.iter().find(|k| k.as_str() == text.trim()) {
            Some(k) => Ok(*k),
            None if text.trim().is_empty() => Err(Rejection::missing(field)),
            None => Err(Rejection::invalid(
                ReasonCode::UnknownCode,
                field,
                format!("`{field}` is {text:?}, not a record kind"),
            )),
        }
    }
}

/// Identity and version of a source record.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct SourceRef {
    /// Partner system name.
    pub system: String,
    /// Record kind.
    pub kind: Kind,
    /// Id in the source system.
    pub record_id: String,
    /// Version; higher wins.
    pub version: i64,
}

/// How a non-person record names its person, after validation.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum PersonRef {
    /// Resolved through the national ID.
    Key(PersonKey),
    /// A platform account, resolved through `link` records.
    Account {
        /// e.g. the xAPI `homePage`.
        account_system: String,
        /// Account id within that system.
        account_id: String,
    },
}

/// `person` body.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Person {
    pub national_id: NationalId,
    /// The blind index of `national_id` under the hub secret.
    pub person_key: PersonKey,
    pub name: String,
    pub gender: Option<Gender>,
    pub birth_date: Option<NaiveDate>,
    pub ethnicity: Option<String>,
    pub education: Option<String>,
    pub rank: Option<Rank>,
    pub category: Option<Category>,
    pub unit_code: Option<String>,
    pub unit_name: Option<String>,
    pub region_code: Option<String>,
    pub position: Option<String>,
    pub status: PersonStatus,
    pub hired_on: Option<NaiveDate>,
    pub status_since: Option<NaiveDate>,
    /// The cadre-management authority that manages the person (a code), if recorded.
    #[serde(default)]
    pub authority: Option<String>,
}

/// `person_event` body.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PersonEvent {
    pub person: PersonRef,
    pub event: EventKind,
    pub effective_date: NaiveDate,
    pub rank: Option<Rank>,
    pub unit_code: Option<String>,
}

/// `link` body: ties an account to a person.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Link {
    pub person_key: PersonKey,
    pub account_system: String,
    pub account_id: String,
}

/// `training_class` body.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainingClass {
    pub class_id: String,
    pub provider: String,
    pub title: String,
    /// The specific subject; defaults to the title.
    pub topic: String,
    pub themes: Vec<Theme>,
    pub format: Format,
    pub category: Option<ClassCategory>,
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    pub planned_hours: f64,
    pub capacity: Option<u32>,
}

impl TrainingClass {
    /// Inclusive day count, `end − start + 1`.
    pub fn days(&self) -> i64 {
        (self.end_date - self.start_date).num_days() + 1
    }
}

/// `enrollment` body.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Enrollment {
    pub person: PersonRef,
    pub class_id: String,
    pub status: EnrollmentStatus,
    pub dispatch: Option<Dispatch>,
    pub enrolled_at: Option<String>,
}

/// `attendance` body.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Attendance {
    pub person: PersonRef,
    pub class_id: String,
    pub date: NaiveDate,
    pub hours: f64,
    pub kind: AttendanceKind,
}

/// `learning` body (online self-study).
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Learning {
    pub person: PersonRef,
    pub course_id: String,
    pub course_title: String,
    pub themes: Vec<Theme>,
    pub amount: StudyAmount,
    pub completed_at: String,
    pub completed_on: NaiveDate,
}

/// Study time as sent: hours are credited as they are, minutes through the source's rule.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StudyAmount {
    Hours(f64),
    Minutes(f64),
}

/// `result` body.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ResultRecord {
    pub person: PersonRef,
    pub class_id: String,
    pub outcome: Outcome,
    pub score: Option<f64>,
    pub dimensions: BTreeMap<String, f64>,
    pub certificate_no: Option<String>,
    pub assessed_at: String,
    pub assessed_on: NaiveDate,
}

/// `evaluation` body.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Evaluation {
    pub person: PersonRef,
    pub class_id: String,
    pub rater_role: RaterRole,
    pub dimensions: BTreeMap<String, f64>,
    pub evaluated_at: Option<String>,
}

/// One validated body.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Body {
    Person(Person),
    PersonEvent(PersonEvent),
    Link(Link),
    TrainingClass(TrainingClass),
    Enrollment(Enrollment),
    Attendance(Attendance),
    Learning(Learning),
    Result(ResultRecord),
    Evaluation(Evaluation),
}

impl Body {
    /// The body's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Body::Person(_) => Kind::Person,
            Body::PersonEvent(_) => Kind::PersonEvent,
            Body::Link(_) => Kind::Link,
            Body::TrainingClass(_) => Kind::TrainingClass,
            Body::Enrollment(_) => Kind::Enrollment,
            Body::Attendance(_) => Kind::Attendance,
            Body::Learning(_) => Kind::Learning,
            Body::Result(_) => Kind::Result,
            Body::Evaluation(_) => Kind::Evaluation,
        }
    }

    /// The person reference of a person-bound body (not `person`, `link` or `training_class`).
    pub fn person_ref(&self) -> Option<&PersonRef> {
        match self {
            Body::PersonEvent(b) => Some(&b.person),
            Body::Enrollment(b) => Some(&b.person),
            Body::Attendance(b) => Some(&b.person),
            Body::Learning(b) => Some(&b.person),
            Body::Result(b) => Some(&b.person),
            Body::Evaluation(b) => Some(&b.person),
            Body::Person(_) | Body::Link(_) | Body::TrainingClass(_) => None,
        }
    }

    /// The class a body belongs to, if any.
    pub fn class_id(&self) -> Option<&str> {
        match self {
            Body::TrainingClass(b) => Some(&b.class_id),
            Body::Enrollment(b) => Some(&b.class_id),
            Body::Attendance(b) => Some(&b.class_id),
            Body::Result(b) => Some(&b.class_id),
            Body::Evaluation(b) => Some(&b.class_id),
            _ => None,
        }
    }
}

/// A validated record: source identity, tombstone flag and body (a tombstone may have none).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CanonicalRecord {
    /// Source identity and version.
    pub source: SourceRef,
    /// Tombstone: the record's effect is removed.
    pub deleted: bool,
    /// The body; `None` only on a tombstone.
    pub body: Option<Body>,
}

impl CanonicalRecord {
    /// Checks that a body agrees with `source.kind` and that a live record has a body.
    pub fn new(source: SourceRef, deleted: bool, body: Option<Body>) -> Result<Self, Rejection> {
        match &body {
            Some(b) if b.kind() != source.kind => {
                return Err(kind_mismatch(source.kind, b.kind().as_str()))
            }
            None if !deleted => return Err(Rejection::missing("body")),
            _ => {}
        }
        Ok(CanonicalRecord {
            source,
            deleted,
            body,
        })
    }
}

/// The rejection of a record whose `source.kind` disagrees with the body it carries.
pub fn kind_mismatch(source_kind: Kind, body_kind: &str) -> Rejection {
    Rejection::invalid(
        ReasonCode::KindMismatch,
        "source.kind",
        format!(
            "`source.kind` is {:?} but the body is {body_kind:?}",
            source_kind.as_str()
        ),
    )
}
