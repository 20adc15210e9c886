-- The indexes of source_records and dossier_state fill their pages when they are built (the
-- default leaves a tenth of each leaf free). The projector rebuilds these indexes once writes
-- have added entries for half a table's rows since its last rebuild (`Store::rebuild_indexes`),
-- so an index is built full after a load, and a later load splits its pages as they fill until
-- the next rebuild packs them again. In the `bench ingest` mix the full indexes hold 11.6 bytes
-- a record less. An index takes the setting at its next rebuild; nothing is rewritten here.
DO $$
DECLARE
    i regclass;
BEGIN
    FOR i IN SELECT indexrelid::regclass FROM pg_index
             WHERE indrelid IN ('source_records'::regclass, 'dossier_state'::regclass)
    LOOP
        EXECUTE format('ALTER INDEX %s SET (fillfactor = 100)', i);
    END LOOP;
END $$;
