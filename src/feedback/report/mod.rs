//! Reading what comes back: the raw bytes of a received message in, a
//! typed [`Report`] out. Pure: no IO, no clock, no store; malformed input
//! gives a [`Kind::NotAReport`] or a partial report, never a panic.
//!
//! In order of precedence:
//! - a `message/delivery-status` (RFC 3464) or
//!   `message/global-delivery-status` (RFC 6533) part: a DSN
//!   ([`dsn`]); the part's body is split on blank lines and each block read
//!   with mail-parser;
//! - a `message/feedback-report` part: an abuse report (RFC 5965, [`arf`],
//!   with mail-auth);
//! - `X-Failed-Recipients`, or a bounce's sender or subject with a status
//!   code in the text: a non-standard bounce ([`plain`]);
//! - `Auto-Submitted` (RFC 3834) other than `no`, `Precedence: auto_reply`,
//!   `X-Autoreply` and kin, a vacation subject: an automatic reply;
//! - anything else is not a report.
//!
//! The returned or attached original ([`Enclosed`]: `message/rfc822`,
//! `message/global`, `text/rfc822-headers`, `message/global-headers`, or
//! the copy a plain bounce quotes after its marker line) is kept as its
//! header fields, so the caller can find the delivery from the relay's own
//! header in it ([`Report::delivery_token`], then [`Report::relay_header`]
//! for copies sent before the relay wrote it), never from the report's
//! `From:`.
//!
//! Limits: the first [`MAX_INPUT`] bytes are read (the report parts come
//! before the returned message, so a cut only shortens that), at most
//! [`dsn::MAX_RECIPIENTS`] recipient blocks, [`fields::MAX_FIELDS`] fields
//! of [`fields::MAX_VALUE`] bytes per block, [`plain::MAX_TEXT`] bytes of
//! text searched for a status code.

pub mod arf;
pub mod dsn;
pub mod fields;
pub mod plain;

use mail_parser::{Message, MessageParser, MimeHeaders, PartType};

pub use arf::{Complaint, FeedbackType};
pub use dsn::{Action, DeliveryStatus, Diagnostic, RecipientStatus, StatusCode, Typed};
pub use fields::Fields;
pub use plain::AutoReply;

/// Bytes of a message that are read.
pub const MAX_INPUT: usize = 4 * 1024 * 1024;

/// The relay's own header on every copy it relays (mandatory campaigns
/// too, with or without `[bounces] domain`): `X-Consent-Relay-Delivery:
/// b-TOKEN`, the return path's local part (`token::bounce`), naming the
/// delivery. Written by the rewrite (`rewrite::FEEDBACK_FIELDS`), which
/// removes any a sender put in the message, and covered by DKIM.
pub const DELIVERY_HEADER: &str = "X-Consent-Relay-Delivery";

/// RFC 9477's `CFBL-Feedback-ID`: the same `b-TOKEN`, on copies sent with
/// `[complaints] cfbl_address`; feedback loops that return only part of the
/// header keep this one.
pub const CFBL_FEEDBACK_ID: &str = "CFBL-Feedback-ID";

/// The fallback for copies sent before the relay wrote [`DELIVERY_HEADER`]:
/// every copy of a campaign that is not mandatory carries our
/// `List-Unsubscribe`, naming the person and the campaign through the
/// signed unsubscribe token in its links (`rewrite::headers`,
/// `delivery::copy::links`), not the delivery.
pub const RELAY_HEADER: &str = "List-Unsubscribe";

/// Which kind of bounce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BounceFormat {
    /// RFC 3464 `message/delivery-status`.
    Dsn,
    /// RFC 6533 `message/global-delivery-status` (UTF-8).
    GlobalDsn,
    /// No status part: read from `X-Failed-Recipients` and the text.
    NonStandard,
}

/// A bounce: who it is about and what happened to each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounce {
    pub format: BounceFormat,
    pub status: DeliveryStatus,
}

/// Why a message is not a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotAReport {
    /// No bytes, or nothing that reads as a header.
    NotAMessage,
    /// A message, but neither a report, a bounce nor an automatic reply.
    NoReport,
}

impl std::fmt::Display for NotAReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NotAReport::NotAMessage => "not a mail message",
            NotAReport::NoReport => {
                "a message, but not a bounce, a complaint or an automatic reply"
            }
        })
    }
}

/// What a received message is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Bounce(Bounce),
    Complaint(Complaint),
    AutoReply(AutoReply),
    NotAReport(NotAReport),
}

/// How the original came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnclosedForm {
    /// The whole message (`message/rfc822`, `message/global`).
    Message,
    /// Only its header (`text/rfc822-headers`, `message/global-headers`).
    Headers,
    /// Quoted in a plain bounce's text after a marker line.
    Inline,
}

/// The returned or attached original message, as its header fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enclosed {
    pub form: EnclosedForm,
    pub headers: Fields,
}

impl Enclosed {
    /// The first value of `name` in the original's header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }
}

/// A received message, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub kind: Kind,
    /// The original the report returns or attaches, when it does.
    pub enclosed: Option<Enclosed>,
}

impl Report {
    fn not_a_report(why: NotAReport) -> Report {
        Report {
            kind: Kind::NotAReport(why),
            enclosed: None,
        }
    }

    /// The value of `name` in the returned or attached original (never in
    /// the report's own header: a report's `From:` and list headers are
    /// the reporter's).
    pub fn enclosed_header(&self, name: &str) -> Option<&str> {
        self.enclosed.as_ref().and_then(|e| e.header(name))
    }

    /// The `b-TOKEN` of the returned or attached original: its
    /// [`DELIVERY_HEADER`], else its [`CFBL_FEEDBACK_ID`]; how a report
    /// whose recipient is blanked (RFC 6590), or that came to another
    /// address than the return path, still names the delivery. A value not
    /// of the token's shape is passed over; the caller verifies the token
    /// (`token::bounce::token_of`, `token::bounce::verify`).
    pub fn delivery_token(&self) -> Option<&str> {
        let enclosed = self.enclosed.as_ref()?;
        [DELIVERY_HEADER, CFBL_FEEDBACK_ID]
            .into_iter()
            .flat_map(|name| enclosed.headers.all(name))
            .map(str::trim)
            .find(|v| is_delivery_token(v))
    }

    /// The relay's older header ([`RELAY_HEADER`]) in the returned or
    /// attached original: how a report about a copy sent before
    /// [`DELIVERY_HEADER`] still names the person. See [`unsubscribe_token`].
    pub fn relay_header(&self) -> Option<&str> {
        self.enclosed_header(RELAY_HEADER)
    }
}

/// Whether `value` looks like `b-TOKEN`: the prefix in any case, then the
/// token's length of base32 characters (a mail system may change case).
fn is_delivery_token(value: &str) -> bool {
    use crate::token::bounce::{PREFIX, TOKEN_LEN};
    value.len() == PREFIX.len() + TOKEN_LEN
        && value.is_char_boundary(PREFIX.len())
        && value[..PREFIX.len()].eq_ignore_ascii_case(PREFIX)
        && value[PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric())
}

/// The signed token in a `List-Unsubscribe` value the relay wrote: from
/// `<https://HOST/u/TOKEN>` or `<mailto:unsubscribe+TOKEN@DOMAIN>`. The
/// caller verifies it (`token::verify_for`, purpose unsubscribe); a header
/// some other sender wrote gives a token that does not verify.
pub fn unsubscribe_token(value: &str) -> Option<&str> {
    let is_token = |t: &&str| {
        !t.is_empty()
            && t.len() <= 200
            && t.contains('.')
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    let uris = value
        .split('<')
        .skip(1)
        .filter_map(|rest| rest.split_once('>').map(|(uri, _)| uri.trim()));
    for uri in uris.take(8) {
        let found = if let Some(mailto) = uri.strip_prefix("mailto:") {
            mailto
                .strip_prefix("unsubscribe+")
                .and_then(|rest| rest.split_once('@'))
                .map(|(token, _)| token)
        } else if uri.starts_with("https://") || uri.starts_with("http://") {
            uri.rsplit_once("/u/")
                .map(|(_, rest)| rest.split(['?', '#', '/']).next().unwrap_or(""))
        } else {
            None
        };
        if let Some(token) = found.filter(is_token) {
            return Some(token);
        }
    }
    None
}

/// Reads a received message.
pub fn read(raw: &[u8]) -> Report {
    let raw = &raw[..raw.len().min(MAX_INPUT)];
    if raw.iter().all(|b| b.is_ascii_whitespace()) {
        return Report::not_a_report(NotAReport::NotAMessage);
    }
    let Some(message) = parse_message(raw) else {
        return Report::not_a_report(NotAReport::NotAMessage);
    };
    let Some(root) = message.parts.first() else {
        return Report::not_a_report(NotAReport::NotAMessage);
    };
    let top = Fields::from_headers(&root.headers, raw);
    if top.is_empty() {
        return Report::not_a_report(NotAReport::NotAMessage);
    }
    let enclosed = find_enclosed(&message);
    let text = message_text(&message);
    let with = |kind| Report {
        kind,
        enclosed: enclosed.clone(),
    };

    if let Some((format, body)) = status_part(&message) {
        let mut status = dsn::parse(&body);
        if status.recipients.is_empty()
            && let Some(plain) = plain::bounce(&top, &text, dsn::MAX_RECIPIENTS)
        {
            status.recipients = plain.recipients;
        }
        return with(Kind::Bounce(Bounce { format, status }));
    }
    if let Some(complaint) = part_body(&message, "feedback-report").and_then(|b| arf::parse(&b)) {
        return with(Kind::Complaint(complaint));
    }
    if let Some(status) = plain::bounce(&top, &text, dsn::MAX_RECIPIENTS) {
        let enclosed = enclosed.or_else(|| inline_copy(&text));
        return Report {
            kind: Kind::Bounce(Bounce {
                format: BounceFormat::NonStandard,
                status,
            }),
            enclosed,
        };
    }
    if let Some(auto) = plain::auto_reply(&top) {
        return with(Kind::AutoReply(auto));
    }
    Report::not_a_report(NotAReport::NoReport)
}

/// mail-parser's reading of the message. Its parser holds
/// `debug_assert!(false, ..)` on MIME structures it loses track of (found
/// by the `report` fuzz target): release builds go on past them, builds
/// with debug assertions panic. Such a message is read as none rather than
/// letting that panic out.
fn parse_message(raw: &[u8]) -> Option<Message<'_>> {
    std::panic::catch_unwind(|| MessageParser::new().parse(raw))
        .ok()
        .flatten()
}

/// The body of a part as bytes, whether mail-parser made it text or binary.
fn body_bytes(part: &mail_parser::MessagePart<'_>) -> Option<Vec<u8>> {
    match &part.body {
        PartType::Text(t) | PartType::Html(t) => Some(t.as_bytes().to_vec()),
        PartType::Binary(b) | PartType::InlineBinary(b) => Some(b.to_vec()),
        PartType::Message(_) | PartType::Multipart(_) => None,
    }
}

/// The first part (not the root) of type `message/SUBTYPE`, as bytes.
fn part_body(message: &Message<'_>, subtype: &str) -> Option<Vec<u8>> {
    message
        .parts
        .iter()
        .skip(1)
        .find(|p| p.is_content_type("message", subtype))
        .and_then(body_bytes)
}

/// The delivery-status part, and which kind it is.
fn status_part(message: &Message<'_>) -> Option<(BounceFormat, Vec<u8>)> {
    part_body(message, "delivery-status")
        .map(|b| (BounceFormat::Dsn, b))
        .or_else(|| {
            part_body(message, "global-delivery-status").map(|b| (BounceFormat::GlobalDsn, b))
        })
}

/// The first returned or attached original among the message's parts.
fn find_enclosed(message: &Message<'_>) -> Option<Enclosed> {
    message.parts.iter().skip(1).find_map(|part| {
        let headers_only = part.is_content_type("text", "rfc822-headers")
            || part.is_content_type("message", "global-headers");
        match &part.body {
            PartType::Message(inner) => {
                let root = inner.parts.first()?;
                Some(Enclosed {
                    form: EnclosedForm::Message,
                    headers: Fields::from_headers(&root.headers, inner.raw_message.as_ref()),
                })
            }
            _ if headers_only => {
                let bytes = body_bytes(part)?;
                Some(Enclosed {
                    form: EnclosedForm::Headers,
                    headers: Fields::parse(&bytes),
                })
                .filter(|e| !e.headers.is_empty())
            }
            // A message/rfc822 part mail-parser could not read as a message
            // (encoded too deep, broken): its header may still be readable.
            _ if part.is_content_type("message", "rfc822")
                || part.is_content_type("message", "global") =>
            {
                let bytes = body_bytes(part)?;
                Some(Enclosed {
                    form: EnclosedForm::Message,
                    headers: Fields::parse(&bytes),
                })
                .filter(|e| !e.headers.is_empty())
            }
            _ => None,
        }
    })
}

/// The message's text parts, joined and bounded (where a plain bounce
/// says what went wrong).
fn message_text(message: &Message<'_>) -> String {
    let mut text = String::new();
    for id in message.text_body.iter().take(16) {
        let Some(part) = message.parts.get(*id as usize) else {
            continue;
        };
        if let PartType::Text(t) = &part.body {
            let room = plain::MAX_TEXT.saturating_sub(text.len());
            if room == 0 {
                break;
            }
            let mut end = t.len().min(room);
            while !t.is_char_boundary(end) {
                end -= 1;
            }
            text.push_str(&t[..end]);
            text.push('\n');
        }
    }
    text
}

/// The copy a plain bounce quotes after one of its marker lines.
fn inline_copy(text: &str) -> Option<Enclosed> {
    let at = plain::INLINE_COPY_MARKERS
        .iter()
        .find_map(|m| text.find(m).map(|at| at + m.len()))?;
    let rest = text[at..].trim_start_matches(['\r', '\n', ' ']);
    let headers = Fields::parse(rest.as_bytes());
    (!headers.is_empty()).then_some(Enclosed {
        form: EnclosedForm::Inline,
        headers,
    })
}
