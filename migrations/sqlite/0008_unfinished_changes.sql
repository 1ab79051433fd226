-- Write-ahead for the audit trail: a change about to be sent to Okta, until its record is
-- written (the same transaction deletes the row). A row left by a process that died during the
-- Okta call becomes a record with outcome `unknown` (see `audit::unfinished`).
CREATE TABLE audit_unfinished (
    id         TEXT    NOT NULL PRIMARY KEY,
    started_at INTEGER NOT NULL,
    content    TEXT    NOT NULL
);
CREATE INDEX audit_unfinished_started ON audit_unfinished (started_at);
