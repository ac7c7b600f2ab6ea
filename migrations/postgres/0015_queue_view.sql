-- The console's queue view pages through the copies that need an
-- operator's eye (deferred, held, failed), one status at a time, newest
-- first. Partial: a copy's usual path (queued, sending, sent) never
-- touches it, so the hot path pays nothing; failed copies stay in it
-- until the retention purge removes them. The queries state the
-- predicate word for word (store::ops::reads, ATTENTION): neither planner
-- infers it from `status = $1`.
CREATE INDEX deliveries_attention ON deliveries (status, id)
    WHERE status IN ('deferred', 'held', 'failed');
