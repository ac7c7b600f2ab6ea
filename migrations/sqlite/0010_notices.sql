-- Webhook notices: what the CRM hears about that is not a consent event
-- (`bounced`, `suppression-removed`, `campaign-paused`, `campaign-warning`).
-- A row is inserted in the same transaction as the change it tells of and
-- deleted once the CRM answered 2xx; leased and retried as `webhook_outbox`
-- rows are. `payload` is the JSON object posted (never an address: the
-- person is `subject_id`, whose address is read at send time, so an
-- erasure in between leaves none in the body).
CREATE TABLE webhook_notices (
    id              INTEGER PRIMARY KEY,
    kind            TEXT NOT NULL,
    subject_id      TEXT,
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL,        -- pending sending
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_owner     TEXT,
    lease_until     BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL
);
CREATE INDEX webhook_notices_due ON webhook_notices (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_notices_leased ON webhook_notices (lease_until) WHERE status = 'sending';
CREATE INDEX webhook_notices_subject ON webhook_notices (subject_id) WHERE subject_id IS NOT NULL;
