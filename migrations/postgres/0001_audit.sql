-- The audit trail: append-only. The application only ever inserts.
CREATE TABLE audit_events (
    id              BIGSERIAL PRIMARY KEY,
    occurred_at     TIMESTAMPTZ NOT NULL,
    request_id      TEXT    NOT NULL,
    action          TEXT    NOT NULL,
    outcome         TEXT    NOT NULL,
    actor_sub       TEXT,
    actor_login     TEXT,
    actor_name      TEXT,
    client_id       TEXT,
    permission      TEXT,
    target_id       TEXT,
    target_login    TEXT,
    target_name     TEXT,
    reason          TEXT,
    ticket          TEXT,
    detail          TEXT,
    okta_request_id TEXT,
    okta_error_code TEXT,
    status_before   TEXT,
    status_after    TEXT,
    client_ip       TEXT,
    user_agent      TEXT
);
CREATE INDEX audit_events_occurred_at ON audit_events (occurred_at, id);
CREATE INDEX audit_events_actor ON audit_events (actor_sub, id);
CREATE INDEX audit_events_target ON audit_events (target_id, id);
CREATE INDEX audit_events_action ON audit_events (action, id);

CREATE FUNCTION audit_events_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();
