//! End to end: what the relay reads in a message and what its copy holds.
//! The header block as RFC 5322 ends it (a body line right after the
//! fields, a header-only message, a line without a colon), header text
//! that is not UTF-8, body lines over 998 octets (taken up to
//! `max_line_length`, re-encoded in the copy), and campaign ids in any case.

use std::time::Duration;

use crate::both_stores;
use crate::common::relay::{TestRelay, greeted, message};
use crate::common::sink::Sink;
use consent_relay::store::DecisionFilter;

/// The copy's header block and body, split at its first empty line.
fn split(copy: &[u8]) -> (String, String) {
    let text = String::from_utf8_lossy(copy).into_owned();
    let (header, body) = text.split_once("\r\n\r\n").expect("an empty line");
    (header.to_owned(), body.to_owned())
}

async fn a_header_block_without_its_empty_line_ends_at_the_first_body_line() {
    let sink = Sink::start().await;
    let relay = TestRelay::start(sink.addr(), "", "").await;
    let base = relay.config.http.public_url.as_str().trim_end_matches('/');
    // The body line follows the fields at once: it is body, gets its link.
    let r = relay
        .send(
            &["a@example.net"],
            "X-Campaign: prospecting\r\nbody line [[UNSUBSCRIBE_URL]]\r\n",
        )
        .await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    let got = sink.wait_for(1, Duration::from_secs(10)).await;
    let (header, body) = split(&got[0].data);
    assert!(header.contains("List-Unsubscribe: <"), "{header}");
    assert!(!header.contains("body line"), "{header}");
    assert!(
        body.starts_with(&format!("body line {base}/u/")),
        "the placeholder is replaced in the body: {body}"
    );

    // A message that is header fields only gets the footer in a body.
    let r = relay
        .send(
            &["b@example.net"],
            "From: crm@example.com\r\nX-Campaign: prospecting\r\nSubject: s\r\n",
        )
        .await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    let got = sink.wait_for(2, Duration::from_secs(10)).await;
    let (header, body) = split(&got[1].data);
    assert!(header.contains("Subject: s"), "{header}");
    assert!(body.contains(&format!("{base}/p/")), "the footer: {body}");

    // A line without a colon ends the block: the campaign field after it
    // is body text, and the message names no campaign.
    let r = relay
        .send(
            &["c@example.net"],
            "Subject: s\r\nno colon here\r\nX-Campaign: invoices\r\n\r\nHi\r\n",
        )
        .await;
    assert!(
        r.starts_with("550 5.7.1 message refused: message has no X-Campaign header"),
        "{r}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.count(), 2);
}
both_stores!(a_header_block_without_its_empty_line_ends_at_the_first_body_line);

async fn a_header_that_is_not_utf_8_is_refused_even_with_smtputf8() {
    let sink = Sink::start().await;
    let relay = TestRelay::start(sink.addr(), "", "").await;
    let mut c = greeted(&relay).await;
    c.cmd("MAIL FROM:<crm@example.com> SMTPUTF8", "250").await;
    c.cmd("RCPT TO:<a@example.net>", "250").await;
    c.cmd("DATA", "354").await;
    c.write(b"Subject: caf\xe9 (Latin-1)\r\nX-Campaign: prospecting\r\n\r\nbody\r\n")
        .await;
    c.cmd(
        ".",
        "550 5.6.7 message refused: the header is not valid UTF-8",
    )
    .await;
    // Valid UTF-8 is still taken.
    c.cmd("MAIL FROM:<crm@example.com> SMTPUTF8", "250").await;
    c.cmd("RCPT TO:<b@example.net>", "250").await;
    c.cmd("DATA", "354").await;
    c.write("Subject: caf\u{e9}\r\nX-Campaign: prospecting\r\n\r\nbody\r\n".as_bytes())
        .await;
    c.cmd(".", "250 2.0.0").await;
    let got = sink.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].rcpt_to, ["b@example.net"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.count(), 1);
}
both_stores!(a_header_that_is_not_utf_8_is_refused_even_with_smtputf8);

/// A minified HTML line of `rows` table rows (about 45 octets each), with
/// a placeholder in it.
fn minified_html(rows: usize) -> String {
    let cells: String = (0..rows)
        .map(|i| format!("<tr><td style=\"padding:0\">row {i} = x</td></tr>"))
        .collect();
    format!(
        "<html><body><p><a href=\"[[UNSUBSCRIBE_URL]]\">unsubscribe</a></p><table>{cells}</table></body></html>"
    )
}

/// swaks, CRMs' minified HTML: a 5,000-octet line is taken, and the copy
/// upstream has no line over 998 octets, the HTML intact once decoded.
async fn a_long_html_line_reaches_upstream_in_short_quoted_printable_lines() {
    let sink = Sink::start().await;
    let relay = TestRelay::start(sink.addr(), "", "").await;
    let html = minified_html(115);
    assert!(html.len() > 5000);
    let msg = format!(
        "From: crm@example.com\r\nSubject: promo\r\nX-Campaign: prospecting\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/html; charset=us-ascii\r\n\r\n{html}\r\n"
    );
    let r = relay.send(&["a@example.net"], &msg).await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    let got = sink.wait_for(1, Duration::from_secs(10)).await;
    let copy = &got[0].data;
    for line in copy.split(|&b| b == b'\n') {
        assert!(line.len() <= 999, "a line of {} octets", line.len());
    }
    let parsed = mail_parser::MessageParser::default()
        .parse(copy)
        .expect("the copy parses");
    let part = &parsed.parts[0];
    assert_eq!(
        mail_parser::MimeHeaders::content_transfer_encoding(part),
        Some("quoted-printable")
    );
    let decoded = parsed.body_html(0).expect("html body").into_owned();
    let base = relay.config.http.public_url.as_str().trim_end_matches('/');
    let (before, after) = html.split_once("[[UNSUBSCRIBE_URL]]").expect("placeholder");
    assert!(
        decoded.starts_with(&format!("{before}{base}/u/")),
        "{decoded}"
    );
    assert!(decoded.trim_end().ends_with(after), "the rest intact");
}
both_stores!(a_long_html_line_reaches_upstream_in_short_quoted_printable_lines);

/// Over `max_line_length` the message is refused, the reply naming the
/// limit; the session goes on.
async fn a_line_over_max_line_length_is_refused_naming_the_limit() {
    let sink = Sink::start().await;
    let relay = TestRelay::start(sink.addr(), "max_line_length = 10000", "").await;
    let r = relay
        .send(
            &["a@example.net"],
            &message("prospecting", &"y".repeat(10_001)),
        )
        .await;
    assert!(
        r.starts_with("550 5.6.0 message refused: a line is longer than 10000 octets"),
        "{r}"
    );
    let r = relay
        .send(
            &["a@example.net"],
            &message("prospecting", &"y".repeat(10_000)),
        )
        .await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    let got = sink.wait_for(1, Duration::from_secs(10)).await;
    assert!(got[0].data.split(|&b| b == b'\n').all(|l| l.len() <= 999));
    // Header lines keep RFC 5322's 998 octets.
    let long_header = message("prospecting", "x").replacen(
        "Subject: News",
        &format!("Subject: {}", "s".repeat(1000)),
        1,
    );
    let r = relay.send(&["a@example.net"], &long_header).await;
    assert!(
        r.starts_with("550 5.6.0 message refused: a header line is longer than 998 octets"),
        "{r}"
    );
}
both_stores!(a_line_over_max_line_length_is_refused_naming_the_limit);

/// `X-Campaign: Prospecting` is campaign `prospecting`, recorded as
/// configured.
async fn campaign_ids_match_in_any_case_and_the_configured_id_is_recorded() {
    let sink = Sink::start().await;
    let relay = TestRelay::start(sink.addr(), "", "").await;
    for (rcpt, header) in [
        ("a@example.net", "Prospecting"),
        ("b@example.net", "PROSPECTING"),
    ] {
        let r = relay.send(&[rcpt], &message(header, "hello")).await;
        assert!(r.contains("(1 delivered, 0 suppressed)"), "{header}: {r}");
    }
    // Two headers naming one campaign in two cases do not conflict.
    let msg = message("prospecting", "x").replacen(
        "X-Campaign:",
        "X-Campaign: Prospecting\r\nX-Campaign:",
        1,
    );
    let r = relay.send(&["c@example.net"], &msg).await;
    assert!(r.starts_with("250 2.0.0"), "{r}");
    let decisions = relay
        .store()
        .decisions(&DecisionFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("decisions");
    assert_eq!(decisions.len(), 3);
    assert!(
        decisions.iter().all(|d| d.campaign == "prospecting"),
        "{decisions:?}"
    );
    sink.wait_for(3, Duration::from_secs(10)).await;
}
both_stores!(campaign_ids_match_in_any_case_and_the_configured_id_is_recorded);
