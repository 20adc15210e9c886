-- Coverage by unit counts its groups from an index ordered by unit that holds the counted
-- columns beside the unit: the database reads it in order and adds up one unit after the
-- other, without a hash table of every unit, and never visits the table. At a million persons
-- (38,000 units) the counts took 0.33 s from it against 1.0 s from `dossier_state_summary`,
-- whose entries are four times wider (they carry the sealed name). It replaces the index of
-- the unit alone, which one unit's listing reads: the unit leads this one as it did that.
-- Built when the first hub of this release starts (some seconds at a million persons; writes
-- to the state wait meanwhile).
CREATE INDEX dossier_state_unit_counts ON dossier_state (unit_code)
    INCLUDE (in_scope, light, participated, results_total, results_passed);
DROP INDEX dossier_state_unit;
