//! The statement resource behind `/xapi/statements`: statements as the hub stored them
//! (sealed), by partner system and statement id, with what their queries filter on (keyed
//! fingerprints, never the agents in clear) and their attachments by hash.

use crate::seal::column;
use crate::sql::{list_from, param, tuples, MAX_PARAMS};
use crate::{Error, Result, Store};
use sqlx::Row;

/// A statement to keep, written in the same transaction as the records it maps to.
#[derive(Debug, Clone, Default)]
pub struct NewStatement {
    /// The partner system it is filed under.
    pub system: String,
    /// Its id.
    pub id: String,
    /// SHA-256 of its comparable form, hex: a second `PUT` of the id with other content is a
    /// conflict.
    pub content_hash: String,
    /// The statement as stored (with `stored` and `authority`); sealed when stored.
    pub bytes: Vec<u8>,
    /// When the hub stored it, milliseconds since 1970.
    pub stored_ms: i64,
    /// What queries find it by: (kind, keyed fingerprint), see migration 0011.
    pub keys: Vec<(i64, Vec<u8>)>,
    /// The statement it voids, if it is a voiding statement.
    pub voids: Option<String>,
    /// Its attachments' content.
    pub attachments: Vec<NewAttachment>,
}

/// An attachment's content, found by its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAttachment {
    /// SHA-2 of the content, hex, as the statement names it.
    pub sha2: String,
    /// Its media type.
    pub content_type: String,
    /// The octets (sealed when stored).
    pub content: Vec<u8>,
}

/// A stored statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredStatement {
    /// Its id.
    pub id: String,
    /// When the hub stored it (ms); 0 for a row not indexed yet.
    pub stored_ms: i64,
    /// Whether a voiding statement voided it.
    pub voided: bool,
    /// The statement as stored.
    pub bytes: Vec<u8>,
}

/// A statement query (Part Three §2.1.3), every condition joined by AND.
#[derive(Debug, Clone, Default)]
pub struct StatementQuery {
    /// The partner system whose statements are searched.
    pub system: String,
    /// Stored strictly after (ms).
    pub since_ms: Option<i64>,
    /// Stored at or before (ms).
    pub until_ms: Option<i64>,
    /// Continue after this (stored_ms, id) in the query's order (paging).
    pub after: Option<(i64, String)>,
    /// Oldest first.
    pub ascending: bool,
    /// Each entry: one of these kinds with this key.
    pub keys: Vec<(Vec<i64>, Vec<u8>)>,
    /// At most this many.
    pub limit: i64,
}

/// Writes `statements` in `tx`, many rows per statement; one already stored under its id is
/// left as it is (the caller compared the content before). A voiding statement marks its
/// target voided.
pub(crate) async fn insert_statements(
    store: &Store,
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    now: &str,
    statements: &[NewStatement],
) -> Result<()> {
    for chunk in statements.chunks(MAX_PARAMS / 6) {
        let sql = format!(
            "INSERT INTO xapi_statements (system, id, content_hash, statement, stored_at, stored_ms) \
             VALUES {} ON CONFLICT (system, id) DO NOTHING",
            tuples(store.backend, 1, chunk.len(), 6)
        );
        let mut q = sqlx::query(&sql);
        for st in chunk {
            q = q
                .bind(&st.system)
                .bind(&st.id)
                .bind(&st.content_hash)
                .bind(store.keys.seal(column::XAPI, &st.bytes))
                .bind(now)
                .bind(st.stored_ms);
        }
        q.execute(&mut **tx).await?;
    }
    let keys: Vec<(&str, &str, i64, &[u8])> = statements
        .iter()
        .flat_map(|st| {
            st.keys
                .iter()
                .map(move |(k, key)| (st.system.as_str(), st.id.as_str(), *k, key.as_slice()))
        })
        .collect();
    insert_keys(store, tx, &keys).await?;
    for st in statements {
        mark_voided(tx, &st.system, st.voids.as_deref()).await?;
        for a in &st.attachments {
            let sealed = store.keys.seal(column::XAPI_ATTACHMENT, &a.content);
            sqlx::query(
                "INSERT INTO xapi_attachments (sha2, content_type, content) VALUES ($1, $2, $3) \
                 ON CONFLICT (sha2) DO NOTHING",
            )
            .bind(&a.sha2)
            .bind(&a.content_type)
            .bind(sealed)
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}

async fn insert_keys(
    store: &Store,
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    keys: &[(&str, &str, i64, &[u8])],
) -> Result<()> {
    for chunk in keys.chunks(MAX_PARAMS / 4) {
        let sql = format!(
            "INSERT INTO xapi_statement_keys (system, id, kind, key) VALUES {} ON CONFLICT DO NOTHING",
            tuples(store.backend, 1, chunk.len(), 4)
        );
        let mut q = sqlx::query(&sql);
        for (system, id, kind, key) in chunk {
            q = q.bind(*system).bind(*id).bind(*kind).bind(*key);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

async fn mark_voided(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    system: &str,
    target: Option<&str>,
) -> Result<()> {
    if let Some(target) = target {
        sqlx::query("UPDATE xapi_statements SET voided = 1 WHERE system = $1 AND id = $2")
            .bind(system)
            .bind(target)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

impl Store {
    fn open_statement(&self, row: &sqlx::any::AnyRow) -> Result<StoredStatement> {
        let id: String = row.try_get("id")?;
        let sealed: Vec<u8> = row.try_get("statement")?;
        let bytes = self
            .keys
            .open(column::XAPI, &sealed)
            .map_err(|e| Error::Sealed(format!("{} of {id}", column::XAPI), e))?;
        let stored_ms: Option<i64> = row.try_get("stored_ms")?;
        let voided: i64 = row.try_get("voided")?;
        Ok(StoredStatement {
            id,
            stored_ms: stored_ms.unwrap_or(0),
            voided: voided != 0,
            bytes,
        })
    }

    /// The statement `id` of `system`, as stored.
    pub async fn xapi_statement(&self, system: &str, id: &str) -> Result<Option<StoredStatement>> {
        let row = sqlx::query(
            "SELECT id, statement, stored_ms, voided FROM xapi_statements \
             WHERE system = $1 AND id = $2",
        )
        .bind(system)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| self.open_statement(&r)).transpose()
    }

    /// The statements of `system` stored under these ids, by id.
    pub async fn xapi_statements_in(
        &self,
        system: &str,
        ids: &[String],
    ) -> Result<std::collections::HashMap<String, StoredStatement>> {
        let mut found = std::collections::HashMap::new();
        for chunk in ids.chunks(MAX_PARAMS) {
            let sql = format!(
                "SELECT id, statement, stored_ms, voided FROM xapi_statements \
                 WHERE system = {} AND id IN ({})",
                param(self.backend, 1),
                list_from(self.backend, 2, chunk.len())
            );
            // Planned on each run: a plan cached while the table was small scans it whole.
            let mut q = sqlx::query(&sql).persistent(false).bind(system);
            for id in chunk {
                q = q.bind(id);
            }
            for row in q.fetch_all(&self.pool).await? {
                let s = self.open_statement(&row)?;
                found.insert(s.id.clone(), s);
            }
        }
        Ok(found)
    }

    /// The statements `query` finds, in its order; voided statements are never among them.
    pub async fn xapi_query(&self, query: &StatementQuery) -> Result<Vec<StoredStatement>> {
        let (sql, params) = query_sql(self.backend, query);
        let mut q = sqlx::query(&sql).bind(&query.system);
        for p in params {
            q = match p {
                Param::Int(i) => q.bind(i),
                Param::Bytes(b) => q.bind(b),
                Param::Text(t) => q.bind(t),
            };
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter().map(|r| self.open_statement(r)).collect()
    }

    /// The keys statement `id` of `system` is found by (a StatementRef to it inherits them).
    pub async fn xapi_keys(&self, system: &str, id: &str) -> Result<Vec<(i64, Vec<u8>)>> {
        let rows =
            sqlx::query("SELECT kind, key FROM xapi_statement_keys WHERE system = $1 AND id = $2")
                .bind(system)
                .bind(id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("kind")?, r.try_get("key")?)))
            .collect()
    }

    /// The attachments with these hashes: (sha2, media type, content).
    pub async fn xapi_attachments(&self, hashes: &[String]) -> Result<Vec<NewAttachment>> {
        let keys: Vec<&str> = hashes.iter().map(String::as_str).collect();
        let mut conn = self.pool.acquire().await?;
        let sql = "SELECT sha2, content_type, content FROM xapi_attachments WHERE sha2 IN ({in})";
        let rows = crate::sql::fetch_in(self.backend, &mut conn, sql, &keys).await?;
        rows.iter()
            .map(|r| {
                let sha2: String = r.try_get("sha2")?;
                let sealed: Vec<u8> = r.try_get("content")?;
                let content = self
                    .keys
                    .open(column::XAPI_ATTACHMENT, &sealed)
                    .map_err(|e| Error::Sealed(format!("attachment {sha2}"), e))?;
                Ok(NewAttachment {
                    sha2,
                    content_type: r.try_get("content_type")?,
                    content,
                })
            })
            .collect()
    }

    /// Up to `limit` statements stored by an earlier release, not indexed yet: (system,
    /// statement, when stored as RFC 3339).
    pub async fn xapi_unindexed(
        &self,
        limit: i64,
    ) -> Result<Vec<(String, StoredStatement, String)>> {
        let rows = sqlx::query(
            "SELECT system, id, statement, stored_ms, voided, stored_at FROM xapi_statements \
             WHERE stored_ms IS NULL ORDER BY stored_at, id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("system")?,
                    self.open_statement(r)?,
                    r.try_get("stored_at")?,
                ))
            })
            .collect()
    }

    /// Indexes a statement of an earlier release: its stored form, time and keys; a voiding
    /// statement marks its target.
    pub async fn xapi_reindex(&self, st: &NewStatement) -> Result<()> {
        let _guard = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let sealed = self.keys.seal(column::XAPI, &st.bytes);
        sqlx::query(
            "UPDATE xapi_statements SET statement = $1, stored_ms = $2, content_hash = $3 \
             WHERE system = $4 AND id = $5",
        )
        .bind(sealed)
        .bind(st.stored_ms)
        .bind(&st.content_hash)
        .bind(&st.system)
        .bind(&st.id)
        .execute(&mut *tx)
        .await?;
        let keys: Vec<(&str, &str, i64, &[u8])> = st
            .keys
            .iter()
            .map(|(k, key)| (st.system.as_str(), st.id.as_str(), *k, key.as_slice()))
            .collect();
        insert_keys(self, &mut tx, &keys).await?;
        mark_voided(&mut tx, &st.system, st.voids.as_deref()).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// A query parameter after the first (the system).
enum Param {
    Int(i64),
    Bytes(Vec<u8>),
    Text(String),
}

/// The SQL of `q` (its first parameter is the system) and its further parameters, in order.
fn query_sql(backend: crate::Backend, q: &StatementQuery) -> (String, Vec<Param>) {
    let mut sql = format!(
        "SELECT s.id, s.statement, s.stored_ms, s.voided FROM xapi_statements s \
         WHERE s.system = {} AND s.voided = 0 AND s.stored_ms IS NOT NULL",
        param(backend, 1)
    );
    let mut params = Vec::new();
    let mut bind = |p: Param| {
        params.push(p);
        param(backend, params.len() + 1)
    };
    if let Some(since) = q.since_ms {
        sql += &format!(" AND s.stored_ms > {}", bind(Param::Int(since)));
    }
    if let Some(until) = q.until_ms {
        sql += &format!(" AND s.stored_ms <= {}", bind(Param::Int(until)));
    }
    let (cmp, dir) = if q.ascending {
        (">", "ASC")
    } else {
        ("<", "DESC")
    };
    if let Some((ms, id)) = &q.after {
        let (a, b) = (bind(Param::Int(*ms)), bind(Param::Int(*ms)));
        let c = bind(Param::Text(id.clone()));
        sql += &format!(" AND (s.stored_ms {cmp} {a} OR (s.stored_ms = {b} AND s.id {cmp} {c}))");
    }
    for (kinds, key) in &q.keys {
        let kinds: Vec<String> = kinds.iter().map(i64::to_string).collect();
        sql += &format!(
            " AND EXISTS (SELECT 1 FROM xapi_statement_keys k WHERE k.system = s.system \
             AND k.id = s.id AND k.kind IN ({}) AND k.key = {})",
            kinds.join(", "),
            bind(Param::Bytes(key.clone()))
        );
    }
    sql += &format!(
        " ORDER BY s.stored_ms {dir}, s.id {dir} LIMIT {}",
        bind(Param::Int(q.limit))
    );
    (sql, params)
}
