//! The statement resource behind `/xapi/statements`: statements kept as received (sealed),
//! by partner system and statement id.

use crate::seal::column;
use crate::{now_rfc3339, Error, Result, Store};
use sqlx::Row;

/// What storing a statement found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// A new statement.
    New,
    /// The same statement was already stored under this id.
    Same,
    /// Another statement is stored under this id (xAPI: 409 Conflict).
    Conflict,
}

impl Store {
    /// Stores `statement` (its bytes) as `id` of `system`, unless that id is taken.
    pub async fn xapi_store(
        &self,
        system: &str,
        id: &str,
        content_hash: &str,
        statement: &[u8],
    ) -> Result<Stored> {
        let sealed = self.keys.seal(column::XAPI, statement);
        let _guard = self.write_guard().await;
        let inserted = sqlx::query(
            "INSERT INTO xapi_statements (system, id, content_hash, statement, stored_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (system, id) DO NOTHING",
        )
        .bind(system)
        .bind(id)
        .bind(content_hash)
        .bind(sealed)
        .bind(now_rfc3339())
        .execute(&self.pool)
        .await?
        .rows_affected();
        if inserted == 1 {
            return Ok(Stored::New);
        }
        let stored: String =
            sqlx::query("SELECT content_hash FROM xapi_statements WHERE system = $1 AND id = $2")
                .bind(system)
                .bind(id)
                .fetch_one(&self.pool)
                .await?
                .try_get("content_hash")?;
        Ok(if stored == content_hash {
            Stored::Same
        } else {
            Stored::Conflict
        })
    }

    /// The statement `id` of `system`, as received.
    pub async fn xapi_statement(&self, system: &str, id: &str) -> Result<Option<Vec<u8>>> {
        let row =
            sqlx::query("SELECT statement FROM xapi_statements WHERE system = $1 AND id = $2")
                .bind(system)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| {
            let sealed: Vec<u8> = r.try_get("statement")?;
            self.keys
                .open(column::XAPI, &sealed)
                .map_err(|e| Error::Sealed(format!("{} of {system}/{id}", column::XAPI), e))
        })
        .transpose()
    }
}
