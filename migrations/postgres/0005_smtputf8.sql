-- RFC 6531: the message came with MAIL FROM ... SMTPUTF8 (UTF-8 in its
-- header fields or addresses). Delivery passes the parameter upstream and
-- fails the copy when the upstream does not offer SMTPUTF8.
ALTER TABLE messages ADD COLUMN smtputf8 BOOLEAN NOT NULL DEFAULT FALSE;
