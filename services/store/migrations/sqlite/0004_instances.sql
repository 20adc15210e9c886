-- Connector status of every hub instance on this store, so that any instance lists them all
-- (each instance rewrites its own rows every few seconds; old rows of gone instances age out).
CREATE TABLE instance_status (
    instance   TEXT NOT NULL,
    name       TEXT NOT NULL,
    status     BLOB NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (instance, name)
);

-- A replay in progress holds its letters until its lease ends, so that two instances (or two
-- operators) replaying at once never replay the same letter.
ALTER TABLE dead_letters ADD COLUMN replay_claim TEXT;
ALTER TABLE dead_letters ADD COLUMN replay_claim_until TEXT;
