-- The cadre-management authority of each person's state: listings and coverage for a reader
-- scoped to authorities filter on it. States projected before it have none, so their day is
-- cleared: reads compute them from their records until the projector has projected them again.
ALTER TABLE dossier_state ADD COLUMN authority TEXT NOT NULL DEFAULT '';
CREATE INDEX dossier_state_authority ON dossier_state (authority);
UPDATE dossier_state SET as_of = '';
-- The authority each person's last event was routed under, for the event of a removal.
ALTER TABLE dossier_events ADD COLUMN authority TEXT NOT NULL DEFAULT '';
