//! Results back to the organisation departments (训用结合), shared by the coverage page, its
//! exports and the command line: coverage with the window's trend, the warning lists, the
//! annual form's trainings and the appointment form's résumé lines. Each call checks the role,
//! keeps a scoped caller to its authorities, requires a purpose and writes the audit trail
//! before anything leaves, like the gRPC reads.

use crate::auth::{Caller, Role};
use crate::error::ApiError;
use chrono::NaiveDate;
use std::collections::BTreeMap;
use tonic::Status;
use trainhub_model::dispatch::{self, CoverageGroup, GroupBy};
use trainhub_model::dossier as d;
use trainhub_model::warnings::WarningList;
use trainhub_pipeline::queries::{today, Filter};
use trainhub_pipeline::reports::{self, AnnualRow, WarningRow, YearPoint};
use trainhub_pipeline::{audit, Queries};
use trainhub_store::audit::AuditEntry;

/// Who reads, as the audit trail names them, and what they may read.
#[derive(Debug, Clone)]
pub struct Reader {
    /// The role and scope holder.
    pub caller: Caller,
    /// The audit trail's name for the reader (`cli:<user>` on the command line).
    pub principal: String,
    /// The stated purpose, checked.
    pub purpose: String,
    /// How the read came (`http`; empty on the command line): the audit row's method is
    /// `<channel>:<what>`, or `<what>` alone.
    pub channel: &'static str,
}

impl Reader {
    /// A reader through a token: named by its principal and scope.
    pub fn of(caller: Caller, stated: &str, channel: &'static str) -> Result<Reader, Status> {
        let purpose = audit::purpose(stated).map_err(Status::invalid_argument)?;
        Ok(Reader {
            principal: caller.audit_name(),
            caller,
            purpose,
            channel,
        })
    }

    /// A reader on the command line: everyone's data (the data folder's owner), named
    /// `cli:<user>` in the audit trail.
    pub fn local(principal: String, stated: &str) -> Result<Reader, Status> {
        let purpose = audit::purpose(stated).map_err(Status::invalid_argument)?;
        Ok(Reader {
            caller: Caller(None),
            principal,
            purpose,
            channel: "",
        })
    }

    /// The audit row of a read of one person's data.
    fn entry(&self, what: &str, dossier: &d::Dossier, returned: String) -> AuditEntry {
        AuditEntry {
            principal: self.principal.clone(),
            method: self.method(what),
            person_key: dossier.person_key.to_string(),
            purpose: self.purpose.clone(),
            returned,
        }
    }

    fn method(&self, what: &str) -> String {
        if self.channel.is_empty() {
            what.to_owned()
        } else {
            format!("{}:{what}", self.channel)
        }
    }
}

/// Coverage at a day, with the window's trend when asked for.
#[derive(Debug, Clone)]
pub struct CoverageView {
    /// The day.
    pub as_of: NaiveDate,
    /// The policy version.
    pub policy_version: String,
    /// Figures per group.
    pub groups: BTreeMap<String, CoverageGroup>,
    /// The scope's figures at the end of each year of the window (empty unless asked).
    pub trend: Vec<YearPoint>,
    /// Persons waiting for the projector when read (counted as last projected).
    pub waiting: usize,
}

/// The department-facing reads over one pipeline.
#[derive(Debug, Clone)]
pub struct Feedback {
    queries: Queries,
}

fn day(as_of: Option<NaiveDate>) -> NaiveDate {
    as_of.unwrap_or_else(today)
}

impl Feedback {
    /// Reads through `queries`.
    pub fn new(queries: Queries) -> Feedback {
        Feedback { queries }
    }

    /// How many persons wait for the projector (reads of many count them as last projected).
    pub async fn waiting(&self) -> Result<usize, Status> {
        Ok(self.queries.waiting().await.map_err(ApiError::from)?)
    }

    /// Waits until no person waits for the projector, at most `within`
    /// (`DEADLINE_EXCEEDED` saying how many still wait when the time is up).
    pub async fn wait_for_projection(&self, within: std::time::Duration) -> Result<(), Status> {
        Ok(self
            .queries
            .wait_for_projection(within)
            .await
            .map_err(ApiError::from)?)
    }

    /// The policy version dossiers are computed under.
    pub fn policy_version(&self) -> String {
        self.queries.pipeline().policy().version.clone()
    }

    async fn account(&self, entries: &[AuditEntry]) -> Result<(), Status> {
        crate::dossier::account(self.queries.pipeline(), entries).await
    }

    /// Coverage by `group_by` (with the trend when `trend`), as `GetCoverage` counts it.
    pub async fn coverage(
        &self,
        reader: &Reader,
        group_by: &str,
        filter: Filter,
        as_of: Option<NaiveDate>,
        trend: bool,
        what: &str,
    ) -> Result<CoverageView, Status> {
        reader.caller.require(Role::CoverageRead)?;
        let grouping = GroupBy::parse(group_by).map_err(ApiError::from)?;
        let filter = filter.within(reader.caller.authorities());
        let as_of = day(as_of);
        let waiting = self.waiting().await?;
        let groups = self
            .queries
            .coverage(grouping, &filter, as_of)
            .await
            .map_err(ApiError::from)?;
        let trend = if trend {
            self.queries
                .trend(&filter, as_of)
                .await
                .map_err(ApiError::from)?
        } else {
            Vec::new()
        };
        let mut entry =
            audit::coverage_read(&reader.principal, &reader.purpose, group_by, as_of, &groups);
        entry.method = reader.method(what);
        self.account(&[entry]).await?;
        Ok(CoverageView {
            as_of,
            policy_version: self.policy_version(),
            groups,
            trend,
            waiting,
        })
    }

    /// The persons on `list` (of one group when `group` is given), audited person by person.
    #[allow(clippy::too_many_arguments)]
    pub async fn warnings(
        &self,
        reader: &Reader,
        list: WarningList,
        group_by: &str,
        group: Option<&str>,
        filter: Filter,
        as_of: Option<NaiveDate>,
        what: &str,
    ) -> Result<Vec<WarningRow>, Status> {
        reader.caller.require(Role::CoverageRead)?;
        let grouping = GroupBy::parse(group_by).map_err(ApiError::from)?;
        let filter = filter.within(reader.caller.authorities());
        let as_of = day(as_of);
        let rows = self
            .queries
            .warnings(list, grouping, group, &filter, as_of)
            .await
            .map_err(ApiError::from)?;
        let entries = reports::warnings_read(
            &reader.principal,
            &reader.method(what),
            &reader.purpose,
            list,
            as_of,
            &rows,
        );
        self.account(&entries).await?;
        Ok(rows)
    }

    /// One person's dossier for `reader`: refused alike for a person outside its scope and
    /// for nobody.
    async fn person(
        &self,
        reader: &Reader,
        person: &str,
        as_of: Option<NaiveDate>,
    ) -> Result<d::Dossier, Status> {
        reader.caller.require(Role::DossierRead)?;
        let (id, key) = trainhub_pipeline::queries::national_id_or_key(person);
        let found = self.queries.dossier(id, key, Some(day(as_of))).await;
        crate::dossier::scoped(&reader.caller, found)
    }

    /// The off-job trainings of a person's annual assessment form for `year`.
    pub async fn annual_form(
        &self,
        reader: &Reader,
        person: &str,
        year: i32,
        as_of: Option<NaiveDate>,
    ) -> Result<(d::Dossier, Vec<AnnualRow>), Status> {
        let dossier = self.person(reader, person, as_of).await?;
        let rows = reports::annual_rows(&dossier, year);
        let returned = format!("annual form {year}: {} off-job trainings", rows.len());
        self.account(&[reader.entry("AnnualForm", &dossier, returned)])
            .await?;
        Ok((dossier, rows))
    }

    /// The appointment form's résumé lines of the person an LRMX form names.
    pub async fn appointment_lines(
        &self,
        reader: &Reader,
        national_id: &str,
        as_of: Option<NaiveDate>,
    ) -> Result<(d::Dossier, Vec<String>), Status> {
        let dossier = self.person(reader, national_id, as_of).await?;
        let lines = dispatch::appointment_lines(&dossier);
        let returned = format!("{} appointment-form lines", lines.len());
        self.account(&[reader.entry("LrmxFill", &dossier, returned)])
            .await?;
        Ok((dossier, lines))
    }
}
