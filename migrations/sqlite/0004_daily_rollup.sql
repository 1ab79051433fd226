-- Counts per day, action, outcome and agent, kept in step with audit_events (same
-- transaction), so the activity charts never scan the trail. Derived data: not chained.
CREATE TABLE audit_daily (
    day        TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    outcome    TEXT    NOT NULL,
    actor_sub  TEXT    NOT NULL DEFAULT '',
    actor_name TEXT,
    count      INTEGER NOT NULL,
    PRIMARY KEY (day, action, outcome, actor_sub)
);
INSERT INTO audit_daily (day, action, outcome, actor_sub, actor_name, count)
SELECT substr(occurred_at, 1, 10), action, outcome, COALESCE(actor_sub, ''),
       MAX(COALESCE(actor_name, actor_login, actor_sub)), COUNT(*)
FROM audit_events GROUP BY 1, 2, 3, 4;
