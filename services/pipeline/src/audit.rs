//! What a read of personal data states and leaves in the audit trail, the same for the gRPC
//! services and the command line: a purpose (required), and a row per dossier or report
//! returned, written before the data leaves.

use std::collections::BTreeMap;
use trainhub_model::dispatch::CoverageGroup;
use trainhub_proto::v1 as pb;
use trainhub_store::audit::AuditEntry;

/// The stated purpose of a read (e.g. `appointment-review`): required, one line of at most 200
/// characters. `Err` says what is wrong.
pub fn purpose(stated: &str) -> Result<String, String> {
    let p = stated.trim();
    if p.is_empty() {
        return Err(
            "`purpose` is required: say why the data is read, e.g. `appointment-review`".into(),
        );
    }
    if p.chars().count() > 200 || p.chars().any(char::is_control) {
        return Err("`purpose` must be one line of at most 200 characters".into());
    }
    Ok(p.to_owned())
}

/// The row of a dossier returned to `principal` by `method`.
pub fn dossier_read(principal: &str, method: &str, purpose: &str, d: &pb::Dossier) -> AuditEntry {
    AuditEntry {
        principal: principal.to_owned(),
        method: method.to_owned(),
        person_key: d.person_key.clone(),
        purpose: purpose.to_owned(),
        returned: format!(
            "dossier as_of {} light {} credited {} of {} hours, {} trainings, {} flags",
            d.as_of,
            d.light().as_str_name().trim_start_matches("LIGHT_"),
            d.credited_hours,
            d.required_hours,
            d.trainings.len(),
            d.flags.len()
        ),
    }
}

/// The row of a coverage report (with its RED lists) returned to `principal`.
pub fn coverage_read(
    principal: &str,
    purpose: &str,
    group_by: &str,
    as_of: chrono::NaiveDate,
    groups: &BTreeMap<String, CoverageGroup>,
) -> AuditEntry {
    let red: i64 = groups.values().map(|g| g.red).sum();
    AuditEntry {
        principal: principal.to_owned(),
        method: "GetCoverage".into(),
        person_key: String::new(),
        purpose: purpose.to_owned(),
        returned: format!(
            "coverage by {group_by} as_of {as_of}: {} groups, {red} persons on RED lists",
            groups.len()
        ),
    }
}
