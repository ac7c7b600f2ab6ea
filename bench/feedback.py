#!/usr/bin/env python3
"""bench/feedback.py - report intake load: realistic DSNs to consent-relay's SMTP door.

Each report is a ~3 KB RFC 3464 bounce as Postfix writes one: multipart/report with a
text/plain explanation, a message/delivery-status part (Action: failed, Status: 5.1.1,
a Diagnostic-Code) and the returned copy's header (text/rfc822-headers) with the
relay's own X-Consent-Relay-Delivery header. Every report is about another delivery
(a VERP token signed with the relay's key, for the delivery ids given), so none is a
duplicate of another. Sent with MAIL FROM:<> to b-TOKEN@<bounce domain> over
`--sessions` concurrent connections, one transaction after another on each.

Usage: feedback.py --port P --domain D --key BASE64 --ids FILE [--sessions N] [--count N]
  --ids FILE    one "delivery_id<TAB>recipient" per line (the copies to bounce)
Prints one line: FIGURE<TAB>feedback_reports_per_s<TAB>value<TAB>reports/s<TAB>conditions
and exits non-zero when a report was not answered 250.
"""

import argparse
import asyncio
import base64
import hashlib
import hmac
import sys
import time

TOKEN_DOMAIN = b"consent-relay bounce v1"


def token(key: bytes, delivery: int) -> str:
    """src/token/bounce.rs, version 1: base32(version || id || mac[..10]), lowercase."""
    payload = bytes([1]) + delivery.to_bytes(8, "big", signed=True)
    mac = hmac.new(key, TOKEN_DOMAIN + payload, hashlib.sha256).digest()[:10]
    return base64.b32encode(payload + mac).decode().rstrip("=").lower()


def dsn(domain: str, delivery: int, rcpt: str, local: str, n: int) -> bytes:
    boundary = f"{n:08d}.1733150000/mx.example.net"
    date = "Mon, 2 Dec 2024 17:30:40 +0000 (UTC)"
    qid = f"{n:011X}"
    explanation = (
        "This is the mail system at host mx.example.net.\r\n\r\n"
        "I'm sorry to have to inform you that your message could not\r\n"
        "be delivered to one or more recipients. It's attached below.\r\n\r\n"
        "For further assistance, please send mail to postmaster.\r\n\r\n"
        "If you do so, please include this problem report. You can\r\n"
        "delete your own text from the attached returned message.\r\n\r\n"
        "                   The mail system\r\n\r\n"
        f"<{rcpt}>: host mx.example.net[192.0.2.25] said: 550 5.1.1\r\n"
        f"    <{rcpt}>: Recipient address rejected: User unknown in virtual\r\n"
        "    mailbox table (in reply to RCPT TO command)\r\n"
    )
    status = (
        "Reporting-MTA: dns; mx.example.net\r\n"
        f"X-Postfix-Queue-ID: {qid}\r\n"
        f"X-Postfix-Sender: rfc822; {local}@{domain}\r\n"
        f"Arrival-Date: {date}\r\n\r\n"
        f"Final-Recipient: rfc822; {rcpt}\r\n"
        f"Original-Recipient: rfc822;{rcpt}\r\n"
        "Action: failed\r\n"
        "Status: 5.1.1\r\n"
        "Remote-MTA: dns; mx.example.net\r\n"
        f"Diagnostic-Code: smtp; 550 5.1.1 <{rcpt}>: Recipient address rejected:\r\n"
        "    User unknown in virtual mailbox table\r\n"
    )
    headers = (
        f"Return-Path: <{local}@{domain}>\r\n"
        "Received: from relay.bench.example (relay.bench.example [127.0.0.1])\r\n"
        "\tby mx.example.net (Postfix) with ESMTPS id 4Y2Qk01ZxYz9sTt\r\n"
        f"\tfor <{rcpt}>; {date}\r\n"
        "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com; s=relay;\r\n"
        "\th=from:to:subject:date:message-id:list-unsubscribe:feedback-id;\r\n"
        "\tbh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\r\n"
        "\tb=dzdVyOfAKCdLXdJOc9G2q8LoXSlEniSbav+yuU4zGeeruD00lszZVoG4ZHRNiYzR\r\n"
        "\t dzdVyOfAKCdLXdJOc9G2q8LoXSlEniSbav+yuU4zGeeruD00lszZVoG4ZHRNiYzR\r\n"
        "From: Example Shop <news@example.com>\r\n"
        f"To: <{rcpt}>\r\n"
        "Subject: Our offers this week\r\n"
        f"Date: {date}\r\n"
        f"Message-ID: <{n}.bench@example.com>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "List-Id: <newsletter.example.com>\r\n"
        "List-Unsubscribe: <http://127.0.0.1:8080/u/eyJ2IjoxLCJzIjoiMDFKQ0JFTkNIIn0.c2lnbmF0dXJl>\r\n"
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
        "Feedback-ID: prospecting:relay\r\n"
        f"X-Consent-Relay-Delivery: {local}\r\n"
    )
    body = (
        f"Return-Path: <>\r\n"
        f"Received: by mx.example.net (Postfix) id {qid}; {date}\r\n"
        f"Date: {date}\r\n"
        "From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"To: {local}@{domain}\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary="{boundary}"\r\n'
        "Content-Transfer-Encoding: 8bit\r\n"
        f"Message-Id: <{n}.{qid}@mx.example.net>\r\n\r\n"
        "This is a MIME-encapsulated message.\r\n\r\n"
        f"--{boundary}\r\n"
        "Content-Description: Notification\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
        f"{explanation}\r\n"
        f"--{boundary}\r\n"
        "Content-Description: Delivery report\r\n"
        "Content-Type: message/delivery-status\r\n\r\n"
        f"{status}\r\n"
        f"--{boundary}\r\n"
        "Content-Description: Undelivered Message Headers\r\n"
        "Content-Type: text/rfc822-headers\r\n\r\n"
        f"{headers}\r\n"
        f"--{boundary}--\r\n"
    )
    # dot-stuffing (no line starts with "." here, but keep it right)
    return body.replace("\r\n.", "\r\n..").encode()


async def reply(reader) -> bytes:
    """One SMTP reply (possibly multi-line); its last line."""
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("connection closed")
        if len(line) < 4 or line[3:4] != b"-":
            return line


async def session(port, jobs, results):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        await reply(reader)
        writer.write(b"EHLO bench.example\r\n")
        await reply(reader)
        while jobs:
            rcpt_to, data = jobs.pop()
            # MAIL and RCPT pipelined (RFC 2920), DATA after their replies
            writer.write(b"MAIL FROM:<>\r\nRCPT TO:<" + rcpt_to + b">\r\n")
            r1 = await reply(reader)
            r2 = await reply(reader)
            if not (r1.startswith(b"250") and r2.startswith(b"250")):
                results["refused"] += 1
                results.setdefault("first", (r1 + r2).decode(errors="replace").strip())
                writer.write(b"RSET\r\n")
                await reply(reader)
                continue
            writer.write(b"DATA\r\n")
            r = await reply(reader)
            if not r.startswith(b"354"):
                results["refused"] += 1
                continue
            writer.write(data + b".\r\n")
            r = await reply(reader)
            if r.startswith(b"250"):
                results["ok"] += 1
            else:
                results["refused"] += 1
                results.setdefault("first", r.decode(errors="replace").strip())
        writer.write(b"QUIT\r\n")
        await writer.drain()
    finally:
        writer.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--domain", required=True)
    ap.add_argument("--key", required=True, help="[signing] current key, base64")
    ap.add_argument("--ids", required=True)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--count", type=int, default=0, help="0: one report per id")
    a = ap.parse_args()
    key = base64.b64decode(a.key)
    rows = []
    with open(a.ids) as f:
        for line in f:
            i, rcpt = line.rstrip("\n").split("\t", 1)
            rows.append((int(i), rcpt))
    if a.count:
        rows = rows[: a.count]
    jobs = []
    size = 0
    for n, (i, rcpt) in enumerate(rows):
        local = "b-" + token(key, i)
        data = dsn(a.domain, i, rcpt, local, n)
        size += len(data)
        jobs.append((f"{local}@{a.domain}".encode(), data))
    jobs.reverse()
    results = {"ok": 0, "refused": 0}
    t0 = time.monotonic()
    await asyncio.gather(*(session(a.port, jobs, results) for _ in range(a.sessions)))
    t1 = time.monotonic()
    n = len(rows)
    rate = results["ok"] / max(t1 - t0, 1e-9)
    cond = (f"{n} distinct DSNs (multipart/report, 5.1.1, text/rfc822-headers with "
            f"X-Consent-Relay-Delivery), {size // max(n, 1)} bytes each, {a.sessions} sessions, "
            f"MAIL FROM:<> to b-TOKEN@{a.domain}; 250 for {results['ok']}, refused "
            f"{results['refused']}; {t1 - t0:.2f}s")
    if "first" in results:
        cond += f"; first refusal: {results['first']}"
    print(f"FIGURE\tfeedback_reports_per_s\t{rate:.0f}\treports/s\t{cond}", flush=True)
    sys.exit(0 if results["refused"] == 0 and results["ok"] == n else 1)


asyncio.run(main())
