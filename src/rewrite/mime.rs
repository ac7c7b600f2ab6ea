//! The MIME structure of a message, read with mail-parser: which parts are
//! text we may rewrite, which of them are the main body (where a footer
//! goes), and whether the structure is sound enough to replace part bodies
//! in place. Attached messages and signed or encrypted parts are never
//! entered.

use mail_parser::{MessageParser, MessagePart, MimeHeaders, PartType};

use super::Span;
use super::placeholders;

/// A `text/plain` or `text/html` part that is not an attachment.
#[derive(Debug)]
pub(super) struct Candidate {
    /// mail-parser's part number, for logs.
    pub index: usize,
    pub html: bool,
    /// Part of the main body: the footer goes here.
    pub main: bool,
    /// The part's header block (empty line included) and encoded body.
    pub header: Span,
    pub body: Span,
    /// The `Content-Transfer-Encoding` and `charset` values, if any.
    pub cte: Option<String>,
    pub charset: Option<String>,
    /// mail-parser could not decode it.
    pub malformed: bool,
    /// mail-parser's decoded text holds a placeholder.
    pub placeholder: bool,
}

/// What the rewriter needs to know about a message's structure.
#[derive(Debug)]
pub(super) struct Analysis {
    pub candidates: Vec<Candidate>,
    pub notes: Vec<String>,
}

/// Reads the structure of `raw`, whose top-level body starts at `body_start`
/// by our own header scan. An `Err` says why no body may be rewritten.
pub(super) fn analyse(raw: &[u8], body_start: usize) -> Result<Analysis, String> {
    // mail-parser has debug assertions that fire on some hostile input in
    // debug builds; a parser panic must not take the delivery worker down.
    let parsed = std::panic::catch_unwind(|| MessageParser::default().parse(raw));
    let message = parsed
        .map_err(|_| "mail-parser failed on this message")?
        .ok_or("no header block")?;
    let parts = &message.parts;
    let root = parts.first().ok_or("no header block")?;
    if root.offset_body as usize != body_start {
        return Err("the end of the header block is ambiguous".into());
    }
    let main = main_parts(parts);
    let mut candidates = Vec::new();
    let mut notes = Vec::new();
    let mut work = vec![0usize];
    while let Some(id) = work.pop() {
        let part = &parts[id];
        match &part.body {
            PartType::Multipart(children) => {
                check_children(raw, parts, id, children)?;
                let sub = subtype(part);
                if sub == "signed" || sub == "encrypted" {
                    notes.push(format!("part {id}: multipart/{sub} is never rewritten"));
                    continue;
                }
                work.extend(children.iter().rev().map(|&c| c as usize));
            }
            PartType::Text(text) | PartType::Html(text) => {
                let Some(html) = text_kind(part) else {
                    continue;
                };
                if is_attachment(part) {
                    continue;
                }
                let (header, body) = spans(part);
                if body.end > raw.len() || header.start > body.start || body.start > body.end {
                    return Err("part offsets out of range".into());
                }
                candidates.push(Candidate {
                    index: id,
                    html,
                    main: main.contains(&id),
                    header,
                    body,
                    cte: part.content_transfer_encoding().map(str::to_owned),
                    charset: part
                        .content_type()
                        .and_then(|c| c.attribute("charset"))
                        .map(str::to_owned),
                    malformed: part.is_encoding_problem,
                    placeholder: placeholders::contains_any(text.as_bytes()),
                });
            }
            // Attached messages, attachments and other types: left alone.
            _ => {}
        }
    }
    Ok(Analysis { candidates, notes })
}

fn spans(part: &MessagePart<'_>) -> (Span, Span) {
    let (h, b, e) = (
        part.offset_header as usize,
        part.offset_body as usize,
        part.offset_end as usize,
    );
    (Span::new(h, b), Span::new(b, e))
}

/// Checks that each child of multipart `id` ends exactly where the CRLF
/// before its boundary delimiter starts, and that the last one is followed
/// by the close delimiter, so that replacing a body in place is exact.
pub(super) fn check_children(
    raw: &[u8],
    parts: &[MessagePart<'_>],
    id: usize,
    children: &[u32],
) -> Result<(), String> {
    let boundary = parts[id]
        .content_type()
        .and_then(|c| c.attribute("boundary"))
        .ok_or("a multipart part has no boundary")?;
    for (k, &child) in children.iter().enumerate() {
        let child = child as usize;
        // Children come after their parent in mail-parser's list; this
        // also keeps the walks from looping.
        if child <= id || child >= parts.len() {
            return Err("the MIME tree is inconsistent".into());
        }
        let (header, body) = spans(&parts[child]);
        if header.start > body.start || body.start > body.end || body.end > raw.len() {
            return Err("part offsets out of range".into());
        }
        let last = k + 1 == children.len();
        let mut delimiter = Vec::with_capacity(boundary.len() + 4);
        delimiter.extend_from_slice(b"--");
        delimiter.extend_from_slice(boundary.as_bytes());
        if last {
            delimiter.extend_from_slice(b"--");
        }
        let after = &raw[body.end..];
        let at_boundary = after.strip_prefix(b"\r\n").is_some_and(|a| a.starts_with(&delimiter))
            // An empty body: the header block's empty line is the CRLF.
            || body.is_empty() && after.starts_with(&delimiter);
        if !at_boundary {
            return Err(if last {
                "a multipart boundary never closes".into()
            } else {
                "a MIME part does not end at its boundary".into()
            });
        }
    }
    Ok(())
}

/// The main body: the top-level text part; else, going down through the
/// first part of each multipart, every text alternative of a
/// multipart/alternative (and the root of a multipart/related in it).
fn main_parts(parts: &[MessagePart<'_>]) -> Vec<usize> {
    let mut main = Vec::new();
    let mut work = vec![0usize];
    while let Some(id) = work.pop() {
        let Some(part) = parts.get(id) else { continue };
        match &part.body {
            PartType::Multipart(children) => {
                let children = children.iter().map(|&c| c as usize).filter(|&c| c > id);
                match subtype(part).as_str() {
                    "alternative" => work.extend(children.rev()),
                    "signed" | "encrypted" => {}
                    _ => work.extend(children.take(1)),
                }
            }
            PartType::Text(_) | PartType::Html(_)
                if text_kind(part).is_some() && !is_attachment(part) =>
            {
                main.push(id);
            }
            _ => {}
        }
    }
    main
}

/// `Some(false)` for text/plain (or no Content-Type), `Some(true)` for
/// text/html, `None` for anything else.
fn text_kind(part: &MessagePart<'_>) -> Option<bool> {
    let Some(ct) = part.content_type() else {
        return Some(false);
    };
    if !ct.ctype().eq_ignore_ascii_case("text") {
        return None;
    }
    match ct.subtype().map(str::to_ascii_lowercase).as_deref() {
        Some("plain") | None => Some(false),
        Some("html") => Some(true),
        _ => None,
    }
}

pub(super) fn subtype(part: &MessagePart<'_>) -> String {
    part.content_type()
        .and_then(|c| c.subtype())
        .unwrap_or_default()
        .to_ascii_lowercase()
}

fn is_attachment(part: &MessagePart<'_>) -> bool {
    part.content_disposition()
        .is_some_and(|d| d.is_attachment())
}
