//! What the hubs sharing a store must share: the hub secret (it keys persons) and the data keys
//! (they seal personal data), kept as check values in `hub_identity`. The first hub records
//! them; a hub whose secret differs, or whose key under a recorded id differs, is refused before
//! it writes anything — with different secrets one person's records would split across person
//! keys, and with different keys under one id no hub could open the others' rows.

use crate::{now_rfc3339, Result, Store};
use sqlx::Row;
use std::collections::BTreeMap;

/// Name of the hub secret's row.
const SECRET: &str = "secret";
/// Name of the row that marks a store the demo made.
const DEMO: &str = "demo";

/// What differs between a hub and the store it was pointed at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    /// The hub secret is not the one the store was first used with.
    #[error("the hub secret is not the one this store was first used with")]
    Secret,
    /// The data key under this id is not the key the store knows under it.
    #[error("data key `{0}` is not the key this store knows under that id")]
    Key(String),
}

impl Store {
    /// Checks `secret_check` (the hub secret's check value) and this keyring's keys against
    /// what the store recorded, and records what it has not seen yet — all or nothing: on a
    /// mismatch nothing is written. `Ok(Err(…))` lists every difference.
    pub async fn check_identity(
        &self,
        secret_check: &str,
    ) -> Result<std::result::Result<(), Vec<Mismatch>>> {
        let mut ours: BTreeMap<String, String> = BTreeMap::new();
        ours.insert(SECRET.to_owned(), secret_check.to_owned());
        for (id, check) in self.keys.checks() {
            ours.insert(format!("key:{id}"), check.to_owned());
        }
        let _guard = self.write_guard().await;
        let mut tx = self.begin_write().await?;
        let now = now_rfc3339();
        for (name, check) in &ours {
            sqlx::query(
                "INSERT INTO hub_identity (name, check_value, recorded_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(check)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
        }
        let mut mismatches = Vec::new();
        for row in sqlx::query("SELECT name, check_value FROM hub_identity")
            .fetch_all(&mut *tx)
            .await?
        {
            let name: String = row.try_get("name")?;
            let stored: String = row.try_get("check_value")?;
            match ours.get(&name) {
                Some(check) if *check != stored => {
                    mismatches.push(match name.strip_prefix("key:") {
                        Some(id) => Mismatch::Key(id.to_owned()),
                        None => Mismatch::Secret,
                    })
                }
                _ => {}
            }
        }
        if !mismatches.is_empty() {
            tx.rollback().await?;
            return Ok(Err(mismatches));
        }
        tx.commit().await?;
        Ok(Ok(()))
    }

    /// Whether the demo may run here: the store holds no record, or only what the demo made
    /// (it marks the store when it starts).
    pub async fn demo_allowed(&self) -> Result<bool> {
        let marked = sqlx::query("SELECT 1 AS x FROM hub_identity WHERE name = $1")
            .bind(DEMO)
            .fetch_optional(&self.pool)
            .await?
            .is_some();
        if marked {
            return Ok(true);
        }
        let any = sqlx::query("SELECT 1 AS x FROM source_records LIMIT 1")
            .fetch_optional(&self.pool)
            .await?
            .is_some();
        Ok(!any)
    }

    /// Marks the store as the demo's.
    pub async fn mark_demo(&self) -> Result<()> {
        let _guard = self.write_guard().await;
        sqlx::query(
            "INSERT INTO hub_identity (name, check_value, recorded_at) VALUES ($1, '', $2) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(DEMO)
        .bind(now_rfc3339())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
