//! The transactional outbox of `dossier.changed` events (DESIGN §1, §7).
//!
//! The projection transaction that writes a person's dossier state also writes an outbox row
//! when what it announces changed (a digest per person in `dossier_events`), numbered by a
//! per-person sequence that only grows. A relay takes rows with [`Store::outbox_claim`],
//! publishes them, and deletes them with [`OutboxClaim::complete`] once the broker confirmed.
//!
//! Order per person holds across any number of relays: a claim only takes each person's
//! oldest row (its head), and on PostgreSQL locks it `FOR UPDATE SKIP LOCKED`, so a person's
//! next event cannot be taken until the previous one is deleted.

use crate::sql::{fetch_in, list, MAX_PARAMS};
use crate::{Backend, Result, Store};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::{Any, Row, Transaction};
use std::collections::HashMap;
use trainhub_model::dossier::Dossier;

/// The body of a `dossier.changed` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DossierChanged {
    /// The person (never the national ID).
    pub person_key: String,
    /// The person's unit; the routing key ends with it.
    pub unit_code: String,
    /// The cadre-management authority that manages the person (empty when none is recorded);
    /// the routing key names it before the unit.
    #[serde(default)]
    pub authority: String,
    /// `red`, `yellow`, `green` or `exempt`; empty when the dossier was removed.
    pub light: String,
    /// Hours credited in the window.
    pub credited_hours: f64,
    /// Hours required in the window.
    pub required_hours: f64,
    /// When the change was projected (RFC 3339).
    pub changed_at: String,
    /// 1, 2, 3 … per person: consumers apply events of one person in this order and ignore one
    /// they have seen.
    pub sequence: i64,
    /// The person's records were all deleted.
    pub removed: bool,
}

/// What the projection wrote for one person: the new dossier, or `None` when it is gone.
pub(crate) struct Projected<'a> {
    pub(crate) person_key: &'a str,
    pub(crate) dossier: Option<(&'a Dossier, &'a str)>,
}

fn digest(p: &Projected<'_>) -> String {
    let mut h = Sha256::new();
    match p.dossier {
        Some((d, facts)) => {
            h.update(format!(
                "{}|{}|{:?}|{:?}|{:?}|{}|{}|{}|{}|",
                d.name,
                d.unit_code,
                d.rank,
                d.category,
                d.status,
                d.region_code,
                d.light.as_str(),
                d.required_hours,
                d.credited_hours
            ));
            h.update(facts);
        }
        None => h.update(b"removed"),
    }
    hex::encode(h.finalize())
}

/// Writes an outbox row for every person in `projected` whose announced state changed.
pub(crate) async fn announce(
    backend: Backend,
    tx: &mut Transaction<'static, Any>,
    projected: &[Projected<'_>],
    now: &str,
) -> Result<usize> {
    let mut previous: HashMap<String, (i64, String, String, String)> = HashMap::new();
    let keys: Vec<&str> = projected.iter().map(|p| p.person_key).collect();
    let sql = "SELECT person_key, seq, state_hash, unit_code, authority FROM dossier_events \
               WHERE person_key IN ({in})";
    for row in fetch_in(backend, tx, sql, &keys).await? {
        previous.insert(
            row.try_get("person_key")?,
            (
                row.try_get("seq")?,
                row.try_get("state_hash")?,
                row.try_get("unit_code")?,
                row.try_get("authority")?,
            ),
        );
    }
    let mut written = 0;
    for p in projected {
        let hash = digest(p);
        let before = previous.get(p.person_key);
        match (before, p.dossier) {
            (Some((_, h, _, _)), _) if *h == hash => continue,
            // Never announced and already gone: nothing to tell.
            (None, None) => continue,
            _ => {}
        }
        let sequence = before.map_or(0, |b| b.0) + 1;
        let event = match p.dossier {
            Some((d, _)) => DossierChanged {
                person_key: p.person_key.to_owned(),
                unit_code: d.unit_code.clone(),
                authority: d.authority.clone(),
                light: d.light.as_str().to_owned(),
                credited_hours: d.credited_hours,
                required_hours: d.required_hours,
                changed_at: now.to_owned(),
                sequence,
                removed: false,
            },
            None => DossierChanged {
                person_key: p.person_key.to_owned(),
                unit_code: before.map(|b| b.2.clone()).unwrap_or_default(),
                authority: before.map(|b| b.3.clone()).unwrap_or_default(),
                light: String::new(),
                credited_hours: 0.0,
                required_hours: 0.0,
                changed_at: now.to_owned(),
                sequence,
                removed: true,
            },
        };
        sqlx::query(
            "INSERT INTO dossier_events (person_key, seq, state_hash, unit_code, authority) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (person_key) DO UPDATE SET seq = excluded.seq, \
             state_hash = excluded.state_hash, unit_code = excluded.unit_code, \
             authority = excluded.authority",
        )
        .bind(p.person_key)
        .bind(sequence)
        .bind(&hash)
        .bind(&event.unit_code)
        .bind(&event.authority)
        .execute(&mut **tx)
        .await?;
        sqlx::query(
            "INSERT INTO outbox (person_key, seq, routing_key, payload, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(p.person_key)
        .bind(sequence)
        .bind(routing_key(&event.authority, &event.unit_code))
        .bind(serde_json::to_string(&event).expect("events serialise"))
        .bind(now)
        .execute(&mut **tx)
        .await?;
        written += 1;
    }
    Ok(written)
}

/// `dossier.changed.<authority>.<unit_code>`: a department binds `dossier.changed.<its
/// authority>.#`. Each part is made dot-free, and an empty one (no authority recorded, no
/// unit) routes as `_`.
pub fn routing_key(authority: &str, unit_code: &str) -> String {
    let part = |text: &str| {
        if text.is_empty() {
            "_".to_owned()
        } else {
            text.replace(['.', '#', '*'], "_")
        }
    };
    format!("dossier.changed.{}.{}", part(authority), part(unit_code))
}

/// One outbox row to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    /// Row id.
    pub id: i64,
    /// The person.
    pub person_key: String,
    /// The person's event sequence number.
    pub seq: i64,
    /// Where to publish it.
    pub routing_key: String,
    /// The JSON body ([`DossierChanged`]).
    pub payload: String,
}

/// Rows taken by one relay; on PostgreSQL they stay locked until [`OutboxClaim::complete`] or
/// until the claim is dropped (then another relay may take them).
pub struct OutboxClaim {
    store: Store,
    tx: Option<Transaction<'static, Any>>,
    /// The rows, oldest first; at most one per person.
    pub rows: Vec<OutboxRow>,
}

impl Store {
    /// Takes up to `limit` rows to publish: the oldest row of each person whose row no other
    /// relay holds.
    pub async fn outbox_claim(&self, limit: i64) -> Result<OutboxClaim> {
        let head = "SELECT id, person_key, seq, routing_key, payload FROM outbox o \
                    WHERE NOT EXISTS (SELECT 1 FROM outbox p \
                                      WHERE p.person_key = o.person_key AND p.id < o.id) \
                    ORDER BY id LIMIT $1";
        let (tx, rows) = match self.backend {
            Backend::Postgres => {
                let mut tx = self.pool.begin().await?;
                let rows = sqlx::query(&format!("{head} FOR UPDATE SKIP LOCKED"))
                    .bind(limit)
                    .fetch_all(&mut *tx)
                    .await?;
                (Some(tx), rows)
            }
            // One hub per SQLite file: nothing to lock against.
            Backend::Sqlite => (
                None,
                sqlx::query(head).bind(limit).fetch_all(&self.pool).await?,
            ),
        };
        let rows = rows
            .iter()
            .map(|r| {
                Ok(OutboxRow {
                    id: r.try_get("id")?,
                    person_key: r.try_get("person_key")?,
                    seq: r.try_get("seq")?,
                    routing_key: r.try_get("routing_key")?,
                    payload: r.try_get("payload")?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(OutboxClaim {
            store: self.clone(),
            tx,
            rows,
        })
    }

    /// Rows waiting to be published.
    pub async fn outbox_depth(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM outbox")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }
}

impl OutboxClaim {
    /// Deletes the published rows `ids` (all confirmed by the broker) and releases the claim.
    pub async fn complete(self, ids: &[i64]) -> Result<()> {
        let OutboxClaim { store, tx, .. } = self;
        let _guard = store.write_guard().await;
        let mut tx = match tx {
            Some(tx) => tx,
            None => store.pool.begin().await?,
        };
        for chunk in ids.chunks(MAX_PARAMS) {
            let sql = format!(
                "DELETE FROM outbox WHERE id IN ({})",
                list(store.backend, chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
