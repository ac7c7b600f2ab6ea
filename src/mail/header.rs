//! Reading a message's header block as raw bytes: find header fields by
//! name (case-insensitive) and unfold their values (editing copies is
//! `rewrite`'s). Only the header block is ever looked at, so a
//! "header" inside the body is never taken for one. The block ends where
//! RFC 5322 ends it: at the empty line, or at the first line that is not a
//! header field (see [`block`]).

/// The header block as RFC 5322 2.2 and 3.5 read it: header fields (a
/// line `name:` with a valid field name, or a folded continuation of the
/// field before it) up to the empty line, or up to the first line that is
/// neither, which is then the first line of the body (the empty line is
/// missing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    /// End of the last field (its CRLF included).
    pub fields_end: usize,
    /// Start of the body: after the empty line, or `fields_end` when there
    /// is none (a header-only message, or a body right after the fields).
    pub body: usize,
}

impl Block {
    /// The empty line that ends the fields is there.
    pub fn has_blank_line(&self) -> bool {
        self.body > self.fields_end
    }
}

/// Reads the header block of `raw` (CRLF line endings).
pub fn block(raw: &[u8]) -> Block {
    let mut pos = 0;
    while pos < raw.len() {
        let line_end = memfind(&raw[pos..], b"\r\n").map_or(raw.len(), |p| pos + p);
        let line = &raw[pos..line_end];
        let next = (line_end + 2).min(raw.len());
        if line.is_empty() {
            return Block {
                fields_end: pos,
                body: next,
            };
        }
        let folded = matches!(line[0], b' ' | b'\t');
        if !(folded && pos > 0 || !folded && is_field_start(line)) {
            return Block {
                fields_end: pos,
                body: pos,
            };
        }
        pos = next;
    }
    Block {
        fields_end: raw.len(),
        body: raw.len(),
    }
}

/// Where the body starts (see [`block`]): what comes before is the header
/// block, the empty line included when there is one.
pub fn header_end(raw: &[u8]) -> usize {
    block(raw).body
}

/// A line that starts a header field: `field-name ":"`, the name one or
/// more printable ASCII characters other than colon (RFC 5322 3.6.8), with
/// the obsolete whitespace before the colon allowed (4.5.8).
pub fn is_field_start(line: &[u8]) -> bool {
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return false;
    };
    let name = line[..colon].trim_ascii_end();
    !name.is_empty() && name.iter().all(|&b| (33..=126).contains(&b))
}

fn memfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// One header field in the raw header block.
struct Field {
    /// Byte range of the whole field, continuation lines and final CRLF included.
    start: usize,
    end: usize,
    name_end: usize,
}

fn fields(raw: &[u8]) -> Vec<Field> {
    let block = &raw[..block(raw).fields_end];
    let mut out: Vec<Field> = Vec::new();
    let mut pos = 0;
    while pos < block.len() {
        let line_end = memfind(&block[pos..], b"\r\n").map_or(block.len(), |p| pos + p + 2);
        let line = &block[pos..line_end];
        if matches!(line.first(), Some(b' ' | b'\t')) {
            if let Some(last) = out.last_mut() {
                last.end = line_end;
            }
        } else if let Some(colon) = line.iter().position(|&b| b == b':') {
            out.push(Field {
                start: pos,
                end: line_end,
                name_end: pos + colon,
            });
        }
        pos = line_end;
    }
    out
}

fn name_is(raw: &[u8], f: &Field, name: &str) -> bool {
    raw[f.start..f.name_end]
        .trim_ascii_end()
        .eq_ignore_ascii_case(name.as_bytes())
}

/// The values of every field called `name`, unfolded (CRLF before
/// whitespace removed) and trimmed. Non-UTF-8 bytes are replaced.
pub fn header_values(raw: &[u8], name: &str) -> Vec<String> {
    fields(raw)
        .iter()
        .filter(|f| name_is(raw, f, name))
        .map(|f| {
            let value = &raw[f.name_end + 1..f.end];
            let unfolded: Vec<u8> = value
                .iter()
                .copied()
                .filter(|&b| b != b'\r' && b != b'\n')
                .collect();
            String::from_utf8_lossy(&unfolded).trim().to_owned()
        })
        .collect()
}

/// The message's `Message-ID` as written (the first one, trimmed, its
/// angle brackets kept): what the store keeps, so the message is found by
/// it (`consent-relay log --message-id`, the console's trace).
pub fn message_id(raw: &[u8]) -> Option<String> {
    header_values(raw, "Message-ID").into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"From: a@x\r\nX-Campaign: news\r\n letter \r\nSubject: hi\r\nx-campaign:  other\r\n\r\nX-Campaign: body\r\n";

    #[test]
    fn values_are_unfolded_and_case_insensitive() {
        assert_eq!(header_values(MSG, "X-Campaign"), ["news letter", "other"]);
        assert_eq!(header_values(MSG, "subject"), ["hi"]);
        assert!(header_values(MSG, "To").is_empty());
    }

    #[test]
    fn body_is_not_the_header_block() {
        let raw = b"From: a@x\r\n\r\nX-Campaign: body\r\n";
        assert!(header_values(raw, "X-Campaign").is_empty());
    }

    #[test]
    fn message_without_body() {
        let raw = b"X-Campaign: a\r\nSubject: s\r\n";
        assert_eq!(header_values(raw, "x-campaign"), ["a"]);
        assert_eq!(header_end(b"\r\nbody"), 2);
    }

    #[test]
    fn the_first_line_that_is_not_a_field_ends_the_block() {
        // No empty line: the body line is not a header.
        let raw = b"X-Campaign: promo\r\nbody line [[UNSUBSCRIBE_URL]]\r\n";
        let b = block(raw);
        assert_eq!((b.fields_end, b.body), (19, 19));
        assert!(!b.has_blank_line());
        assert_eq!(header_values(raw, "X-Campaign"), ["promo"]);
        // A line without a colon in the middle ends the block: the field
        // after it is body text, never the campaign.
        let raw = b"Subject: s\r\nno colon here\r\nX-Campaign: invoices\r\n\r\nbody\r\n";
        assert!(header_values(raw, "X-Campaign").is_empty());
        assert_eq!(header_end(raw), 12);
        // Neither is a name with a space in it, nor an empty one.
        for line in [&b"Not a field: x"[..], b": x", b"Na\xc3\xafve: x"] {
            assert!(!is_field_start(line), "{line:?}");
        }
        assert!(is_field_start(b"Subject : obsolete space"));
        // Folded lines belong to the field; a leading one to nothing.
        let raw = b"Subject: a\r\n b\r\n\r\n";
        assert_eq!(
            block(raw),
            Block {
                fields_end: 16,
                body: 18
            }
        );
        assert_eq!(block(b" folded first\r\n\r\n").body, 0);
        // Header only: the block is the whole message.
        let raw = b"X-Campaign: a\r\nSubject: s\r\n";
        assert_eq!(
            block(raw),
            Block {
                fields_end: raw.len(),
                body: raw.len()
            }
        );
    }
}
