//! Decisions that read a dossier: whether a proposed enrollment breaks a dispatch limit, who is
//! away during a class, the appointment-form résumé lines, and coverage figures per group.

use crate::codes::{EnrollmentStatus, Format};
use crate::dossier::{compute, Dossier, Flag, Light, StoredRecord};
use crate::identity::PersonKey;
use crate::policy::Policy;
use crate::record::{Body, Enrollment, Kind, PersonRef, SourceRef, TrainingClass};
use chrono::NaiveDate;

const PLANNED: &str = "\u{0}planned";

/// The `LONG_TRAINING_LIMIT` and `SAME_TOPIC_REPEAT` flags that enrolling `person` in `class`
/// would newly create, checked at `as_of`.
pub fn violations(
    person: &PersonKey,
    records: &[StoredRecord],
    class: &TrainingClass,
    as_of: NaiveDate,
    policy: &Policy,
) -> Vec<Flag> {
    let limits = |d: &Option<Dossier>| -> Vec<Flag> {
        d.iter()
            .flat_map(|d| d.flags.iter())
            .filter(|f| matches!(f.code, "LONG_TRAINING_LIMIT" | "SAME_TOPIC_REPEAT"))
            .cloned()
            .collect()
    };
    let before = limits(&compute(person, records, as_of, policy));
    let mut planned = records.to_vec();
    let mut class = class.clone();
    // The planned class gets an id of its own so it never merges with a stored one.
    class.class_id = format!("{PLANNED}:{}", class.class_id);
    let source = |kind| SourceRef {
        system: PLANNED.into(),
        kind,
        record_id: class.class_id.clone(),
        version: 0,
    };
    planned.push(StoredRecord {
        source: source(Kind::TrainingClass),
        received_at: String::new(),
        profile: String::new(),
        body: Body::TrainingClass(class.clone()),
    });
    planned.push(StoredRecord {
        source: source(Kind::Enrollment),
        received_at: String::new(),
        profile: String::new(),
        body: Body::Enrollment(Enrollment {
            person: PersonRef::Key(person.clone()),
            class_id: class.class_id.clone(),
            status: EnrollmentStatus::Enrolled,
            dispatch: None,
            enrolled_at: None,
        }),
    });
    limits(&compute(person, &planned, as_of, policy))
        .into_iter()
        .filter(|f| !before.contains(f))
        .map(|mut f| {
            f.message = f.message.replace(&class.class_id, "the planned class");
            f
        })
        .collect()
}

/// Whether the dossier shows an off-job training (enrolled or completed) overlapping
/// `[start, end]`.
pub fn away_during(dossier: &Dossier, start: NaiveDate, end: NaiveDate) -> bool {
    dossier.trainings.iter().any(|t| {
        t.format == Format::OffJob
            && matches!(
                t.enrollment,
                Some(EnrollmentStatus::Enrolled | EnrollmentStatus::Completed)
            )
            && t.start_date <= end
            && t.end_date >= start
    })
}

/// Résumé lines for the appointment approval form: completed off-job trainings of at least
/// the policy's days, oldest first, as `YYYY.MM--YYYY.MM 在<provider>参加<title>学习`.
pub fn appointment_lines(dossier: &Dossier) -> Vec<String> {
    dossier
        .trainings
        .iter()
        .filter(|t| t.appointment_form && t.enrollment == Some(EnrollmentStatus::Completed))
        .map(|t| {
            format!(
                "{}--{} 在{}参加{}学习",
                t.start_date.format("%Y.%m"),
                t.end_date.format("%Y.%m"),
                t.provider,
                t.title
            )
        })
        .collect()
}

/// Coverage figures of one group, accumulated person by person.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CoverageGroup {
    /// In-scope persons.
    pub in_scope: i64,
    /// Of those, with at least one credited class or online record in the window.
    pub participated: i64,
    /// Results assessed in the window.
    pub results: i64,
    /// Of those, not `fail`.
    pub passed: i64,
    /// Persons per light.
    pub red: i64,
    #[allow(missing_docs)]
    pub yellow: i64,
    #[allow(missing_docs)]
    pub green: i64,
    /// The `RED` persons: key, name, unit.
    pub red_list: Vec<(String, String, String)>,
}

impl CoverageGroup {
    /// Adds one dossier (exempt persons are left out).
    pub fn add(&mut self, d: &Dossier) {
        if !d.in_scope {
            return;
        }
        self.in_scope += 1;
        self.participated += i64::from(d.participated);
        self.results += i64::from(d.results_in_window);
        self.passed += i64::from(d.results_passed);
        match d.light {
            Light::Red => {
                self.red += 1;
                self.red_list.push((
                    d.person_key.to_string(),
                    d.name.clone(),
                    d.unit_code.clone(),
                ));
            }
            Light::Yellow => self.yellow += 1,
            Light::Green => self.green += 1,
            Light::Exempt => {}
        }
    }

    /// Adds another group's figures (its RED list is left out): the totals of several groups.
    pub fn merge(&mut self, other: &CoverageGroup) {
        self.in_scope += other.in_scope;
        self.participated += other.participated;
        self.results += other.results;
        self.passed += other.passed;
        self.red += other.red;
        self.yellow += other.yellow;
        self.green += other.green;
    }

    /// Share of in-scope persons who took part.
    pub fn participation_rate(&self) -> f64 {
        ratio(self.participated, self.in_scope)
    }

    /// Share of results that are not `fail`.
    pub fn pass_rate(&self) -> f64 {
        ratio(self.passed, self.results)
    }

    /// Share of in-scope persons not `RED`.
    pub fn coverage_rate(&self) -> f64 {
        ratio(self.in_scope - self.red, self.in_scope)
    }
}

fn ratio(n: i64, d: i64) -> f64 {
    if d == 0 {
        0.0
    } else {
        n as f64 / d as f64
    }
}

/// The grouping key of a dossier for `group_by` (`unit`, `rank`, `category`, `region`).
pub fn group_key(d: &Dossier, group_by: GroupBy) -> String {
    match group_by {
        GroupBy::Unit => d.unit_code.clone(),
        GroupBy::Rank => d.rank.map(|r| r.as_str().to_owned()).unwrap_or_default(),
        GroupBy::Category => d
            .category
            .map(|c| c.as_str().to_owned())
            .unwrap_or_default(),
        GroupBy::Region => d.region_code.clone(),
    }
}

/// What coverage is grouped by.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Unit,
    Rank,
    Category,
    Region,
}

impl GroupBy {
    /// Parses `unit`, `rank`, `category` or `region`.
    pub fn parse(text: &str) -> Result<GroupBy, crate::Rejection> {
        match text.trim() {
            "unit" | "" => Ok(GroupBy::Unit),
            "rank" => Ok(GroupBy::Rank),
            "category" => Ok(GroupBy::Category),
            "region" => Ok(GroupBy::Region),
            other => Err(crate::Rejection::invalid(
                crate::ReasonCode::UnknownCode,
                "group_by",
                format!("`group_by` is {other:?}; expected unit, rank, category or region"),
            )),
        }
    }

    /// The summary column it groups on.
    pub fn column(self) -> &'static str {
        match self {
            GroupBy::Unit => "unit_code",
            GroupBy::Rank => "rank",
            GroupBy::Category => "category",
            GroupBy::Region => "region_code",
        }
    }
}
