-- Tamper evidence: each record carries the hash of its content and of the previous record.
ALTER TABLE audit_events ADD COLUMN prev_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_events ADD COLUMN hash TEXT NOT NULL DEFAULT '';

-- The head of the chain (catches removal of the newest records).
CREATE TABLE audit_chain (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    last_id   INTEGER NOT NULL,
    last_hash TEXT    NOT NULL,
    row_count INTEGER NOT NULL
);

-- Explicit retention: what `audit prune` removed, so the chain stays verifiable.
CREATE TABLE audit_checkpoints (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at   TEXT    NOT NULL,
    before       TEXT    NOT NULL,
    through_id   INTEGER NOT NULL,
    through_hash TEXT    NOT NULL,
    pruned_count INTEGER NOT NULL
);

-- Rows may only be deleted when a checkpoint covers them (audit prune).
DROP TRIGGER audit_events_no_delete;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
WHEN OLD.id > COALESCE((SELECT MAX(through_id) FROM audit_checkpoints), 0)
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;

CREATE INDEX audit_events_actor_login ON audit_events (actor_login, id);
CREATE INDEX audit_events_target_login ON audit_events (target_login, id);
CREATE INDEX audit_events_outcome ON audit_events (outcome, id);
CREATE INDEX audit_events_ticket ON audit_events (ticket, id);
CREATE INDEX audit_events_client ON audit_events (client_id, id);
CREATE INDEX audit_events_okta_request ON audit_events (okta_request_id);

INSERT INTO audit_chain (id, last_id, last_hash, row_count)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', 0);
