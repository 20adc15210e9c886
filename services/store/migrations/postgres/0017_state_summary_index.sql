-- Coverage and its RED lists read only a person's summary (scope, light, the group columns,
-- the counts, the sealed name), never the packed facts that make up most of each state row.
-- Read from the table, every coverage call passed over all of those facts: over a gigabyte
-- at a province's million persons. This index holds the summary alone (about a sixth of the
-- row), ordered so that the RED persons of a report are one range already in person-key
-- order; the database answers coverage from it without visiting the table wherever pages are
-- marked all-visible, as they are once the projector has tidied after a burst. The projector
-- writes back a person's sealed name unchanged when the name is, so a re-projection that
-- changes none of these columns stays an in-place update.
CREATE INDEX dossier_state_summary ON dossier_state (in_scope, light, person_key)
    INCLUDE (unit_code, rank, category, region_code, authority,
             participated, results_total, results_passed, name);
