-- Dirty marks become a log, as on PostgreSQL (see its 0028): a mark is a plain row and a person
-- may have several; `seq` is the row id, so every mark has its own. The projector deletes
-- exactly the marks it read. The marks waiting are kept.
CREATE TABLE dossier_mark_log (
    seq        INTEGER PRIMARY KEY,
    person_key TEXT NOT NULL
);
INSERT INTO dossier_mark_log (person_key) SELECT person_key FROM dossier_dirty ORDER BY person_key;
DROP TABLE dossier_dirty;
ALTER TABLE dossier_mark_log RENAME TO dossier_dirty;
CREATE INDEX dossier_dirty_person ON dossier_dirty (person_key, seq);
INSERT INTO store_features (feature, since) VALUES ('mark_log', '0028');
