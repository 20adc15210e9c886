//! The statement resource behind `/xapi/statements`: statements kept as received (sealed),
//! by partner system and statement id.

use crate::seal::column;
use crate::{Error, Result, Store};
use sqlx::Row;

/// A statement to keep, written in the same transaction as the records it maps to.
#[derive(Debug, Clone)]
pub struct NewStatement {
    /// The partner system it is filed under.
    pub system: String,
    /// Its id.
    pub id: String,
    /// SHA-256 of its bytes, hex: a second `PUT` of the id with other content is a conflict.
    pub content_hash: String,
    /// Its bytes as received (sealed when stored).
    pub bytes: Vec<u8>,
}

/// Writes `statements` in `tx`; one already stored under its id is left as it is (the caller
/// compared the content before).
pub(crate) async fn insert_statements(
    store: &Store,
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    now: &str,
    statements: &[NewStatement],
) -> Result<()> {
    for st in statements {
        let sealed = store.keys.seal(column::XAPI, &st.bytes);
        sqlx::query(
            "INSERT INTO xapi_statements (system, id, content_hash, statement, stored_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (system, id) DO NOTHING",
        )
        .bind(&st.system)
        .bind(&st.id)
        .bind(&st.content_hash)
        .bind(sealed)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

impl Store {
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
