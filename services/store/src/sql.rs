//! Small helpers for building multi-row statements with `$n` placeholders, which both SQLite
//! and PostgreSQL accept.

use std::fmt::Write;

/// `($1,$2),($3,$4),…` for `rows` rows of `cols` columns, numbering from `first`.
pub(crate) fn tuples(first: usize, rows: usize, cols: usize) -> String {
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
            let _ = write!(out, "${n}");
            n += 1;
        }
        out.push(')');
    }
    out
}

/// Most rows a single statement binds, keeping well under both databases' parameter limits.
pub(crate) const MAX_PARAMS: usize = 30_000;

#[cfg(test)]
mod tests {
    #[test]
    fn tuples_number_placeholders() {
        assert_eq!(super::tuples(1, 2, 2), "($1,$2),($3,$4)");
        assert_eq!(super::tuples(3, 1, 1), "($3)");
    }
}
