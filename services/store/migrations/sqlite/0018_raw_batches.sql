-- The raw log one row per committed batch: the bytes of its records as received, with each
-- record's source identity and version, framed, compressed, then sealed (`packed`). A batch of
-- similar records compresses several times over where one record alone hardly does, and the
-- per-record columns, the 64-character hash (it is the SHA-256 of the bytes, computed again
-- when needed) and the row overhead go. `raw_log` keeps the rows written before this
-- migration and is no longer written; readers take both.
CREATE TABLE raw_batches (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at TEXT   NOT NULL,
    connector   TEXT   NOT NULL,
    records     INTEGER NOT NULL,
    packed      BLOB    NOT NULL
);
CREATE INDEX raw_batches_received ON raw_batches (received_at);
-- A hub of an earlier release would write the old log and count only it: with this migration
-- applied it refuses the store at start.
INSERT INTO store_features (feature, since) VALUES ('raw_batches', '0018');
