-- Retention and erasure lookups.

-- Erasure and access read a person's deliveries by address inside the
-- writer's transaction: without this they scan the whole table.
CREATE INDEX deliveries_recipient ON deliveries (recipient);

-- A message's rows: checking that a message is left with none, and the
-- foreign-key check when it is deleted (without these, SQLite scans both
-- tables for every message it deletes).
CREATE INDEX deliveries_message ON deliveries (message_id);
CREATE INDEX decisions_message ON decisions (message_id);

-- Messages that still hold a body, oldest first: what the body purge walks.
-- Partial, so it only holds the bodies kept (days, not years, of mail).
CREATE INDEX messages_with_body ON messages (received_at, id) WHERE body IS NOT NULL;
