-- A record's content hash as its 32 bytes instead of 64 characters of hex text (65 bytes in
-- the row). New and replaced rows fill `hash` and leave `content_hash` empty; rows written
-- earlier keep their text until `trainhub migrate --rewrite` moves it (online, in batches) or a
-- newer version replaces them. Merges compare `hash`, else the text decoded: bytes order as
-- their hex text did, so a merge decides the same whichever form the stored row is in.
ALTER TABLE source_records ADD COLUMN hash BYTEA;
-- A hub of an earlier release would compare its hex text with an empty one and always win a
-- tie: with this migration applied it refuses the store at start.
INSERT INTO store_features (feature, since) VALUES ('binary_hash', '0024');
