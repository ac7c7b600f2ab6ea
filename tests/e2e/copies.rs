//! End to end: each delivered recipient gets their own copy with signed
//! links, list headers and the footer, rendered once per message.

use std::time::Duration;

use crate::both_stores;
use crate::common;
use crate::common::relay::TestRelay;
use crate::common::sink::Sink;
use consent_relay::consent::Action;
use consent_relay::token::{self, Purpose};

/// The unfolded value of the first header field called `name`.
fn header(text: &str, name: &str) -> Option<String> {
    let head = &text[..text.find("\r\n\r\n").unwrap_or(text.len())];
    let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
    unfolded
        .split("\r\n")
        .find(|l| {
            l.len() > name.len()
                && l[..name.len()].eq_ignore_ascii_case(name)
                && l.as_bytes()[name.len()] == b':'
        })
        .map(|l| l[name.len() + 1..].trim().to_owned())
}

async fn each_recipient_gets_their_own_signed_links() {
    let sink = Sink::start().await;
    let relay = TestRelay::start(sink.addr(), "", "").await;
    relay
        .consent("ann@example.net", "newsletter", Action::Grant, None)
        .await;
    relay
        .consent("bob@example.net", "newsletter", Action::Grant, None)
        .await;
    let msg = "From: shop@example.com\r\nSubject: News\r\nX-Campaign: newsletter\r\n\
               MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
               Hello!\r\nUnsubscribe: [[UNSUBSCRIBE_URL]]\r\nPreferences: [[PREFERENCES_URL]]\r\n";
    let r = relay
        .send(&["ann@example.net", "bob@example.net"], msg)
        .await;
    assert!(r.contains("(2 delivered, 0 suppressed)"), "{r}");
    let got = sink.wait_for(2, Duration::from_secs(10)).await;
    let mut subjects = Vec::new();
    for copy in &got {
        let text = String::from_utf8(copy.data.clone()).unwrap();
        let lu = header(&text, "List-Unsubscribe").expect("List-Unsubscribe");
        assert_eq!(
            header(&text, "List-Unsubscribe-Post").as_deref(),
            Some("List-Unsubscribe=One-Click")
        );
        assert_eq!(
            header(&text, "List-Id").as_deref(),
            Some("<newsletter.example.com>")
        );
        assert!(header(&text, "X-Campaign").is_none());
        let url = lu.trim_start_matches('<').trim_end_matches('>');
        assert!(url.starts_with("http://127.0.0.1:8080/u/"), "{url}");
        let tok = url.rsplit('/').next().unwrap();
        let claims = token::verify_for(&relay.config.signing, tok, Purpose::Unsubscribe)
            .expect("valid token");
        assert_eq!(claims.campaign.as_deref(), Some("newsletter"));
        // The body link is the header link; no placeholder is left.
        assert!(text.contains(&format!("Unsubscribe: {url}\r\n")), "{text}");
        assert!(!text.contains("[["), "{text}");
        assert!(!text.contains(copy.rcpt_to[0].as_str()) || !url.contains('@'));
        let info = relay
            .store()
            .subject_consent(&copy.rcpt_to[0])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            claims.subject_id, info.subject_id,
            "the link names this recipient"
        );
        subjects.push(claims.subject_id);
        // A message with placeholders gets no footer.
        assert!(!text.contains("You receive this message from us"), "{text}");
    }
    assert_ne!(subjects[0], subjects[1]);
}
both_stores!(each_recipient_gets_their_own_signed_links);

async fn mandatory_copies_carry_no_list_headers_and_no_footer() {
    let sink = Sink::start().await;
    let relay = TestRelay::start(sink.addr(), "", "").await;
    let msg = "From: shop@example.com\r\nSubject: Invoice\r\nX-Campaign: invoices\r\n\
               List-Unsubscribe: <https://crm.example.com/bypass>\r\n\r\nYour invoice.\r\n";
    relay.send(&["ann@example.net"], msg).await;
    let got = sink.wait_for(1, Duration::from_secs(10)).await;
    let text = String::from_utf8(got[0].data.clone()).unwrap();
    assert!(header(&text, "List-Unsubscribe").is_none(), "{text}");
    assert!(header(&text, "List-Unsubscribe-Post").is_none(), "{text}");
    assert!(header(&text, "List-Id").is_none(), "{text}");
    assert!(text.ends_with("\r\n\r\nYour invoice.\r\n"), "{text}");
}
both_stores!(mandatory_copies_carry_no_list_headers_and_no_footer);

async fn footer_follows_the_campaign_language() {
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let text = common::relay::config_text(dir.path(), &format!("smtp://{}", sink.addr()), "", "")
        .replace(
            "label = \"Offers\"\npolicy = \"opt-out\"",
            "label = \"Offres\"\npolicy = \"opt-out\"\nlanguage = \"fr\"",
        );
    let relay = TestRelay::start_with(dir, &text).await;
    let msg = "From: shop@example.com\r\nSubject: Offre\r\nX-Campaign: prospecting\r\n\
               MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
               <html><body><p>Bonjour</p></body></html>\r\n";
    relay.send(&["ann@example.net"], msg).await;
    let got = sink.wait_for(1, Duration::from_secs(10)).await;
    // The footer's "é" made the 7bit part quoted-printable: read it decoded.
    let parsed = mail_parser::MessageParser::default()
        .parse(&got[0].data)
        .expect("parses");
    let html = parsed.body_html(0).expect("html body").into_owned();
    assert!(
        html.contains("Vous recevez ce message de notre part."),
        "{html}"
    );
    assert!(html.contains("vous désabonner"), "{html}");
    assert!(
        html.contains("href=\"http://127.0.0.1:8080/p/k1."),
        "{html}"
    );
    let footer_at = html.find("Vous recevez").unwrap();
    assert!(
        footer_at < html.find("</body>").unwrap(),
        "footer before </body>: {html}"
    );
}
both_stores!(footer_follows_the_campaign_language);

fn mailto_config(dir: &std::path::Path, sink: std::net::SocketAddr, networks: &str) -> String {
    common::relay::config_text(dir, &format!("smtp://{sink}"), networks, "").replace(
        "public_url = \"http://127.0.0.1:8080\"",
        "public_url = \"http://127.0.0.1:8080\"\nunsubscribe_mailto_domain = \"unsubscribe.example.com\"",
    )
}

/// RFC 2369: List-Unsubscribe also offers `mailto:unsubscribe+TOKEN@domain`;
/// mail to it withdraws, and the next message is suppressed.
async fn mail_to_the_unsubscribe_address_withdraws() {
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let text = mailto_config(dir.path(), sink.addr(), "");
    let relay = TestRelay::start_with(dir, &text).await;
    relay
        .send(
            &["ann@example.net"],
            &common::relay::message("prospecting", "offer"),
        )
        .await;
    let got = sink.wait_for(1, Duration::from_secs(10)).await;
    let copy = String::from_utf8(got[0].data.clone()).unwrap();
    let lu = header(&copy, "List-Unsubscribe").unwrap();
    let mailto = lu
        .split(',')
        .map(str::trim)
        .find(|p| p.starts_with("<mailto:"))
        .expect("mailto form")
        .trim_start_matches("<mailto:")
        .trim_end_matches('>')
        .to_owned();
    assert!(
        mailto.starts_with("unsubscribe+k1.") && mailto.ends_with("@unsubscribe.example.com"),
        "{mailto}"
    );

    let mut c = relay.client().await;
    c.expect("220").await;
    c.cmd("EHLO mail.example.net", "250").await;
    c.cmd("MAIL FROM:<ann@example.net>", "250").await;
    c.cmd(&format!("RCPT TO:<{mailto}>"), "250 2.1.5").await;
    c.cmd("DATA", "354").await;
    c.write(b"Subject: unsubscribe\r\n\r\nplease\r\n.\r\n")
        .await;
    let r = c.read_reply().await;
    assert!(r.starts_with("250 2.0.0 unsubscribed"), "{r}");
    let r = relay
        .send(
            &["ann@example.net"],
            &common::relay::message("prospecting", "again"),
        )
        .await;
    assert!(r.contains("(0 delivered, 1 suppressed)"), "{r}");
    let info = relay
        .store()
        .subject_consent("ann@example.net")
        .await
        .unwrap()
        .unwrap();
    let e = info.events.last().unwrap();
    assert_eq!(
        (e.action.as_str(), e.campaign.as_str(), e.source.as_str()),
        ("withdraw", "prospecting", "one-click")
    );
    assert_eq!(e.ip.as_deref(), Some("127.0.0.1"));
}
both_stores!(mail_to_the_unsubscribe_address_withdraws);

/// With a mailto domain, clients outside allowed_networks may connect, but
/// only to write to valid unsubscribe addresses: never a relay.
async fn outsiders_may_only_write_to_unsubscribe_addresses() {
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    let text = mailto_config(
        dir.path(),
        sink.addr(),
        "allowed_networks = [\"10.0.0.0/8\"]",
    );
    let relay = TestRelay::start_with(dir, &text).await;
    relay
        .consent("bob@example.net", "newsletter", Action::Grant, None)
        .await;
    let subject = relay
        .store()
        .subject_consent("bob@example.net")
        .await
        .unwrap()
        .unwrap()
        .subject_id;
    let tok = token::sign(
        &relay.config.signing,
        &token::Claims {
            subject_id: subject,
            campaign: Some("newsletter".into()),
            purpose: Purpose::Unsubscribe,
        },
    )
    .unwrap();

    let mut c = relay.client().await;
    c.expect("220").await;
    c.cmd("EHLO outside.example", "250").await;
    c.cmd("MAIL FROM:<x@outside.example>", "250").await;
    c.cmd("RCPT TO:<victim@example.org>", "554 5.7.1").await;
    c.cmd(
        "RCPT TO:<unsubscribe+k1.AAAA@unsubscribe.example.com>",
        "550 5.1.1",
    )
    .await;
    let mut forged = tok.clone();
    forged.replace_range(10..11, if &tok[10..11] == "A" { "B" } else { "A" });
    c.cmd(
        &format!("RCPT TO:<unsubscribe+{forged}@unsubscribe.example.com>"),
        "550 5.1.1",
    )
    .await;
    c.cmd(
        &format!("RCPT TO:<unsubscribe+{tok}@UNSUBSCRIBE.example.com>"),
        "250",
    )
    .await;
    c.cmd("DATA", "354").await;
    c.write(b"Subject: x\r\n\r\nx\r\n.\r\n").await;
    c.expect("250 2.0.0 unsubscribed").await;
    let states = relay
        .store()
        .subject_consent("bob@example.net")
        .await
        .unwrap()
        .unwrap()
        .states;
    assert!(
        states
            .iter()
            .any(|s| s.campaign == "newsletter" && s.status.as_str() == "withdrawn")
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.count(), 0, "nothing relayed for an outsider");
}
both_stores!(outsiders_may_only_write_to_unsubscribe_addresses);
