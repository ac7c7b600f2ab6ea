#!/usr/bin/env python3
"""Seeds a SQLite store for the overview bench (bench/run.sh overview).

    seed_overview.py STORE.db MIGRATION.sql [--people N] [--decisions N]
                     [--rcpt N] [--days N]

STORE.db is a store the relay has just created (its migrations ran, so the
schema is the relay's own); it must not be in use. The seed writes, with
plain SQL (recursive CTEs, no row passes through Python), what a relay
holding DAYS days of mail would hold, ending now:

- PEOPLE people (subjects), each with a grant for `news`; one in 33 with a
  withdrawal later, by every channel in turn (one-click, mail, preference
  page for all campaigns, link, form, API, admin, import, complaint);
- DECISIONS / RCPT messages of five campaigns, received evenly over the
  days, their bodies purged (as [retention] leaves them), each with RCPT
  recipients: DECISIONS decision rows at accept, nine in ten `deliver`, the
  rest suppressed by every reason in turn; one delivered copy in 500 also
  suppressed late (a second decision row, stage `send`);
- a delivery per delivered recipient: sent, failed (one in 1000),
  suppressed-late, and deferred for the copies of the last 200 messages
  (due in a day, so a `serve` on the store leaves them alone);
- `campaign_days` (copies delivered per campaign per day, with 0.5 % hard
  and 1 % soft bounces and 0.05 % complaints);
- the rollups (`daily_counts`), by the backfill statements of MIGRATION.sql
  (the relay's migration 0011), so they are what an upgraded relay shows.

The big tables' indexes are dropped for the bulk insert and made again
with their own SQL from the schema. Prints `# ...` progress on stderr and
the seconds each part took as `FIGURE` lines on stdout.
"""

import argparse
import sqlite3
import sys
import time

DAY = 86_400_000
CAMPAIGNS = ["news", "promo", "digest", "events", "billing"]
# Suppressed at accept, by reason, in turn (the tenth of recipients not delivered).
REASONS = [
    "no-consent", "no-consent", "no-consent", "no-consent", "withdrawn", "withdrawn",
    "unsubscribed-all", "bounced", "complained", "consent-expired", "pending-confirmation",
    "erased", "not-objected",
]
# A withdrawal's (source, campaign, evidence) in turn; `mail` is a one-click
# event with the evidence the relay's mailto door writes (consent::MAILTO_EVIDENCE).
CHANNELS = [
    ("one-click", "news", None),
    ("one-click", "news", "mailto unsubscribe (RFC 2369) from <crm-bounces@example.org>"),
    ("preference-page", "*", None),
    ("link", "news", None),
    ("form", "news", None),
    ("api", "news", None),
    ("admin", "news", None),
    ("import", "news", None),
    ("complaint", "*", "abuse report from the mailbox provider"),
]
BIG_TABLES = ["subjects", "consent_events", "consent_state", "messages", "decisions", "deliveries"]


def case(expr, values):
    """CASE expr % len WHEN 0 THEN values[0] ... as SQL text."""
    whens = " ".join(f"WHEN {i} THEN {v}" for i, v in enumerate(values))
    return f"CASE ({expr}) % {len(values)} {whens} END"


def quoted(v):
    return "NULL" if v is None else "'" + v.replace("'", "''") + "'"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("db")
    ap.add_argument("migration")
    ap.add_argument("--people", type=int, default=1_000_000)
    ap.add_argument("--decisions", type=int, default=10_000_000)
    ap.add_argument("--rcpt", type=int, default=10)
    ap.add_argument("--days", type=int, default=365)
    a = ap.parse_args()
    if min(a.people, a.decisions, a.rcpt, a.days) <= 0:
        sys.exit("seed_overview.py: every count must be positive")
    backfill = open(a.migration, encoding="utf-8").read()
    at = backfill.find("INSERT INTO daily_counts")
    if at < 0:
        sys.exit(f"{a.migration}: no backfill statement (INSERT INTO daily_counts)")
    backfill = backfill[at:]

    now = int(time.time() * 1000)
    start = (now // DAY - a.days + 1) * DAY
    span = now - 60_000 - start
    msgs = a.decisions // a.rcpt
    n = a.rcpt * msgs
    P, R = a.people, a.rcpt

    c = sqlite3.connect(a.db, isolation_level=None)
    if c.execute("SELECT COUNT(*) FROM decisions").fetchone()[0]:
        sys.exit(f"{a.db}: the store holds decisions already; seed a fresh one")
    c.execute("PRAGMA journal_mode = OFF")
    c.execute("PRAGMA synchronous = OFF")
    c.execute("PRAGMA cache_size = -1000000")
    figures = []

    def part(name, statements):
        t = time.monotonic()
        print(f"# seed: {name}", file=sys.stderr, flush=True)
        c.execute("BEGIN")
        for s in statements:
            c.execute(s)
        c.execute("COMMIT")
        figures.append((name, time.monotonic() - t))

    marks = ",".join("?" * len(BIG_TABLES))
    indexes = c.execute(
        f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
        f"AND tbl_name IN ({marks})", BIG_TABLES).fetchall()
    t0 = time.monotonic()
    part("drop_indexes", [f"DROP INDEX {name}" for name, _ in indexes])

    g = lambda count: f"WITH RECURSIVE g(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM g WHERE i < {count - 1}) "
    sid = "printf('seed%018d', {})".format
    # Spread over the days: person i's place in a fixed shuffle of everyone.
    withdrawn_at = f"({start} + ((i * 2654435761) % {P}) * ({span} / {P}))"
    part("people", [
        g(P) + "INSERT INTO subjects (id, address, address_hash, key_id, created_at) "
        f"SELECT {sid('i')}, 'user' || i || '@example.org', printf('%064x', i), 'k1', {start - DAY} FROM g",
        g(P) + "INSERT INTO consent_events (subject_id, campaign, action, at, source, evidence, recorded_at) "
        f"SELECT {sid('i')}, 'news', 'grant', {start - DAY}, 'form', 'signup form v3', {start - DAY} FROM g",
        g(P) + "INSERT INTO consent_events (subject_id, campaign, action, at, source, evidence, recorded_at) "
        f"SELECT {sid('i')}, {case('i / 33', [quoted(ch[1]) for ch in CHANNELS])}, 'withdraw', "
        f"{withdrawn_at}, {case('i / 33', [quoted(ch[0]) for ch in CHANNELS])}, "
        f"{case('i / 33', [quoted(ch[2]) for ch in CHANNELS])}, {withdrawn_at} "
        "FROM g WHERE i % 33 = 0",
        "INSERT INTO consent_state (subject_id, campaign, status, since, event_id) "
        "SELECT subject_id, campaign, CASE action WHEN 'grant' THEN 'granted' ELSE 'withdrawn' END, at, id "
        "FROM consent_events WHERE id IN (SELECT MAX(id) FROM consent_events GROUP BY subject_id, campaign)",
    ])

    campaign = case("{}", [quoted(x) for x in CAMPAIGNS]).format
    received = f"({start} + ({{}}) * {span} / {msgs})".format
    part("messages", [
        g(msgs) + "INSERT INTO messages (id, kind, mail_from, client_ip, helo, auth_user, campaign, "
        "header_message_id, size, body, received_at, smtputf8) "
        f"SELECT printf('01SEED%020d', i), 'relay', 'crm@example.com', '192.0.2.1', 'crm.example.com', 'crm', "
        f"{campaign('i')}, '<' || i || '@crm.example.com>', 1024, NULL, {received('i')}, 0 FROM g",
    ])

    # Decision k: message k / R, person k % P; h picks the outcome.
    h = f"((k * 2654435761) % 1000)"
    mandatory = f"(k / {R}) % {len(CAMPAIGNS)} = {CAMPAIGNS.index('billing')}"
    late = f"({h} < 900 AND k % 500 = 7)"
    cols = (f"printf('01SEED%020d', k / {R}) AS message_id, 'user' || (k % {P}) || '@example.org' AS recipient, "
            f"{sid(f'k % {P}')} AS subject_id, {campaign(f'k / {R}')} AS campaign, {received(f'k / {R}')} AS at, "
            f"{h} AS h, k")
    gk = f"WITH RECURSIVE g(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM g WHERE k < {n - 1}), d AS (SELECT {cols} FROM g) "
    part("decisions", [
        gk + "INSERT INTO decisions (message_id, recipient, subject_id, campaign, outcome, reason, event_id, stage, at) "
        "SELECT message_id, recipient, subject_id, campaign, CASE WHEN h < 900 THEN 'deliver' ELSE 'suppress' END, "
        f"CASE WHEN h < 900 AND {mandatory} THEN 'mandatory' WHEN h < 900 THEN 'granted' "
        f"ELSE {case('h - 900', [quoted(r) for r in REASONS])} END, NULL, 'accept', at FROM d",
        gk + "INSERT INTO decisions (message_id, recipient, subject_id, campaign, outcome, reason, event_id, stage, at) "
        f"SELECT message_id, recipient, subject_id, campaign, 'suppress', 'withdrawn', NULL, 'send', at + 60000 "
        f"FROM d WHERE h < 900 AND k % 500 = 7",
    ])
    status = (f"CASE WHEN {late} THEN 'suppressed-late' WHEN k % 1000 = 3 THEN 'failed' "
              f"WHEN k / {R} >= {msgs - 200} THEN 'deferred' ELSE 'sent' END")
    part("deliveries", [
        f"WITH RECURSIVE g(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM g WHERE k < {n - 1}), "
        f"d AS (SELECT {cols}, {status} AS status FROM g) "
        "INSERT INTO deliveries (message_id, recipient, status, attempts, next_attempt_at, last_reply, created_at, updated_at) "
        "SELECT message_id, recipient, status, CASE status WHEN 'deferred' THEN 3 ELSE 1 END, "
        f"CASE status WHEN 'deferred' THEN {now + DAY} ELSE at + 5000 END, "
        "CASE status WHEN 'sent' THEN '250 2.0.0 Ok: queued' WHEN 'failed' THEN '550 5.1.1 <***@example.org>: unknown' "
        "WHEN 'deferred' THEN '451 4.7.1 try again later' ELSE 'consent changed after accept: withdrawn' END, "
        "at, at + 5000 FROM d WHERE h < 900",
    ])
    part("indexes", [s for _, s in indexes])
    part("campaign_days", [
        "INSERT INTO campaign_days (campaign, day, delivered, hard_bounces, soft_bounces, complaints) "
        f"SELECT m.campaign, d.updated_at / {DAY}, COUNT(*), COUNT(*) / 200, COUNT(*) / 100, COUNT(*) / 2000 "
        "FROM deliveries d JOIN messages m ON m.id = d.message_id WHERE d.status = 'sent' GROUP BY 1, 2",
    ])
    figures.append(("total_without_backfill", time.monotonic() - t0))
    t = time.monotonic()
    print("# seed: rollups, by the migration's backfill", file=sys.stderr, flush=True)
    c.execute("BEGIN")
    for s in backfill.split(";"):
        if s.strip():
            c.execute(s)
    c.execute("COMMIT")
    figures.append(("backfill", time.monotonic() - t))
    t = time.monotonic()
    # Settled as a store that grew over time: statistics, back to WAL.
    c.execute("ANALYZE")
    c.execute("PRAGMA journal_mode = WAL")
    figures.append(("analyze", time.monotonic() - t))
    counts = {
        t: c.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
        for t in ["subjects", "consent_events", "messages", "decisions", "deliveries", "daily_counts"]
    }
    c.close()
    cond = ", ".join(f"{k} {v}" for k, v in counts.items()) + f"; {a.days} days ending now"
    for name, secs in figures:
        print(f"FIGURE\toverview_seed_{name}_seconds\t{secs:.1f}\ts\t{cond}")


if __name__ == "__main__":
    main()
