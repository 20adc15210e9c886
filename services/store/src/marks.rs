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
    let person = crate::person::key(backend, "source_records");
    for (condition, values) in derived {
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        let sql = format!(
            "SELECT DISTINCT {person} AS person_key FROM source_records \
             WHERE {condition} IN ({{in}}) AND {person} IS NOT NULL"
        );
        for row in fetch_in(backend, tx, &sql, &values).await? {
            persons.insert(row.try_get("person_key")?);
        }
    }
    if writes_deferred(backend) {
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

/// Whether `backend` writes deferred account and class marks: PostgreSQL only, where writers
/// run concurrently; a SQLite store has one writer and never holds one.
pub(crate) fn writes_deferred(backend: Backend) -> bool {
    backend == Backend::Postgres
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

/// The deferred marks: the prefix, the records a mark stands for, and their column that names
/// the account or class. The projector resolves a round's marks by the list of their accounts
/// or classes ([`resolvers`]); readers resolve them all in one query ([`stale_sql`]).
const DEFERRED: [(&str, &str, &str); 2] = [
    (ACCOUNT_MARK, "kind = 'link' AND deleted = 0", "account_id"),
    (CLASS_MARK, "kind = 'enrollment'", "class_id"),
];

/// The marks waiting: (persons marked themselves, shared marks), in one pass of the marks.
pub(crate) async fn mark_counts(pool: &sqlx::AnyPool) -> Result<(i64, i64)> {
    let shared: Vec<String> = DEFERRED
        .iter()
        .map(|(prefix, ..)| format!("person_key LIKE '{prefix}%'"))
        .collect();
    let sql = format!(
        "SELECT COUNT(*) AS total, \
         CAST(COALESCE(SUM(CASE WHEN {} THEN 1 ELSE 0 END), 0) AS BIGINT) AS shared \
         FROM dossier_dirty",
        shared.join(" OR ")
    );
    let row = sqlx::query(&sql).fetch_one(pool).await?;
    let (total, shared): (i64, i64) = (row.try_get("total")?, row.try_get("shared")?);
    Ok((total - shared, shared))
}

/// The persons whose state is stale, as one query: the persons marked themselves, and those
/// the deferred marks resolve to now.
pub(crate) fn stale_sql(backend: Backend) -> String {
    let own: Vec<String> = DEFERRED
        .iter()
        .map(|(prefix, ..)| format!("person_key NOT LIKE '{prefix}%'"))
        .collect();
    let mut sql = format!(
        "SELECT person_key FROM dossier_dirty WHERE {}",
        own.join(" AND ")
    );
    for resolved in resolved_sql(backend) {
        sql += " UNION ";
        sql += &resolved;
    }
    sql
}

/// The persons the deferred marks resolve to now that are not marked themselves, counted in
/// one statement (column `n`): with the persons marked themselves, what [`stale_sql`] returns.
pub(crate) fn resolved_unmarked_sql(backend: Backend) -> String {
    format!(
        "SELECT COUNT(*) AS n FROM ({}) r WHERE NOT EXISTS \
         (SELECT 1 FROM dossier_dirty o WHERE o.person_key = r.person_key)",
        resolved_sql(backend).join(" UNION ")
    )
}

/// Per kind of deferred mark, the persons its marks resolve to now: each mark's account or
/// class looked up in the records' index. On PostgreSQL the mark table's key sorts bytewise
/// (`COLLATE "C"`) and the records' columns by the database's collation: compared as they
/// are, the two collations conflict and no index of the records applies, so every record was
/// read (4.3 s for 500 class marks at a million persons, 0.16 s through the index). The
/// column is said not to be NULL: its index covers only the records that have one
/// (migration 0023), and a join condition alone does not tell the planner so.
fn resolved_sql(backend: Backend) -> Vec<String> {
    let collate = match backend {
        Backend::Postgres => " COLLATE \"default\"",
        Backend::Sqlite => "",
    };
    let person = crate::person::key(backend, "s");
    DEFERRED
        .iter()
        .map(|(prefix, records, column)| {
            format!(
                "SELECT {person} AS person_key FROM dossier_dirty d JOIN source_records s \
                 ON {records} AND {column} IS NOT NULL \
                 AND {column} = substr(d.person_key, {}){collate} \
                 WHERE d.person_key LIKE '{prefix}%' AND {person} IS NOT NULL",
                prefix.len() + 1
            )
        })
        .collect()
}

/// The deferred marks' prefixes, in key order.
pub(crate) fn deferred_prefixes() -> impl Iterator<Item = &'static str> {
    DEFERRED.iter().map(|(prefix, ..)| *prefix)
}

/// Per kind of deferred mark, its prefix and the lookup of the persons its marks stand for,
/// by the list of their accounts or classes (`{in}`, see [`crate::sql::fetch_in`]).
pub(crate) fn resolvers(backend: Backend) -> impl Iterator<Item = (&'static str, String)> {
    let person = crate::person::key(backend, "source_records");
    DEFERRED.iter().map(move |(prefix, records, column)| {
        let sql = format!(
            "SELECT DISTINCT {person} AS person_key FROM source_records WHERE {records} \
             AND {column} IN ({{in}}) AND {person} IS NOT NULL"
        );
        (*prefix, sql)
    })
}
