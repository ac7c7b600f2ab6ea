//! One text part that gets links or the footer: its template (built once
//! per message) and its rendering for one copy.
//!
//! 7bit, 8bit and quoted-printable bodies are kept line by line: logical
//! lines without a placeholder or the footer stay as the encoded bytes they
//! were; only the others are decoded, split at the placeholders and
//! re-encoded per copy. A base64 body is decoded and re-encoded whole.
//! A 7bit or 8bit body whose new lines would break its encoding (a line
//! over 998 octets, 8-bit data in 7bit) becomes quoted-printable.

use super::Span;
use super::charset::Charset;
use super::footer::{self, FooterText, Glue};
use super::headers::MAX_LINE;
use super::placeholders::{self, Placeholder, Urls};
use super::transfer::{self, Cte, LogicalLine};

/// Why a text part is left as it was.
#[derive(Debug, thiserror::Error)]
pub(super) enum Skip {
    #[error("malformed quoted-printable")]
    MalformedQuotedPrintable,
    #[error("malformed base64")]
    MalformedBase64,
    #[error("text is not valid {0}")]
    Undecodable(&'static str),
    #[error("charset {0:?} is not supported")]
    Charset(String),
    #[error("transfer encoding {0:?} is not supported")]
    TransferEncoding(String),
    #[error("malformed part")]
    Malformed,
}

impl Skip {
    /// The part's content is broken (rather than merely unsupported).
    pub fn is_malformed(&self) -> bool {
        matches!(
            self,
            Skip::Malformed | Skip::MalformedBase64 | Skip::MalformedQuotedPrintable
        )
    }
}

/// A piece of a rewritten text, in the part's charset.
#[derive(Debug)]
enum Piece {
    /// Original text, in the template's arena.
    Text(Span),
    Link(Placeholder),
    Footer(Glue),
}

#[derive(Debug)]
enum Chunk {
    /// Encoded lines kept as they are, line breaks included.
    Verbatim(Span),
    /// A logical line that gets a link or the footer.
    Dynamic {
        pieces: Vec<Piece>,
        /// The line as it was (encoded, without its line break).
        original: Span,
        terminated: bool,
        links: bool,
    },
}

#[derive(Debug)]
enum Layout {
    Lines(Vec<Chunk>),
    /// Base64: the whole decoded text, and the whitespace after the encoded
    /// body, kept.
    Whole {
        pieces: Vec<Piece>,
        suffix: Span,
    },
}

/// A text part's template.
#[derive(Debug)]
pub(super) struct PartTemplate {
    /// The encoded body in the raw message.
    pub body: Span,
    pub cte: Cte,
    /// Holds at least one placeholder.
    pub links: bool,
    html: bool,
    footer_slot: bool,
    charset: Charset,
    layout: Layout,
}

/// Builds a part's template; `None` when it has nothing to rewrite.
pub(super) fn build(
    raw: &[u8],
    body: Span,
    cte: Cte,
    charset: Charset,
    html: bool,
    footer_slot: bool,
    arena: &mut Vec<u8>,
) -> Result<Option<PartTemplate>, Skip> {
    let (layout, links) = match cte {
        Cte::Base64 => match build_whole(raw, body, charset, html, footer_slot, arena)? {
            Some(built) => built,
            None => return Ok(None),
        },
        _ => build_lines(raw, body, cte, charset, html, footer_slot, arena)?,
    };
    if !links && !footer_slot {
        return Ok(None);
    }
    Ok(Some(PartTemplate {
        body,
        cte,
        links,
        html,
        footer_slot,
        charset,
        layout,
    }))
}

fn build_lines(
    raw: &[u8],
    body: Span,
    cte: Cte,
    charset: Charset,
    html: bool,
    footer_slot: bool,
    arena: &mut Vec<u8>,
) -> Result<(Layout, bool), Skip> {
    let qp = cte == Cte::QuotedPrintable;
    let lines = transfer::logical_lines(raw, body, qp);
    let mut decoded = Vec::new();
    let decode = |line: &LogicalLine, out: &mut Vec<u8>| -> bool {
        out.clear();
        let content = &raw[line.content.start..line.content.end];
        if qp {
            transfer::qp_decode_line(content, out)
        } else {
            out.extend_from_slice(content);
            true
        }
    };
    // The footer goes before the last `</body>` of HTML, else at the end.
    // `logical_lines` always yields at least one (possibly empty) line.
    let last = lines.len().saturating_sub(1);
    let footer_line = footer_slot.then(|| {
        if html {
            for i in (0..lines.len()).rev() {
                decode(&lines[i], &mut decoded);
                if footer::find_body_close(&decoded).is_some() {
                    return i;
                }
            }
        }
        last
    });
    let mut chunks: Vec<Chunk> = Vec::new();
    let mut any_links = false;
    for (i, line) in lines.iter().enumerate() {
        let well_formed = decode(line, &mut decoded);
        let footer_here = footer_line == Some(i);
        if !footer_here && !placeholders::contains_any(&decoded) {
            push_verbatim(&mut chunks, line);
            continue;
        }
        if !well_formed {
            return Err(Skip::MalformedQuotedPrintable);
        }
        let text = charset
            .decode(&decoded)
            .ok_or(Skip::Undecodable(charset.name()))?;
        let footer_at = footer_here.then(|| footer_position(&text, html));
        let mut pieces = Vec::new();
        let links = split(&text, footer_at, charset, arena, &mut pieces);
        if !links && !footer_here {
            // A false match in a multi-byte charset.
            push_verbatim(&mut chunks, line);
            continue;
        }
        any_links |= links;
        chunks.push(Chunk::Dynamic {
            pieces,
            original: line.content,
            terminated: line.terminated,
            links,
        });
    }
    Ok((Layout::Lines(chunks), any_links))
}

fn push_verbatim(chunks: &mut Vec<Chunk>, line: &LogicalLine) {
    let end = line.content.end + if line.terminated { 2 } else { 0 };
    if let Some(Chunk::Verbatim(span)) = chunks.last_mut()
        && span.end == line.content.start
    {
        span.end = end;
        return;
    }
    chunks.push(Chunk::Verbatim(Span::new(line.content.start, end)));
}

fn build_whole(
    raw: &[u8],
    body: Span,
    charset: Charset,
    html: bool,
    footer_slot: bool,
    arena: &mut Vec<u8>,
) -> Result<Option<(Layout, bool)>, Skip> {
    let data = transfer::base64_decode(&raw[body.start..body.end]).ok_or(Skip::MalformedBase64)?;
    if !footer_slot && !placeholders::contains_any(&data) {
        return Ok(None);
    }
    let text = charset
        .decode(&data)
        .ok_or(Skip::Undecodable(charset.name()))?;
    let footer_at = footer_slot.then(|| footer_position(&text, html));
    let mut pieces = Vec::new();
    let links = split(&text, footer_at, charset, arena, &mut pieces);
    let suffix = transfer::trailing_space(raw, body);
    Ok(Some((Layout::Whole { pieces, suffix }, links)))
}

/// Where the footer goes in `text` (the whole body, or its line that holds
/// the last `</body>`, or its last line) and the line breaks around it.
fn footer_position(text: &str, html: bool) -> (usize, Glue) {
    match footer::find_body_close(text.as_bytes()).filter(|_| html) {
        Some(p) => (p, footer::BEFORE_BODY_CLOSE),
        // The last logical line is empty when the body ends with a break.
        None => (
            text.len(),
            footer::end_glue(html, text.is_empty() || text.ends_with('\n')),
        ),
    }
}

/// Splits decoded text at its placeholders (and the footer position) into
/// pieces; the text between is stored in the arena in the part's charset.
/// Returns whether a placeholder was found.
fn split(
    text: &str,
    footer_at: Option<(usize, Glue)>,
    charset: Charset,
    arena: &mut Vec<u8>,
    pieces: &mut Vec<Piece>,
) -> bool {
    let mut push_text = |from: usize, to: usize, pieces: &mut Vec<Piece>| {
        if from < to {
            let start = arena.len();
            charset.encode_decoded(&text[from..to], arena);
            pieces.push(Piece::Text(Span::new(start, arena.len())));
        }
    };
    let mut footer_at = footer_at;
    let mut links = false;
    let mut pos = 0;
    loop {
        let next = placeholders::find(text, pos);
        if let Some((at, glue)) = footer_at
            && next.is_none_or(|(p, _, _)| at <= p)
        {
            let at = at.max(pos);
            push_text(pos, at, pieces);
            pieces.push(Piece::Footer(glue));
            pos = at;
            footer_at = None;
            continue;
        }
        match next {
            Some((at, len, kind)) => {
                push_text(pos, at, pieces);
                pieces.push(Piece::Link(kind));
                links = true;
                pos = at + len;
            }
            None => {
                push_text(pos, text.len(), pieces);
                return links;
            }
        }
    }
}

/// What a copy's rendering needs besides the template.
pub(super) struct Ctx<'a> {
    pub raw: &'a [u8],
    pub arena: &'a [u8],
    pub urls: &'a Urls,
    pub footer: Option<&'a FooterText>,
}

/// Buffers reused across the parts of one copy.
#[derive(Default)]
pub(super) struct Scratch {
    text: Vec<u8>,
    breaks: Vec<usize>,
    footer: Vec<u8>,
}

/// How a line-based body is written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Quoted-printable as it was.
    QuotedPrintable,
    /// 7bit or 8bit as it was; fails on a line that would break it.
    Direct { seven_bit: bool },
    /// A 7bit or 8bit body re-encoded as quoted-printable.
    Switched,
}

impl PartTemplate {
    /// Writes the part's body for one copy. Returns `true` when a 7bit or
    /// 8bit body was written as quoted-printable instead.
    pub fn render(&self, ctx: &Ctx<'_>, sc: &mut Scratch, out: &mut Vec<u8>) -> bool {
        let footer = ctx.footer.filter(|_| self.footer_slot);
        if !self.links && footer.is_none() {
            out.extend_from_slice(&ctx.raw[self.body.start..self.body.end]);
            return false;
        }
        let mut footer_bytes = std::mem::take(&mut sc.footer);
        footer_bytes.clear();
        if let Some(f) = footer {
            let text = if self.html { &f.html } else { &f.text };
            self.charset
                .encode_inserted(text, self.html, &mut footer_bytes);
        }
        let footer_bytes_ref = footer.map(|_| footer_bytes.as_slice());
        let switched = match &self.layout {
            Layout::Whole { pieces, suffix } => {
                sc.text.clear();
                sc.breaks.clear();
                self.fill(pieces, ctx, footer_bytes_ref, true, sc);
                transfer::base64_encode_lines(&sc.text, out);
                out.extend_from_slice(&ctx.raw[suffix.start..suffix.end]);
                false
            }
            Layout::Lines(chunks) => {
                let mode = match self.cte {
                    Cte::SevenBit => Mode::Direct { seven_bit: true },
                    Cte::EightBit => Mode::Direct { seven_bit: false },
                    _ => Mode::QuotedPrintable,
                };
                let start = out.len();
                if self.lines(chunks, mode, ctx, footer_bytes_ref, sc, out) {
                    false
                } else {
                    out.truncate(start);
                    self.lines(chunks, Mode::Switched, ctx, footer_bytes_ref, sc, out);
                    true
                }
            }
        };
        sc.footer = footer_bytes;
        switched
    }

    /// Writes a line-based body; `false` when `Mode::Direct` cannot hold it.
    fn lines(
        &self,
        chunks: &[Chunk],
        mode: Mode,
        ctx: &Ctx<'_>,
        footer: Option<&[u8]>,
        sc: &mut Scratch,
        out: &mut Vec<u8>,
    ) -> bool {
        for chunk in chunks {
            match chunk {
                Chunk::Verbatim(span) => {
                    let bytes = &ctx.raw[span.start..span.end];
                    if mode == Mode::Switched {
                        for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
                            if i > 0 {
                                out.extend_from_slice(b"\r\n");
                            }
                            transfer::qp_encode_line(line.strip_suffix(b"\r").unwrap_or(line), out);
                        }
                    } else {
                        out.extend_from_slice(bytes);
                    }
                }
                Chunk::Dynamic {
                    pieces,
                    original,
                    terminated,
                    links,
                } => {
                    if !links && footer.is_none() {
                        let bytes = &ctx.raw[original.start..original.end];
                        match mode {
                            Mode::Switched => transfer::qp_encode_line(bytes, out),
                            _ => out.extend_from_slice(bytes),
                        }
                    } else {
                        sc.text.clear();
                        sc.breaks.clear();
                        self.fill(pieces, ctx, footer, false, sc);
                        let mut start = 0;
                        for i in 0..=sc.breaks.len() {
                            let end = sc.breaks.get(i).copied().unwrap_or(sc.text.len());
                            let line = &sc.text[start..end];
                            if i > 0 {
                                out.extend_from_slice(b"\r\n");
                            }
                            match mode {
                                Mode::Direct { seven_bit } => {
                                    if line.len() > MAX_LINE || seven_bit && !line.is_ascii() {
                                        return false;
                                    }
                                    out.extend_from_slice(line);
                                }
                                _ => transfer::qp_encode_line(line, out),
                            }
                            start = end;
                        }
                    }
                    if *terminated {
                        out.extend_from_slice(b"\r\n");
                    }
                }
            }
        }
        true
    }

    /// Writes the decoded text of `pieces` into `sc.text`. Hard line breaks
    /// of the footer go into `sc.breaks`, or into the text as CRLF when
    /// `literal_breaks` (base64).
    fn fill(
        &self,
        pieces: &[Piece],
        ctx: &Ctx<'_>,
        footer: Option<&[u8]>,
        literal_breaks: bool,
        sc: &mut Scratch,
    ) {
        let brk = |sc: &mut Scratch| {
            if literal_breaks {
                sc.text.extend_from_slice(b"\r\n");
            } else {
                sc.breaks.push(sc.text.len());
            }
        };
        for piece in pieces {
            match piece {
                Piece::Text(span) => sc.text.extend_from_slice(&ctx.arena[span.start..span.end]),
                Piece::Link(kind) => sc
                    .text
                    .extend_from_slice(ctx.urls.get(*kind, self.html).as_bytes()),
                Piece::Footer(glue) => {
                    let Some(bytes) = footer else { continue };
                    for _ in 0..glue.before {
                        brk(sc);
                    }
                    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
                        if i > 0 {
                            brk(sc);
                        }
                        sc.text
                            .extend_from_slice(line.strip_suffix(b"\r").unwrap_or(line));
                    }
                    for _ in 0..glue.after {
                        brk(sc);
                    }
                }
            }
        }
    }
}
