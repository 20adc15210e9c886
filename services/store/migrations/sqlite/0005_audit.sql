-- Every read of personal data through the API: who, about whom, why, when and what was
-- returned. Append-only: the database itself refuses to change or delete a row.
CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         TEXT NOT NULL,
    principal  TEXT NOT NULL,
    method     TEXT NOT NULL,
    person_key TEXT NOT NULL,
    purpose    TEXT NOT NULL,
    returned   TEXT NOT NULL
);
CREATE INDEX audit_log_person ON audit_log (person_key, id);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
