//! A person's current records, as the dossier reads them: their own records, records naming
//! them by a linked account, and the classes those records refer to.

use super::bodies::{self, Bare, Bodies};
use crate::review;
use crate::seal::column;
use crate::sql::fetch_in;
use crate::{Backend, Error, Keyring, Result};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use std::collections::{BTreeMap, BTreeSet};
use trainhub_model::dossier::StoredRecord;
use trainhub_model::record::{Body, Kind, SourceRef};
use trainhub_model::review::{Claims, Reviewed};

pub(crate) const COLUMNS: &str =
    "system, kind, record_id, version, received_at, received, profile, body, content";

/// Rows that hold a body: packed bytes, or text in a store not yet rewritten (migration 0015).
pub(crate) const HAS_BODY: &str = "(content IS NOT NULL OR body IS NOT NULL)";

/// A source record's canonical body (JSON): its packed bytes, else its text.
fn body_of(row: &AnyRow, keys: &Keyring, kind: &str, record_id: &str) -> Result<Vec<u8>> {
    let (label, opened) = match row.try_get::<Option<Vec<u8>>, _>("content")? {
        Some(packed) => (column::CONTENT, keys.open_packed(column::CONTENT, &packed)),
        None => {
            let text: String = row.try_get("body")?;
            (
                column::BODY,
                keys.open_text(column::BODY, &text).map(String::into_bytes),
            )
        }
    };
    opened.map_err(|e| {
        let system: String = row.try_get("system").unwrap_or_default();
        Error::Sealed(format!("{label} of {system}/{kind}/{record_id}"), e)
    })
}

pub(crate) fn stored_record(row: &AnyRow, keys: &Keyring) -> Result<StoredRecord> {
    let bare = bare_record(row)?;
    let (kind, record_id) = (bare.source.kind.as_str(), bare.source.record_id.as_str());
    let body = body_of(row, keys, kind, record_id)?;
    let body: Body = serde_json::from_slice(&body)
        .map_err(|e| Error::Corrupt(format!("{kind}/{record_id}"), e.to_string()))?;
    Ok(bare.with(body))
}

/// The current, live records of each of `persons`: their own records, records naming them by a
/// linked account, and the classes those records refer to. Records are sorted so the facts of
/// a person do not depend on the order rows come back in. Also where the bodies of the
/// persons' own records were found when `source_records` does not hold them
/// ([`bodies::resolve`]).
pub(crate) async fn records_of(
    backend: Backend,
    conn: &mut AnyConnection,
    keys: &Keyring,
    persons: &[String],
) -> Result<(
    BTreeMap<String, Vec<StoredRecord>>,
    BTreeMap<String, Bodies>,
)> {
    let mut out: BTreeMap<String, Vec<StoredRecord>> =
        persons.iter().map(|p| (p.clone(), Vec::new())).collect();
    let mut accounts: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut bare: BTreeMap<String, Vec<Bare>> = BTreeMap::new();
    let keys_of: Vec<&str> = persons.iter().map(String::as_str).collect();
    let sql = format!(
        "SELECT {COLUMNS}, {} AS person_key, account_system, account_id \
         FROM source_records WHERE {} IN ({{keys}}) AND deleted = 0",
        crate::person::key(backend, "source_records"),
        crate::person::bytes(backend, "source_records")
    );
    for row in fetch_in(backend, conn, &sql, &keys_of).await? {
        let person: String = row.try_get("person_key")?;
        let kind: String = row.try_get("kind")?;
        if kind == Kind::Link.as_str() {
            let account = (row.try_get("account_system")?, row.try_get("account_id")?);
            accounts.entry(account).or_default().push(person.clone());
        }
        if has_body(&row)? {
            let record = stored_record(&row, keys)?;
            out.entry(person).or_default().push(record);
        } else {
            bare.entry(person).or_default().push(bare_record(&row)?);
        }
    }
    let bodies = bodies::resolve(backend, conn, keys, &keys_of, bare, &mut out).await?;
    let account_ids: Vec<&str> = accounts.keys().map(|(_, id)| id.as_str()).collect();
    let sql = format!(
        "SELECT {COLUMNS}, account_system, account_id FROM source_records \
         WHERE person IS NULL AND person_key IS NULL AND deleted = 0 AND {HAS_BODY} \
         AND kind <> 'link' \
         AND account_id IN ({{in}})"
    );
    for row in fetch_in(backend, conn, &sql, &account_ids).await? {
        let account: (String, String) =
            (row.try_get("account_system")?, row.try_get("account_id")?);
        if let Some(owners) = accounts.get(&account) {
            let record = stored_record(&row, keys)?;
            for owner in owners {
                out.entry(owner.clone()).or_default().push(record.clone());
            }
        }
    }
    let mut by_class: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (person, records) in &out {
        for r in records {
            if let Some(c) = r.body.class_id() {
                by_class
                    .entry(c.to_owned())
                    .or_default()
                    .insert(person.clone());
            }
        }
    }
    let class_ids: Vec<&str> = by_class.keys().map(String::as_str).collect();
    let sql = format!(
        "SELECT {COLUMNS} FROM source_records WHERE kind = 'training_class' \
         AND deleted = 0 AND {HAS_BODY} AND class_id IN ({{in}})"
    );
    for row in fetch_in(backend, conn, &sql, &class_ids).await? {
        let record = stored_record(&row, keys)?;
        let class = record.body.class_id().unwrap_or_default().to_owned();
        for person in by_class.get(&class).into_iter().flatten() {
            out.entry(person.clone()).or_default().push(record.clone());
        }
    }
    for records in out.values_mut() {
        records.sort_by(|a, b| {
            (a.source.kind, &a.source.system, &a.source.record_id).cmp(&(
                b.source.kind,
                &b.source.system,
                &b.source.record_id,
            ))
        });
    }
    Ok((out, bodies))
}

/// Whether a row holds its body: packed bytes, or text (a store not yet rewritten, migration
/// 0015). A row that names a person holds none since migration 0022 ([`bodies`]).
fn has_body(row: &AnyRow) -> Result<bool> {
    Ok(row.try_get::<Option<Vec<u8>>, _>("content")?.is_some()
        || row.try_get::<Option<String>, _>("body")?.is_some())
}

fn bare_record(row: &AnyRow) -> Result<Bare> {
    let kind: String = row.try_get("kind")?;
    let record_id: String = row.try_get("record_id")?;
    Ok(Bare {
        source: SourceRef {
            system: row.try_get("system")?,
            kind: Kind::parse("kind", &kind)
                .map_err(|e| Error::Corrupt(format!("{kind}/{record_id}"), e.to_string()))?,
            record_id,
            version: row.try_get("version")?,
        },
        received_at: crate::received::of_row(row)?,
        profile: row.try_get("profile")?,
    })
}

/// The records of each of `persons` ([`records_of`]) after the identity review rules:
/// records waiting for a reviewer are left out, decisions applied; and where the bodies of
/// their own records were found.
pub(crate) async fn reviewed_of(
    backend: Backend,
    conn: &mut AnyConnection,
    keys: &Keyring,
    persons: &[String],
) -> Result<(BTreeMap<String, Reviewed>, BTreeMap<String, Bodies>)> {
    let (facts, bodies) = records_of(backend, conn, keys, persons).await?;
    let accounts = review::linked_accounts(facts.values().flatten());
    let claims = if accounts.is_empty() {
        Claims::new()
    } else {
        review::claims_of(backend, conn, &accounts).await?
    };
    let decisions = review::decisions_for(backend, conn, persons).await?;
    Ok((review::review_all(facts, &claims, &decisions)?, bodies))
}
