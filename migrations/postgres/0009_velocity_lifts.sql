-- Velocity caps lifted by a manager for an agent (or a service client) until the end of the UTC
-- day (see `ops::velocity`). Every instance reads them; the audit trail records each lift.
CREATE TABLE velocity_lifts (
    id             BIGSERIAL PRIMARY KEY,
    subject        TEXT    NOT NULL,
    lifted_at      BIGINT  NOT NULL,
    until_at       BIGINT  NOT NULL,
    lifted_by_sub  TEXT    NOT NULL,
    lifted_by_name TEXT    NOT NULL,
    reason         TEXT    NOT NULL
);
CREATE INDEX velocity_lifts_subject ON velocity_lifts (subject, until_at);
