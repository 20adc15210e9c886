-- A record's person key as its 32 bytes (`person`, 33 bytes in the row) instead of 64
-- characters of hex text (`person_key`, 65), and its content hash cut to its first 16 bytes
-- (see `HASH_BYTES` in prepared.rs): 48 bytes less for a record that names a person. New and
-- replaced rows fill `person` and leave `person_key` empty; rows written earlier keep their
-- text until `trainhub migrate --rewrite` moves it (online, in batches) or a newer version
-- replaces them. Their hashes keep 32 bytes; merges compare the first 16 of either.
ALTER TABLE source_records ADD COLUMN person BYTEA;
-- The person indexes hold the key as bytes, of either form: one lookup by a list of keys finds
-- rows of both. The first covers every row (an account's or a class's record under NULL, kept
-- once with the list of its rows): PostgreSQL estimates how many rows an expression matches
-- only from the statistics of an index on it that is not partial, and without them it took a
-- list of 300 keys for a sixth of the table and scanned it (1.4 s a batch at 5 million
-- records, 6 ms through the index).
-- Built when the first hub of this release starts, with every hub of the earlier release
-- stopped (operators.md, "Upgrading").
DROP INDEX source_records_person_key;
DROP INDEX source_records_persons;
CREATE INDEX source_records_person_key
    ON source_records ((COALESCE(person, decode(person_key, 'hex'))));
CREATE INDEX source_records_persons
    ON source_records ((COALESCE(person, decode(person_key, 'hex'))))
    WHERE kind = 'person';
-- A hub of an earlier release would find no person in a new row and compare a whole hash with
-- a cut one: with this migration applied it refuses the store at start.
INSERT INTO store_features (feature, since) VALUES ('binary_person', '0027');
