-- The Statements resource's queries (xAPI 1.0.3 Part Three §2.1.3): when the hub stored each
-- statement (milliseconds, the order of results and of paging), whether a voiding statement
-- voided it, and what its filters match: agents, verbs, activities and registrations as keyed
-- fingerprints (HMAC under the hub secret; an agent names a person), by kind:
-- 1 actor or object agent, 2 other agents (authority, instructor, team, sub-statement),
-- 3 verb, 4 object activity, 5 other activities (context activities, sub-statement),
-- 6 registration. A statement that refers to another (StatementRef) carries that one's keys too.
-- Rows of an earlier release have stored_ms NULL until the hub indexes them at start.
ALTER TABLE xapi_statements ADD COLUMN stored_ms BIGINT;
ALTER TABLE xapi_statements ADD COLUMN voided BIGINT NOT NULL DEFAULT 0;
CREATE INDEX xapi_statements_stored ON xapi_statements (system, stored_ms, id);
-- What a hub indexes at start: found without reading the whole table.
CREATE INDEX xapi_statements_unindexed ON xapi_statements (stored_at, id) WHERE stored_ms IS NULL;
CREATE TABLE xapi_statement_keys (
    system TEXT NOT NULL,
    id     TEXT NOT NULL,
    kind   BIGINT NOT NULL,
    key    BYTEA NOT NULL,
    PRIMARY KEY (system, kind, key, id)
);
-- Attachments of statements (multipart/mixed), by their SHA-2 hash, sealed.
CREATE TABLE xapi_attachments (
    sha2         TEXT PRIMARY KEY,
    content_type TEXT NOT NULL,
    content      BYTEA NOT NULL
);
