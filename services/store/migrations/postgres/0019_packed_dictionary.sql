-- From this release on, packed values (record bodies, a person's facts, raw batches) are
-- compressed against a fixed dictionary of the canonical field names (services/store/src/
-- pack.dict). Values packed earlier open as they are. A hub of an earlier release could not
-- open the new ones: with this migration applied it refuses the store at start.
INSERT INTO store_features (feature, since) VALUES ('packed_dictionary', '0019');
