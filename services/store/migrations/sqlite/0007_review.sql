-- The identity review queue (DESIGN §4). The projector finds conflicts in a person's records
-- (see trainhub_model::review) and keeps them here with every side, sealed: sides carry names
-- and birth dates. A conflict's id is derived from what conflicts; a reviewer's decision is
-- the chosen side's `choice`. `status`: `open`, `resolved`, or `cleared` (the data no longer
-- conflicts, e.g. a corrected record arrived before anyone decided).
CREATE TABLE review_conflicts (
    id             TEXT PRIMARY KEY,
    kind           TEXT NOT NULL,
    account_system TEXT,
    account_id     TEXT,
    sides          TEXT NOT NULL,
    detected_at    TEXT NOT NULL,
    status         TEXT NOT NULL,
    choice         TEXT,
    note           TEXT,
    resolved_by    TEXT,
    resolved_at    TEXT
);
CREATE INDEX review_conflicts_status ON review_conflicts (status, id);

-- The persons each conflict involves (an account conflict involves several).
CREATE TABLE review_conflict_persons (
    person_key  TEXT NOT NULL,
    conflict_id TEXT NOT NULL,
    PRIMARY KEY (person_key, conflict_id)
);
CREATE INDEX review_conflict_persons_conflict ON review_conflict_persons (conflict_id);

-- Records waiting for a reviewer, as of each person's last projection.
CREATE TABLE review_held (
    person_key  TEXT NOT NULL,
    system      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    record_id   TEXT NOT NULL,
    conflict_id TEXT NOT NULL,
    PRIMARY KEY (person_key, system, kind, record_id)
);
CREATE INDEX review_held_record ON review_held (system, kind, record_id);
