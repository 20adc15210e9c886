//! The audit trail of reads (DESIGN §8): one row per person whose data an API call returned,
//! written before the data leaves the hub. The table is append-only in the database itself
//! (triggers refuse updates and deletes); nothing in the hub changes a row.

use crate::sql::tuples;
use crate::{now_rfc3339, Result, Store};
use sqlx::Row;

/// One read to account for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Who read: a principal's name, or `open` when the hub has none.
    pub principal: String,
    /// The API method, e.g. `GetDossier`.
    pub method: String,
    /// About whom (empty for an aggregate such as coverage).
    pub person_key: String,
    /// Why, as the caller stated it.
    pub purpose: String,
    /// What was returned, in short (no national ID, no name).
    pub returned: String,
}

/// A stored audit row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    /// Its id, increasing.
    pub id: i64,
    /// When (RFC 3339, UTC).
    pub at: String,
    /// The entry.
    pub entry: AuditEntry,
}

impl Store {
    /// Appends `entries` in one statement per chunk.
    pub async fn audit(&self, entries: &[AuditEntry]) -> Result<()> {
        let at = now_rfc3339();
        for chunk in entries.chunks(1_000) {
            let sql = format!(
                "INSERT INTO audit_log (at, principal, method, person_key, purpose, returned) \
                 VALUES {}",
                tuples(self.backend, 1, chunk.len(), 6)
            );
            let mut query = sqlx::query(&sql);
            for e in chunk {
                query = query
                    .bind(&at)
                    .bind(&e.principal)
                    .bind(&e.method)
                    .bind(&e.person_key)
                    .bind(&e.purpose)
                    .bind(&e.returned);
            }
            query.execute(&self.pool).await?;
        }
        Ok(())
    }

    /// The newest audit rows first, about `person_key` and by `principal` when given.
    pub async fn audit_log(
        &self,
        person_key: Option<&str>,
        principal: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AuditRow>> {
        let rows = sqlx::query(
            "SELECT id, at, principal, method, person_key, purpose, returned FROM audit_log \
             WHERE ($1 = '' OR person_key = $1) AND ($2 = '' OR principal = $2) \
             ORDER BY id DESC LIMIT $3",
        )
        .bind(person_key.unwrap_or(""))
        .bind(principal.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditRow {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    entry: AuditEntry {
                        principal: r.try_get("principal")?,
                        method: r.try_get("method")?,
                        person_key: r.try_get("person_key")?,
                        purpose: r.try_get("purpose")?,
                        returned: r.try_get("returned")?,
                    },
                })
            })
            .collect()
    }
}
