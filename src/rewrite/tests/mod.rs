//! Tests of the recipient's copy. Corpus messages live in `tests/rewrite/`;
//! every copy is parsed back with mail-parser, checked with Python's
//! `email` package under `policy.strict` (skipped when python3 is absent),
//! and checked for bare CR or LF and for lines over 998 octets.

mod copies;
mod hostile;
mod units;

use std::io::Write;
use std::process::{Command, Stdio};

use base64::Engine as _;
use mail_parser::{MessageParser, MimeHeaders, PartType};

use super::{FEEDBACK_FIELDS, FeedbackHeaders, Footer, Links, ListHeaders, Template};

pub(super) const UNSUB: &str = "https://relay.example/u/TOKEN-1?a=1&b=2";
pub(super) const UNSUB_HTML: &str = "https://relay.example/u/TOKEN-1?a=1&amp;b=2";
pub(super) const PREFS: &str = "https://relay.example/p/PREF-1";
pub(super) const OPTIN: &str = "https://relay.example/o/OPT-1";
pub(super) const MAILTO: &str = "mailto:unsubscribe+TOKEN-1@relay.example";

pub(super) fn links() -> Links<'static> {
    Links {
        unsubscribe: UNSUB,
        preferences: PREFS,
        optin: OPTIN,
        mailto: Some(MAILTO),
    }
}

pub(super) fn list() -> ListHeaders<'static> {
    ListHeaders {
        list_id: Some("newsletter.shop.example"),
        add_unsubscribe: true,
        feedback: None,
    }
}

pub(super) const FOOTER: Footer<'static> = Footer {
    text: "Pour gérer vos abonnements : {url}",
    html: "<p class=\"footer\">Pour gérer vos <a href=\"{url}\">abonnements</a></p>",
};

/// A corpus file, with CRLF line endings whatever git did to it.
macro_rules! corpus {
    ($name:literal) => {
        $crate::rewrite::tests::crlf(include_bytes!(concat!("../../../tests/rewrite/", $name)))
    };
}
pub(super) use corpus;

/// Turns bare LF into CRLF.
pub(super) fn crlf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 64);
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\n' && (i == 0 || bytes[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

/// Parses with campaign header `X-Campaign` and renders with the default
/// links, list headers and footer.
pub(super) fn copy(raw: &[u8]) -> (Template, Vec<u8>) {
    let template = Template::parse(raw, "X-Campaign");
    let out = template.render(&links(), &list(), Some(&FOOTER));
    assert_well_formed(raw, &out);
    (template, out)
}

/// No bare CR or LF, and no line over 998 octets that the input did not
/// already have.
pub(super) fn assert_well_formed(input: &[u8], out: &[u8]) {
    for (i, &b) in out.iter().enumerate() {
        if b == b'\r' {
            assert_eq!(out.get(i + 1), Some(&b'\n'), "bare CR at {i}");
        }
        if b == b'\n' {
            assert!(i > 0 && out[i - 1] == b'\r', "bare LF at {i}");
        }
    }
    for line in out.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > 998 {
            let needle = line.strip_prefix(b" ").unwrap_or(line);
            assert!(
                input.windows(needle.len()).any(|w| w == needle),
                "a new line of {} octets",
                line.len()
            );
        }
    }
}

/// The header block (up to the empty line), as text.
pub(super) fn header_block(msg: &[u8]) -> String {
    let end = msg
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(msg.len(), |p| p + 2);
    String::from_utf8_lossy(&msg[..end]).into_owned()
}

/// The body (after the empty line).
pub(super) fn body_of(msg: &[u8]) -> &[u8] {
    let start = msg
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(msg.len(), |p| p + 4);
    &msg[start..]
}

/// The header fields of a block, each with its continuation lines.
pub(super) fn fields(block: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in block.split_inclusive("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.push_str(line);
            }
        } else if line != "\r\n" {
            out.push(line.to_owned());
        }
    }
    out
}

/// Unfolded values of the fields named `name` (case-insensitive).
pub(super) fn header_values(msg: &[u8], name: &str) -> Vec<String> {
    fields(&header_block(msg))
        .into_iter()
        .filter_map(|f| {
            let (n, v) = f.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.replace("\r\n", "").trim().to_owned())
        })
        .collect()
}

/// A decoded text part, as a parser sees it.
#[derive(Debug)]
pub(super) struct TextPart {
    pub html: bool,
    pub attachment: bool,
    pub text: String,
}

/// The text parts of the top-level message, decoded by mail-parser, with
/// line breaks as LF.
pub(super) fn parsed_texts(msg: &[u8]) -> Vec<TextPart> {
    let message = MessageParser::default()
        .parse(msg)
        .expect("mail-parser reads the copy");
    message
        .parts
        .iter()
        .filter_map(|p| match &p.body {
            PartType::Text(t) | PartType::Html(t) => Some(TextPart {
                html: matches!(p.body, PartType::Html(_)),
                attachment: p.content_disposition().is_some_and(|d| d.is_attachment()),
                text: t.replace("\r\n", "\n"),
            }),
            _ => None,
        })
        .collect()
}

const PYTHON_CHECK: &str = r#"
import sys, base64, email
from email import policy
msg = email.message_from_bytes(sys.stdin.buffer.read(), policy=policy.strict)
for part in msg.walk():
    if part.get_content_type() in ("text/plain", "text/html"):
        att = "1" if part.get_content_disposition() == "attachment" else "0"
        text = part.get_content()
        print(part.get_content_type(), att, base64.b64encode(text.encode("utf-8")).decode())
"#;

/// The text parts as Python's `email` package (`policy.strict`) decodes
/// them (line breaks as LF); `None` when python3 is not installed. Panics when Python rejects
/// the message.
pub(super) fn python_texts(msg: &[u8]) -> Option<Vec<TextPart>> {
    let child = Command::new("python3")
        .args(["-c", PYTHON_CHECK])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => {
            eprintln!("skipping the Python email check: python3 not available ({e})");
            return None;
        }
    };
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(msg)
        .expect("write to python3");
    let output = child.wait_with_output().expect("python3 runs");
    assert!(
        output.status.success(),
        "Python email (policy.strict) rejects the copy:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).expect("utf-8 from python");
    Some(
        stdout
            .lines()
            .map(|line| {
                let mut it = line.split(' ');
                let ct = it.next().unwrap_or_default();
                let att = it.next() == Some("1");
                let text = base64::engine::general_purpose::STANDARD
                    .decode(it.next().unwrap_or_default())
                    .expect("base64 from python");
                TextPart {
                    html: ct == "text/html",
                    attachment: att,
                    text: String::from_utf8(text)
                        .expect("utf-8 text")
                        .replace("\r\n", "\n"),
                }
            })
            .collect(),
    )
}

/// Both parsers agree that the copy's non-attachment text parts are
/// `expected` (html?, check) in order; returns mail-parser's texts.
pub(super) fn check_texts(msg: &[u8], check: impl Fn(&TextPart)) -> Vec<TextPart> {
    let texts = parsed_texts(msg);
    for t in &texts {
        check(t);
    }
    if let Some(py) = python_texts(msg) {
        let ours: Vec<_> = texts.iter().filter(|t| !t.attachment).collect();
        let theirs: Vec<_> = py.iter().filter(|t| !t.attachment).collect();
        // Python also walks into attached messages; compare the common prefix.
        for (a, b) in ours.iter().zip(theirs.iter()) {
            assert_eq!(a.html, b.html);
            assert_eq!(
                a.text.trim_end(),
                b.text.trim_end(),
                "mail-parser and Python decode differently"
            );
        }
        for t in &py {
            check(t);
        }
    }
    texts
}
