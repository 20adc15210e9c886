-- Records by person: one index of the person key alone, over the records that name a person
-- (an account's records, without one, are found by account), and a small one of the persons'
-- own records, which ingest asks after for every batch. They replace the index on
-- (person_key, kind), which held a separate entry for each kind of a person's records and one
-- for every record without a person: at 20 records per person, 46 bytes per record on
-- PostgreSQL, where the two new ones together take 20 (PostgreSQL keeps one entry per
-- distinct key with the list of its rows). Built when the first hub of this release starts,
-- with every hub of the earlier release stopped (operators.md, "Upgrading").
CREATE INDEX source_records_person_key ON source_records (person_key)
    WHERE person_key IS NOT NULL;
CREATE INDEX source_records_persons ON source_records (person_key) WHERE kind = 'person';
DROP INDEX source_records_person;
