-- xAPI statements as received by /xapi/statements (the statement resource), sealed: an actor
-- names a person. One per partner system and statement id; the content hash answers a second
-- PUT of the same id (the same statement, or a conflict).
CREATE TABLE xapi_statements (
    system       TEXT NOT NULL,
    id           TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    statement    BYTEA NOT NULL,
    stored_at    TEXT NOT NULL,
    PRIMARY KEY (system, id)
);
