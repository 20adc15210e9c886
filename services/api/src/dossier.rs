//! `trainhub.v1.DossierService`: loads a person's current records and applies the rules.

use crate::error::ApiError;
use crate::pipeline::Pipeline;
use chrono::NaiveDate;
use tonic::{Request, Response, Status};
use trainhub_model::dossier::{self as d, Light};
use trainhub_model::values::date_opt;
use trainhub_model::{NationalId, PersonKey, Rejection};
use trainhub_proto::v1::{self as pb, dossier_service_server::DossierService};

/// The dossier service.
#[derive(Debug, Clone)]
pub struct Dossiers {
    pipeline: Pipeline,
}

impl Dossiers {
    /// A service reading through `pipeline`'s store and rules.
    pub fn new(pipeline: Pipeline) -> Self {
        Dossiers { pipeline }
    }

    /// The dossier of the person named by `national_id` or `person_key` at `as_of`.
    pub async fn dossier(
        &self,
        national_id: &str,
        person_key: &str,
        as_of: Option<NaiveDate>,
    ) -> Result<d::Dossier, ApiError> {
        let key = resolve_key(&self.pipeline, national_id, person_key)?;
        let as_of = as_of.unwrap_or_else(|| chrono::Local::now().date_naive());
        let records = self.pipeline.store().person_records(&key).await?;
        d::compute(&key, &records, as_of, self.pipeline.policy())
            .ok_or_else(|| ApiError::NotFound(format!("no person is known under key {key}")))
    }
}

/// The person key a reader asks for, by national ID or directly.
pub fn resolve_key(
    pipeline: &Pipeline,
    national_id: &str,
    person_key: &str,
) -> Result<PersonKey, Rejection> {
    if !national_id.trim().is_empty() {
        let id = NationalId::parse("national_id", national_id)?;
        Ok(pipeline.keyer().key(&id))
    } else {
        PersonKey::parse("national_id or person_key", person_key)
    }
}

#[tonic::async_trait]
impl DossierService for Dossiers {
    async fn get_dossier(
        &self,
        request: Request<pb::GetDossierRequest>,
    ) -> Result<Response<pb::Dossier>, Status> {
        let req = request.into_inner();
        let as_of = date_opt("as_of", &req.as_of).map_err(ApiError::from)?;
        let dossier = self
            .dossier(&req.national_id, &req.person_key, as_of)
            .await?;
        Ok(Response::new(to_wire(&dossier)))
    }
}

/// Converts a dossier to its wire shape.
pub fn to_wire(d: &d::Dossier) -> pb::Dossier {
    let light = match d.light {
        Light::Red => pb::Light::Red,
        Light::Yellow => pb::Light::Yellow,
        Light::Green => pb::Light::Green,
        Light::Exempt => pb::Light::Exempt,
    };
    pb::Dossier {
        person_key: d.person_key.to_string(),
        name: d.name.clone(),
        unit_code: d.unit_code.clone(),
        rank: d.rank.map(|r| r.as_str().to_owned()).unwrap_or_default(),
        light: light as i32,
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
        trainings: d
            .trainings
            .iter()
            .map(|t| pb::TrainingEntry {
                class_id: t.class_id.clone(),
                title: t.title.clone(),
                themes: t.themes.iter().map(|t| t.as_str().to_owned()).collect(),
                format: t.format.as_str().to_owned(),
                start_date: t.start_date.to_string(),
                end_date: t.end_date.to_string(),
                credited_hours: t.credited_hours,
                outcome: t.outcome.map(|o| o.as_str().to_owned()).unwrap_or_default(),
                certificate_no: t.certificate_no.clone().unwrap_or_default(),
                annual_form: t.annual_form,
                appointment_form: t.appointment_form,
                provider: t.provider.clone(),
            })
            .collect(),
        flags: d
            .flags
            .iter()
            .map(|f| pb::Flag {
                code: f.code.to_owned(),
                year: f.year.unwrap_or_default(),
                message: f.message.clone(),
            })
            .collect(),
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
                profile: p.profile.clone(),
                profile_version: String::new(),
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
    }
}
