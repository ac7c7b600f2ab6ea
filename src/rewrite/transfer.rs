//! Content-Transfer-Encoding (RFC 2045 section 6): which encodings we can
//! rewrite, splitting a body into logical lines, and decoding and encoding
//! quoted-printable and base64. Bytes only; charsets live in `charset`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_PAD_INDIFFERENT;

use super::Span;

/// The transfer encodings a rewritten part may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cte {
    SevenBit,
    EightBit,
    QuotedPrintable,
    Base64,
}

impl Cte {
    /// From the `Content-Transfer-Encoding` value (absent means 7bit).
    /// `binary` and unknown encodings are not rewritten.
    pub fn from_header(value: Option<&str>) -> Option<Cte> {
        let Some(value) = value else {
            return Some(Cte::SevenBit);
        };
        // A comment may follow the token: "8bit (from the CRM)".
        let token = value
            .trim()
            .split(|c: char| c.is_whitespace() || c == '(')
            .next()
            .unwrap_or_default();
        match token.to_ascii_lowercase().as_str() {
            "7bit" => Some(Cte::SevenBit),
            "8bit" => Some(Cte::EightBit),
            "quoted-printable" => Some(Cte::QuotedPrintable),
            "base64" => Some(Cte::Base64),
            _ => None,
        }
    }
}

/// One logical line of a 7bit, 8bit or quoted-printable body: `content`
/// excludes the hard line break, `terminated` says whether one follows.
#[derive(Debug, Clone, Copy)]
pub(super) struct LogicalLine {
    pub content: Span,
    pub terminated: bool,
}

/// Splits `body[span]` into logical lines. In quoted-printable a CRLF after
/// `=` (and optional transport padding) is a soft break and does not end
/// the logical line; in 7bit and 8bit every CRLF does.
pub(super) fn logical_lines(body: &[u8], span: Span, qp: bool) -> Vec<LogicalLine> {
    let mut lines = Vec::new();
    let mut start = span.start;
    let mut pos = span.start;
    while let Some(p) = body[pos..span.end].iter().position(|&b| b == b'\n') {
        let lf = pos + p;
        pos = lf + 1;
        // The input has CRLF endings only (see headers::repair_line_endings).
        if lf == span.start || body[lf - 1] != b'\r' {
            continue;
        }
        let cr = lf - 1;
        if qp && is_soft_break(&body[start..cr]) {
            continue;
        }
        lines.push(LogicalLine {
            content: Span::new(start, cr),
            terminated: true,
        });
        start = pos;
    }
    lines.push(LogicalLine {
        content: Span::new(start, span.end),
        terminated: false,
    });
    lines
}

/// Whether a physical line (without CRLF) ends in a soft line break.
fn is_soft_break(line: &[u8]) -> bool {
    let trimmed = line
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map(|p| &line[..=p]);
    trimmed.is_some_and(|l| l.ends_with(b"="))
}

/// Decodes one quoted-printable logical line into `out`. Returns `false`
/// when the line is malformed (an `=` not followed by two hex digits or a
/// line break); the bytes are then decoded leniently (`=` kept literally).
pub(super) fn qp_decode_line(line: &[u8], out: &mut Vec<u8>) -> bool {
    // RFC 2045 rule 3: trailing whitespace on a line is deleted on decoding.
    let end = line
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(0, |p| p + 1);
    let line = &line[..end];
    let mut ok = true;
    let mut i = 0;
    while i < line.len() {
        let b = line[i];
        if b != b'=' {
            out.push(b);
            i += 1;
            continue;
        }
        if let (Some(h), Some(l)) = (
            line.get(i + 1).and_then(|&c| hex(c)),
            line.get(i + 2).and_then(|&c| hex(c)),
        ) {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        // A soft break: "=", optional transport padding, then CRLF or the
        // end of the body (the CRLF before a boundary belongs to it).
        let mut j = i + 1;
        while j < line.len() && (line[j] == b' ' || line[j] == b'\t') {
            j += 1;
        }
        if j == line.len() {
            i = j;
        } else if line[j..].starts_with(b"\r\n") {
            i = j + 2;
        } else {
            ok = false;
            out.push(b'=');
            i += 1;
        }
    }
    ok
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A'..=b'F' => Some(c - b'A' + 10),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Longest encoded line, soft-break `=` included (RFC 2045 rule 5).
const QP_LINE: usize = 76;

/// Quoted-printable encodes one hard line (no line break inside `line`;
/// CR and LF bytes in it are data and get encoded) into `out`, with soft
/// breaks so that no encoded line exceeds 76 characters. The hard line
/// break after it is the caller's.
pub(super) fn qp_encode_line(line: &[u8], out: &mut Vec<u8>) {
    let mut col = 0;
    for (i, &b) in line.iter().enumerate() {
        let last = i + 1 == line.len();
        // Whitespace at the end of a line must be encoded, or a decoder
        // deletes it (rule 3).
        let literal = match b {
            b' ' | b'\t' => !last,
            b'=' => false,
            33..=126 => true,
            _ => false,
        };
        let width = if literal { 1 } else { 3 };
        // Leave room for the soft-break "=" unless this is the last octet.
        let limit = if last { QP_LINE } else { QP_LINE - 1 };
        if col + width > limit {
            out.extend_from_slice(b"=\r\n");
            col = 0;
        }
        if literal {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'=', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
        col += width;
    }
}

/// Decodes a base64 body; `None` when it is not valid base64.
pub(super) fn base64_decode(body: &[u8]) -> Option<Vec<u8>> {
    let compact: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !matches!(b, b'\r' | b'\n' | b' ' | b'\t'))
        .collect();
    STANDARD_PAD_INDIFFERENT.decode(compact).ok()
}

/// Input octets per 76-character base64 line.
const B64_CHUNK: usize = 57;

/// Base64 encodes `data` in lines of 76 characters separated by CRLF (no
/// CRLF after the last line).
pub(super) fn base64_encode_lines(data: &[u8], out: &mut Vec<u8>) {
    let mut line = [0u8; 76];
    for (i, chunk) in data.chunks(B64_CHUNK).enumerate() {
        if i > 0 {
            out.extend_from_slice(b"\r\n");
        }
        // 57 input octets always fit 76 output characters.
        let n = STANDARD_PAD_INDIFFERENT
            .encode_slice(chunk, &mut line)
            .unwrap_or(0);
        out.extend_from_slice(&line[..n]);
    }
}

/// The trailing run of whitespace and line breaks of an encoded body: kept
/// as it was after a re-encoded base64 body.
pub(super) fn trailing_space(body: &[u8], span: Span) -> Span {
    let content = &body[span.start..span.end];
    let keep = content
        .iter()
        .rposition(|b| !matches!(b, b'\r' | b'\n' | b' ' | b'\t'))
        .map_or(0, |p| p + 1);
    Span::new(span.start + keep, span.end)
}
