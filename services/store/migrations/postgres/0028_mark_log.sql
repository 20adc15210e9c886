-- Dirty marks become a log: a mark is a plain row (person key, a fresh `seq`), and a person may
-- have several. Until now a mark was the person's one row, and marking a person already marked
-- updated it to a fresh `seq`: an ingest transaction then held the row locks of every person its
-- batch touched until it committed, and the next batch touching any of them waited for that
-- commit. At three batches committing at once, half of the database's time went to that wait.
-- An insert into a table without a unique key never waits for another transaction. The
-- projector reads every mark of the persons it takes and deletes exactly the marks it read: a
-- mark written after its read stays, and the person is projected again (see
-- docs/design/store.md, "Dirty marks").
-- Built when the first hub of this release starts, with every hub of the earlier release
-- stopped (operators.md, "Upgrading"); the marks waiting are kept.
CREATE TABLE dossier_mark_log (
    person_key TEXT COLLATE "C" NOT NULL,
    seq        BIGINT NOT NULL DEFAULT nextval('dossier_mark')
);
INSERT INTO dossier_mark_log (person_key, seq) SELECT person_key, seq FROM dossier_dirty;
DROP TABLE dossier_dirty;
ALTER TABLE dossier_mark_log RENAME TO dossier_dirty;
CREATE INDEX dossier_dirty_person ON dossier_dirty (person_key, seq);
-- A hub of an earlier release marks with `ON CONFLICT (person_key)`, which this table cannot
-- serve: with this migration applied it refuses the store at start.
INSERT INTO store_features (feature, since) VALUES ('mark_log', '0028');
