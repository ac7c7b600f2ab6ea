//! Reading a message's header block as raw bytes: find header fields by
//! name (case-insensitive) and unfold their values (editing copies is
//! `rewrite`'s). Only the header block is ever looked at, so a
//! "header" inside the body is never taken for one.

/// End of the header block: the offset just after the empty line that ends
/// it, or the message length when there is no body.
pub fn header_end(raw: &[u8]) -> usize {
    if raw.starts_with(b"\r\n") {
        return 2;
    }
    memfind(raw, b"\r\n\r\n").map_or(raw.len(), |p| p + 4)
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
    let end = header_end(raw);
    let block = &raw[..end];
    let mut out: Vec<Field> = Vec::new();
    let mut pos = 0;
    while pos < block.len() {
        let line_end = memfind(&block[pos..], b"\r\n").map_or(block.len(), |p| pos + p + 2);
        let line = &block[pos..line_end];
        if line == b"\r\n" {
            break;
        }
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
}
