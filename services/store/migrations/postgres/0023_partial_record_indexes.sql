-- The records' account and class indexes over the records that have one. Most records name
-- their person directly and have no account, and a person's own records and online study have
-- no class: their entries (one per record, the NULL key) were most of both indexes, and no
-- lookup asks for a NULL account or class. Every lookup by account or class compares the
-- column with a value, which implies it is not NULL, so the planner uses the partial indexes
-- where it used the full ones (the lookups that join on the column say so explicitly).
-- Built when the first hub of this release starts, with every hub of the earlier release
-- stopped (operators.md, "Upgrading").
CREATE INDEX source_records_account_of ON source_records (account_id, account_system)
    WHERE account_id IS NOT NULL;
CREATE INDEX source_records_class_of ON source_records (class_id, kind)
    WHERE class_id IS NOT NULL;
DROP INDEX source_records_account;
DROP INDEX source_records_class;
