-- When a record's current version was received, as milliseconds since 1970 (8 bytes) instead
-- of RFC 3339 text with milliseconds (25 bytes in the row). New and replaced rows fill
-- `received` and leave `received_at` empty; rows written earlier keep their text until
-- `trainhub migrate --rewrite` moves it (online, in batches) or a newer version replaces them.
-- Readers format `received` back into the same text, so every dossier reads the same. A time
-- whose text would not come back the same (not UTC, not milliseconds) is kept as text.
ALTER TABLE source_records ADD COLUMN received INTEGER;
-- A hub of an earlier release would read an empty time: with this migration applied it
-- refuses the store at start.
INSERT INTO store_features (feature, since) VALUES ('received_time', '0025');
