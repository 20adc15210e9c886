-- A keyed fingerprint of a dead letter's bytes (HMAC under the hub secret, never the bytes):
-- the same refused input arriving again (a re-run import, a restarted demo, a partner
-- resending) is not kept twice while its first letter waits.
ALTER TABLE dead_letters ADD COLUMN fingerprint BYTEA;
CREATE INDEX dead_letters_fingerprint ON dead_letters (fingerprint);
