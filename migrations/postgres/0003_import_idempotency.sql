-- Idempotent writes: `consent-relay import` and `Idempotency-Key` on
-- `POST /api/v1/consent`, as in migrations/sqlite/0003_import_idempotency.sql.

-- An imported row's key: SHA-256 of the normalised CSV row, so importing the
-- same file again adds nothing. NULL for events not imported (and after
-- erasure, with the rest of the proof).
ALTER TABLE consent_events ADD COLUMN import_key TEXT;
CREATE UNIQUE INDEX consent_events_import_key ON consent_events (import_key)
    WHERE import_key IS NOT NULL;

-- `Idempotency-Key` of an API request: the SHA-256 of its body and the first
-- answer, written in the same transaction as the event; kept 24 h.
CREATE TABLE idempotency_keys (
    key          TEXT PRIMARY KEY,
    request_hash TEXT NOT NULL,
    status       BIGINT NOT NULL,
    response     TEXT NOT NULL,
    event_id     BIGINT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
CREATE INDEX idempotency_keys_event ON idempotency_keys (event_id);
