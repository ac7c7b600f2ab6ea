-- Who a person is (SPEC "Who a person is"): `subjects.address`,
-- `decisions.recipient` and `deliveries.recipient` hold the canonical
-- identity of the address from now on; the store brings older rows to it
-- when it opens (`store::ops::identity`, a data step written in Rust).

-- The address as the client wrote it, where it differs from `recipient`:
-- the copy goes there (RFC 5321 2.4: the local part's case belongs to the
-- receiving server). NULL: the same as `recipient`.
ALTER TABLE deliveries ADD COLUMN rcpt_to TEXT;

-- A subject merged into another (two spellings of one mailbox): its
-- address is gone, its events moved; links that name it lead to this one.
ALTER TABLE subjects ADD COLUMN merged_into TEXT;

-- Data steps the store ran once when it opened, after these migrations.
CREATE TABLE store_steps (
    name    TEXT PRIMARY KEY,
    done_at BIGINT NOT NULL
);
