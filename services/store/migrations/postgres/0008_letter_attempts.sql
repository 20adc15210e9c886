-- A dead letter keeps its original stage, reason and message; each replay appends a line
-- (a JSON object: when, the outcome, and the new stage, reason and message if refused again).
ALTER TABLE dead_letters ADD COLUMN attempts TEXT NOT NULL DEFAULT '';
