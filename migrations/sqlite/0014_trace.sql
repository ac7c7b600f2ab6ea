-- What the data-protection officer and the console look a message up by
-- (`consent-relay log --message-id`, `GET /api/v1/decisions?message_id=`,
-- the message trace): the Message-ID header as written, angle brackets
-- kept (lookups try it with and without them).
CREATE INDEX messages_header_message_id ON messages (header_message_id);

-- Every attempt of a copy upstream, with the upstream's reply (the
-- recipient's address masked, as `deliveries.last_reply`): written in the
-- transaction that records the outcome, purged with its delivery under
-- [retention], scrubbed as `last_reply` is at erasure.
CREATE TABLE delivery_attempts (
    id          INTEGER PRIMARY KEY,
    delivery_id BIGINT NOT NULL REFERENCES deliveries (id),
    at          BIGINT NOT NULL,
    status      TEXT NOT NULL,            -- the outcome: sent deferred failed
    reply       TEXT NOT NULL
);
CREATE INDEX delivery_attempts_delivery ON delivery_attempts (delivery_id, id);
