-- Re-projecting a person rewrites its dossier_state row. With room left on each page PostgreSQL
-- writes the new version beside the old one without new index entries (a heap-only tuple)
-- whenever the indexed columns (unit, light, authority) are unchanged, and prunes the old
-- version on the page itself, without waiting for vacuum. Pages written from now on keep half
-- of their space for that; autovacuum visits the table after 2% of its rows changed instead
-- of 20%.
ALTER TABLE dossier_state SET (fillfactor = 50, autovacuum_vacuum_scale_factor = 0.02);
