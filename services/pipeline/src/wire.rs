//! Model → wire conversions, all in one place: dossiers, flags, coverage groups, outcomes.

use trainhub_model::dispatch::CoverageGroup;
use trainhub_model::dossier::{self as d, Light};
use trainhub_model::merge::OutcomeStatus;
use trainhub_proto::v1 as pb;

fn light(l: Light) -> pb::Light {
    match l {
        Light::Red => pb::Light::Red,
        Light::Yellow => pb::Light::Yellow,
        Light::Green => pb::Light::Green,
        Light::Exempt => pb::Light::Exempt,
    }
}

/// A flag on the wire (year 0 when the flag has none).
pub fn flag(f: &d::Flag) -> pb::Flag {
    pb::Flag {
        code: f.code.to_owned(),
        year: f.year.unwrap_or_default(),
        message: f.message.clone(),
    }
}

/// One coverage group on the wire (its RED list moved, not copied: it may hold most of a
/// province).
pub fn coverage_group(key: String, g: CoverageGroup) -> pb::CoverageGroup {
    pb::CoverageGroup {
        key,
        in_scope: g.in_scope,
        participation_rate: g.participation_rate(),
        pass_rate: g.pass_rate(),
        coverage_rate: g.coverage_rate(),
        red: g.red,
        yellow: g.yellow,
        green: g.green,
        red_list: g
            .red_list
            .into_iter()
            .map(|(person_key, name, unit_code)| pb::PersonBrief {
                person_key,
                name,
                unit_code,
            })
            .collect(),
    }
}

fn training(t: &d::TrainingEntry) -> pb::TrainingEntry {
    pb::TrainingEntry {
        class_id: t.class_id.clone(),
        title: t.title.clone(),
        themes: t.themes.iter().map(|t| t.as_str().to_owned()).collect(),
        format: t.format.as_str().to_owned(),
        start_date: t.start_date.to_string(),
        end_date: t.end_date.to_string(),
        credited_hours: trainhub_model::dossier::round2(t.credited_hours),
        outcome: t.outcome.map(|o| o.as_str().to_owned()).unwrap_or_default(),
        certificate_no: t.certificate_no.clone().unwrap_or_default(),
        annual_form: t.annual_form,
        appointment_form: t.appointment_form,
        provider: t.provider.clone(),
        credited: t.credited,
    }
}

/// A dossier on the wire.
pub fn dossier(d: &d::Dossier) -> pb::Dossier {
    pb::Dossier {
        person_key: d.person_key.to_string(),
        name: d.name.clone(),
        unit_code: d.unit_code.clone(),
        authority: d.authority.clone(),
        rank: d.rank.map(|r| r.as_str().to_owned()).unwrap_or_default(),
        light: light(d.light) as i32,
        required_hours: d.required_hours,
        credited_hours: d.credited_hours,
        years: d
            .years
            .iter()
            .map(|y| pb::YearHours {
                year: y.year,
                off_job_hours: y.off_job_hours,
                online_hours: y.online_hours,
                on_job_hours: y.on_job_hours,
            })
            .collect(),
        trainings: d.trainings.iter().map(training).collect(),
        flags: d.flags.iter().map(flag).collect(),
        evaluation: Some(pb::EvaluationSummary {
            weighted_score: d.evaluation.weighted_score,
            capability: d.evaluation.capability.clone().into_iter().collect(),
            growth: d
                .evaluation
                .growth
                .iter()
                .map(|(year, score)| pb::YearScore {
                    year: *year,
                    score: *score,
                })
                .collect(),
        }),
        policy_version: d.policy_version.clone(),
        as_of: d.as_of.to_string(),
        provenance: d
            .provenance
            .iter()
            .map(|p| pb::Provenance {
                system: p.source.system.clone(),
                kind: p.source.kind.as_str().to_owned(),
                record_id: p.source.record_id.clone(),
                version: p.source.version,
                received_at: p.received_at.clone(),
                // Stored as `name@version`.
                profile: p.profile.split('@').next().unwrap_or_default().to_owned(),
                profile_version: p
                    .profile
                    .split_once('@')
                    .map(|(_, v)| v.to_owned())
                    .unwrap_or_default(),
                entry: p.entry.clone(),
            })
            .collect(),
        unit_name: d.unit_name.clone(),
        category: d
            .category
            .map(|c| c.as_str().to_owned())
            .unwrap_or_default(),
        status: d.status.as_str().to_owned(),
        region_code: d.region_code.clone(),
        window_start: d.window_start.to_string(),
    }
}

impl From<crate::Outcome> for pb::RecordOutcome {
    fn from(o: crate::Outcome) -> Self {
        let status = match o.status {
            OutcomeStatus::Accepted => pb::RecordStatus::Accepted,
            OutcomeStatus::Duplicate => pb::RecordStatus::Duplicate,
            OutcomeStatus::Superseded => pb::RecordStatus::Superseded,
            OutcomeStatus::Parked => pb::RecordStatus::Parked,
            OutcomeStatus::Rejected => pb::RecordStatus::Rejected,
        };
        let (reason_code, message) = match o.rejection {
            Some(r) => (r.code.as_str().to_owned(), r.describe()),
            None => (String::new(), String::new()),
        };
        pb::RecordOutcome {
            record_id: o.record_id,
            kind: o.kind,
            status: status as i32,
            reason_code,
            message,
        }
    }
}
