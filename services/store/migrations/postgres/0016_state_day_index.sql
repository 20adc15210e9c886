-- Reads at today ask whether any person's state is of another day (then it is not current for
-- today). Without an index that question read the whole state table on every such read; with
-- one it is two probes. The day does not change when a person is re-projected on the same day,
-- so re-projection stays an in-place (HOT) update.
CREATE INDEX dossier_state_as_of ON dossier_state (as_of);
