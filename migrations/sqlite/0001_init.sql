-- consent-relay schema (SQLite). Times are unix milliseconds (BIGINT), so the
-- same SQL reads the same on PostgreSQL.

-- People the relay knows. `address` is NULL after erasure; `address_hash`
-- (HMAC-SHA256 of the normalised address under signing key `key_id`) is what
-- survives erasure as a suppression.
CREATE TABLE subjects (
    id           TEXT PRIMARY KEY,
    address      TEXT UNIQUE,
    address_hash TEXT NOT NULL,
    key_id       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    erased_at    BIGINT
);
CREATE INDEX subjects_address_hash ON subjects (address_hash);

-- Append-only history of consent, with its proof.
CREATE TABLE consent_events (
    id          INTEGER PRIMARY KEY,
    subject_id  TEXT NOT NULL REFERENCES subjects (id),
    campaign    TEXT NOT NULL,            -- a campaign id, or '*' for all
    action      TEXT NOT NULL,            -- grant withdraw request confirm erase
    at          BIGINT NOT NULL,          -- when it happened (may be earlier than recorded_at)
    source      TEXT NOT NULL,            -- api form one-click link preference-page import admin
    ip          TEXT,
    user_agent  TEXT,
    evidence    TEXT,                     -- the text or version shown, form id, ...
    recorded_at BIGINT NOT NULL
);
CREATE INDEX consent_events_subject ON consent_events (subject_id, id);

-- Current state per (subject, campaign), derived from consent_events in the
-- same transaction as each event.
CREATE TABLE consent_state (
    subject_id TEXT NOT NULL REFERENCES subjects (id),
    campaign   TEXT NOT NULL,
    status     TEXT NOT NULL,             -- granted withdrawn pending
    since      BIGINT NOT NULL,
    event_id   BIGINT NOT NULL,
    PRIMARY KEY (subject_id, campaign)
);

-- Accepted messages. `body` is the message as received plus our Received
-- header; NULL once purged under [retention].
CREATE TABLE messages (
    id           TEXT PRIMARY KEY,        -- queue id (ULID)
    kind         TEXT NOT NULL,           -- relay | dsn
    mail_from    TEXT NOT NULL,           -- '' for the null sender
    client_ip    TEXT NOT NULL,
    helo         TEXT NOT NULL,
    auth_user    TEXT,
    campaign     TEXT NOT NULL,           -- '' for messages the relay makes itself
    header_message_id TEXT,
    size         BIGINT NOT NULL,
    body         BLOB,
    received_at  BIGINT NOT NULL
);

-- One row per envelope recipient of every accepted message, and one per
-- late suppression: the audit log.
CREATE TABLE decisions (
    id          INTEGER PRIMARY KEY,
    message_id  TEXT NOT NULL REFERENCES messages (id),
    recipient   TEXT NOT NULL,
    subject_id  TEXT,
    campaign    TEXT NOT NULL,
    outcome     TEXT NOT NULL,            -- deliver | suppress
    reason      TEXT NOT NULL,            -- SPEC's closed set
    event_id    BIGINT,                   -- the consent event it rests on
    stage       TEXT NOT NULL,            -- accept | send
    at          BIGINT NOT NULL
);
CREATE INDEX decisions_recipient ON decisions (recipient, id);
CREATE INDEX decisions_campaign ON decisions (campaign, id);
CREATE INDEX decisions_at ON decisions (at);

-- One row per recipient copy to send.
CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY,
    message_id      TEXT NOT NULL REFERENCES messages (id),
    recipient       TEXT NOT NULL,
    status          TEXT NOT NULL,        -- queued sending deferred sent failed suppressed-late
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_reply      TEXT,
    lease_owner     TEXT,
    lease_until     BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
-- What is due: a partial index, so claiming reads only the rows it takes,
-- however many sent rows the table holds.
CREATE INDEX deliveries_pending ON deliveries (next_attempt_at) WHERE status IN ('queued', 'deferred');
-- Leased rows (few): for expired leases and the queue listing.
CREATE INDEX deliveries_status ON deliveries (status, lease_until);
