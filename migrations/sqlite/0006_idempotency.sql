-- Idempotency keys of the service API: the first response to a creating POST, per client
-- and key, kept for 24 hours. `status` is NULL while the first request is still running.
CREATE TABLE idempotency_keys (
    client_id    TEXT    NOT NULL,
    idem_key     TEXT    NOT NULL,
    request_hash TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    status       INTEGER,
    location     TEXT,
    body         TEXT,
    PRIMARY KEY (client_id, idem_key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
