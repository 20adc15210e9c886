-- Re-projecting a person rewrites its dossier_state row. With room left on each page PostgreSQL
-- writes the new version beside the old one without new index entries (a heap-only tuple)
-- whenever the indexed columns (unit, light, authority) are unchanged, and prunes the old
-- version on the page itself, without waiting for vacuum. Pages written from now on keep half
-- of their space for that. A row stays whole in the table up to 8,160 bytes (the packed facts
-- of a person with 20 records take about 2 KB): moved out to the TOAST table, as rows above
-- 2 KB were, every re-projection left a dead copy there that only vacuum reclaims. Autovacuum
-- visits the table after 2% of its rows changed instead of 20%.
ALTER TABLE dossier_state SET (
    fillfactor = 50,
    toast_tuple_target = 8160,
    autovacuum_vacuum_scale_factor = 0.02
);
