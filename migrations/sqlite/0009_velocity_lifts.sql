-- Velocity caps lifted by a manager for an agent (or a service client) until the end of the UTC
-- day (see `ops::velocity`). Every instance reads them; the audit trail records each lift.
CREATE TABLE velocity_lifts (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    subject        TEXT    NOT NULL,
    lifted_at      INTEGER NOT NULL,
    until_at       INTEGER NOT NULL,
    lifted_by_sub  TEXT    NOT NULL,
    lifted_by_name TEXT    NOT NULL,
    reason         TEXT    NOT NULL
);
CREATE INDEX velocity_lifts_subject ON velocity_lifts (subject, until_at);
