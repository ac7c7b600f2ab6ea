//! What is not a standard report but still a bounce or an automatic reply:
//! the plain-text bounces of older or home-made MTAs (qmail's "failure
//! notice", Exim's without a DSN part, Exchange relays), read from
//! `X-Failed-Recipients` and the status code in the text; and the
//! automatic replies of RFC 3834 and the vacation programs that predate it.

use super::dsn::{Action, DeliveryStatus, RecipientStatus, StatusCode, Typed};
use super::fields::{Fields, unfold};

/// Bytes of text read when looking for a status code.
pub const MAX_TEXT: usize = 64 * 1024;

/// Senders that write bounces (local part, lowercased).
const BOUNCE_SENDERS: &[&str] = &[
    "mailer-daemon",
    "postmaster",
    "mail-daemon",
    "mailerdaemon",
    "mdaemon",
    "bounce",
    "bounces",
];

/// Subjects of bounces (lowercased, contained).
const BOUNCE_SUBJECTS: &[&str] = &[
    "undeliver",
    "undelivered",
    "delivery status notification",
    "delivery failure",
    "delivery failed",
    "delivery has failed",
    "failure notice",
    "returned mail",
    "mail delivery failed",
    "mail delivery failure",
    "non remis",
    "unzustellbar",
    "nicht zustellbar",
    "no se puede entregar",
];

/// Words that say a bounce is only a delay warning (lowercased).
const DELAY_WORDS: &[&str] = &[
    "delayed",
    "delay notification",
    "will continue to try",
    "still trying",
    "will retry",
    "not yet been delivered",
];

/// Subject beginnings of automatic replies (lowercased).
const AUTO_SUBJECTS: &[&str] = &[
    "auto:",
    "autoreply",
    "auto-reply",
    "auto reply",
    "automatic reply",
    "out of office",
    "out of the office",
    "vacation",
    "away from the office",
    "réponse automatique",
    "reponse automatique",
    "absence du bureau",
    "abwesenheitsnotiz",
    "automatische antwort",
    "respuesta automática",
    "respuesta automatica",
    "fuera de la oficina",
    "risposta automatica",
    "automatisch antwoord",
    "autosvar",
];

/// Where a plain-text bounce quotes the message it returns (Exim, qmail).
pub const INLINE_COPY_MARKERS: &[&str] = &[
    "------ This is a copy of the message, including all the headers. ------",
    "--- Below this line is a copy of the message.",
    "------ This is a copy of the message's headers. ------",
];

/// How an automatic reply gave itself away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoReply {
    /// The field and its value, e.g. `Auto-Submitted: auto-replied`.
    pub signal: String,
}

/// The local part of the first address in `From`, lowercased.
fn sender_local_part(top: &Fields) -> Option<String> {
    let from = top.get("From")?;
    let addr = match (from.rfind('<'), from.rfind('>')) {
        (Some(a), Some(b)) if a < b => &from[a + 1..b],
        _ => from
            .split_whitespace()
            .find(|w| w.contains('@'))
            .unwrap_or(from),
    };
    let local = addr.split('@').next()?.trim().trim_matches('"');
    Some(local.to_ascii_lowercase())
}

fn subject(top: &Fields) -> String {
    top.get("Subject").unwrap_or("").to_lowercase()
}

/// Whether the message looks like a bounce by its sender or subject.
fn looks_like_bounce(top: &Fields) -> bool {
    let sender = sender_local_part(top).is_some_and(|l| BOUNCE_SENDERS.contains(&l.as_str()));
    let subject = subject(top);
    sender || BOUNCE_SUBJECTS.iter().any(|s| subject.contains(s))
}

/// The first status code of class 4 or 5 in the text and the line that
/// holds it: a specific code wins over a generic one (`550` alone).
fn find_status(text: &str) -> Option<(StatusCode, String)> {
    let mut generic = None;
    for line in text.lines().take(5000) {
        let Some(code) = StatusCode::from_reply(line) else {
            continue;
        };
        if code.class == 2 {
            continue;
        }
        if !code.is_generic() {
            return Some((code, unfold(line.as_bytes())));
        }
        if generic.is_none() {
            generic = Some((code, unfold(line.as_bytes())));
        }
    }
    generic
}

/// A bare address (`erin@example.net` or `<erin@example.net>`).
fn as_address(s: &str) -> Option<String> {
    let s = s.trim().trim_end_matches(':').trim();
    let s = s
        .strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .unwrap_or(s);
    let ok = s.len() <= 320
        && s.matches('@').count() == 1
        && !s.starts_with('@')
        && !s.ends_with('@')
        && !s
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>()[],;\"".contains(c));
    ok.then(|| s.to_owned())
}

/// The addresses a plain bounce names as failed: qmail's and Postfix's
/// `<erin@example.net>:` at the start of a line, and the indented address
/// after Exim's "The following address(es) failed:".
fn failed_addresses(text: &str, max: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut after_failed = false;
    for line in text.lines().take(5000) {
        if out.len() >= max {
            break;
        }
        let trimmed = line.trim();
        let candidate = if trimmed.starts_with('<') && trimmed.contains(">:") {
            trimmed.split(">:").next().map(|a| format!("{a}>"))
        } else if after_failed && line.starts_with(char::is_whitespace) {
            Some(trimmed.to_owned())
        } else {
            None
        };
        if let Some(addr) = candidate.as_deref().and_then(as_address)
            && !out.contains(&addr)
        {
            out.push(addr);
        }
        if trimmed.to_ascii_lowercase().ends_with("failed:") {
            after_failed = true;
        } else if !trimmed.is_empty() && !line.starts_with(char::is_whitespace) {
            after_failed = false;
        }
    }
    out
}

/// Reads a plain-text bounce: `None` when the message shows no sign of
/// being one. `text` is the message's text, already bounded.
pub fn bounce(top: &Fields, text: &str, max_recipients: usize) -> Option<DeliveryStatus> {
    let mut listed: Vec<String> = top
        .all("X-Failed-Recipients")
        .flat_map(|v| v.split(','))
        .filter_map(as_address)
        .take(max_recipients)
        .collect();
    let status = find_status(text);
    if listed.is_empty() && !(looks_like_bounce(top) && status.is_some()) {
        return None;
    }
    if listed.is_empty() {
        listed = failed_addresses(text, max_recipients);
    }
    let lower = format!("{} {}", subject(top), text.to_lowercase());
    let delayed = status.as_ref().is_none_or(|(c, _)| c.class == 4)
        && DELAY_WORDS.iter().any(|w| lower.contains(w));
    let action = if delayed {
        Action::Delayed
    } else {
        Action::Failed
    };
    let recipient = |addr: Option<String>| RecipientStatus {
        final_recipient: addr.map(|value| Typed {
            kind: "rfc822".into(),
            value,
        }),
        original_recipient: None,
        action: action.clone(),
        status: status.as_ref().map(|(c, _)| *c),
        diagnostic: status.as_ref().map(|(_, line)| super::dsn::Diagnostic {
            kind: String::new(),
            text: line.clone(),
        }),
        remote_mta: None,
    };
    let recipients = if listed.is_empty() {
        // Nobody named: the caller finds the delivery from the VERP token
        // or the returned copy.
        vec![recipient(None)]
    } else {
        listed.into_iter().map(|a| recipient(Some(a))).collect()
    };
    Some(DeliveryStatus {
        reporting_mta: None,
        arrival_date: None,
        original_envelope_id: None,
        recipients,
    })
}

/// Reads the signs of an automatic reply (RFC 3834 and older practice).
pub fn auto_reply(top: &Fields) -> Option<AutoReply> {
    let signal = |name: &str, value: &str| {
        Some(AutoReply {
            signal: format!("{name}: {value}"),
        })
    };
    if let Some(v) = top.get("Auto-Submitted") {
        let word = v
            .split([';', ' '])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        if !word.is_empty() && word != "no" {
            return signal("Auto-Submitted", v);
        }
    }
    if let Some(v) = top.get("Precedence") {
        let word = v.trim().to_ascii_lowercase();
        if word == "auto_reply" || word == "auto-reply" {
            return signal("Precedence", v);
        }
    }
    for name in [
        "X-Autoreply",
        "X-Autorespond",
        "X-Autoresponder",
        "X-Vacation",
    ] {
        if let Some(v) = top.get(name) {
            return signal(name, v);
        }
    }
    let subject = subject(top);
    let subject = subject.trim_start();
    if AUTO_SUBJECTS.iter().any(|s| subject.starts_with(s)) {
        return signal("Subject", top.get("Subject").unwrap_or(""));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_addresses_from_qmail_postfix_and_exim_texts() {
        let qmail = "Hi. This is the qmail-send program at mx.example.\n\n<erin@example.net>:\n192.0.2.1 does not like recipient.\n";
        assert_eq!(failed_addresses(qmail, 10), ["erin@example.net"]);
        let exim = "This is a permanent error. The following address(es) failed:\n\n  erin@example.net\n    host mx.example.net [192.0.2.1]\n";
        assert_eq!(failed_addresses(exim, 10), ["erin@example.net"]);
        assert!(failed_addresses("nothing here <a@b>", 10).is_empty());
    }

    #[test]
    fn specific_codes_win_over_generic_ones() {
        let (c, line) =
            find_status("250 ok\n550 sorry\nRemote said: 550 5.1.1 no such user\n").unwrap();
        assert_eq!(c, StatusCode::new(5, 1, 1));
        assert_eq!(line, "Remote said: 550 5.1.1 no such user");
        let (c, _) = find_status("550 sorry").unwrap();
        assert_eq!(c, StatusCode::new(5, 0, 0));
        assert_eq!(find_status("250 2.0.0 ok"), None);
    }
}
