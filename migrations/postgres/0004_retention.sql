-- Retention and erasure lookups, as in migrations/sqlite/0004_retention.sql.

-- Erasure and access read a person's deliveries by address: without this
-- they scan the whole table.
CREATE INDEX deliveries_recipient ON deliveries (recipient);

-- A message's rows: checking that a message is left with none, and the
-- foreign-key checks when it is deleted (PostgreSQL does not index the
-- referencing side by itself).
CREATE INDEX deliveries_message ON deliveries (message_id);
CREATE INDEX decisions_message ON decisions (message_id);

-- Messages that still hold a body, oldest first: what the body purge walks.
-- Partial, so it only holds the bodies kept (days, not years, of mail).
CREATE INDEX messages_with_body ON messages (received_at, id) WHERE body IS NOT NULL;
