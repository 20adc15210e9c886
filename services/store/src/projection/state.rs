//! Reading the projected state: a person's facts, pages of persons, coverage at the
//! projection day, an account's person.

use crate::seal::column;
use crate::{Error, Keyring, Result, Store};
use sqlx::any::AnyRow;
use sqlx::Row;
use std::collections::{BTreeMap, HashMap};
use trainhub_model::dispatch::{CoverageGroup, GroupBy};
use trainhub_model::dossier::StoredRecord;
use trainhub_model::PersonKey;

impl Store {
    /// The current records of `person`: from the projected state when it is fresh, else
    /// straight from the source records.
    pub async fn person_facts(&self, person: &PersonKey) -> Result<Vec<StoredRecord>> {
        let row = sqlx::query(
            "SELECT facts, packed, \
             (SELECT COUNT(*) FROM dossier_dirty d WHERE d.person_key = $1) AS dirty \
             FROM dossier_state WHERE person_key = $1",
        )
        .bind(person.as_str())
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = row {
            if row.try_get::<i64, _>("dirty")? == 0 {
                return self.facts_of(&row, person.as_str());
            }
        }
        self.person_records(person).await
    }

    /// One page of projected persons after `after` (keyset by person key), with their facts.
    pub async fn state_page(
        &self,
        filter: &StateFilter,
        after: &str,
        limit: i64,
    ) -> Result<Vec<(PersonKey, Vec<StoredRecord>)>> {
        let (clause, binds) = filter.clause(2);
        let sql = format!(
            "SELECT person_key, facts, packed FROM dossier_state WHERE person_key > $1{clause} \
             ORDER BY person_key LIMIT {limit}"
        );
        let mut q = sqlx::query(&sql).bind(after);
        for b in binds {
            q = q.bind(b);
        }
        let mut out = Vec::new();
        for row in q.fetch_all(&self.pool).await? {
            let key: String = row.try_get("person_key")?;
            let records = self.facts_of(&row, &key)?;
            let key = PersonKey::parse("person_key", &key)
                .map_err(|e| Error::Corrupt(key.clone(), e.to_string()))?;
            out.push((key, records));
        }
        Ok(out)
    }

    fn facts_of(&self, row: &AnyRow, person: &str) -> Result<Vec<StoredRecord>> {
        facts_of(&self.keys, row, person)
    }

    /// Coverage per group over the projected state, computed by the database. Valid for the
    /// projection day; callers drain the dirty set first ([`Store::project_all`]). The counts
    /// and the RED lists are reads of the summary index, run side by side; the RED
    /// persons' names are opened on every core.
    pub async fn coverage(
        &self,
        group_by: GroupBy,
        filter: &StateFilter,
    ) -> Result<BTreeMap<String, CoverageGroup>> {
        let col = group_by.column();
        let (mut out, red) = tokio::try_join!(
            self.coverage_counts(col, filter),
            self.red_persons(col, filter)
        )?;
        // Each person into its group's list through a slot per group: a province's RED list
        // is hundreds of thousands of persons over tens of thousands of groups. A person
        // whose group the counts, read a moment earlier, did not see yet is left out.
        let slots: HashMap<&str, usize> = out
            .keys()
            .enumerate()
            .map(|(i, k)| (k.as_str(), i))
            .collect();
        let mut lists: Vec<Vec<(String, String, String)>> = out
            .values()
            .map(|g| Vec::with_capacity(usize::try_from(g.red).unwrap_or(0)))
            .collect();
        for part in red {
            for r in part {
                if let Some(&slot) = slots.get(r.group()) {
                    lists[slot].push((r.person, r.name, r.unit));
                }
            }
        }
        drop(slots);
        for (group, list) in out.values_mut().zip(lists) {
            group.red_list = list;
        }
        Ok(out)
    }

    async fn coverage_counts(
        &self,
        col: &str,
        filter: &StateFilter,
    ) -> Result<BTreeMap<String, CoverageGroup>> {
        let (clause, binds) = filter.clause(1);
        let sql = format!(
            "SELECT {col} AS k, COUNT(*) AS in_scope, \
             CAST(SUM(participated) AS BIGINT) AS participated, \
             CAST(SUM(results_total) AS BIGINT) AS results, \
             CAST(SUM(results_passed) AS BIGINT) AS passed, \
             CAST(SUM(CASE WHEN light = 'RED' THEN 1 ELSE 0 END) AS BIGINT) AS red, \
             CAST(SUM(CASE WHEN light = 'YELLOW' THEN 1 ELSE 0 END) AS BIGINT) AS yellow, \
             CAST(SUM(CASE WHEN light = 'GREEN' THEN 1 ELSE 0 END) AS BIGINT) AS green \
             FROM dossier_state WHERE in_scope = 1{clause} GROUP BY {col}"
        );
        let q = filtered(&sql, &binds);
        // On PostgreSQL one backend, the groups in memory (no JIT, as on every hub
        // connection): the RED ranges are read beside this on the other cores, and a parallel
        // plan would take them all. At a million persons grouped by unit (38,000 groups):
        // 0.7-0.9 s on one core against 1.05 s on three, and coverage by unit 2.3 instead of
        // 2.6 s.
        let settings = [
            ("max_parallel_workers_per_gather", "0"),
            ("work_mem", "64MB"),
        ];
        let rows = self.fetch_all_with(&settings, q).await?;
        let mut out = BTreeMap::new();
        for row in rows {
            out.insert(
                row.try_get::<String, _>("k")?,
                CoverageGroup {
                    in_scope: row.try_get("in_scope")?,
                    participated: row.try_get("participated")?,
                    results: row.try_get("results")?,
                    passed: row.try_get("passed")?,
                    red: row.try_get("red")?,
                    yellow: row.try_get("yellow")?,
                    green: row.try_get("green")?,
                    red_list: Vec::new(),
                },
            );
        }
        Ok(out)
    }

    /// The person an account is linked to, if any. When live links tie it to several persons
    /// it is the owner a reviewer chose (`ACCOUNT_LINKED_TWICE`), and nobody until then.
    pub async fn person_for_account(&self, system: &str, id: &str) -> Result<Option<PersonKey>> {
        let person = crate::person::key(self.backend, "source_records");
        let owners: Vec<String> = sqlx::query(&format!(
            "SELECT DISTINCT {person} AS person_key FROM source_records WHERE kind = 'link' \
             AND deleted = 0 AND account_system = $1 AND account_id = $2 \
             AND {person} IS NOT NULL"
        ))
        .bind(system)
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| r.try_get("person_key"))
        .collect::<std::result::Result<_, _>>()?;
        let owner = match owners.as_slice() {
            [] => None,
            [one] => Some(one.clone()),
            several => sqlx::query(
                "SELECT choice FROM review_conflicts WHERE kind = 'ACCOUNT_LINKED_TWICE' \
                 AND status = 'resolved' AND account_system = $1 AND account_id = $2",
            )
            .bind(system)
            .bind(id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .filter_map(|r| r.try_get::<String, _>("choice").ok())
            .find(|c| several.contains(c)),
        };
        owner
            .map(|k| {
                PersonKey::parse("person_key", &k)
                    .map_err(|e| Error::Corrupt(k.clone(), e.to_string()))
            })
            .transpose()
    }
}

/// Filters on the projected summary columns.
#[derive(Debug, Clone, Default)]
pub struct StateFilter {
    /// Exact unit code.
    pub unit_code: Option<String>,
    /// Rank at the projection day.
    pub rank: Option<String>,
    /// Category.
    pub category: Option<String>,
    /// Region code.
    pub region_code: Option<String>,
    /// Light at the projection day (`RED`, …).
    pub light: Option<String>,
    /// Exact authority code.
    pub authority: Option<String>,
    /// Only these authorities (a reader's scope); `None` for all.
    pub authorities: Option<Vec<String>>,
}

impl StateFilter {
    /// ` AND col = $n …` numbering from `first`, and the values to bind.
    pub(crate) fn clause(&self, first: usize) -> (String, Vec<String>) {
        let mut sql = String::new();
        let mut binds = Vec::new();
        for (col, value) in [
            ("unit_code", &self.unit_code),
            ("rank", &self.rank),
            ("category", &self.category),
            ("region_code", &self.region_code),
            ("light", &self.light),
            ("authority", &self.authority),
        ] {
            if let Some(v) = value {
                sql.push_str(&format!(" AND {col} = ${}", first + binds.len()));
                binds.push(v.clone());
            }
        }
        if let Some(scope) = &self.authorities {
            if scope.is_empty() {
                sql.push_str(" AND 1 = 0");
            } else {
                let list: Vec<String> = (0..scope.len())
                    .map(|i| format!("${}", first + binds.len() + i))
                    .collect();
                sql.push_str(&format!(" AND authority IN ({})", list.join(", ")));
                binds.extend(scope.iter().cloned());
            }
        }
        (sql, binds)
    }
}

/// The cores this process may use.
/// `sql` with the values of its filter clause bound, in order.
pub(super) fn filtered<'q>(
    sql: &'q str,
    binds: &'q [String],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    binds
        .iter()
        .fold(sqlx::query(sql), |q, b| q.bind(b.as_str()))
}

/// The facts of a state row: its packed bytes, else its text (a row written before migration
/// 0015).
pub(crate) fn facts_of(keys: &Keyring, row: &AnyRow, person: &str) -> Result<Vec<StoredRecord>> {
    let json = match row.try_get::<Option<Vec<u8>>, _>("packed")? {
        Some(packed) => keys
            .open_packed(column::PACKED, &packed)
            .map_err(|e| Error::Sealed(format!("{} of person {person}", column::PACKED), e))?,
        None => {
            let text: String = row.try_get("facts")?;
            keys.open_text(column::FACTS, &text)
                .map_err(|e| Error::Sealed(format!("{} of person {person}", column::FACTS), e))?
                .into_bytes()
        }
    };
    serde_json::from_slice(&json)
        .map_err(|e| Error::Corrupt(format!("facts of {person}"), e.to_string()))
}
