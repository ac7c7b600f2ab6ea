//! The footer added to messages without placeholders: where it goes in a
//! body (decided once per message) and its text for one copy.

use super::Footer;

/// Hard line breaks around an inserted footer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Glue {
    pub before: u8,
    pub after: u8,
}

/// Glue for a footer at the end of a body. `ends_with_break`: the body ends
/// with a line break. Plain text gets a blank line before the footer.
pub(super) fn end_glue(html: bool, ends_with_break: bool) -> Glue {
    match (html, ends_with_break) {
        (false, true) => Glue {
            before: 1,
            after: 1,
        },
        (false, false) => Glue {
            before: 2,
            after: 0,
        },
        (true, true) => Glue {
            before: 0,
            after: 1,
        },
        (true, false) => Glue {
            before: 1,
            after: 0,
        },
    }
}

/// Glue for a footer inserted just before `</body>`.
pub(super) const BEFORE_BODY_CLOSE: Glue = Glue {
    before: 1,
    after: 1,
};

/// Offset of the last `</body` (ASCII case-insensitive) followed by `>` or
/// whitespace.
pub(super) fn find_body_close(text: &[u8]) -> Option<usize> {
    const TAG: &[u8] = b"</body";
    if text.len() < TAG.len() {
        return None;
    }
    (0..=text.len() - TAG.len()).rev().find(|&i| {
        text[i..i + TAG.len()].eq_ignore_ascii_case(TAG)
            && matches!(
                text.get(i + TAG.len()),
                Some(b'>' | b' ' | b'\t' | b'\r' | b'\n')
            )
    })
}

/// The footer of one copy, `{url}` filled in, line breaks as CRLF, not yet
/// in any charset.
pub(super) struct FooterText {
    pub text: String,
    pub html: String,
}

impl FooterText {
    pub fn new(footer: &Footer<'_>, url_plain: &str, url_html: &str) -> FooterText {
        FooterText {
            text: crlf(&footer.text.replace("{url}", url_plain)),
            html: crlf(&footer.html.replace("{url}", url_html)),
        }
    }
}

/// Trims trailing line breaks and makes every line break CRLF.
fn crlf(text: &str) -> String {
    let text = text.trim_end_matches(['\r', '\n']);
    let mut out = String::with_capacity(text.len() + 8);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str("\r\n");
            }
            '\n' => out.push_str("\r\n"),
            _ => out.push(c),
        }
    }
    out
}
