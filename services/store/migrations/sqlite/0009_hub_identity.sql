-- What every hub on this store must share, as check values (hashes, never the secrets): the hub
-- secret that keys persons, and each data key by its id. The first hub records them; a hub whose
-- secret, or whose key under a recorded id, differs refuses to start. `demo` marks a store the
-- demo made.
CREATE TABLE hub_identity (
    name        TEXT PRIMARY KEY,
    check_value TEXT NOT NULL,
    recorded_at TEXT NOT NULL
);
