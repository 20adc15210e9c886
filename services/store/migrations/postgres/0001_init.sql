-- Append-only log of every received record: the bytes as they arrived.
CREATE TABLE raw_log (
    id          BIGSERIAL PRIMARY KEY,
    received_at TEXT   NOT NULL,
    connector   TEXT   NOT NULL,
    system      TEXT   NOT NULL,
    kind        TEXT   NOT NULL,
    record_id   TEXT   NOT NULL,
    version     BIGINT NOT NULL,
    hash        TEXT   NOT NULL,
    bytes       BYTEA  NOT NULL
);

-- The current (winning) version of every source record.
CREATE TABLE source_records (
    system         TEXT   NOT NULL,
    kind           TEXT   NOT NULL,
    record_id      TEXT   NOT NULL,
    version        BIGINT NOT NULL,
    deleted        BIGINT NOT NULL,
    content_hash   TEXT   COLLATE "C" NOT NULL,
    person_key     TEXT,
    account_system TEXT,
    account_id     TEXT,
    class_id       TEXT,
    body           TEXT,
    profile        TEXT   NOT NULL DEFAULT '',
    received_at    TEXT   NOT NULL,
    PRIMARY KEY (system, kind, record_id)
);
CREATE INDEX source_records_person ON source_records (person_key, kind);
-- Account lookups go by account id first: most rows share one account system.
CREATE INDEX source_records_account ON source_records (account_id, account_system);
CREATE INDEX source_records_class ON source_records (class_id, kind);
CREATE INDEX source_records_link ON source_records (account_id) WHERE kind = 'link';

-- Records refused at any stage, with the original bytes.
CREATE TABLE dead_letters (
    id          BIGSERIAL PRIMARY KEY,
    received_at TEXT   NOT NULL,
    connector   TEXT   NOT NULL,
    stage       TEXT   NOT NULL,
    reason_code TEXT   NOT NULL,
    message     TEXT   NOT NULL,
    system      TEXT   NOT NULL,
    kind        TEXT   NOT NULL,
    record_id   TEXT   NOT NULL,
    payload     BYTEA  NOT NULL
);
CREATE INDEX dead_letters_reason ON dead_letters (connector, reason_code);
