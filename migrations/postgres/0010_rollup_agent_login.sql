-- The agent filter (subject or login) is answered from the daily rollup as well, so an
-- agent's timeline counts never scan the trail. The login kept is the agent's latest.
ALTER TABLE audit_daily ADD COLUMN actor_login TEXT;
UPDATE audit_daily SET actor_login = (
    SELECT e.actor_login FROM audit_events e
    WHERE e.actor_sub = audit_daily.actor_sub
    ORDER BY e.id DESC LIMIT 1
) WHERE actor_sub <> '';
CREATE INDEX audit_daily_actor ON audit_daily (actor_sub, day);
CREATE INDEX audit_daily_actor_login ON audit_daily (LOWER(actor_login), day);
