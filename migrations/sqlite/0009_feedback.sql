-- What comes back (SPEC "What comes back: bounces and complaints").

-- Every report received at a door (SMTP, `consent-relay feedback`, the
-- API), stored before the door answers. `digest` (SHA-256 of the raw
-- bytes) makes a report received twice one row, so it is processed once.
-- `state` is 'pending' until the transaction that applies what the report
-- means also sets it 'done': a crash between the two leaves it pending, and
-- whichever node reads it next applies it, once.
-- `raw` is purged after [retention] feedback and at the person's erasure;
-- `result` and `detail` say what the report changed, or why nothing.
CREATE TABLE feedback_reports (
    id            INTEGER PRIMARY KEY,
    digest        TEXT NOT NULL UNIQUE,
    door          TEXT NOT NULL,           -- smtp | cli | api
    envelope_from TEXT,                    -- MAIL FROM at the SMTP door
    envelope_to   TEXT,                    -- the address it came to (the return path)
    client_ip     TEXT,
    size          BIGINT NOT NULL,
    raw           BLOB,
    received_at   BIGINT NOT NULL,
    state         TEXT NOT NULL,           -- pending | done
    kind          TEXT,                    -- bounce | complaint | feedback | auto-reply
    delivery_id   BIGINT,                  -- the copy it is about, when found
    subject_id    TEXT,                    -- the person it is about, when found
    campaign      TEXT,
    result        TEXT,                    -- what it changed (see feedback::rules)
    detail        TEXT,                    -- status and diagnostic (addresses masked), or why nothing changed
    processed_at  BIGINT
);
CREATE INDEX feedback_reports_pending ON feedback_reports (received_at) WHERE state = 'pending';
CREATE INDEX feedback_reports_subject ON feedback_reports (subject_id) WHERE subject_id IS NOT NULL;
CREATE INDEX feedback_reports_delivery ON feedback_reports (delivery_id) WHERE delivery_id IS NOT NULL;
CREATE INDEX feedback_reports_raw ON feedback_reports (received_at) WHERE raw IS NOT NULL;

-- A person the relay does not send to because their mailbox bounced, by
-- subject (whose keyed hash survives erasure). `kind` hard: until a new
-- grant or an operator removes it (`until_at` NULL); soft: until `until_at`.
-- A removal is kept with who and why; `removed_by` 'grant' when a new
-- grant lifted it.
CREATE TABLE suppressions (
    id             INTEGER PRIMARY KEY,
    subject_id     TEXT NOT NULL REFERENCES subjects (id),
    kind           TEXT NOT NULL,          -- hard | soft
    status_code    TEXT,
    diagnostic     TEXT,                   -- addresses masked
    source         TEXT NOT NULL,          -- dsn | upstream
    report_id      BIGINT,
    delivery_id    BIGINT,
    campaign       TEXT,                   -- the campaign of the copy that bounced
    since          BIGINT NOT NULL,
    until_at       BIGINT,
    removed_at     BIGINT,
    removed_by     TEXT,
    removed_reason TEXT
);
CREATE INDEX suppressions_subject ON suppressions (subject_id, id);
CREATE INDEX suppressions_active ON suppressions (since) WHERE removed_at IS NULL;

-- Soft bounces, at most one a day per person (`day`: days since the epoch,
-- UTC); `sent_at` is when the bounced copy went out, so that a copy sent
-- later that did not bounce resets the count.
CREATE TABLE soft_bounces (
    subject_id  TEXT NOT NULL,
    day         BIGINT NOT NULL,
    sent_at     BIGINT NOT NULL,
    report_id   BIGINT,
    delivery_id BIGINT,
    PRIMARY KEY (subject_id, day)
);

-- Per campaign per day (days since the epoch, UTC, of the copy's send):
-- what the reputation guard judges. Kept in the outcome and report
-- transactions, so nothing scans the decision log for it.
CREATE TABLE campaign_days (
    campaign     TEXT NOT NULL,
    day          BIGINT NOT NULL,
    delivered    BIGINT NOT NULL DEFAULT 0,
    hard_bounces BIGINT NOT NULL DEFAULT 0,
    soft_bounces BIGINT NOT NULL DEFAULT 0,
    complaints   BIGINT NOT NULL DEFAULT 0,
    warned_at    BIGINT,                   -- the guard warned about this day
    PRIMARY KEY (campaign, day)
);

-- A paused campaign: its messages are accepted and decided, their copies
-- held (deliveries.status 'held') until `campaign resume` or
-- `campaign drop-held`. Every node reads it before it sends.
CREATE TABLE campaign_pauses (
    campaign  TEXT PRIMARY KEY,
    paused_at BIGINT NOT NULL,
    paused_by TEXT NOT NULL,               -- 'reputation-guard', or the operator's name
    reason    TEXT NOT NULL
);
CREATE INDEX deliveries_held ON deliveries (message_id) WHERE status = 'held';
