-- The audit trail: who changed what, for the controller's accountability.
-- One row per change an operator made (console, API or CLI), inserted in
-- the change's own transaction, plus sign-ins, refused sign-ins, sign-outs
-- and exports. `actor` is the operator's name, `via` console, api or cli,
-- `action` a closed set (consent-grant, subject-erase, ...). The person is
-- named by `subject_id` only, never by address (`target` and `detail`
-- hold none either), so the trail survives an erasure without naming them.
-- Kept: neither `[retention]` nor erasure removes these rows.
CREATE TABLE audit_events (
    id          INTEGER PRIMARY KEY,
    at          BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    via         TEXT NOT NULL,
    action      TEXT NOT NULL,
    subject_id  TEXT,
    target      TEXT,
    detail      TEXT
);
CREATE INDEX audit_events_actor ON audit_events (actor, id);
CREATE INDEX audit_events_action ON audit_events (action, id);
CREATE INDEX audit_events_subject ON audit_events (subject_id, id) WHERE subject_id IS NOT NULL;
