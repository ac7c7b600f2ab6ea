-- Consent events waiting to be POSTed to the CRM (`[webhook]`), as in
-- migrations/sqlite/0002_webhooks.sql. A row is inserted in the same
-- transaction as its consent event and deleted once the CRM answered 2xx.
-- Only the oldest row of a subject is ever sent, so a subject's events reach
-- the CRM in order. The body is built from the event row at send time: an
-- erasure in between leaves no address in it.
CREATE TABLE webhook_outbox (
    event_id        BIGINT PRIMARY KEY REFERENCES consent_events (id),
    subject_id      TEXT NOT NULL,
    status          TEXT NOT NULL,        -- pending sending
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_owner     TEXT,
    lease_until     BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL
);
-- The head of each subject's queue.
CREATE INDEX webhook_outbox_subject ON webhook_outbox (subject_id, event_id);
-- What is due: a failed attempt moves every waiting row of its subject to
-- the next attempt time, so while the CRM refuses, claiming reads only the
-- subjects whose wait is over, however long the backlog.
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_attempt_at) WHERE status = 'pending';
-- Leased rows (few): for expired leases.
CREATE INDEX webhook_outbox_leased ON webhook_outbox (lease_until) WHERE status = 'sending';
