//! The report reader: any bytes read as a report (or as not one) without
//! panicking, within the limits, and classify to one outcome per
//! recipient block.
//!
//! mail-parser holds `debug_assert!(false, ..)` on MIME structures it loses
//! track of; this build has debug assertions on (`-a`, for our overflow
//! checks), where they panic, and `report::read` catches exactly that. The
//! hook below lets those few panics (by location and message) unwind to it;
//! every other panic aborts as libFuzzer's hook does.
#![no_main]

use std::sync::Once;

use consent_relay::feedback::report::{self, Kind, dsn, fields};
use consent_relay::feedback::{DEFAULT_HARD, Verdict, classify};
use libfuzzer_sys::fuzz_target;

/// mail-parser's `debug_assert!` messages in `parsers/message.rs`.
const MAIL_PARSER_ASSERTIONS: &[&str] = &[
    "Invalid part ID, could not find multipart.",
    "Invalid part ID, could not find message.",
    "Failed to restore parent message. Aborting.",
    "This should not have happened.",
];

fn tolerate_mail_parser_assertions() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_mail_parser = info.location().is_some_and(|l| {
                l.file().contains("mail-parser") && l.file().ends_with("parsers/message.rs")
            });
            let message = info
                .payload()
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str));
            if !(in_mail_parser && message.is_some_and(|m| MAIL_PARSER_ASSERTIONS.contains(&m))) {
                abort(info);
            }
        }));
    });
}

fuzz_target!(|data: &[u8]| {
    tolerate_mail_parser_assertions();
    let report = report::read(data);
    let verdict = classify(&report, DEFAULT_HARD);
    match (&report.kind, &verdict) {
        (Kind::Bounce(b), Verdict::Bounce(outcomes)) => {
            assert_eq!(outcomes.len(), b.status.recipients.len());
            assert!(b.status.recipients.len() <= dsn::MAX_RECIPIENTS);
            for r in &b.status.recipients {
                if let Some(d) = &r.diagnostic {
                    assert!(d.text.len() <= fields::MAX_VALUE);
                    assert!(!d.text.contains(['\r', '\n']));
                }
                let _ = r.effective_status();
                let _ = r.address();
            }
        }
        (Kind::Complaint(_), Verdict::Complaint | Verdict::FeedbackRecorded(_)) => {}
        (Kind::AutoReply(_), Verdict::AutoReply) => {}
        (Kind::NotAReport(_), Verdict::NotAReport) => {}
        (kind, verdict) => panic!("{kind:?} classified as {verdict:?}"),
    }
    if let Some(value) = report.relay_header() {
        if let Some(token) = report::unsubscribe_token(value) {
            assert!(value.contains(token));
        }
    }
    // The same text as an upstream reply and as a status field.
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = report::StatusCode::from_reply(text);
        let _ = report::StatusCode::from_field(text);
    }
});
