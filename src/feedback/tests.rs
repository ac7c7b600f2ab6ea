//! Reports as providers and MTAs send them (tests/fixtures/feedback/, written
//! from the RFCs' examples and from real reports), read and classified.

use super::classify::{BounceOutcome, DEFAULT_HARD, Verdict, classify};
use super::report::{
    Action, BounceFormat, DELIVERY_HEADER, EnclosedForm, FeedbackType, Kind, NotAReport, Report,
    StatusCode, read, unsubscribe_token,
};
use crate::config::{Secret, SigningConfig};
use crate::token::{self, Purpose};

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/feedback/",
            $name
        ))
        .as_slice()
    };
}

/// The token in the fixtures' `List-Unsubscribe`: key `k1` = 32 × 7,
/// subject bytes 0..16, campaign `news`.
const TOKEN: &str = "k1.AQEAAQIDBAUGBwgJCgsMDQ4PbmV3cwsYAFBUXgC9teYQHwWN_gY";

fn code(s: &str) -> StatusCode {
    s.parse().unwrap()
}

fn bounce(report: &Report) -> &super::report::Bounce {
    match &report.kind {
        Kind::Bounce(b) => b,
        other => panic!("not a bounce: {other:?}"),
    }
}

fn complaint(report: &Report) -> &super::report::Complaint {
    match &report.kind {
        Kind::Complaint(c) => c,
        other => panic!("not a complaint: {other:?}"),
    }
}

fn outcomes(report: &Report) -> Vec<BounceOutcome> {
    match classify(report, DEFAULT_HARD) {
        Verdict::Bounce(o) => o,
        other => panic!("not a bounce: {other:?}"),
    }
}

#[test]
fn postfix_dsn_reads_every_field_and_is_hard() {
    let r = read(fixture!("postfix-remote-user-unknown.eml"));
    let b = bounce(&r);
    assert_eq!(b.format, BounceFormat::Dsn);
    let mta = b.status.reporting_mta.as_ref().unwrap();
    assert_eq!(
        (mta.kind.as_str(), mta.value.as_str()),
        ("dns", "mail.example.com")
    );
    // Wed, 2 Dec 2026 13:59:58 +0000
    assert_eq!(b.status.arrival_date, Some(1_796_219_998));
    assert_eq!(b.status.recipients.len(), 1);
    let rcpt = &b.status.recipients[0];
    let fin = rcpt.final_recipient.as_ref().unwrap();
    assert_eq!(
        (fin.kind.as_str(), fin.value.as_str()),
        ("rfc822", "erin@example.net")
    );
    let orig = rcpt.original_recipient.as_ref().unwrap();
    assert_eq!(
        (orig.kind.as_str(), orig.value.as_str()),
        ("rfc822", "erin@example.net")
    );
    assert_eq!(rcpt.action, Action::Failed);
    assert_eq!(rcpt.status, Some(code("5.1.1")));
    assert_eq!(rcpt.remote_mta.as_ref().unwrap().value, "mx.example.net");
    let diag = rcpt.diagnostic.as_ref().unwrap();
    assert_eq!(diag.kind, "smtp");
    assert_eq!(
        diag.text,
        "550 5.1.1 <erin@example.net>: Recipient address rejected: User unknown in local recipient table"
    );
    assert_eq!(outcomes(&r), [BounceOutcome::Hard(code("5.1.1"))]);
    let enclosed = r.enclosed.as_ref().unwrap();
    assert_eq!(enclosed.form, EnclosedForm::Message);
    assert_eq!(enclosed.header("Subject"), Some("Our December offers"));
}

#[test]
fn postfix_local_bounce_with_lf_line_ends_and_headers_only() {
    let r = read(fixture!("postfix-local-unknown-user.eml"));
    let b = bounce(&r);
    let rcpt = &b.status.recipients[0];
    assert_eq!(rcpt.address(), Some("nobody@upstream.test"));
    let diag = rcpt.diagnostic.as_ref().unwrap();
    assert_eq!(
        (diag.kind.as_str(), diag.text.as_str()),
        ("x-postfix", "unknown user: \"nobody\"")
    );
    assert_eq!(outcomes(&r), [BounceOutcome::Hard(code("5.1.1"))]);
    assert_eq!(r.enclosed.as_ref().unwrap().form, EnclosedForm::Headers);
    assert_eq!(r.relay_header().and_then(unsubscribe_token), Some(TOKEN));
}

#[test]
fn exim_generic_status_is_refined_by_its_smtp_diagnostic() {
    let r = read(fixture!("exim-dsn.eml"));
    let rcpt = &bounce(&r).status.recipients[0];
    assert_eq!(rcpt.status, Some(code("5.0.0")));
    assert_eq!(rcpt.effective_status(), Some(code("5.1.1")));
    assert_eq!(outcomes(&r), [BounceOutcome::Hard(code("5.1.1"))]);
    assert_eq!(r.relay_header().and_then(unsubscribe_token), Some(TOKEN));
}

#[test]
fn exim_plain_bounce_names_its_recipients_in_x_failed_recipients() {
    let r = read(fixture!("exim-plain.eml"));
    let b = bounce(&r);
    assert_eq!(b.format, BounceFormat::NonStandard);
    let addrs: Vec<_> = b.status.recipients.iter().map(|r| r.address()).collect();
    assert_eq!(addrs, [Some("erin@example.net"), Some("frank@example.net")]);
    assert_eq!(
        outcomes(&r),
        [
            BounceOutcome::Hard(code("5.1.1")),
            BounceOutcome::Hard(code("5.1.1"))
        ]
    );
    // The copy quoted after Exim's marker line.
    let enclosed = r.enclosed.as_ref().unwrap();
    assert_eq!(enclosed.form, EnclosedForm::Inline);
    assert_eq!(r.relay_header().and_then(unsubscribe_token), Some(TOKEN));
}

#[test]
fn qmail_failure_notice_reads_the_code_in_the_text() {
    let r = read(fixture!("qmail-failure-notice.eml"));
    let b = bounce(&r);
    assert_eq!(b.format, BounceFormat::NonStandard);
    assert_eq!(b.status.recipients.len(), 1);
    assert_eq!(b.status.recipients[0].address(), Some("erin@example.net"));
    assert_eq!(
        b.status.recipients[0].diagnostic.as_ref().unwrap().text,
        "Sorry, no mailbox here by that name. (#5.1.1)"
    );
    assert_eq!(outcomes(&r), [BounceOutcome::Hard(code("5.1.1"))]);
    assert_eq!(r.relay_header().and_then(unsubscribe_token), Some(TOKEN));
}

#[test]
fn gmail_multi_line_diagnostic_reads_as_one_line() {
    let r = read(fixture!("gmail.eml"));
    let b = bounce(&r);
    assert_eq!(b.format, BounceFormat::Dsn);
    let rcpt = &b.status.recipients[0];
    assert_eq!(rcpt.address(), Some("nobody@example.net"));
    let diag = &rcpt.diagnostic.as_ref().unwrap().text;
    assert!(
        diag.starts_with("550-5.1.1 The email account that you tried to reach does not exist. Please try 550-5.1.1 double-checking"),
        "{diag}"
    );
    assert!(diag.ends_with("- gsmtp"), "{diag}");
    assert!(!diag.contains('\n') && !diag.contains("  "), "{diag}");
    // `dns; gmail-smtp-in.l.google.com. (2a00:..., the server for ...)`
    assert_eq!(
        rcpt.remote_mta.as_ref().unwrap().value,
        "gmail-smtp-in.l.google.com"
    );
    assert_eq!(outcomes(&r), [BounceOutcome::Hard(code("5.1.1"))]);
    assert_eq!(r.relay_header().and_then(unsubscribe_token), Some(TOKEN));
}

#[test]
fn microsoft_ndr_5_1_10_is_hard() {
    let r = read(fixture!("microsoft-ndr.eml"));
    let b = bounce(&r);
    assert_eq!(
        b.status.reporting_mta.as_ref().unwrap().value,
        "AM0PR01MB1234.eurprd01.prod.exchangelabs.com"
    );
    assert_eq!(
        b.status.recipients[0].address(),
        Some("gone@contoso.example")
    );
    assert_eq!(outcomes(&r), [BounceOutcome::Hard(code("5.1.10"))]);
    assert_eq!(r.enclosed.as_ref().unwrap().form, EnclosedForm::Headers);
    assert_eq!(r.relay_header().and_then(unsubscribe_token), Some(TOKEN));
}

#[test]
fn status_with_a_comment_parses_and_the_catch_all_is_soft() {
    let r = read(fixture!("status-5.0.0-comment.eml"));
    let rcpt = &bounce(&r).status.recipients[0];
    assert_eq!(rcpt.status, Some(code("5.0.0")));
    let fin = rcpt.final_recipient.as_ref().unwrap();
    assert_eq!(
        (fin.kind.as_str(), fin.value.as_str()),
        ("rfc822", "info@legacy.example")
    );
    assert_eq!(rcpt.remote_mta.as_ref().unwrap().kind, "dns");
    // `SMTP; 550 Requested action ...`: no enhanced code to refine 5.0.0.
    assert_eq!(rcpt.effective_status(), Some(code("5.0.0")));
    assert_eq!(outcomes(&r), [BounceOutcome::Soft(Some(code("5.0.0")))]);
}

#[test]
fn failed_and_delayed_recipients_get_one_outcome_each() {
    let r = read(fixture!("failed-and-delayed.eml"));
    let b = bounce(&r);
    let addrs: Vec<_> = b.status.recipients.iter().map(|r| r.address()).collect();
    assert_eq!(
        addrs,
        [
            Some("erin@example.net"),
            Some("gil@slow.example"),
            Some("hana@example.org")
        ]
    );
    assert_eq!(b.status.recipients[1].action, Action::Delayed);
    assert_eq!(
        b.status.recipients[2].diagnostic.as_ref().unwrap().text,
        "550 5.7.1 Service unavailable, client host [198.51.100.7] blocked using zen.spamhaus.example"
    );
    assert_eq!(
        outcomes(&r),
        [
            BounceOutcome::Hard(code("5.1.1")),
            BounceOutcome::NoChange,
            BounceOutcome::Soft(Some(code("5.7.1"))),
        ]
    );
}

#[test]
fn failed_with_a_transient_status_is_soft() {
    let r = read(fixture!("failed-4xx-expired.eml"));
    let rcpt = &bounce(&r).status.recipients[0];
    assert_eq!(rcpt.action, Action::Failed);
    assert_eq!(outcomes(&r), [BounceOutcome::Soft(Some(code("4.4.1")))]);
    assert_eq!(r.enclosed, None);
    assert_eq!(r.relay_header(), None);
}

#[test]
fn global_dsn_reads_utf8_addresses_and_diagnostics() {
    let r = read(fixture!("global-dsn-utf8.eml"));
    let b = bounce(&r);
    assert_eq!(b.format, BounceFormat::GlobalDsn);
    assert_eq!(
        b.status.reporting_mta.as_ref().unwrap().value,
        "mail.例子.example"
    );
    let rcpt = &b.status.recipients[0];
    let orig = rcpt.original_recipient.as_ref().unwrap();
    assert_eq!(
        (orig.kind.as_str(), orig.value.as_str()),
        ("utf-8", "jörg@bücher.example")
    );
    assert_eq!(
        rcpt.final_recipient.as_ref().unwrap().value,
        "jörg@bücher.example"
    );
    assert_eq!(rcpt.remote_mta.as_ref().unwrap().value, "mx.bücher.example");
    assert_eq!(
        rcpt.diagnostic.as_ref().unwrap().text,
        "550 5.1.1 Benutzer <jörg@bücher.example> unbekannt, Postfach existiert nicht"
    );
    assert_eq!(outcomes(&r), [BounceOutcome::Hard(code("5.1.1"))]);
    let enclosed = r.enclosed.as_ref().unwrap();
    assert_eq!(enclosed.form, EnclosedForm::Headers);
    assert_eq!(enclosed.header("To"), Some("jörg@bücher.example"));
    assert_eq!(r.relay_header().and_then(unsubscribe_token), Some(TOKEN));
}

#[test]
fn yahoo_arf_with_a_redacted_recipient_finds_the_person_through_our_header() {
    let r = read(fixture!("yahoo-arf-redacted.eml"));
    let c = complaint(&r);
    assert_eq!(c.feedback_type, FeedbackType::Abuse);
    assert_eq!(c.user_agent.as_deref(), Some("Yahoo!-Mail-Feedback/2.0"));
    assert_eq!(c.original_rcpt_to.as_deref(), Some("xxxxxxxxxx@yahoo.com"));
    assert_eq!(
        c.original_mail_from.as_deref(),
        Some("b-AEBAGBAFAYDQQCAK4AAAAAAAAA@bounces.example.com")
    );
    assert_eq!(c.arrival_date, Some(1_796_220_000));
    assert_eq!(classify(&r, DEFAULT_HARD), Verdict::Complaint);
    // The report's own List-Unsubscribe (Yahoo's) is never the one read.
    let token = r.relay_header().and_then(unsubscribe_token);
    assert_eq!(token, Some(TOKEN));
    let claims = token::verify_for(&fixture_signing(), TOKEN, Purpose::Unsubscribe).unwrap();
    assert_eq!(claims.subject_id, "AAECAwQFBgcICQoLDA0ODw");
    assert_eq!(claims.campaign.as_deref(), Some("news"));
}

/// The `b-TOKEN` of delivery 4242 under the fixtures' key `k1` (32 × 7);
/// the reports' own headers carry delivery 4243's, which is never read.
const DELIVERY_4242: &str = "b-aeaaaaaaaaabbeuv2fmsxbjr72de3ta";
const DELIVERY_4243: &str = "b-aeaaaaaaaaabbe4dckvvi6hf3y5rmtq";

fn fixture_signing() -> SigningConfig {
    SigningConfig {
        current: "k1".into(),
        keys: [("k1".to_owned(), Secret(vec![7; 32]))].into(),
    }
}

/// The delivery a report names through the relay's header.
fn named_delivery(r: &Report) -> Option<i64> {
    let token = token::bounce::token_of(r.delivery_token()?)?;
    token::bounce::verify(&fixture_signing(), token).ok()
}

#[test]
fn a_dsn_to_another_address_finds_the_delivery_through_our_header() {
    // Sent with the client's envelope (no [bounces] domain): the bounce
    // came to the CRM's postmaster, who passed it on; the returned
    // header still names the delivery.
    let r = read(fixture!("dsn-delivery-header.eml"));
    assert_eq!(outcomes(&r), [BounceOutcome::Hard(code("5.1.1"))]);
    assert_eq!(
        r.enclosed.as_ref().map(|e| e.form),
        Some(EnclosedForm::Headers)
    );
    assert_eq!(r.delivery_token(), Some(DELIVERY_4242));
    assert_eq!(named_delivery(&r), Some(4242));
    // Not the old header: this copy has no List-Unsubscribe.
    assert_eq!(r.relay_header(), None);
}

#[test]
fn a_redacted_arf_finds_the_delivery_in_the_attached_copy() {
    let raw = String::from_utf8_lossy(fixture!("arf-redacted-delivery-header.eml")).into_owned();
    let r = read(raw.as_bytes());
    let c = complaint(&r);
    assert_eq!(c.original_rcpt_to.as_deref(), Some("xxxxxxxxxx@yahoo.com"));
    assert_eq!(
        c.original_mail_from.as_deref(),
        Some("redacted@bounces.example.com")
    );
    assert_eq!(classify(&r, DEFAULT_HARD), Verdict::Complaint);
    assert_eq!(r.delivery_token(), Some(DELIVERY_4242));
    assert_eq!(named_delivery(&r), Some(4242));

    // Without our header, RFC 9477's CFBL-Feedback-ID names it.
    let ours = format!("{DELIVERY_HEADER}: {DELIVERY_4242}\n");
    let without = raw.replace(&ours, "");
    assert_ne!(without, raw);
    let r = read(without.as_bytes());
    assert_eq!(r.delivery_token(), Some(DELIVERY_4242));
    // Without either, nothing: the report's own header is never read.
    let neither = without.replace(&format!("CFBL-Feedback-ID: {DELIVERY_4242}\n"), "");
    assert!(neither.contains(DELIVERY_4243));
    let r = read(neither.as_bytes());
    assert!(matches!(r.kind, Kind::Complaint(_)));
    assert_eq!(r.delivery_token(), None);
}

#[test]
fn a_delivery_header_not_of_the_tokens_shape_is_passed_over() {
    let raw = String::from_utf8_lossy(fixture!("arf-redacted-delivery-header.eml")).into_owned();
    for bad in [
        "b-",
        "b-short",
        "x-aeaaaaaaaaabbeuv2fmsxbjr72de3ta",
        "b-aeaaaaaaaaabbeuv2fmsxbjr72de3t!",
    ] {
        let forged = raw
            .replace(
                &format!("X-Consent-Relay-Delivery: {DELIVERY_4242}"),
                &format!("X-Consent-Relay-Delivery: {bad}"),
            )
            .replace(
                &format!("CFBL-Feedback-ID: {DELIVERY_4242}"),
                "CFBL-Feedback-ID: none",
            );
        assert_eq!(read(forged.as_bytes()).delivery_token(), None, "{bad}");
    }
    // Upper case (a mail system that changed it) still reads, and verifies.
    let upper = raw.replace(DELIVERY_4242, &DELIVERY_4242.to_ascii_uppercase());
    let r = read(upper.as_bytes());
    assert_eq!(named_delivery(&r), Some(4242));
}

#[test]
fn microsoft_jmrp_has_no_recipient_and_an_upper_case_dns_type() {
    let r = read(fixture!("microsoft-jmrp.eml"));
    let c = complaint(&r);
    assert_eq!(c.feedback_type, FeedbackType::Abuse);
    assert_eq!(c.user_agent.as_deref(), Some("Hotmail FBL"));
    assert_eq!(c.reporting_mta.as_deref(), Some("mail.hotmail.com"));
    assert_eq!(c.original_rcpt_to, None);
    assert_eq!(c.source_ip, Some("198.51.100.7".parse().unwrap()));
    // Wed, 2 Dec 2026 14:00:00 -0800 (Received-Date)
    assert_eq!(c.arrival_date, Some(1_796_248_800));
    assert_eq!(classify(&r, DEFAULT_HARD), Verdict::Complaint);
    assert_eq!(r.relay_header().and_then(unsubscribe_token), Some(TOKEN));
    assert_eq!(
        r.enclosed_header("X-HmXmrOriginalRecipient"),
        Some("<redacted@outlook.com>")
    );
}

#[test]
fn rfc5965_example_reads_and_is_a_complaint() {
    let r = read(fixture!("rfc5965-example.eml"));
    let c = complaint(&r);
    assert_eq!(c.feedback_type, FeedbackType::Abuse);
    assert_eq!(c.user_agent.as_deref(), Some("SomeGenerator/1.0"));
    assert_eq!(c.original_rcpt_to.as_deref(), Some("user@example.com"));
    assert_eq!(c.reporting_mta.as_deref(), Some("mail.example.com"));
    assert_eq!(c.source_ip, Some("192.0.2.1".parse().unwrap()));
    assert!(c.arrival_date.is_some());
    assert_eq!(classify(&r, DEFAULT_HARD), Verdict::Complaint);
    // Not our mail: it carries no header of ours.
    assert_eq!(r.enclosed_header("Subject"), Some("Earn money"));
    assert_eq!(r.relay_header(), None);
}

/// The RFC 5965 example with another `Feedback-Type`.
fn arf_of_type(feedback_type: &str) -> Vec<u8> {
    String::from_utf8_lossy(fixture!("rfc5965-example.eml"))
        .replace(
            "Feedback-Type: abuse",
            &format!("Feedback-Type: {feedback_type}"),
        )
        .into_bytes()
}

#[test]
fn only_abuse_and_fraud_are_complaints() {
    let verdict = |t: &str| classify(&read(&arf_of_type(t)), DEFAULT_HARD);
    assert_eq!(verdict("fraud"), Verdict::Complaint);
    assert_eq!(verdict("ABUSE"), Verdict::Complaint);
    assert_eq!(
        verdict("not-spam"),
        Verdict::FeedbackRecorded(FeedbackType::NotSpam)
    );
    assert_eq!(
        verdict("virus"),
        Verdict::FeedbackRecorded(FeedbackType::Virus)
    );
    assert_eq!(
        verdict("auth-failure"),
        Verdict::FeedbackRecorded(FeedbackType::AuthFailure)
    );
    assert_eq!(
        verdict("other"),
        Verdict::FeedbackRecorded(FeedbackType::Other("other".into()))
    );
    // A type mail-auth does not know is kept, not dropped.
    assert_eq!(
        verdict("opt-out"),
        Verdict::FeedbackRecorded(FeedbackType::Other("opt-out".into()))
    );
}

#[test]
fn vacation_auto_reply_is_ignored() {
    let r = read(fixture!("vacation-auto-reply.eml"));
    match &r.kind {
        Kind::AutoReply(a) => assert_eq!(a.signal, "Auto-Submitted: auto-replied"),
        other => panic!("{other:?}"),
    }
    assert_eq!(classify(&r, DEFAULT_HARD), Verdict::AutoReply);
}

#[test]
fn older_auto_reply_signs_are_recognised() {
    let base = "From: a@b.example\r\nTo: c@d.example\r\nSubject: Hello\r\n";
    for (extra, subject) in [
        ("Precedence: auto_reply\r\n", None),
        ("X-Autoreply: yes\r\n", None),
        ("X-Autorespond: Out of office\r\n", None),
        ("Auto-Submitted: auto-generated\r\n", None),
        ("", Some("Out of Office: back on Monday")),
        ("", Some("Réponse automatique : absent")),
        ("", Some("Abwesenheitsnotiz: Urlaub")),
    ] {
        let mut msg = base.to_owned();
        if let Some(s) = subject {
            msg = msg.replace("Subject: Hello", &format!("Subject: {s}"));
        }
        msg.push_str(extra);
        msg.push_str("\r\nI am away.\r\n");
        let r = read(msg.as_bytes());
        assert_eq!(classify(&r, DEFAULT_HARD), Verdict::AutoReply, "{msg}");
    }
    let no = format!("{base}Auto-Submitted: no\r\n\r\nhi\r\n");
    assert_eq!(
        classify(&read(no.as_bytes()), DEFAULT_HARD),
        Verdict::NotAReport
    );
}

#[test]
fn a_plain_message_is_not_a_report() {
    let r = read(fixture!("plain-message.eml"));
    assert_eq!(r.kind, Kind::NotAReport(NotAReport::NoReport));
    assert_eq!(classify(&r, DEFAULT_HARD), Verdict::NotAReport);
}

#[test]
fn empty_and_headerless_input_is_not_a_message() {
    for raw in [
        &b""[..],
        b"\r\n\r\n",
        b"   ",
        b"just some words without a colon",
    ] {
        let r = read(raw);
        assert!(matches!(r.kind, Kind::NotAReport(_)), "{raw:?}: {r:?}");
    }
}

#[test]
fn the_relay_header_is_never_read_from_the_report_itself() {
    // A plain bounce with our header at the top (the report's own header)
    // and nothing returned: no header of ours is found.
    let raw = format!(
        "From: MAILER-DAEMON@mx.example\r\nSubject: failure notice\r\n\
         List-Unsubscribe: <https://relay.example.com/u/{TOKEN}>\r\n\r\n\
         <erin@example.net>:\r\n550 5.1.1 no such user\r\n"
    );
    let r = read(raw.as_bytes());
    assert!(matches!(r.kind, Kind::Bounce(_)));
    assert_eq!(r.relay_header(), None);
}

#[test]
fn unsubscribe_tokens_come_from_our_link_forms_only() {
    assert_eq!(
        unsubscribe_token(&format!("<https://relay.example.com/u/{TOKEN}>")),
        Some(TOKEN)
    );
    assert_eq!(
        unsubscribe_token(&format!("<mailto:unsubscribe+{TOKEN}@u.example.com>")),
        Some(TOKEN)
    );
    assert_eq!(
        unsubscribe_token(&format!(
            "<mailto:x@y.example>, <https://r.example/u/{TOKEN}?a=1>"
        )),
        Some(TOKEN)
    );
    assert_eq!(
        unsubscribe_token("<https://other.example/unsubscribe?id=5>"),
        None
    );
    assert_eq!(unsubscribe_token("<https://r.example/u/bad token>"), None);
    assert_eq!(
        unsubscribe_token("no brackets https://r.example/u/k1.abc"),
        None
    );
    assert_eq!(unsubscribe_token(""), None);
}

#[test]
fn truncated_reports_never_panic_and_keep_what_they_hold() {
    let full = fixture!("postfix-remote-user-unknown.eml");
    for end in 0..full.len() {
        let _ = classify(&read(&full[..end]), DEFAULT_HARD);
    }
    // Cut inside the returned message: the status part is whole.
    let text = String::from_utf8_lossy(full);
    let cut = text.find("Hello, here are our offers").unwrap();
    let r = read(&full[..cut]);
    assert_eq!(outcomes(&r), [BounceOutcome::Hard(code("5.1.1"))]);
    for name in [
        fixture!("gmail.eml"),
        fixture!("yahoo-arf-redacted.eml"),
        fixture!("global-dsn-utf8.eml"),
        fixture!("exim-plain.eml"),
    ] {
        for end in (0..name.len()).step_by(7) {
            let _ = classify(&read(&name[..end]), DEFAULT_HARD);
        }
    }
}

#[test]
fn garbage_never_panics() {
    // A small deterministic generator: no randomness in tests.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let alphabet: &[u8] = b"\r\n:;-=<>()\" \t.@5xX\x00\xff\xc3boundaryContent-Type: multipart/report message/delivery-status";
    for len in [1usize, 2, 10, 100, 1000, 5000] {
        for _ in 0..40 {
            let raw: Vec<u8> = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            let _ = classify(&read(&raw), DEFAULT_HARD);
            let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let _ = classify(&read(&bytes), DEFAULT_HARD);
        }
    }
}

#[test]
fn hostile_shapes_are_bounded() {
    // Thousands of recipient blocks: cut at the limit.
    let mut many = String::from(
        "From: MAILER-DAEMON@x.example\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; x.example\r\n\r\n",
    );
    for i in 0..3000 {
        many.push_str(&format!(
            "Final-Recipient: rfc822; u{i}@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
        ));
    }
    many.push_str("--b--\r\n");
    let r = read(many.as_bytes());
    assert_eq!(
        bounce(&r).status.recipients.len(),
        super::report::dsn::MAX_RECIPIENTS
    );
    // One enormous folded diagnostic: kept to the value limit.
    let long = format!(
        "From: MAILER-DAEMON@x.example\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; x.example\r\n\r\nFinal-Recipient: rfc822; a@b.example\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550{}\r\n\r\n--b--\r\n",
        " word\r\n".repeat(50_000)
    );
    let r = read(long.as_bytes());
    let rcpt = &bounce(&r).status.recipients[0];
    assert!(rcpt.diagnostic.as_ref().unwrap().text.len() <= super::report::fields::MAX_VALUE);
    // Deeply nested multiparts and attached messages.
    let mut nested = String::new();
    for i in 0..2000 {
        nested.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n"
        ));
    }
    let _ = read(nested.as_bytes());
    let mut msgs = String::from("From: a@b.example\r\n");
    for _ in 0..2000 {
        msgs.push_str("Content-Type: message/rfc822\r\n\r\n");
    }
    let _ = read(msgs.as_bytes());
    // A single line longer than any limit.
    let line = format!("Subject: {}\r\n\r\nbody", "x".repeat(3 * 1024 * 1024));
    let _ = read(line.as_bytes());
}

#[test]
fn the_upstreams_own_reply_goes_through_the_same_rules() {
    use super::classify::outcome;
    let judge = |reply: &str| outcome(&Action::Failed, StatusCode::from_reply(reply), DEFAULT_HARD);
    assert_eq!(
        judge("550 5.1.1 <erin@example.net>: Recipient address rejected"),
        BounceOutcome::Hard(code("5.1.1"))
    );
    assert_eq!(
        judge("552 5.3.4 Message too big"),
        BounceOutcome::Soft(Some(code("5.3.4")))
    );
    assert_eq!(
        judge("550 mailbox unavailable"),
        BounceOutcome::Soft(Some(code("5.0.0")))
    );
}

#[test]
fn fuzz_mime_that_trips_mail_parsers_debug_assertion_does_not_panic() {
    // Found by the `report` fuzz target: a boundary mail-parser loses its
    // part for; in a build with debug assertions its `debug_assert!`
    // panics (release builds go on). Read as not a message there.
    let r = read(fixture!("fuzz-mail-parser-debug-assert.eml"));
    let _ = classify(&r, DEFAULT_HARD);
}
