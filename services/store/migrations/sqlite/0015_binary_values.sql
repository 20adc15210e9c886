-- Record bodies and a person's facts as bytes: compressed, then sealed, without the third that
-- base64 text adds. New writes fill `content` and `packed` and leave `body` NULL and `facts`
-- empty; rows written earlier keep their text until `trainhub migrate --rewrite` moves them
-- (online, in batches) or a newer version replaces them. Readers take the bytes when present.
-- Adding a nullable column rewrites no existing row.
ALTER TABLE source_records ADD COLUMN content BLOB;
ALTER TABLE dossier_state ADD COLUMN packed BLOB;
-- A hub of an earlier release would read neither column: with this migration applied it refuses
-- the store at start.
INSERT INTO store_features (feature, since) VALUES ('binary_values', '0015');
