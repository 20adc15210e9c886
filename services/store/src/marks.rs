//! Dirty marks: which persons' dossiers a write changed, for the projector to recompute. The
//! ingest transaction, the review decisions and the projector's own rounds all mark here.

use crate::sql::{fetch_in, tuples, MAX_PARAMS};
use crate::{Backend, Result};
use sqlx::{Any, Row, Transaction};
use std::collections::{BTreeSet, HashSet};

/// Whose dossiers a batch touched: found from the rows the upsert wrote (a tombstone keeps the
/// person, account and class of the version it replaces).
#[derive(Default)]
pub(crate) struct Touched {
    pub(crate) persons: HashSet<String>,
    pub(crate) accounts: HashSet<String>,
    pub(crate) classes: HashSet<String>,
}

/// The conflict clause of every mark: a fresh `seq`, so a projection that read the person's
/// records before this mark cannot clear it.
pub(crate) fn bump(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => "ON CONFLICT (person_key) DO UPDATE SET seq = nextval('dossier_mark')",
        Backend::Sqlite => "ON CONFLICT (person_key) DO UPDATE SET seq = random()",
    }
}

/// Marks the persons whose dossiers `touched` changes: the persons themselves, whoever the
/// touched accounts are linked to, and everyone enrolled in a touched class. The keys are
/// collected first and marked in one sorted statement, so concurrent transactions take the
/// mark rows' locks in the same order and cannot deadlock on them.
pub(crate) async fn mark_dirty(
    backend: Backend,
    tx: &mut Transaction<'static, Any>,
    touched: &Touched,
) -> Result<()> {
    let mut persons: BTreeSet<String> = touched.persons.iter().cloned().collect();
    let derived = [
        ("kind = 'link' AND account_id", &touched.accounts),
        ("kind = 'enrollment' AND class_id", &touched.classes),
    ];
    for (condition, values) in derived {
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        let sql = format!(
            "SELECT DISTINCT person_key FROM source_records WHERE {condition} IN ({{in}}) \
             AND person_key IS NOT NULL"
        );
        for row in fetch_in(backend, tx, &sql, &values).await? {
            persons.insert(row.try_get("person_key")?);
        }
    }
    if backend == Backend::Postgres {
        // With concurrent writers the lookups above cannot see links or enrollments that other
        // transactions are writing right now. A deferred mark per account and class is
        // resolved again by the projector once this transaction has committed (see
        // `expand_deferred`), so a person is never left unprojected by that race.
        for a in &touched.accounts {
            persons.insert(format!("{ACCOUNT_MARK}{a}"));
        }
        for c in &touched.classes {
            persons.insert(format!("{CLASS_MARK}{c}"));
        }
    }
    insert_marks(backend, tx, persons).await
}

/// A dirty mark: key and `seq`.
pub(crate) type Mark = (String, i64);

/// Prefix of a deferred mark: the persons linked to an account.
pub(crate) const ACCOUNT_MARK: &str = "acct:";
/// Prefix of a deferred mark: the persons enrolled in a class.
pub(crate) const CLASS_MARK: &str = "class:";

/// Marks `keys` dirty (a fresh `seq` for those already marked), in one sorted statement per
/// chunk.
pub(crate) async fn insert_marks(
    backend: Backend,
    tx: &mut Transaction<'static, Any>,
    keys: BTreeSet<String>,
) -> Result<()> {
    let persons: Vec<String> = keys.into_iter().collect();
    for chunk in persons.chunks(MAX_PARAMS) {
        let sql = format!(
            "INSERT INTO dossier_dirty (person_key) VALUES {} {}",
            tuples(backend, 1, chunk.len(), 1),
            bump(backend)
        );
        let mut q = sqlx::query(&sql);
        for k in chunk {
            q = q.bind(k.as_str());
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// The persons whose state is stale, as one query: the persons marked themselves, and those
/// the deferred marks resolve to now (the same conditions as [`deferred`], joined).
pub(crate) const STALE: &str = "\
    SELECT person_key FROM dossier_dirty \
     WHERE person_key NOT LIKE 'acct:%' AND person_key NOT LIKE 'class:%' \
    UNION SELECT s.person_key FROM dossier_dirty d JOIN source_records s \
     ON s.kind = 'link' AND s.deleted = 0 AND s.account_id = substr(d.person_key, 6) \
     WHERE d.person_key LIKE 'acct:%' AND s.person_key IS NOT NULL \
    UNION SELECT s.person_key FROM dossier_dirty d JOIN source_records s \
     ON s.kind = 'enrollment' AND s.class_id = substr(d.person_key, 7) \
     WHERE d.person_key LIKE 'class:%' AND s.person_key IS NOT NULL";

/// A deferred mark's lookup of the persons it stands for: the condition on `source_records`
/// (binding `$1`) and the value; `None` for a person's own mark.
pub(crate) fn deferred(key: &str) -> Option<(&'static str, &str)> {
    if let Some(account) = key.strip_prefix(ACCOUNT_MARK) {
        return Some(("kind = 'link' AND deleted = 0 AND account_id = $1", account));
    }
    key.strip_prefix(CLASS_MARK)
        .map(|class| ("kind = 'enrollment' AND class_id = $1", class))
}
