//! The machine-readable part of a delivery status notification: RFC 3464
//! `message/delivery-status` and RFC 6533 `message/global-delivery-status`
//! (the same fields, UTF-8 allowed). The body is a per-message block and
//! then one block per recipient, separated by blank lines (RFC 3464 2.1).

use std::fmt;
use std::str::FromStr;

use super::fields::{self, Fields};

/// Recipient blocks kept from one report; a DSN about more is cut there.
pub const MAX_RECIPIENTS: usize = 1000;

/// An enhanced status code (RFC 3463): `class.subject.detail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StatusCode {
    /// 2 (success), 4 (persistent transient failure) or 5 (permanent).
    pub class: u8,
    pub subject: u16,
    pub detail: u16,
}

impl StatusCode {
    pub const fn new(class: u8, subject: u16, detail: u16) -> StatusCode {
        StatusCode {
            class,
            subject,
            detail,
        }
    }

    /// Reads one code, `5.1.1`, with nothing around it.
    fn exact(s: &str) -> Option<StatusCode> {
        let mut it = s.split('.');
        let (class, subject, detail) = (it.next()?, it.next()?, it.next()?);
        if it.next().is_some() {
            return None;
        }
        let num = |p: &str, max_len: usize| -> Option<u16> {
            (!p.is_empty() && p.len() <= max_len && p.bytes().all(|b| b.is_ascii_digit()))
                .then(|| p.parse().ok())
                .flatten()
        };
        let class = match class {
            "2" => 2,
            "4" => 4,
            "5" => 5,
            _ => return None,
        };
        Some(StatusCode::new(class, num(subject, 3)?, num(detail, 3)?))
    }

    /// The value of a `Status` field: `5.1.1`, `5.0.0 (permanent failure)`
    /// (comments are dropped), or, from generators that write the reply
    /// code there, `550 5.1.1` or a bare `550` (see [`StatusCode::from_basic`]).
    pub fn from_field(value: &str) -> Option<StatusCode> {
        let text = strip_comments(value);
        let mut tokens = text.split_whitespace();
        let first = tokens.next()?;
        if let Some(code) = StatusCode::exact(first) {
            return Some(code);
        }
        if is_basic(first) {
            return tokens
                .next()
                .and_then(StatusCode::exact)
                .or_else(|| StatusCode::from_basic(first));
        }
        None
    }

    /// The enhanced code an SMTP reply carries (`550 5.1.1 no such user`,
    /// `550-5.1.1 ...`, `#5.1.1`), or the generic one its basic code stands
    /// for (`550 no such user` → 5.0.0), or none. The one reading of a
    /// reply: a DSN's `Diagnostic-Code`, the upstream's own reply to a copy
    /// (its rules, and the `Status` of the DSN delivery writes for it).
    pub fn from_reply(reply: &str) -> Option<StatusCode> {
        let mut basic = None;
        for token in reply
            .split(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | '[' | ']' | ',' | ';'))
            .take(64)
        {
            let token = token.trim_matches(|c: char| matches!(c, '#' | '<' | '>' | ':' | '"'));
            let (head, tail) = match token.split_once('-') {
                Some((head, tail)) => (head, Some(tail)),
                None => (token, None),
            };
            if let Some(code) = StatusCode::exact(token) {
                return Some(code);
            }
            if let Some(code) = tail.and_then(StatusCode::exact) {
                return Some(code);
            }
            if basic.is_none() && is_basic(head) {
                basic = StatusCode::from_basic(head);
            }
        }
        basic
    }

    /// The generic enhanced code for a basic reply code (RFC 3463 3.1):
    /// `5yz` → 5.0.0, `4yz` → 4.0.0, `2yz` → 2.0.0.
    pub fn from_basic(code: &str) -> Option<StatusCode> {
        if !is_basic(code) {
            return None;
        }
        match code.as_bytes().first() {
            Some(b'2') => Some(StatusCode::new(2, 0, 0)),
            Some(b'4') => Some(StatusCode::new(4, 0, 0)),
            Some(b'5') => Some(StatusCode::new(5, 0, 0)),
            _ => None,
        }
    }

    /// Whether this is the class's catch-all (`5.0.0`, `4.0.0`), which says
    /// nothing about the cause.
    pub fn is_generic(self) -> bool {
        self.subject == 0 && self.detail == 0
    }
}

/// `550`, `421`, `250`: three digits, the first 2, 4 or 5.
fn is_basic(s: &str) -> bool {
    s.len() == 3
        && s.bytes().all(|b| b.is_ascii_digit())
        && matches!(s.as_bytes()[0], b'2' | b'4' | b'5')
        && s.as_bytes()[1] <= b'5'
}

impl fmt::Display for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// The error of a text that is not an enhanced status code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an enhanced status code (write it as class.subject.detail, e.g. 5.1.1)")]
pub struct NotAStatus(pub String);

impl FromStr for StatusCode {
    type Err = NotAStatus;

    /// Exactly `class.subject.detail` (configuration lists use this).
    fn from_str(s: &str) -> Result<StatusCode, NotAStatus> {
        StatusCode::exact(s.trim()).ok_or_else(|| NotAStatus(s.to_owned()))
    }
}

/// `Action` of a recipient block (RFC 3464 2.3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Failed,
    Delayed,
    Delivered,
    Relayed,
    Expanded,
    /// A value outside RFC 3464's list, lowercased.
    Other(String),
    /// No `Action` field.
    Missing,
}

impl Action {
    fn from_field(value: Option<&str>) -> Action {
        let Some(value) = value else {
            return Action::Missing;
        };
        let word = strip_comments(value);
        let word = word
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        match word.as_str() {
            "failed" => Action::Failed,
            "delayed" => Action::Delayed,
            "delivered" => Action::Delivered,
            "relayed" => Action::Relayed,
            "expanded" => Action::Expanded,
            "" => Action::Missing,
            _ => Action::Other(word),
        }
    }
}

/// A typed value: `address-type ; address` (`rfc822; erin@example.net`,
/// `utf-8; 用户@例子.广告`) or `mta-name-type ; name` (`dns; mx.example.net`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Typed {
    /// The type, lowercased (`rfc822`, `utf-8`, `dns`, `x-postfix`, ...);
    /// empty when the value had none.
    pub kind: String,
    /// The value after the `;`: addresses without angle brackets; in the
    /// `utf-8` type, RFC 6533's `\x{HEX}` escapes decoded.
    pub value: String,
}

impl Typed {
    fn parse(raw: &str) -> Option<Typed> {
        let (kind, value) = match raw.split_once(';') {
            Some((kind, value)) => (kind.trim().to_ascii_lowercase(), value.trim()),
            None => (String::new(), raw.trim()),
        };
        (!value.is_empty()).then(|| Typed {
            kind,
            value: value.to_owned(),
        })
    }

    fn address(raw: &str) -> Option<Typed> {
        let mut t = Typed::parse(raw)?;
        let bare = strip_comments(&t.value);
        let bare = bare.trim();
        let bare = bare
            .strip_prefix('<')
            .and_then(|b| b.strip_suffix('>'))
            .unwrap_or(bare);
        t.value = if t.kind == "utf-8" {
            unescape_utf8_addr(bare)
        } else {
            bare.to_owned()
        };
        (!t.value.is_empty()).then_some(t)
    }

    fn mta(raw: &str) -> Option<Typed> {
        let mut t = Typed::parse(raw)?;
        // Gmail: `dns; mx.example.net. (192.0.2.1, the server for ...)`.
        let name = strip_comments(&t.value);
        t.value = name.trim().trim_end_matches('.').to_owned();
        (!t.value.is_empty()).then_some(t)
    }
}

/// RFC 6533 3: in a `utf-8` address, `\x{HEX}` stands for that character
/// (used for those that may not appear as they are). Invalid escapes are
/// kept as written.
fn unescape_utf8_addr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find("\\x{") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 3..];
        let decoded = after.find('}').and_then(|end| {
            let hex = &after[..end];
            (1..=6)
                .contains(&hex.len())
                .then(|| u32::from_str_radix(hex, 16).ok())
                .flatten()
                .and_then(char::from_u32)
                .map(|c| (c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &after[end + 1..];
            }
            None => {
                out.push_str("\\x{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// A `Diagnostic-Code`: `smtp; 550 5.1.1 ...` (type lowercased, text on
/// one line however it was folded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub kind: String,
    pub text: String,
}

/// One recipient block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientStatus {
    pub final_recipient: Option<Typed>,
    pub original_recipient: Option<Typed>,
    pub action: Action,
    /// `Status`, comments dropped; `None` when absent or unreadable.
    pub status: Option<StatusCode>,
    pub diagnostic: Option<Diagnostic>,
    pub remote_mta: Option<Typed>,
}

impl RecipientStatus {
    fn parse(f: &Fields) -> RecipientStatus {
        RecipientStatus {
            final_recipient: f.get("Final-Recipient").and_then(Typed::address),
            original_recipient: f.get("Original-Recipient").and_then(Typed::address),
            action: Action::from_field(f.get("Action")),
            status: f.get("Status").and_then(StatusCode::from_field),
            diagnostic: f
                .get("Diagnostic-Code")
                .and_then(Typed::parse)
                .map(|t| Diagnostic {
                    kind: t.kind,
                    text: t.value,
                }),
            remote_mta: f.get("Remote-MTA").and_then(Typed::mta),
        }
    }

    /// The status to judge the recipient by. Some MTAs (Exim) always write
    /// the catch-all `5.0.0` or `4.0.0` in `Status` and the remote
    /// server's real reply in `Diagnostic-Code` (`smtp; 550 5.1.1 ...`):
    /// when `Status` is the catch-all (or missing) and an `smtp` diagnostic
    /// carries a specific code of the same class, that code is used.
    pub fn effective_status(&self) -> Option<StatusCode> {
        let from_diagnostic = self
            .diagnostic
            .as_ref()
            .filter(|d| d.kind == "smtp")
            .and_then(|d| StatusCode::from_reply(&d.text))
            .filter(|c| !c.is_generic());
        match (self.status, from_diagnostic) {
            (Some(s), Some(d)) if s.is_generic() && s.class == d.class => Some(d),
            (None, d) => d,
            (s, _) => s,
        }
    }

    /// The recipient's address: `Original-Recipient` (what the sender
    /// wrote) when given, else `Final-Recipient`.
    pub fn address(&self) -> Option<&str> {
        self.original_recipient
            .as_ref()
            .or(self.final_recipient.as_ref())
            .map(|t| t.value.as_str())
    }
}

/// The per-message fields and the recipient blocks.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeliveryStatus {
    pub reporting_mta: Option<Typed>,
    /// `Arrival-Date`, seconds since the epoch.
    pub arrival_date: Option<i64>,
    pub original_envelope_id: Option<String>,
    pub recipients: Vec<RecipientStatus>,
}

/// Whether a block is about a recipient (rather than the message).
fn is_recipient_block(f: &Fields) -> bool {
    f.has("Final-Recipient") || f.has("Original-Recipient") || f.has("Action")
}

/// Reads the body of a `message/delivery-status` or
/// `message/global-delivery-status` part.
pub fn parse(body: &[u8]) -> DeliveryStatus {
    let mut ds = DeliveryStatus::default();
    for (i, block) in fields::blocks(body, MAX_RECIPIENTS + 1)
        .into_iter()
        .enumerate()
    {
        let f = Fields::parse(block);
        if is_recipient_block(&f) {
            ds.recipients.push(RecipientStatus::parse(&f));
        } else if i == 0 {
            ds.reporting_mta = f.get("Reporting-MTA").and_then(Typed::mta);
            ds.arrival_date = f.get("Arrival-Date").and_then(parse_date);
            ds.original_envelope_id = f.get("Original-Envelope-Id").map(str::to_owned);
        }
    }
    ds.recipients.truncate(MAX_RECIPIENTS);
    ds
}

/// An RFC 5322 date as seconds since the epoch.
pub fn parse_date(value: &str) -> Option<i64> {
    mail_parser::DateTime::parse_rfc822(value.trim())
        .filter(|d| d.is_valid())
        .map(|d| d.to_timestamp())
}

/// The text without RFC 5322 comments (`(...)`, nested, `\` escapes).
pub fn strip_comments(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut depth = 0usize;
    let mut escaped = false;
    for c in s.chars() {
        if depth > 0 {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
        } else if c == '(' {
            depth = 1;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields_read_with_and_without_comments() {
        assert_eq!(
            StatusCode::from_field("5.0.0 (permanent failure)"),
            Some(StatusCode::new(5, 0, 0))
        );
        assert_eq!(
            StatusCode::from_field("5.1.10"),
            Some(StatusCode::new(5, 1, 10))
        );
        assert_eq!(
            StatusCode::from_field("550 5.1.1"),
            Some(StatusCode::new(5, 1, 1))
        );
        assert_eq!(
            StatusCode::from_field("550"),
            Some(StatusCode::new(5, 0, 0))
        );
        assert_eq!(StatusCode::from_field("(only a comment)"), None);
        assert_eq!(StatusCode::from_field("6.1.1"), None);
        assert_eq!(StatusCode::from_field("5.1"), None);
        assert_eq!(StatusCode::from_field("5.1.1.1"), None);
        assert_eq!(StatusCode::from_field("5.1.1234"), None);
        assert_eq!(StatusCode::from_field(""), None);
    }

    #[test]
    fn replies_give_their_enhanced_or_generic_code() {
        let c = |s| StatusCode::from_reply(s).map(|c| c.to_string());
        assert_eq!(
            c("550-5.1.1 The email account that you tried"),
            Some("5.1.1".into())
        );
        assert_eq!(
            c("Sorry, no mailbox here by that name. (#5.1.1)"),
            Some("5.1.1".into())
        );
        assert_eq!(c("550 Requested action not taken"), Some("5.0.0".into()));
        assert_eq!(c("452 4.2.2 mailbox full"), Some("4.2.2".into()));
        // The upstream's replies to a copy, as delivery reads them for the
        // DSN it writes (this replaced `delivery::dsn::status_of`).
        assert_eq!(c("550 5.1.1 no such user"), Some("5.1.1".into()));
        assert_eq!(c("554 transaction failed"), Some("5.0.0".into()));
        assert_eq!(c("no code here at all"), None);
        assert_eq!(c("version 10.2.3.4 of 990"), None);
    }

    #[test]
    fn config_codes_parse_exactly() {
        assert_eq!("5.2.1".parse(), Ok(StatusCode::new(5, 2, 1)));
        assert!("5.2".parse::<StatusCode>().is_err());
        assert!("550".parse::<StatusCode>().is_err());
        let err = "x".parse::<StatusCode>().unwrap_err().to_string();
        assert!(err.contains("e.g. 5.1.1"), "{err}");
    }

    #[test]
    fn utf8_addresses_decode_their_escapes() {
        let t = Typed::address("utf-8; <j\\x{F6}rg@b\\x{FC}cher.example>").unwrap();
        assert_eq!(t.kind, "utf-8");
        assert_eq!(t.value, "jörg@bücher.example");
        assert_eq!(unescape_utf8_addr("a\\x{zz}b\\x{"), "a\\x{zz}b\\x{");
        assert_eq!(unescape_utf8_addr("\\x{110000}"), "\\x{110000}");
    }

    #[test]
    fn comments_nest_and_escape() {
        assert_eq!(strip_comments("a (b (c) \\) d) e"), "a  e");
        assert_eq!(strip_comments("unclosed (x"), "unclosed ");
    }
}
