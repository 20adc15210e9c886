-- Persons whose dossier must be recomputed: marked in the ingest transaction, drained by the
-- projector.
CREATE TABLE dossier_dirty (
    person_key TEXT PRIMARY KEY,
    -- A fresh value on every mark. The projector writes a person's state and clears the mark
    -- only if the value is still the one it saw before reading the records.
    seq        INTEGER NOT NULL DEFAULT (random())
);

-- The dossier state maintained on write: each person's current records (facts) plus the
-- summary at `as_of` (the day it was computed), which coverage and listings query in SQL.
CREATE TABLE dossier_state (
    person_key     TEXT    PRIMARY KEY,
    as_of          TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    unit_code      TEXT    NOT NULL,
    rank           TEXT    NOT NULL,
    category       TEXT    NOT NULL,
    region_code    TEXT    NOT NULL,
    in_scope       INTEGER NOT NULL,
    light          TEXT    NOT NULL,
    required_hours REAL    NOT NULL,
    credited_hours REAL    NOT NULL,
    participated   INTEGER NOT NULL,
    results_total  INTEGER NOT NULL,
    results_passed INTEGER NOT NULL,
    facts          TEXT    NOT NULL,
    updated_at     TEXT    NOT NULL
);
CREATE INDEX dossier_state_unit ON dossier_state (unit_code);
CREATE INDEX dossier_state_light ON dossier_state (light);
