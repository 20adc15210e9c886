//! What several hub instances on one store share besides the data: each instance's connector
//! status (so that any instance can list all of them), and claims on dead letters being
//! replayed (so that one instance replays a given letter).

use crate::sql::{list_from, param};
use crate::{now_rfc3339, Result, Store};
use sqlx::Row;

/// One connector's status as an instance last published it.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceStatus {
    /// The hub instance.
    pub instance: String,
    /// The connector.
    pub name: String,
    /// The encoded status (`trainhub.v1.ConnectorStatus`).
    pub status: Vec<u8>,
    /// When it was published.
    pub updated_at: String,
}

/// Rows of instances silent for this long are deleted by whoever publishes next.
const FORGET_AFTER: chrono::Duration = chrono::Duration::hours(24);

fn ago(d: chrono::Duration) -> String {
    (chrono::Utc::now() - d).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Store {
    /// Replaces `instance`'s published statuses with `statuses` (name, encoded status).
    pub async fn publish_statuses(
        &self,
        instance: &str,
        statuses: &[(String, Vec<u8>)],
    ) -> Result<()> {
        let now = now_rfc3339();
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM instance_status WHERE instance = $1 OR updated_at < $2")
            .bind(instance)
            .bind(ago(FORGET_AFTER))
            .execute(&mut *tx)
            .await?;
        for (name, status) in statuses {
            sqlx::query(
                "INSERT INTO instance_status (instance, name, status, updated_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(instance)
            .bind(name)
            .bind(status.as_slice())
            .bind(&now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Removes `instance`'s statuses (on a graceful stop).
    pub async fn withdraw_statuses(&self, instance: &str) -> Result<()> {
        sqlx::query("DELETE FROM instance_status WHERE instance = $1")
            .bind(instance)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The statuses other instances published within `fresh`, by instance and name.
    pub async fn other_statuses(
        &self,
        instance: &str,
        fresh: std::time::Duration,
    ) -> Result<Vec<InstanceStatus>> {
        let since = ago(chrono::Duration::from_std(fresh).unwrap_or(FORGET_AFTER));
        let rows = sqlx::query(
            "SELECT instance, name, status, updated_at FROM instance_status \
             WHERE instance <> $1 AND updated_at >= $2 ORDER BY instance, name",
        )
        .bind(instance)
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(InstanceStatus {
                    instance: r.try_get("instance")?,
                    name: r.try_get("name")?,
                    status: r.try_get("status")?,
                    updated_at: r.try_get("updated_at")?,
                })
            })
            .collect()
    }

    /// Claims the unreplayed letters among `ids` for `claimant` for `lease`; returns the ids it
    /// got. A letter claimed by another replay whose lease has not ended is not returned.
    pub async fn claim_letters(
        &self,
        ids: &[i64],
        claimant: &str,
        lease: std::time::Duration,
    ) -> Result<Vec<i64>> {
        let mut won = Vec::with_capacity(ids.len());
        let now = now_rfc3339();
        let until = (chrono::Utc::now()
            + chrono::Duration::from_std(lease).unwrap_or(FORGET_AFTER))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        for chunk in ids.chunks(500) {
            let p = |n| param(self.backend, n);
            let sql = format!(
                "UPDATE dead_letters SET replay_claim = {}, replay_claim_until = {} \
                 WHERE replayed_at IS NULL \
                 AND (replay_claim_until IS NULL OR replay_claim_until < {}) \
                 AND id IN ({}) RETURNING id",
                p(1),
                p(2),
                p(3),
                list_from(self.backend, 4, chunk.len())
            );
            let mut query = sqlx::query(&sql).bind(claimant).bind(&until).bind(&now);
            for id in chunk {
                query = query.bind(*id);
            }
            for row in query.fetch_all(&self.pool).await? {
                won.push(row.try_get::<i64, _>("id")?);
            }
        }
        won.sort_unstable();
        Ok(won)
    }

    /// Ends `claimant`'s claims: letters still dead may be replayed again.
    pub async fn release_letters(&self, claimant: &str) -> Result<()> {
        sqlx::query(
            "UPDATE dead_letters SET replay_claim = NULL, replay_claim_until = NULL \
             WHERE replay_claim = $1",
        )
        .bind(claimant)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
