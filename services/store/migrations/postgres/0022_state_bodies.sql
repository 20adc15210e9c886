-- One stored copy of a person's records. Until this migration every record's canonical body
-- was kept twice: in `source_records.content` and again inside its person's packed state,
-- where twenty bodies compress together to a fifth of their separate size. From now on a record
-- that names a person keeps no body in `source_records`: its body waits here, sealed, until
-- the projector has folded it into the person's state unchanged, and is then deleted. Bodies
-- the state does not hold as they are (records waiting for a reviewer, records a decision
-- changes, records of a person without a dossier) stay here. Records of accounts and classes,
-- which several persons share, keep their body in `source_records`; rows written before this
-- migration keep theirs too, and readers take it where present.
CREATE TABLE pending_bodies (
    person_key TEXT   COLLATE "C" NOT NULL,
    system     TEXT   NOT NULL,
    kind       TEXT   NOT NULL,
    record_id  TEXT   NOT NULL,
    version    BIGINT NOT NULL,
    content    BYTEA  NOT NULL,
    PRIMARY KEY (person_key, system, kind, record_id)
);
-- A hub of an earlier release would find no body for the new rows: with this migration
-- applied it refuses the store at start.
INSERT INTO store_features (feature, since) VALUES ('state_bodies', '0022');
