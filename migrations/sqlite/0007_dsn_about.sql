-- A bounce (kind 'dsn') names the recipient whose copy failed: it is that
-- person's data. `about_delivery` is the delivery it reports on, so that
-- erasure removes (or, still queued, drops) the bounces about the person
-- and access lists them. NULL for every other message, and for bounces
-- written before this column existed.
ALTER TABLE messages ADD COLUMN about_delivery BIGINT;
CREATE INDEX messages_about_delivery ON messages (about_delivery) WHERE about_delivery IS NOT NULL;
