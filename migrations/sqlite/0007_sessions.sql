-- Sessions: the row key is the SHA-256 of the cookie's value, never the value itself, and the
-- data (the provider's tokens among it) is sealed with `session.encryption_key`.
CREATE TABLE portal_sessions (
    id_hash TEXT PRIMARY KEY NOT NULL,
    data BLOB NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX portal_sessions_expires_at ON portal_sessions (expires_at);

-- The table of the earlier store held the cookie values and the tokens in clear.
DROP TABLE IF EXISTS tower_sessions;
