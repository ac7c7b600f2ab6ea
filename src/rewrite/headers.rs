//! Header blocks as raw bytes: line-ending repair, finding fields by name,
//! and writing the list headers we add (RFC 2369, RFC 2919, RFC 8058) and
//! the feedback headers (the relay's delivery header, Gmail's
//! `Feedback-ID`, RFC 9477's `CFBL-*`), folded so that no line exceeds 998 octets (RFC 5322 section 2.1.1).
//!
//! Nothing here interprets MIME: `mime` and `body` do that.

use super::{FeedbackHeaders, Span};

/// The feedback fields the relay writes on a copy, in the order it writes
/// them. The first is the relay's own, read back from returned copies
/// (`feedback::report::DELIVERY_HEADER`).
pub const FEEDBACK_FIELDS: [&str; 4] = [
    "X-Consent-Relay-Delivery",
    "Feedback-ID",
    "CFBL-Address",
    "CFBL-Feedback-ID",
];

/// The longest line RFC 5322 allows, without its CRLF.
pub(super) const MAX_LINE: usize = 998;

/// Folding point we aim for when a list header has two URIs (RFC 5322
/// recommends 78); a single URI longer than that is left on one line.
const SOFT_LINE: usize = 78;

/// Returns a copy with every bare CR and bare LF made into CRLF, or `None`
/// when the input has none (the common case: the SMTP side refuses them).
///
/// In the header block a line that is neither a field (`name:`) nor a
/// continuation is made a continuation (a leading space), so a raw CR or LF
/// inside a header value joins the value instead of starting a bogus field.
pub(super) fn repair_line_endings(raw: &[u8]) -> Option<Vec<u8>> {
    if !has_bare_cr_or_lf(raw) {
        return None;
    }
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 32 + 2);
    let mut in_headers = true;
    let mut first = true;
    let mut pos = 0;
    while pos < raw.len() {
        let (line_end, next) = next_line_any(raw, pos);
        let line = &raw[pos..line_end];
        if in_headers {
            if line.is_empty() {
                in_headers = false;
            } else if !first && !starts_with_wsp(line) && !looks_like_field(line) {
                out.push(b' ');
            }
        }
        first = false;
        out.extend_from_slice(line);
        if next > line_end {
            out.extend_from_slice(b"\r\n");
        }
        pos = next;
    }
    Some(out)
}

fn has_bare_cr_or_lf(raw: &[u8]) -> bool {
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'\r' if raw.get(i + 1) == Some(&b'\n') => i += 2,
            b'\r' | b'\n' => return true,
            _ => i += 1,
        }
    }
    false
}

/// The end of the line starting at `pos` and the start of the next one; a
/// line ends at a run of CRs with or without an LF after it ("\r\r\n" from
/// a double conversion is one line break), or at a bare LF.
fn next_line_any(raw: &[u8], pos: usize) -> (usize, usize) {
    match raw[pos..].iter().position(|&b| b == b'\r' || b == b'\n') {
        None => (raw.len(), raw.len()),
        Some(p) => {
            let at = pos + p;
            let mut next = at;
            while raw.get(next) == Some(&b'\r') {
                next += 1;
            }
            if raw.get(next) == Some(&b'\n') {
                next += 1;
            }
            (at, next)
        }
    }
}

fn starts_with_wsp(line: &[u8]) -> bool {
    matches!(line.first(), Some(b' ' | b'\t'))
}

fn looks_like_field(line: &[u8]) -> bool {
    crate::mail::header::is_field_start(line)
}

fn trim_end_wsp(s: &[u8]) -> &[u8] {
    let end = s
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(0, |p| p + 1);
    &s[..end]
}

/// One header field: its whole extent, continuation lines and final CRLF
/// included, and where its name ends.
#[derive(Debug, Clone, Copy)]
pub(super) struct Field {
    pub span: Span,
    name_end: usize,
}

impl Field {
    /// Whether the field's name is `name` (case-insensitive).
    pub fn is(&self, raw: &[u8], name: &str) -> bool {
        trim_end_wsp(&raw[self.span.start..self.name_end]).eq_ignore_ascii_case(name.as_bytes())
    }
}

/// A header block: its fields, where the empty line that ends it starts
/// (`blank`) and where the body starts. Without an empty line (the range
/// ends, or a line that is neither a field nor a continuation ends the
/// block, as in RFC 5322) both are where the fields end.
#[derive(Debug)]
pub(super) struct Block {
    pub fields: Vec<Field>,
    pub blank: usize,
    pub body: usize,
}

/// Scans the header block in `raw[start..end]` (CRLF line endings).
pub(super) fn scan(raw: &[u8], start: usize, end: usize) -> Block {
    let mut fields: Vec<Field> = Vec::new();
    let mut pos = start;
    while pos < end {
        let line_end = raw[pos..end]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(end, |p| pos + p);
        if line_end == pos {
            return Block {
                fields,
                blank: pos,
                body: (pos + 2).min(end),
            };
        }
        let next = (line_end + 2).min(end);
        let line = &raw[pos..line_end];
        match fields.last_mut() {
            Some(last) if starts_with_wsp(line) => last.span.end = next,
            _ if !looks_like_field(line) => {
                return Block {
                    fields,
                    blank: pos,
                    body: pos,
                };
            }
            _ => {
                let name_end = line
                    .iter()
                    .position(|&b| b == b':')
                    .map_or(pos, |c| pos + c);
                fields.push(Field {
                    span: Span::new(pos, next),
                    name_end,
                });
            }
        }
        pos = next;
    }
    Block {
        fields,
        blank: end,
        body: end,
    }
}

/// Writes `List-Unsubscribe`, `List-Unsubscribe-Post` and `List-Id`.
/// The values must already be safe: printable ASCII, no CR or LF.
pub(super) fn write_list_headers(
    out: &mut Vec<u8>,
    unsubscribe: Option<(&str, Option<&str>)>,
    list_id: Option<&str>,
) {
    if let Some((https, mailto)) = unsubscribe {
        let first = format!("List-Unsubscribe: <{https}>");
        match mailto {
            None => write_folded(out, first.as_bytes()),
            Some(mailto) => {
                let second = format!("<{mailto}>");
                if first.len() + 2 + second.len() <= SOFT_LINE {
                    write_folded(out, format!("{first}, {second}").as_bytes());
                } else {
                    write_folded(out, format!("{first},").as_bytes());
                    write_folded(out, format!(" {second}").as_bytes());
                }
            }
        }
        out.extend_from_slice(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n");
    }
    if let Some(id) = list_id {
        let id = id.trim();
        let line = if id.contains('<') {
            format!("List-Id: {id}")
        } else {
            format!("List-Id: <{id}>")
        };
        write_folded(out, line.as_bytes());
    }
}

/// Writes the [`FEEDBACK_FIELDS`] of one copy.
pub(super) fn write_feedback_headers(out: &mut Vec<u8>, f: &FeedbackHeaders<'_>) {
    let [delivery, feedback_id, cfbl_address, cfbl_feedback_id] = FEEDBACK_FIELDS;
    write_folded(out, format!("{delivery}: {}", f.delivery).as_bytes());
    write_folded(
        out,
        format!("{feedback_id}: {}:{}", f.campaign, f.sender_id).as_bytes(),
    );
    if let Some(address) = f.cfbl_address {
        // RFC 9477 3.1: the address, then the report format.
        write_folded(
            out,
            format!("{cfbl_address}: {address}; report=arf").as_bytes(),
        );
        write_folded(
            out,
            format!("{cfbl_feedback_id}: {}", f.delivery).as_bytes(),
        );
    }
}

/// Writes one physical header line and its CRLF, folding it when it is
/// longer than 998 octets: at the last whitespace that fits, else by
/// inserting CRLF TAB (inside `<...>` of a list header RFC 2369 section 2
/// says whitespace is ignored).
fn write_folded(out: &mut Vec<u8>, line: &[u8]) {
    let mut rest = line;
    // Octets already on the current physical line (a TAB we inserted).
    let mut prefix = 0;
    // Never fold inside the field name or right after the colon.
    let mut min_break = line.iter().position(|&b| b == b':').map_or(1, |c| c + 2);
    loop {
        let room = MAX_LINE - prefix;
        if rest.len() <= room {
            out.extend_from_slice(rest);
            out.extend_from_slice(b"\r\n");
            return;
        }
        let at = rest[..=room]
            .iter()
            .rposition(|&b| b == b' ' || b == b'\t')
            .filter(|&p| p >= min_break);
        match at {
            // Break before the whitespace, which starts the next line.
            Some(p) => {
                out.extend_from_slice(&rest[..p]);
                out.extend_from_slice(b"\r\n");
                rest = &rest[p..];
                prefix = 0;
            }
            None => {
                out.extend_from_slice(&rest[..room]);
                out.extend_from_slice(b"\r\n\t");
                rest = &rest[room..];
                prefix = 1;
            }
        }
        // A continuation line must hold more than whitespace.
        min_break = rest
            .iter()
            .position(|&b| b != b' ' && b != b'\t')
            .map_or(rest.len(), |p| p + 1);
    }
}

/// Makes a configured value safe for a header: control characters
/// (CR and LF included) are dropped.
pub(super) fn header_safe(value: &str) -> String {
    value.chars().filter(|c| !c.is_control()).collect()
}
