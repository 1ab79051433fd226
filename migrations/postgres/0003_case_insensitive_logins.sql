-- Agent and user filters compare logins case-insensitively.
CREATE INDEX audit_events_actor_login_lower ON audit_events (LOWER(actor_login), id);
CREATE INDEX audit_events_target_login_lower ON audit_events (LOWER(target_login), id);
