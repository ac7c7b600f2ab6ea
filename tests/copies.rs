//! End to end: each delivered recipient gets their own copy with signed
//! links, list headers and the footer, rendered once per message.

mod common;

use std::time::Duration;

use common::relay::TestRelay;
use common::sink::Sink;
use consent_relay::consent::Action;
use consent_relay::token::{self, Purpose};

fn header<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let head = &text[..text.find("\r\n\r\n").unwrap_or(text.len())];
    head.split("\r\n")
        .find(|l| {
            l.len() > name.len()
                && l[..name.len()].eq_ignore_ascii_case(name)
                && l.as_bytes()[name.len()] == b':'
        })
        .map(|l| l[name.len() + 1..].trim())
}

#[tokio::test]
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
            header(&text, "List-Unsubscribe-Post"),
            Some("List-Unsubscribe=One-Click")
        );
        assert_eq!(header(&text, "List-Id"), Some("<newsletter.example.com>"));
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

#[tokio::test]
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

#[tokio::test]
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
