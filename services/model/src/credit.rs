//! Crediting rules (DESIGN §5): which trainings count and for how many 学时.

use crate::codes::*;
use crate::entries::{round2, Flag, StoredRecord, TrainingEntry};
use crate::policy::Policy;
use crate::record::*;
use chrono::Datelike;
use std::collections::BTreeMap;

/// Everything one person's records say about one class.
#[derive(Default)]
struct ClassFacts<'a> {
    class: Option<&'a TrainingClass>,
    enrollment: Option<(&'a StoredRecord, &'a Enrollment)>,
    result: Option<(&'a StoredRecord, &'a ResultRecord)>,
    present_hours: f64,
    has_present: bool,
    leave_hours: f64,
}

fn key(r: &StoredRecord) -> (&str, &str) {
    (&r.source.system, &r.source.record_id)
}

/// Groups the records by class, choosing among competing records by a total order on content.
fn class_facts(records: &[StoredRecord]) -> BTreeMap<&str, ClassFacts<'_>> {
    let mut classes: BTreeMap<&str, ClassFacts<'_>> = BTreeMap::new();
    // Attendance is summed; sort first so float sums are order-independent.
    let mut sorted: Vec<&StoredRecord> = records.iter().collect();
    sorted.sort_by(|a, b| (a.source.kind, key(a)).cmp(&(b.source.kind, key(b))));
    for r in sorted {
        match &r.body {
            Body::TrainingClass(c) => {
                let f = classes.entry(&c.class_id).or_default();
                // Several systems may describe a class: the first in (system, record_id) order.
                f.class.get_or_insert(c);
            }
            Body::Enrollment(e) => {
                let f = classes.entry(&e.class_id).or_default();
                // The latest enrollment by time, then by source.
                let newer = f
                    .enrollment
                    .is_none_or(|(or, oe)| (&e.enrolled_at, key(r)) > (&oe.enrolled_at, key(or)));
                if newer {
                    f.enrollment = Some((r, e));
                }
            }
            Body::Result(res) => {
                let f = classes.entry(&res.class_id).or_default();
                let newer = f.result.is_none_or(|(or, o)| {
                    (res.assessed_on, &res.assessed_at, key(r))
                        > (o.assessed_on, &o.assessed_at, key(or))
                });
                if newer {
                    f.result = Some((r, res));
                }
            }
            Body::Attendance(a) => {
                let f = classes.entry(&a.class_id).or_default();
                match a.kind {
                    AttendanceKind::Present => {
                        f.present_hours += a.hours;
                        f.has_present = true;
                    }
                    AttendanceKind::Leave => f.leave_hours += a.hours,
                    AttendanceKind::Absent => {}
                }
            }
            _ => {}
        }
    }
    classes
}

/// Whether leave voids the enrollment: more than the cap (exactly the cap is allowed).
fn leave_exceeded(leave: f64, planned: f64, policy: &Policy) -> bool {
    leave > planned * policy.leave_cap + 1e-9
}

/// The person's trainings: classes they are enrolled in (whose class record is known) and
/// online learning, sorted by end date then id.
pub fn trainings(records: &[StoredRecord], policy: &Policy) -> Vec<TrainingEntry> {
    let mut out = Vec::new();
    for (class_id, f) in class_facts(records) {
        let (Some(class), Some((_, enrollment))) = (f.class, f.enrollment) else {
            continue;
        };
        let outcome = f.result.map(|(_, r)| r.outcome);
        let credited = enrollment.status == EnrollmentStatus::Completed
            && outcome != Some(Outcome::Fail)
            && !leave_exceeded(f.leave_hours, class.planned_hours, policy);
        let hours = if f.has_present {
            f.present_hours.min(class.planned_hours)
        } else {
            class.planned_hours
        };
        let off_job = class.format == Format::OffJob;
        out.push(TrainingEntry {
            class_id: class_id.to_owned(),
            title: class.title.clone(),
            provider: class.provider.clone(),
            themes: class.themes.clone(),
            format: class.format,
            start_date: class.start_date,
            end_date: class.end_date,
            credited_hours: if credited { hours } else { 0.0 },
            outcome,
            certificate_no: f.result.and_then(|(_, r)| r.certificate_no.clone()),
            annual_form: off_job,
            appointment_form: off_job && class.days() >= policy.appointment_form_days,
            credited,
            topic: class.topic.clone(),
            enrollment: Some(enrollment.status),
            assessed_on: f.result.map(|(_, r)| r.assessed_on),
            failed_on: f
                .result
                .filter(|(_, r)| r.outcome == Outcome::Fail)
                .map(|(_, r)| r.assessed_on),
        });
    }
    let mut learning: Vec<(&StoredRecord, &Learning)> = records
        .iter()
        .filter_map(|r| match &r.body {
            Body::Learning(l) => Some((r, l)),
            _ => None,
        })
        .collect();
    learning.sort_by(|a, b| key(a.0).cmp(&key(b.0)));
    for (r, l) in learning {
        let hours = match l.amount {
            StudyAmount::Hours(h) => h,
            StudyAmount::Minutes(m) => policy.hour_rule(&r.source.system).hours(m),
        };
        out.push(TrainingEntry {
            class_id: l.course_id.clone(),
            title: l.course_title.clone(),
            provider: String::new(),
            themes: l.themes.clone(),
            format: Format::Online,
            start_date: l.completed_on,
            end_date: l.completed_on,
            credited_hours: hours,
            outcome: None,
            certificate_no: None,
            annual_form: false,
            appointment_form: false,
            credited: true,
            topic: l.course_title.clone(),
            enrollment: None,
            failed_on: None,
            assessed_on: None,
        });
    }
    out.sort_by(|a, b| (a.end_date, &a.class_id).cmp(&(b.end_date, &b.class_id)));
    out
}

/// `LEAVE_LIMIT_EXCEEDED` for every completed enrollment voided by leave (条例 第十五条).
pub fn leave_flags(
    trainings: &[TrainingEntry],
    records: &[StoredRecord],
    policy: &Policy,
) -> Vec<Flag> {
    let facts = class_facts(records);
    trainings
        .iter()
        .filter_map(|t| {
            let f = facts.get(t.class_id.as_str())?;
            let class = f.class?;
            leave_exceeded(f.leave_hours, class.planned_hours, policy).then(|| Flag {
                code: "LEAVE_LIMIT_EXCEEDED",
                year: Some(class.start_date.year()),
                message: format!(
                    "leave of {} 学时 in class {} exceeds 1/7 of its {} planned 学时; the enrollment counts as withdrawn",
                    round2(f.leave_hours),
                    t.class_id,
                    class.planned_hours
                ),
            })
        })
        .collect()
}
