//! Lines over 998 octets (RFC 5321 4.5.3.1.6, RFC 5322 2.1.1), which
//! swaks, minified HTML from CRMs and Postfix itself send in bodies: each
//! leaf part that has one is re-encoded so that the copy has none, its
//! content unchanged once decoded. A text part (or one without a
//! `Content-Type`) becomes quoted-printable, its line breaks kept as hard
//! breaks; any other part becomes base64 (RFC 2045 6.7: quoted-printable
//! line breaks are for text only); a quoted-printable or base64 part with
//! over-long lines is decoded and encoded again with short ones.
//!
//! What cannot be re-encoded is said, not forwarded broken: a header line
//! over the limit (the SMTP side refuses those), a long line inside
//! multipart/signed or multipart/encrypted content (the signature covers
//! the bytes), inside an attached message (message/rfc822 allows no
//! transfer encoding but 7bit, 8bit and binary: RFC 2046 5.2.1), in a MIME
//! preamble or epilogue, or in a structure that cannot be trusted.

use mail_parser::{MessageParser, MessagePart, MimeHeaders, PartType};

use super::Span;
use super::headers::{self, MAX_LINE};
use super::mime;
use super::transfer::{self, Cte};

/// Whether a CRLF-separated line of `bytes` is longer than 998 octets.
pub(super) fn has_long_line(bytes: &[u8]) -> bool {
    bytes
        .split(|&b| b == b'\n')
        .any(|l| l.strip_suffix(b"\r").unwrap_or(l).len() > MAX_LINE)
}

/// `raw` with every part that has a line over 998 octets re-encoded;
/// `Ok(None)` when it has none. `Err` says why a long line stays (then
/// nothing is changed).
pub(super) fn reencode(raw: &[u8]) -> Result<Option<Vec<u8>>, String> {
    if !has_long_line(raw) {
        return Ok(None);
    }
    let block = headers::scan(raw, 0, raw.len());
    if has_long_line(&raw[..block.body]) {
        return Err("a header line is longer than 998 octets".into());
    }
    let parsed = std::panic::catch_unwind(|| MessageParser::default().parse(raw));
    let message = parsed
        .map_err(|_| "mail-parser failed on this message".to_owned())?
        .ok_or("no header block")?;
    let parts = &message.parts;
    if parts.first().map(|p| p.offset_body as usize) != Some(block.body) {
        return Err("the end of the header block is ambiguous".into());
    }
    let mut edits = Vec::new();
    let mut work = vec![0usize];
    while let Some(id) = work.pop() {
        let part = &parts[id];
        let body = Span::new(part.offset_body as usize, part.offset_end as usize);
        if body.end > raw.len() || body.start > body.end {
            return Err("part offsets out of range".into());
        }
        if !has_long_line(&raw[body.start..body.end]) {
            continue;
        }
        match &part.body {
            PartType::Multipart(children) => {
                mime::check_children(raw, parts, id, children)?;
                let sub = mime::subtype(part);
                if sub == "signed" || sub == "encrypted" {
                    return Err(format!(
                        "a line over 998 octets in multipart/{sub} content, which is never re-encoded"
                    ));
                }
                work.extend(children.iter().map(|&c| c as usize));
            }
            PartType::Message(_) => {
                return Err(
                    "a line over 998 octets in an attached message, which cannot be re-encoded"
                        .into(),
                );
            }
            _ => leaf(raw, part, id == 0, body, &mut edits)?,
        }
    }
    let out = assemble_bytes(raw, &mut edits).ok_or("overlapping MIME parts")?;
    if has_long_line(&out) {
        return Err(
            "a line over 998 octets outside any part body (a MIME header, preamble or epilogue)"
                .into(),
        );
    }
    Ok(Some(out))
}

/// The edits that re-encode one leaf part: its body, its
/// `Content-Transfer-Encoding` (and `MIME-Version` at the top level).
fn leaf(
    raw: &[u8],
    part: &MessagePart<'_>,
    root: bool,
    body: Span,
    edits: &mut Vec<(Span, Vec<u8>)>,
) -> Result<(), String> {
    let part_block = headers::scan(raw, part.offset_header as usize, body.start);
    if part_block.body != body.start || part_block.blank + 2 != part_block.body {
        return Err("a MIME part whose header block cannot be read exactly".into());
    }
    let bytes = &raw[body.start..body.end];
    let text = part
        .content_type()
        .is_none_or(|c| c.ctype().eq_ignore_ascii_case("text"));
    let cte = part.content_transfer_encoding();
    let mut encoded = Vec::with_capacity(bytes.len() + bytes.len() / 8);
    let name = match (Cte::from_header(cte), cte.map(str::trim)) {
        (Some(Cte::QuotedPrintable), _) => {
            let mut decoded = Vec::new();
            for (i, line) in transfer::logical_lines(raw, body, true).iter().enumerate() {
                if i > 0 {
                    encoded.extend_from_slice(b"\r\n");
                }
                decoded.clear();
                transfer::qp_decode_line(&raw[line.content.start..line.content.end], &mut decoded);
                transfer::qp_encode_line(&decoded, &mut encoded);
            }
            "quoted-printable"
        }
        (Some(Cte::Base64), _) => {
            let data = transfer::base64_decode(bytes).ok_or("malformed base64 with long lines")?;
            transfer::base64_encode_lines(&data, &mut encoded);
            encoded.extend_from_slice(b"\r\n");
            "base64"
        }
        (Some(Cte::SevenBit | Cte::EightBit), _) if text => {
            for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
                if i > 0 {
                    encoded.extend_from_slice(b"\r\n");
                }
                transfer::qp_encode_line(line.strip_suffix(b"\r").unwrap_or(line), &mut encoded);
            }
            "quoted-printable"
        }
        (Some(Cte::SevenBit | Cte::EightBit), _) => {
            transfer::base64_encode_lines(bytes, &mut encoded);
            encoded.extend_from_slice(b"\r\n");
            "base64"
        }
        (None, Some(v)) if v.eq_ignore_ascii_case("binary") => {
            if text {
                return Err("a text part sent as binary".into());
            }
            transfer::base64_encode_lines(bytes, &mut encoded);
            encoded.extend_from_slice(b"\r\n");
            "base64"
        }
        (None, other) => {
            return Err(format!(
                "a line over 998 octets in a part with transfer encoding {:?}",
                other.unwrap_or_default()
            ));
        }
    };
    for field in &part_block.fields {
        if field.is(raw, "Content-Transfer-Encoding") {
            edits.push((field.span, Vec::new()));
        }
    }
    let mut added = Vec::new();
    if root && !part_block.fields.iter().any(|f| f.is(raw, "MIME-Version")) {
        added.extend_from_slice(b"MIME-Version: 1.0\r\n");
    }
    added.extend_from_slice(format!("Content-Transfer-Encoding: {name}\r\n").as_bytes());
    edits.push((Span::new(part_block.blank, part_block.blank), added));
    edits.push((body, encoded));
    Ok(())
}

/// `raw` with each span replaced by its bytes; `None` when two overlap.
fn assemble_bytes(raw: &[u8], edits: &mut [(Span, Vec<u8>)]) -> Option<Vec<u8>> {
    // Stable: of two insertions at one offset, the first planned comes first.
    edits.sort_by_key(|(span, _)| (span.start, span.end));
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 4);
    let mut cursor = 0;
    for (span, bytes) in edits.iter() {
        if span.start < cursor || span.end > raw.len() {
            return None;
        }
        out.extend_from_slice(&raw[cursor..span.start]);
        out.extend_from_slice(bytes);
        cursor = span.end;
    }
    out.extend_from_slice(&raw[cursor..]);
    Some(out)
}
