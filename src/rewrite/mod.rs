//! Each recipient's copy of a message (SPEC "The recipient's copy").
//!
//! [`Template::parse`] reads a stored message once; [`Template::render`]
//! then writes one recipient's copy: the campaign header removed, our
//! `List-Unsubscribe`, `List-Unsubscribe-Post` and `List-Id` added, the
//! per-copy feedback headers (`X-Consent-Relay-Delivery`, `Feedback-ID`,
//! `CFBL-Address`, `CFBL-Feedback-ID`: [`FeedbackHeaders`]) added, the
//! placeholders `[[UNSUBSCRIBE_URL]]`, `[[PREFERENCES_URL]]` and
//! `[[OPTIN_URL]]` replaced with the recipient's links in the text/plain
//! and text/html parts, or, when the message has no placeholder, a footer
//! with the preferences link appended to the main text and HTML bodies.
//!
//! Pure: bytes in, bytes out. It owns neither links nor tokens (the caller
//! signs them) nor DKIM (applied to the rendered copy afterwards).
//!
//! The template is the message as a list of segments: byte ranges of the
//! stored message copied as they are, and the places where something is
//! inserted or re-encoded (see `body`). Everything that is not rewritten is
//! copied byte for byte. When the structure cannot be trusted (a boundary
//! that never closes, offsets that do not add up) the body is forwarded
//! unchanged and [`Template::fallback_reason`] says why; the header edits
//! are made in every case.
//!
//! Decisions:
//! - `List-Id` is added whenever `ListHeaders::list_id` is set, also for
//!   mandatory campaigns (the caller passes `None` to leave it out); an
//!   existing `List-Id` is then replaced.
//! - Existing `List-Unsubscribe` and `List-Unsubscribe-Post` fields are
//!   always removed, also for mandatory campaigns: unsubscribing is the
//!   relay's, and a sender's own link would bypass the consent records.
//! - Existing feedback headers ([`FEEDBACK_FIELDS`]) are always removed,
//!   whether or not the copy gets ours: a sender who wrote its own
//!   `X-Consent-Relay-Delivery` or `CFBL-Feedback-ID` could otherwise name
//!   another delivery in the reports that come back, and its own
//!   `Feedback-ID` would mislabel the copy at the mailbox provider.
//! - Our headers go after the leading `Received` fields, before the rest.
//! - A 7bit or 8bit part whose new text would need a line over 998 octets
//!   (or 8-bit data in 7bit) is re-encoded as quoted-printable, and its
//!   `Content-Transfer-Encoding` (and `MIME-Version` at the top level) is
//!   changed to match.
//! - A part with a line over 998 octets (in the body: the SMTP side takes
//!   them up to `[smtp] max_line_length`) is re-encoded before anything
//!   else, text as quoted-printable, other content as base64 (see
//!   `long_lines`), so that no copy carries one; where that cannot be done
//!   (signed content, an attached message) the SMTP side refuses the
//!   message ([`long_line_problem`]).
//! - The header block ends where RFC 5322 ends it: at the empty line, or at
//!   the first line that is neither a field nor a continuation, which is
//!   then body text. A copy always has the empty line (added when missing),
//!   so the body line is not read as a header field and gets its links.
//! - Footer characters the part's charset cannot hold become `&#N;` in
//!   HTML and an ASCII look-alike in plain text (é → e).
//! - Input with bare CR or LF (which the SMTP side refuses) is repaired to
//!   CRLF first, so no copy ever holds one; input whose last line has no
//!   CRLF gets one, so nothing is glued onto that line.
//! - The main body (where the footer goes) is the top-level text part, or,
//!   going down through the first part of each multipart, the text parts
//!   of a multipart/alternative (and the HTML root of a multipart/related
//!   in it). Attachments, attached messages and multipart/signed or
//!   multipart/encrypted content are never rewritten.
//! - A part that cannot be rewritten (a charset such as UTF-16 or
//!   ISO-2022-JP, an unknown transfer encoding, malformed content next to
//!   a placeholder) is left as it was while the others are rewritten; the
//!   footer goes in every main body or in none.

mod body;
mod charset;
mod footer;
mod headers;
mod long_lines;
mod mime;
mod placeholders;
mod transfer;

#[cfg(test)]
mod tests;

use body::{Ctx, PartTemplate, Scratch, Skip};
use charset::Charset;
use footer::FooterText;
use placeholders::{Placeholder, Urls};
use transfer::Cte;

/// HTML escaping for text and attribute values (also used by the pages).
pub use placeholders::html_escape;

/// The fields of [`FeedbackHeaders`], removed from every message.
pub use headers::FEEDBACK_FIELDS;

/// A recipient's signed links.
#[derive(Debug, Clone, Copy)]
pub struct Links<'a> {
    pub unsubscribe: &'a str,
    pub preferences: &'a str,
    pub optin: &'a str,
    /// The full `mailto:unsubscribe+TOKEN@domain`, when configured.
    pub mailto: Option<&'a str>,
}

/// The headers the relay adds to a copy: the list headers and the
/// feedback headers.
#[derive(Debug, Clone, Copy)]
pub struct ListHeaders<'a> {
    /// `List-Id` value: `<id>` is added around it unless it has brackets.
    pub list_id: Option<&'a str>,
    /// Add `List-Unsubscribe` and `List-Unsubscribe-Post` (false for
    /// mandatory campaigns).
    pub add_unsubscribe: bool,
    /// The per-copy feedback headers (every relayed copy has them; `None`
    /// only leaves them out, a sender's own are removed either way).
    pub feedback: Option<FeedbackHeaders<'a>>,
}

/// What comes back names the copy through these (SPEC "What comes back").
/// The values must already be safe for a header (printable ASCII, no CR
/// or LF): they are the relay's token and validated configuration.
#[derive(Debug, Clone, Copy)]
pub struct FeedbackHeaders<'a> {
    /// `b-TOKEN`, the return path's local part: the value of
    /// `X-Consent-Relay-Delivery` and of `CFBL-Feedback-ID`.
    pub delivery: &'a str,
    /// The campaign's id, the first field of `Feedback-ID`.
    pub campaign: &'a str,
    /// The SenderId, the last field of `Feedback-ID` (Gmail's format).
    pub sender_id: &'a str,
    /// `CFBL-Address` (RFC 9477), with `report=arf`, when set.
    pub cfbl_address: Option<&'a str>,
}

/// The footer added to messages without placeholders.
#[derive(Debug, Clone, Copy)]
pub struct Footer<'a> {
    /// Plain text; `{url}` becomes the preferences link.
    pub text: &'a str,
    /// HTML (already escaped); `{url}` becomes the preferences link.
    pub html: &'a str,
}

/// A byte range in the raw message or the template's arena.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start: usize,
    end: usize,
}

impl Span {
    fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }

    fn is_empty(&self) -> bool {
        self.start >= self.end
    }
}

/// A piece of a copy, in order.
#[derive(Debug)]
enum Segment {
    /// Bytes of the stored message, as they are.
    Raw(Span),
    /// Where our list headers go.
    ListHeaders,
    /// An existing `List-Id` field: kept unless we add ours.
    ListId(Span),
    /// A part's `Content-Transfer-Encoding` field: dropped when the part
    /// is written as quoted-printable instead of 7bit or 8bit.
    Cte { part: usize, span: Span },
    /// End of a part's header block: the new `Content-Transfer-Encoding`
    /// (and `MIME-Version`) go here when the part was switched.
    CteAdd { part: usize, mime_version: bool },
    /// A rewritten part's body.
    Body(usize),
}

/// A message parsed once, ready to render each recipient's copy.
pub struct Template {
    /// The stored message (line endings repaired if they had to be).
    raw: Vec<u8>,
    /// Decoded text of the rewritten parts, in their charsets.
    arena: Vec<u8>,
    segments: Vec<Segment>,
    parts: Vec<PartTemplate>,
    has_placeholders: bool,
    fallback: Option<String>,
}

/// Sizes and outcome only: a template holds a message body, which is never
/// logged.
impl std::fmt::Debug for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Template")
            .field("bytes", &self.raw.len())
            .field("segments", &self.segments.len())
            .field("rewritten_parts", &self.parts.len())
            .field("has_placeholders", &self.has_placeholders)
            .field("fallback", &self.fallback)
            .finish()
    }
}

/// A planned replacement of `span` by a segment (`None`: removal).
type Edit = (Span, Option<Segment>);

impl Template {
    /// Parses `raw` (the message as stored, possibly starting with our
    /// `Received:`) and removes every `campaign_header` field
    /// (case-insensitive). Never fails: what cannot be rewritten is
    /// forwarded as it is, and [`Template::fallback_reason`] says why.
    pub fn parse(raw: &[u8], campaign_header: &str) -> Template {
        let mut notes = Vec::new();
        let (raw, long_lines) = prepare(raw, &mut notes);
        if let Some(reason) = long_lines {
            notes.push(format!("lines over 998 octets left: {reason}"));
        }
        let block = headers::scan(&raw, 0, raw.len());
        let planned_header_edits = header_edits(&raw, &block, campaign_header);
        let mut template = Template {
            segments: Vec::new(),
            arena: Vec::new(),
            parts: Vec::new(),
            has_placeholders: false,
            fallback: None,
            raw,
        };
        let plan = match mime::analyse(&template.raw, block.body) {
            Ok(analysis) => plan_parts(&template.raw, &block, analysis, &mut notes),
            Err(reason) => {
                notes.push(format!("body forwarded unchanged: {reason}"));
                Plan::default()
            }
        };
        let mut edits = planned_header_edits;
        edits.extend(plan.edits);
        template.has_placeholders = plan.has_placeholders;
        match assemble(&mut edits, template.raw.len()) {
            Some(segments) => {
                template.segments = segments;
                template.arena = plan.arena;
                template.parts = plan.parts;
            }
            None => {
                // Overlapping edits: a structure we misread. The header
                // edits alone never overlap (one scan, in order).
                notes.push("body forwarded unchanged: overlapping MIME parts".to_owned());
                let mut edits = header_edits(&template.raw, &block, campaign_header);
                template.segments = assemble(&mut edits, template.raw.len()).unwrap_or_default();
            }
        }
        if !notes.is_empty() {
            template.fallback = Some(notes.join("; "));
        }
        template
    }

    /// One recipient's copy. `footer`: `None` for mandatory campaigns (and
    /// never used when the message has placeholders).
    pub fn render(
        &self,
        links: &Links<'_>,
        list: &ListHeaders<'_>,
        footer: Option<&Footer<'_>>,
    ) -> Vec<u8> {
        let urls = Urls::new(links);
        let footer = footer.filter(|_| !self.has_placeholders).map(|f| {
            FooterText::new(
                f,
                urls.get(Placeholder::Preferences, false),
                urls.get(Placeholder::Preferences, true),
            )
        });
        let ctx = Ctx {
            raw: &self.raw,
            arena: &self.arena,
            urls: &urls,
            footer: footer.as_ref(),
        };
        // Bodies first: a switched part changes its header, written earlier.
        let mut scratch = Scratch::default();
        let mut bodies = Vec::new();
        let mut rendered = Vec::with_capacity(self.parts.len());
        for part in &self.parts {
            let start = bodies.len();
            let switched = part.render(&ctx, &mut scratch, &mut bodies);
            rendered.push((Span::new(start, bodies.len()), switched));
        }
        let list_id = list
            .list_id
            .map(headers::header_safe)
            .filter(|id| !id.trim().is_empty());
        let unsubscribe = list
            .add_unsubscribe
            .then_some((urls.header_https.as_str(), urls.header_mailto.as_deref()));
        let mut out = Vec::with_capacity(self.raw.len() + bodies.len() / 2 + 512);
        for segment in &self.segments {
            match segment {
                Segment::Raw(s) => out.extend_from_slice(&self.raw[s.start..s.end]),
                Segment::ListHeaders => {
                    if let Some(f) = &list.feedback {
                        headers::write_feedback_headers(&mut out, f);
                    }
                    headers::write_list_headers(&mut out, unsubscribe, list_id.as_deref());
                }
                Segment::ListId(s) => {
                    if list_id.is_none() {
                        out.extend_from_slice(&self.raw[s.start..s.end]);
                    }
                }
                Segment::Cte { part, span } => {
                    if !rendered[*part].1 {
                        out.extend_from_slice(&self.raw[span.start..span.end]);
                    }
                }
                Segment::CteAdd { part, mime_version } => {
                    if rendered[*part].1 {
                        if *mime_version {
                            out.extend_from_slice(b"MIME-Version: 1.0\r\n");
                        }
                        out.extend_from_slice(b"Content-Transfer-Encoding: quoted-printable\r\n");
                    }
                }
                Segment::Body(part) => {
                    let s = rendered[*part].0;
                    out.extend_from_slice(&bodies[s.start..s.end]);
                }
            }
        }
        out
    }

    /// Whether any text part holds a placeholder (then no footer is added).
    pub fn has_placeholders(&self) -> bool {
        self.has_placeholders
    }

    /// Why (part of) the message is forwarded unchanged, or was repaired,
    /// if it was: for the caller's log. Never holds message text.
    pub fn fallback_reason(&self) -> Option<&str> {
        self.fallback.as_deref()
    }
}

/// Why a line over 998 octets in `raw` (a message as received) would stay
/// in its copies, if one would; `None` when it has none, or when each part
/// that has one can be re-encoded. For the SMTP side, which refuses such a
/// message instead of forwarding lines no receiver has to take.
pub fn long_line_problem(raw: &[u8]) -> Option<String> {
    prepare(raw, &mut Vec::new()).1
}

/// The stored message made sound before it is parsed: line endings
/// repaired, a final CRLF, the empty line after the header block, and
/// parts with lines over 998 octets re-encoded. Returns it and, when a
/// long line stays, why.
fn prepare(raw: &[u8], notes: &mut Vec<String>) -> (Vec<u8>, Option<String>) {
    let mut raw = match headers::repair_line_endings(raw) {
        Some(repaired) => {
            notes.push("bare CR or LF repaired to CRLF".to_owned());
            repaired
        }
        None => raw.to_vec(),
    };
    // A last line without CRLF (SMTP never delivers one: DATA ends in
    // CRLF) would have our headers or footer glued onto it.
    if !raw.is_empty() && !raw.ends_with(b"\r\n") {
        notes.push("missing final CRLF added".to_owned());
        raw.extend_from_slice(b"\r\n");
    }
    // RFC 5322: the header block ends at the first line that is not a
    // field. Without its empty line a receiver would read that line, and
    // our headers after it, as header fields; the copy gets one.
    let block = headers::scan(&raw, 0, raw.len());
    if block.blank == block.body {
        notes.push("empty line after the header block added".to_owned());
        raw.splice(block.blank..block.blank, *b"\r\n");
    }
    match long_lines::reencode(&raw) {
        Ok(Some(reencoded)) => {
            notes.push("parts with lines over 998 octets re-encoded".to_owned());
            (reencoded, None)
        }
        Ok(None) => (raw, None),
        Err(reason) => (raw, Some(reason)),
    }
}

/// Removals of the campaign, `List-Unsubscribe*` and feedback fields,
/// existing `List-Id` fields, and where our list headers go.
fn header_edits(raw: &[u8], block: &headers::Block, campaign_header: &str) -> Vec<Edit> {
    // An empty name would match lines that have no colon.
    let campaign = Some(campaign_header.trim()).filter(|name| !name.is_empty());
    let mut edits = Vec::new();
    let mut insert_at = 0;
    let mut leading = true;
    for field in &block.fields {
        if campaign.is_some_and(|name| field.is(raw, name))
            || field.is(raw, "List-Unsubscribe")
            || field.is(raw, "List-Unsubscribe-Post")
            || FEEDBACK_FIELDS.iter().any(|name| field.is(raw, name))
        {
            edits.push((field.span, None));
        } else if field.is(raw, "List-Id") {
            edits.push((field.span, Some(Segment::ListId(field.span))));
        } else if leading && field.is(raw, "Received") {
            insert_at = field.span.end;
            continue;
        }
        leading = false;
    }
    edits.push((Span::new(insert_at, insert_at), Some(Segment::ListHeaders)));
    edits
}

/// The rewritten parts of a message and their edits.
#[derive(Default)]
struct Plan {
    edits: Vec<Edit>,
    parts: Vec<PartTemplate>,
    arena: Vec<u8>,
    has_placeholders: bool,
}

fn plan_parts(
    raw: &[u8],
    block: &headers::Block,
    analysis: mime::Analysis,
    notes: &mut Vec<String>,
) -> Plan {
    notes.extend(analysis.notes);
    let placeholders = analysis.candidates.iter().any(|c| c.placeholder);
    let has_main = analysis.candidates.iter().any(|c| c.main);
    let mut footer = !placeholders && has_main;
    loop {
        let mut plan = Plan {
            has_placeholders: placeholders,
            ..Plan::default()
        };
        let mut part_notes = Vec::new();
        let mut footer_failed = false;
        for candidate in &analysis.candidates {
            let footer_slot = footer && candidate.main;
            match plan_part(raw, block, candidate, footer_slot, &mut plan) {
                Ok(()) => {}
                // A well-formed part with nothing to change is not worth a
                // note; a malformed one may hide a placeholder.
                Err(skip) if candidate.placeholder || footer_slot || skip.is_malformed() => {
                    part_notes.push(format!("part {}: {skip}, left unchanged", candidate.index));
                    footer_failed |= footer_slot;
                }
                Err(_) => {}
            }
        }
        if footer && footer_failed {
            // The footer goes in every main body or in none.
            footer = false;
            continue;
        }
        notes.extend(part_notes);
        if !placeholders && !footer {
            notes.push("no main text part can take the footer".to_owned());
        }
        plan.has_placeholders |= plan.parts.iter().any(|p| p.links);
        return plan;
    }
}

fn plan_part(
    raw: &[u8],
    block: &headers::Block,
    candidate: &mime::Candidate,
    footer_slot: bool,
    plan: &mut Plan,
) -> Result<(), Skip> {
    if candidate.malformed {
        return Err(Skip::Malformed);
    }
    let cte = Cte::from_header(candidate.cte.as_deref())
        .ok_or_else(|| Skip::TransferEncoding(candidate.cte.clone().unwrap_or_default()))?;
    let charset = Charset::from_label(candidate.charset.as_deref())
        .ok_or_else(|| Skip::Charset(candidate.charset.clone().unwrap_or_default()))?;
    // The part's header block must end with its empty line right where
    // the body starts, or a body could not be replaced exactly.
    let root = candidate.header.start == 0;
    let scanned;
    let part_block = if root {
        block
    } else {
        scanned = headers::scan(raw, candidate.header.start, candidate.header.end);
        &scanned
    };
    if part_block.body != candidate.body.start || part_block.blank + 2 != part_block.body {
        return Err(Skip::Malformed);
    }
    let Some(part) = body::build(
        raw,
        candidate.body,
        cte,
        charset,
        candidate.html,
        footer_slot,
        &mut plan.arena,
    )?
    else {
        return Ok(());
    };
    let index = plan.parts.len();
    if matches!(part.cte, Cte::SevenBit | Cte::EightBit) {
        for field in &part_block.fields {
            if field.is(raw, "Content-Transfer-Encoding") {
                let segment = Segment::Cte {
                    part: index,
                    span: field.span,
                };
                plan.edits.push((field.span, Some(segment)));
            }
        }
        let mime_version = root && !part_block.fields.iter().any(|f| f.is(raw, "MIME-Version"));
        let at = Span::new(part_block.blank, part_block.blank);
        plan.edits.push((
            at,
            Some(Segment::CteAdd {
                part: index,
                mime_version,
            }),
        ));
    }
    plan.edits.push((part.body, Some(Segment::Body(index))));
    plan.parts.push(part);
    Ok(())
}

/// Orders the edits and fills the gaps with raw bytes; `None` when two
/// edits overlap.
fn assemble(edits: &mut [Edit], len: usize) -> Option<Vec<Segment>> {
    // Stable: of two insertions at one offset, the first planned comes first.
    edits.sort_by_key(|(span, _)| (span.start, span.end));
    let mut segments = Vec::with_capacity(edits.len() * 2 + 1);
    let mut cursor = 0;
    for (span, segment) in edits.iter_mut() {
        if span.start < cursor || span.end > len {
            return None;
        }
        if span.start > cursor {
            segments.push(Segment::Raw(Span::new(cursor, span.start)));
        }
        if let Some(segment) = segment.take() {
            segments.push(segment);
        }
        cursor = span.end;
    }
    if cursor < len {
        segments.push(Segment::Raw(Span::new(cursor, len)));
    }
    Some(segments)
}
