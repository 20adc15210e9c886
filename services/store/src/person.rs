//! The person a row of `source_records` names. Since migration 0027 a row keeps the person key
//! as its 32 bytes in `person` (33 bytes in the row) instead of 64 hex characters in
//! `person_key` (65); a row written before keeps its text until `trainhub migrate --rewrite`
//! moves it or a newer version replaces it. The two person indexes are built on [`bytes`],
//! the key as bytes whichever form the row holds, so a lookup by a list of keys finds rows of
//! either form in one index scan; readers select it as text ([`key`]), the form every other
//! table, the marks and the API name persons by.

use crate::{Backend, Error, Result};

/// The person key of the row `table` (a table name or alias) as hex text, `NULL` for a row
/// that names no person.
pub(crate) fn key(backend: Backend, table: &str) -> String {
    match backend {
        Backend::Postgres => format!("COALESCE(encode({table}.person, 'hex'), {table}.person_key)"),
        // SQLite's `hex(NULL)` is the empty text, not NULL.
        Backend::Sqlite => format!(
            "CASE WHEN {table}.person IS NULL THEN {table}.person_key \
             ELSE lower(hex({table}.person)) END"
        ),
    }
}

/// The person key of the row `table` as bytes, `NULL` for a row that names no person. The
/// expression `source_records_person_key` and `source_records_persons` are built on: a query
/// spells it so for an index to serve it, and compares it with [`param`]s.
pub(crate) fn bytes(backend: Backend, table: &str) -> String {
    match backend {
        Backend::Postgres => format!("COALESCE({table}.person, decode({table}.person_key, 'hex'))"),
        Backend::Sqlite => format!("COALESCE({table}.person, unhex({table}.person_key))"),
    }
}

/// Placeholder `n` (a person key as hex text) as bytes: `decode($n, 'hex')` or `unhex(?)`.
pub(crate) fn param(backend: Backend, n: usize) -> String {
    match backend {
        Backend::Postgres => format!("decode(${n}, 'hex')"),
        Backend::Sqlite => "unhex(?)".to_owned(),
    }
}

/// A person key as the bytes `person` stores.
pub(crate) fn to_bytes(key: &str) -> Result<Vec<u8>> {
    hex::decode(key).map_err(|e| Error::Corrupt(format!("person key {key}"), e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_reads_either_form() {
        assert_eq!(
            key(Backend::Postgres, "s"),
            "COALESCE(encode(s.person, 'hex'), s.person_key)"
        );
        assert_eq!(
            key(Backend::Sqlite, "s"),
            "CASE WHEN s.person IS NULL THEN s.person_key ELSE lower(hex(s.person)) END"
        );
        assert_eq!(
            bytes(Backend::Sqlite, "s"),
            "COALESCE(s.person, unhex(s.person_key))"
        );
        assert_eq!(param(Backend::Postgres, 3), "decode($3, 'hex')");
        assert_eq!(to_bytes("00ff").unwrap(), vec![0, 255]);
        assert!(to_bytes("not hex").is_err());
    }
}
