//! Header blocks as name/value pairs: a DSN's per-message and per-recipient
//! blocks, an ARF block, the header of a returned message. mail-parser finds
//! the fields (`parse_headers`); the values are taken raw from the block,
//! unfolded and with runs of whitespace collapsed, so a `Diagnostic-Code`
//! folded over several lines reads as one line. Bounded: at most
//! [`MAX_FIELDS`] fields, each value at most [`MAX_VALUE`] bytes.

use mail_parser::{Header, MessageParser};

/// Fields kept from one block; the rest are dropped.
pub const MAX_FIELDS: usize = 500;

/// Bytes kept of one value (unfolded); longer values are cut at a
/// character boundary.
pub const MAX_VALUE: usize = 4096;

/// One header field: the name as written, the value unfolded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub value: String,
}

/// The fields of a header block, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields(Vec<Field>);

impl Fields {
    /// Reads the header block at the start of `block` (up to its first
    /// blank line).
    pub fn parse(block: &[u8]) -> Fields {
        match MessageParser::new().parse_headers(block) {
            Some(message) => match message.parts.first() {
                Some(root) => Fields::from_headers(&root.headers, block),
                None => Fields::default(),
            },
            None => Fields::default(),
        }
    }

    /// The fields mail-parser found, their values read from `raw` (the
    /// bytes their offsets count in).
    pub fn from_headers(headers: &[Header<'_>], raw: &[u8]) -> Fields {
        let fields = headers
            .iter()
            .take(MAX_FIELDS)
            .map(|h| {
                let start = h.offset_start as usize;
                let end = h.offset_end as usize;
                let value = raw.get(start..end).unwrap_or_default();
                Field {
                    name: h.name.as_str().to_owned(),
                    value: unfold(value),
                }
            })
            .collect();
        Fields(fields)
    }

    /// The first value of the field `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
            .map(|f| f.value.as_str())
    }

    /// Every value of the field `name`, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |f| f.name.eq_ignore_ascii_case(name))
            .map(|f| f.value.as_str())
    }

    /// Whether the block holds the field `name`.
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Field> {
        self.0.iter()
    }
}

/// A raw field value as one line: CR and LF removed, each run of
/// whitespace one space, trimmed, at most [`MAX_VALUE`] bytes. Bytes that
/// are not UTF-8 become U+FFFD (RFC 6533 allows UTF-8 here; nothing else).
pub fn unfold(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(&raw[..raw.len().min(MAX_VALUE * 2)]);
    let mut out = String::with_capacity(text.len().min(MAX_VALUE));
    let mut space = false;
    for c in text.chars() {
        if c.is_whitespace() || c.is_control() {
            space = !out.is_empty();
            continue;
        }
        if space {
            if out.len() + 1 > MAX_VALUE {
                break;
            }
            out.push(' ');
            space = false;
        }
        if out.len() + c.len_utf8() > MAX_VALUE {
            break;
        }
        out.push(c);
    }
    out
}

/// Splits a body into blocks separated by blank lines (lines holding
/// nothing but whitespace count as blank), dropping empty blocks. At most
/// `max` blocks are returned.
pub fn blocks(body: &[u8], max: usize) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut line_start = 0;
    let mut i = 0;
    while i <= body.len() && out.len() < max {
        let at_end = i == body.len();
        if at_end || body[i] == b'\n' {
            let line = &body[line_start..i];
            if line.iter().all(|b| b.is_ascii_whitespace()) {
                let block = &body[start..line_start];
                if block.iter().any(|b| !b.is_ascii_whitespace()) {
                    out.push(block);
                }
                start = (i + 1).min(body.len());
            } else if at_end {
                out.push(&body[start..]);
            }
            line_start = (i + 1).min(body.len());
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded_values_read_as_one_line() {
        let f = Fields::parse(
            b"Diagnostic-Code: smtp; 550 5.1.1 <erin@example.net>: Recipient address\r\n    rejected: User unknown\r\nAction: failed\r\n",
        );
        assert_eq!(
            f.get("diagnostic-code"),
            Some("smtp; 550 5.1.1 <erin@example.net>: Recipient address rejected: User unknown")
        );
        assert_eq!(f.get("ACTION"), Some("failed"));
    }

    #[test]
    fn blocks_split_on_blank_lines() {
        let body = b"A: 1\r\nB: 2\r\n\r\n\r\nC: 3\r\n \r\nD: 4";
        let b = blocks(body, 10);
        assert_eq!(b, [&b"A: 1\r\nB: 2\r\n"[..], b"C: 3\r\n", b"D: 4"]);
        assert_eq!(blocks(body, 2).len(), 2);
        assert!(blocks(b"", 10).is_empty());
        assert!(blocks(b"\r\n\r\n", 10).is_empty());
    }

    #[test]
    fn long_values_are_cut_at_a_character() {
        let long = "é".repeat(MAX_VALUE);
        let v = unfold(long.as_bytes());
        assert!(v.len() <= MAX_VALUE);
        assert!(v.chars().all(|c| c == 'é'));
    }
}
