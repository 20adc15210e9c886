//! What goes back to the organisation departments beside coverage: the warning lists, the
//! coverage of each year of the window (the map's trend), and the annual assessment form's
//! trainings. The rules are the model's ([`trainhub_model::warnings`]); this reads the store
//! page by page and applies them, like [`Queries::coverage`].

use crate::fresh::FreshPages;
use crate::queries::{Filter, QueryError};
use crate::Queries;
use chrono::{Datelike, NaiveDate};
use trainhub_model::dispatch::{self, CoverageGroup, GroupBy};
use trainhub_model::dossier as d;
use trainhub_model::warnings::{self, WarningList};
use trainhub_store::audit::AuditEntry;

/// One person on a warning list.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct WarningRow {
    #[allow(missing_docs)]
    pub person_key: String,
    #[allow(missing_docs)]
    pub name: String,
    #[allow(missing_docs)]
    pub unit_code: String,
    #[allow(missing_docs)]
    pub unit_name: String,
    #[allow(missing_docs)]
    pub rank: String,
    #[allow(missing_docs)]
    pub authority: String,
    /// The person's group under the list's `group_by` (what the map drills down from).
    pub group: String,
    /// `RED`, `YELLOW` or `GREEN`.
    pub light: String,
    #[allow(missing_docs)]
    pub credited_hours: f64,
    #[allow(missing_docs)]
    pub required_hours: f64,
    /// Why the person is on the list (English).
    pub reason: String,
    /// Why, in Chinese.
    pub reason_zh: String,
}

/// The coverage of the whole scope at the end of one year of the window (at `as_of` for the
/// current year).
#[derive(Debug, Clone, PartialEq)]
pub struct YearPoint {
    #[allow(missing_docs)]
    pub year: i32,
    /// The day the year's figures are taken at.
    pub as_of: NaiveDate,
    /// The totals of that day (its RED list left empty).
    pub totals: CoverageGroup,
}

/// A row of the annual assessment form (年度考核登记表): one off-job training.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AnnualRow {
    #[allow(missing_docs)]
    pub start_date: String,
    #[allow(missing_docs)]
    pub end_date: String,
    #[allow(missing_docs)]
    pub days: i64,
    #[allow(missing_docs)]
    pub provider: String,
    #[allow(missing_docs)]
    pub title: String,
    #[allow(missing_docs)]
    pub hours: f64,
    /// `pass`, `excellent`, `fail`… or empty when no result was recorded.
    pub result: String,
}

/// The rows of the annual form of `year` for a dossier.
pub fn annual_rows(dossier: &d::Dossier, year: i32) -> Vec<AnnualRow> {
    warnings::annual_form(dossier, year)
        .into_iter()
        .map(|t| AnnualRow {
            start_date: t.start_date.to_string(),
            end_date: t.end_date.to_string(),
            days: t.days(),
            provider: t.provider.clone(),
            title: t.title.clone(),
            hours: d::round2(t.credited_hours),
            result: t.outcome.map(|o| o.as_str().to_owned()).unwrap_or_default(),
        })
        .collect()
}

impl Queries {
    /// The persons on `list` at `as_of` among those `filter` selects, in person-key order;
    /// with `group`, only those whose `group_by` key is that group (the map's drill-down).
    pub async fn warnings(
        &self,
        list: WarningList,
        group_by: GroupBy,
        group: Option<&str>,
        filter: &Filter,
        as_of: NaiveDate,
    ) -> Result<Vec<WarningRow>, QueryError> {
        let policy = self.pipeline().policy();
        let mut pages = self.pages(filter, as_of, "").await?;
        let mut rows = Vec::new();
        while let Some(page) = pages.next(1000).await? {
            for (key, records) in &page {
                let Some(d) = d::compute(key, records, as_of, policy) else {
                    continue;
                };
                if !filter.matches(&d) {
                    continue;
                }
                let key_of_group = dispatch::group_key(&d, group_by);
                if group.is_some_and(|g| g != key_of_group) {
                    continue;
                }
                if let Some(reason) = warnings::warning(&d, list, policy) {
                    rows.push(row(&d, key_of_group, reason));
                }
            }
        }
        Ok(rows)
    }

    /// The coverage of the scope at the end of each year of the window ending at `as_of`
    /// (the current year at `as_of`), oldest first: one pass over the persons.
    pub async fn trend(
        &self,
        filter: &Filter,
        as_of: NaiveDate,
    ) -> Result<Vec<YearPoint>, QueryError> {
        let policy = self.pipeline().policy();
        let years = policy.window_years.max(1) as i32;
        let mut points: Vec<YearPoint> = (as_of.year() - years + 1..=as_of.year())
            .map(|year| YearPoint {
                year,
                as_of: NaiveDate::from_ymd_opt(year, 12, 31)
                    .expect("a valid day")
                    .min(as_of),
                totals: CoverageGroup::default(),
            })
            .collect();
        let store = self.pipeline().store();
        let stale = self.recompute().await?;
        let mut pages = FreshPages::with_stale(store, filter.state(false), "", stale);
        while let Some(page) = pages.next(1000).await? {
            for (key, records) in &page {
                for point in &mut points {
                    let Some(d) = d::compute(key, records, point.as_of, policy) else {
                        continue;
                    };
                    if d.in_scope && filter.matches(&d) {
                        point.totals.add(&d);
                    }
                }
            }
            for point in &mut points {
                point.totals.red_list.clear();
            }
        }
        Ok(points)
    }
}

fn row(d: &d::Dossier, group: String, reason: warnings::Reason) -> WarningRow {
    WarningRow {
        person_key: d.person_key.to_string(),
        name: d.name.clone(),
        unit_code: d.unit_code.clone(),
        unit_name: d.unit_name.clone(),
        rank: d.rank.map(|r| r.as_str().to_owned()).unwrap_or_default(),
        authority: d.authority.clone(),
        group,
        light: d.light.as_str().to_owned(),
        credited_hours: d.credited_hours,
        required_hours: d.required_hours,
        reason: reason.en,
        reason_zh: reason.zh,
    }
}

/// The audit rows of a warning list returned to `principal`: one per person listed (each is
/// personal data), written before the list leaves.
pub fn warnings_read(
    principal: &str,
    method: &str,
    purpose: &str,
    list: WarningList,
    as_of: NaiveDate,
    rows: &[WarningRow],
) -> Vec<AuditEntry> {
    rows.iter()
        .map(|r| AuditEntry {
            principal: principal.to_owned(),
            method: method.to_owned(),
            person_key: r.person_key.clone(),
            purpose: purpose.to_owned(),
            returned: format!(
                "warning list {} as_of {as_of}: light {}",
                list.as_str(),
                r.light
            ),
        })
        .collect()
}
