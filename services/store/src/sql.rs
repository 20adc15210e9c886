//! Small helpers for building multi-row statements.
//!
//! PostgreSQL takes numbered `$n` placeholders; SQLite gets anonymous `?` ones, because it
//! resolves every numbered parameter by scanning its name list, which makes a statement with
//! thousands of `$n` parameters quadratic to bind.

use crate::Backend;
use sqlx::any::AnyRow;
use sqlx::AnyConnection;
use std::fmt::Write;

/// `($1,$2),($3,$4),…` (PostgreSQL) or `(?,?),(?,?),…` (SQLite) for `rows` rows of `cols`
/// columns, numbering from `first`.
pub(crate) fn tuples(backend: Backend, first: usize, rows: usize, cols: usize) -> String {
    let mut out = String::with_capacity(rows * cols * 5);
    let mut n = first;
    for r in 0..rows {
        if r > 0 {
            out.push(',');
        }
        out.push('(');
        for c in 0..cols {
            if c > 0 {
                out.push(',');
            }
            match backend {
                Backend::Postgres => {
                    let _ = write!(out, "${n}");
                }
                Backend::Sqlite => out.push('?'),
            }
            n += 1;
        }
        out.push(')');
    }
    out
}

/// `$1,$2,…` or `?,?,…`: an `IN` list of `n` parameters.
pub(crate) fn list(backend: Backend, n: usize) -> String {
    list_from(backend, 1, n)
}

/// An `IN` list of `n` parameters numbered from `first`.
pub(crate) fn list_from(backend: Backend, first: usize, n: usize) -> String {
    tuples(backend, first, 1, n)
        .trim_matches(|c| c == '(' || c == ')')
        .to_owned()
}

/// The `n`th placeholder: `$n` or `?`.
pub(crate) fn param(backend: Backend, n: usize) -> String {
    list_from(backend, n, 1)
}

/// Most rows a single statement binds, keeping well under both databases' parameter limits.
pub(crate) const MAX_PARAMS: usize = 30_000;

/// `sql` for a chunk of `n` values: their placeholders where it says `{in}`, or as person keys
/// turned into bytes where it says `{keys}` ([`crate::person::param`]).
fn for_chunk(backend: Backend, sql: &str, n: usize) -> String {
    if sql.contains("{keys}") {
        let keys: Vec<String> = (1..=n).map(|i| crate::person::param(backend, i)).collect();
        sql.replace("{keys}", &keys.join(","))
    } else {
        sql.replace("{in}", &list(backend, n))
    }
}

/// Runs `sql` once per chunk of `values`, with the chunk's placeholders where `sql` says
/// `{in}` (or `{keys}`, see [`for_chunk`]), and returns every row: a lookup by a key list of
/// any length.
pub(crate) async fn fetch_in(
    backend: Backend,
    conn: &mut AnyConnection,
    sql: &str,
    values: &[&str],
) -> crate::Result<Vec<AnyRow>> {
    let mut out = Vec::new();
    for chunk in values.chunks(MAX_PARAMS) {
        let statement = for_chunk(backend, sql, chunk.len());
        let mut q = sqlx::query(&statement);
        for v in chunk {
            q = q.bind(*v);
        }
        out.extend(q.fetch_all(&mut *conn).await?);
    }
    Ok(out)
}

/// Runs `sql` (a statement with `{in}`, see [`fetch_in`]) once per chunk of `values`.
pub(crate) async fn execute_in(
    backend: Backend,
    conn: &mut AnyConnection,
    sql: &str,
    values: &[&str],
) -> crate::Result<()> {
    for chunk in values.chunks(MAX_PARAMS) {
        let statement = for_chunk(backend, sql, chunk.len());
        let mut q = sqlx::query(&statement);
        for v in chunk {
            q = q.bind(*v);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn tuples_number_placeholders() {
        use crate::Backend::*;
        assert_eq!(super::tuples(Postgres, 1, 2, 2), "($1,$2),($3,$4)");
        assert_eq!(super::tuples(Postgres, 3, 1, 1), "($3)");
        assert_eq!(super::tuples(Sqlite, 3, 2, 1), "(?),(?)");
        assert_eq!(super::list(Sqlite, 2), "?,?");
        assert_eq!(super::list(Postgres, 2), "$1,$2");
        assert_eq!(super::list_from(Postgres, 4, 2), "$4,$5");
        assert_eq!(super::param(Sqlite, 4), "?");
        assert_eq!(
            super::for_chunk(Postgres, "x IN ({keys})", 2),
            "x IN (decode($1, 'hex'),decode($2, 'hex'))"
        );
        assert_eq!(super::for_chunk(Sqlite, "x IN ({in})", 2), "x IN (?,?)");
    }
}
