-- Dead letters keep what replay needs: how the payload is encoded, the transport headers, the
-- system the receiving connector speaks for, and whether a replay has since stored it.
ALTER TABLE dead_letters ADD COLUMN format TEXT NOT NULL DEFAULT 'protobuf';
ALTER TABLE dead_letters ADD COLUMN headers TEXT NOT NULL DEFAULT '';
ALTER TABLE dead_letters ADD COLUMN scope TEXT NOT NULL DEFAULT '';
ALTER TABLE dead_letters ADD COLUMN replayed_at TEXT;
ALTER TABLE dead_letters ADD COLUMN replay_attempts BIGINT NOT NULL DEFAULT 0;

-- Per person: the sequence number of its last dossier.changed event and a digest of the
-- state it announced, so an unchanged recomputation announces nothing. Never deleted, so a
-- person's sequence only grows.
CREATE TABLE dossier_events (
    person_key TEXT COLLATE "C" PRIMARY KEY,
    seq        BIGINT NOT NULL,
    state_hash TEXT   NOT NULL,
    unit_code  TEXT   NOT NULL
);

-- The transactional outbox: written with the dossier state, deleted once the broker confirmed.
CREATE TABLE outbox (
    id          BIGSERIAL PRIMARY KEY,
    person_key  TEXT COLLATE "C" NOT NULL,
    seq         BIGINT NOT NULL,
    routing_key TEXT   NOT NULL,
    payload     TEXT   NOT NULL,
    created_at  TEXT   NOT NULL
);
CREATE INDEX outbox_person ON outbox (person_key, id);
