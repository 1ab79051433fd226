-- Sessions: the row key is the SHA-256 of the cookie's value, never the value itself, and the
-- data (the provider's tokens among it) is sealed with `session.encryption_key`.
-- (The earlier store's `tower_sessions.session` table is no longer used: see the README.)
CREATE TABLE portal_sessions (
    id_hash TEXT PRIMARY KEY NOT NULL,
    data BYTEA NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX portal_sessions_expires_at ON portal_sessions (expires_at);
