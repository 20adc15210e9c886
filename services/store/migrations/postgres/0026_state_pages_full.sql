-- Pages of dossier_state are filled again (migration 0014 kept half of each free). A rewrite
-- stays on its page without new index entries only when no indexed column changes, and the
-- state's indexes include the counts every new record changes (participated, results): during
-- a load almost no rewrite qualified, and the free half of each page held rows of about 1.4 KB
-- two to a page. The projector vacuums the table after each burst, and autovacuum after 2% of
-- its rows changed, so the space an old row version leaves is reused by the next writes.
-- Pages written from now on are filled; pages written earlier fill up as rows are rewritten.
ALTER TABLE dossier_state SET (fillfactor = 100);
