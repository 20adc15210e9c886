-- From this release on, the projector writes a person's facts compressed before sealing
-- (`th1:z:` values in dossier_state.facts); facts written earlier stay readable as they are and
-- are packed when the person is next projected. A hub of an earlier release cannot open packed
-- facts: with this migration applied, such a hub refuses the store at start (a migration it does
-- not know), instead of failing on reads. The table records the store's format features.
CREATE TABLE store_features (
    feature TEXT PRIMARY KEY,
    since TEXT NOT NULL
);
INSERT INTO store_features (feature, since) VALUES ('packed_facts', '0013');
