//! The placeholders a campaign's text may hold, and the recipient's links
//! that replace them: percent-encoded to plain ASCII once per copy, and
//! HTML-escaped for HTML parts.

use super::Links;

/// A placeholder and the link that replaces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Placeholder {
    Unsubscribe,
    Preferences,
    Optin,
}

const ALL: [(Placeholder, &str); 3] = [
    (Placeholder::Unsubscribe, "[[UNSUBSCRIBE_URL]]"),
    (Placeholder::Preferences, "[[PREFERENCES_URL]]"),
    (Placeholder::Optin, "[[OPTIN_URL]]"),
];

impl Placeholder {
    fn index(self) -> usize {
        match self {
            Placeholder::Unsubscribe => 0,
            Placeholder::Preferences => 1,
            Placeholder::Optin => 2,
        }
    }
}

/// The first placeholder at or after `from`: its offset, length and kind.
pub(super) fn find(text: &str, from: usize) -> Option<(usize, usize, Placeholder)> {
    let bytes = text.as_bytes();
    let mut pos = from;
    while let Some(p) = bytes[pos..].windows(2).position(|w| w == b"[[") {
        let at = pos + p;
        for (kind, token) in ALL {
            if bytes[at..].starts_with(token.as_bytes()) {
                return Some((at, token.len(), kind));
            }
        }
        pos = at + 1;
    }
    None
}

/// Whether `bytes` (any ASCII-compatible text) holds a placeholder.
pub(super) fn contains_any(bytes: &[u8]) -> bool {
    bytes.windows(2).enumerate().any(|(i, w)| {
        w == b"[["
            && ALL
                .iter()
                .any(|(_, t)| bytes[i..].starts_with(t.as_bytes()))
    })
}

/// A recipient's links, ready to insert.
pub(super) struct Urls {
    plain: [String; 3],
    html: [String; 3],
    /// `https` link and optional `mailto:` for `List-Unsubscribe`.
    pub header_https: String,
    pub header_mailto: Option<String>,
}

impl Urls {
    pub fn new(links: &Links<'_>) -> Urls {
        let plain = [
            url_safe(links.unsubscribe),
            url_safe(links.preferences),
            url_safe(links.optin),
        ];
        let html = [
            html_escape(&plain[0]),
            html_escape(&plain[1]),
            html_escape(&plain[2]),
        ];
        Urls {
            header_https: plain[0].clone(),
            header_mailto: links.mailto.map(url_safe),
            plain,
            html,
        }
    }

    /// The link for `kind`, escaped for HTML when `html`.
    pub fn get(&self, kind: Placeholder, html: bool) -> &str {
        if html {
            &self.html[kind.index()]
        } else {
            &self.plain[kind.index()]
        }
    }
}

/// Percent-encodes every octet that may not appear literally in a URL in a
/// mail body or a `List-Unsubscribe` header (controls, CR, LF, space,
/// non-ASCII, `<>"` and the like), so the result is printable ASCII.
fn url_safe(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    for &b in url.trim().as_bytes() {
        let keep = (33..=126).contains(&b) && !b"<>\"\\^`{|}".contains(&b);
        if keep {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Escapes text for HTML content and attribute values.
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}
