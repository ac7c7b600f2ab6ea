-- Daily rollups (the console's overview): per campaign per day (days since
-- the epoch, UTC, `time::day_of`), what the overview charts beside
-- `campaign_days` (copies delivered, bounces, complaints, which the
-- reputation guard reads). Kept in the same transaction as what they count,
-- so nothing scans the decision log or the events for a chart:
--   accepted               messages accepted (the CRM's mail, kind 'relay';
--                          the relay's own DSNs and notices are not counted),
--                          on the day received
--   deliver                recipients decided `deliver` at accept
--   suppressed:<reason>    recipients suppressed at accept, by reason
--   late:<reason>          copies suppressed at send (stage 'send': consent
--                          changed after accept, or erasure), the day decided
--   unsubscribed:<channel> withdraw events by how they came (their source,
--                          'mail' for the mailto door, see below), on the day
--                          they happened (`at`), campaign '*' for "all"
--
-- A narrow table (one row per day, campaign and metric) rather than a
-- column per metric on `campaign_days`: the reasons and channels are closed
-- sets the code names, and a new one needs no migration; a transaction adds
-- its counts with one multi-row upsert whatever it counts; the overview
-- reads a day range through the primary key. `slot` spreads one counter
-- over a few rows so that concurrent transactions on PostgreSQL (several
-- connections, several nodes) do not all wait for the same row lock: a
-- writer adds to the slot of its connection, a read sums the slots.
-- SQLite has one writer and uses slot 0 only.
--
-- Counts are not personal data: erasure and the purge leave them.
CREATE TABLE daily_counts (
    day      BIGINT NOT NULL,
    campaign TEXT NOT NULL,
    metric   TEXT NOT NULL,
    slot     BIGINT NOT NULL DEFAULT 0,
    n        BIGINT NOT NULL,
    PRIMARY KEY (day, campaign, metric, slot)
) WITHOUT ROWID;

-- The overview reads `campaign_days` by day, and the oldest deferred copy.
CREATE INDEX campaign_days_day ON campaign_days (day);
CREATE INDEX deliveries_deferred ON deliveries (created_at, id) WHERE status = 'deferred';

-- What an upgraded store held before: its history, from the rows the
-- retention purge left. (Times are after 1970, so integer division is
-- `time::day_of`.) A mailto unsubscribe (RFC 2369) is stored with source
-- 'one-click' and the evidence `smtp::intake` writes for it
-- (`consent::MAILTO_EVIDENCE`); an erased person's events lost their
-- evidence, so theirs count as one-click.
INSERT INTO daily_counts (day, campaign, metric, slot, n)
SELECT received_at / 86400000, campaign, 'accepted', 0, COUNT(*)
FROM messages WHERE kind = 'relay'
GROUP BY received_at / 86400000, campaign;

INSERT INTO daily_counts (day, campaign, metric, slot, n)
SELECT d.at / 86400000, d.campaign,
       CASE WHEN d.stage = 'send' THEN 'late:' || d.reason
            WHEN d.outcome = 'deliver' THEN 'deliver'
            ELSE 'suppressed:' || d.reason END,
       0, COUNT(*)
FROM decisions d JOIN messages m ON m.id = d.message_id
WHERE m.kind = 'relay'
GROUP BY 1, 2, 3;

INSERT INTO daily_counts (day, campaign, metric, slot, n)
SELECT at / 86400000, campaign,
       'unsubscribed:' || CASE WHEN source = 'one-click' AND evidence LIKE 'mailto unsubscribe (RFC 2369)%'
                               THEN 'mail' ELSE source END,
       0, COUNT(*)
FROM consent_events WHERE action = 'withdraw'
GROUP BY 1, 2, 3;
