-- Every read of personal data through the API: who, about whom, why, when and what was
-- returned. Append-only: the database itself refuses to change or delete a row.
CREATE TABLE audit_log (
    id         BIGSERIAL PRIMARY KEY,
    at         TEXT NOT NULL,
    principal  TEXT NOT NULL,
    method     TEXT NOT NULL,
    person_key TEXT NOT NULL,
    purpose    TEXT NOT NULL,
    returned   TEXT NOT NULL
);
CREATE INDEX audit_log_person ON audit_log (person_key, id);
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
