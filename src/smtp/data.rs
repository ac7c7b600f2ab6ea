//! The DATA phase reader: finds the one true end of data (CRLF "." CRLF),
//! undoes dot-stuffing exactly (RFC 5321 4.5.2), and refuses a bare CR or
//! bare LF anywhere, which closes every SMTP-smuggling variant (a fake
//! end-of-data such as LF "." LF is never taken for the end, and the
//! session closes instead of reading on, so nothing after it is ever run as
//! a command). Pure: bytes in, state out, across as many reads as needed.

/// Where the reader stands between two bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    LineStart,
    InLine,
    /// CR seen inside a line; LF must follow.
    Cr,
    /// "." at the start of a line.
    Dot,
    /// "." CR at the start of a line; LF ends the data.
    DotCr,
}

/// Result of feeding bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// All input consumed; more is needed.
    NeedMore,
    /// The end of data was found after this many bytes of the input.
    Done(usize),
    /// A bare CR or LF was found: the message is refused and the session must close.
    BareNewline,
}

/// Reads one message's DATA.
#[derive(Debug)]
pub struct DataReader {
    at: At,
    line_len: usize,
    max_size: usize,
    max_line: usize,
    /// The message as it will be stored (dot-stuffing undone).
    pub body: Vec<u8>,
    /// More than `max_size` octets arrived; the rest was discarded.
    pub oversize: bool,
    /// A line longer than `max_line` octets (CRLF excluded) arrived.
    pub long_line: bool,
    /// The longest line, in octets (CRLF excluded; a stuffed dot not counted).
    pub longest_line: usize,
    /// A NUL octet arrived (RFC 5322 2.1 and RFC 6152 forbid it in mail).
    pub nul: bool,
}

impl DataReader {
    /// `max_line` excludes the CRLF (`[smtp] max_line_length`; RFC 5321's
    /// 1000-octet text line is 998).
    pub fn new(max_size: usize, max_line: usize) -> DataReader {
        DataReader {
            at: At::LineStart,
            line_len: 0,
            max_size,
            max_line,
            body: Vec::new(),
            oversize: false,
            long_line: false,
            longest_line: 0,
            nul: false,
        }
    }

    fn emit(&mut self, bytes: &[u8]) {
        if self.oversize {
            return;
        }
        if self.body.len() + bytes.len() > self.max_size {
            self.oversize = true;
            self.body = Vec::new();
            return;
        }
        self.body.extend_from_slice(bytes);
    }

    fn count(&mut self, n: usize) {
        self.line_len += n;
        self.longest_line = self.longest_line.max(self.line_len);
        if self.line_len > self.max_line {
            self.long_line = true;
        }
    }

    /// Feeds the next bytes of input.
    pub fn feed(&mut self, input: &[u8]) -> Progress {
        let mut i = 0;
        while i < input.len() {
            match self.at {
                At::InLine | At::LineStart
                    if !matches!(input[i], b'\r' | b'\n' | b'.')
                        || self.at == At::InLine && input[i] == b'.' =>
                {
                    // Fast path: copy up to the next CR or LF in one go.
                    let run = input[i..]
                        .iter()
                        .position(|&b| b == b'\r' || b == b'\n')
                        .unwrap_or(input.len() - i);
                    self.nul |= input[i..i + run].contains(&0);
                    self.emit(&input[i..i + run]);
                    self.count(run);
                    self.at = At::InLine;
                    i += run;
                }
                At::LineStart | At::InLine => {
                    let b = input[i];
                    i += 1;
                    match b {
                        b'\r' => self.at = At::Cr,
                        b'\n' => return Progress::BareNewline,
                        // Only a line start reaches here with a dot.
                        _ => self.at = At::Dot,
                    }
                }
                At::Cr => {
                    if input[i] != b'\n' {
                        return Progress::BareNewline;
                    }
                    i += 1;
                    self.emit(b"\r\n");
                    self.line_len = 0;
                    self.at = At::LineStart;
                }
                At::Dot => {
                    let b = input[i];
                    match b {
                        b'\r' => {
                            i += 1;
                            self.at = At::DotCr;
                        }
                        b'\n' => return Progress::BareNewline,
                        // The stuffed dot is dropped and not counted (RFC 5321
                        // 4.5.3.1.6); what follows is ordinary text.
                        _ => {
                            self.at = At::InLine;
                            if b == b'.' {
                                i += 1;
                                self.emit(b".");
                                self.count(1);
                            }
                        }
                    }
                }
                At::DotCr => {
                    if input[i] != b'\n' {
                        return Progress::BareNewline;
                    }
                    return Progress::Done(i + 1);
                }
            }
        }
        Progress::NeedMore
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(chunks: &[&[u8]]) -> (Progress, DataReader) {
        let mut r = DataReader::new(1 << 20, 998);
        for c in chunks {
            match r.feed(c) {
                Progress::NeedMore => continue,
                p => return (p, r),
            }
        }
        (Progress::NeedMore, r)
    }

    #[test]
    fn simple_message() {
        let (p, r) = read_all(&[b"Subject: x\r\n\r\nhello\r\n.\r\nQUIT\r\n"]);
        assert_eq!(p, Progress::Done(24));
        assert_eq!(r.body, b"Subject: x\r\n\r\nhello\r\n");
    }

    #[test]
    fn empty_message() {
        let (p, r) = read_all(&[b".\r\n"]);
        assert_eq!(p, Progress::Done(3));
        assert!(r.body.is_empty());
    }

    #[test]
    fn dot_unstuffing_is_exact() {
        let (p, r) = read_all(&[b"..first\r\na.b\r\n..\r\n...\r\n.x\r\n.\r\n"]);
        assert!(matches!(p, Progress::Done(_)));
        assert_eq!(r.body, b".first\r\na.b\r\n.\r\n..\r\nx\r\n");
    }

    #[test]
    fn end_split_across_reads() {
        let (p, r) = read_all(&[b"a\r", b"\n", b".", b"\r", b"\nrest"]);
        assert_eq!(p, Progress::Done(1));
        assert_eq!(r.body, b"a\r\n");
    }

    #[test]
    fn every_smuggling_variant_is_refused() {
        for fake in [
            &b"a\n.\nMAIL FROM:<x>\r\n"[..],
            b"a\n.\r\nMAIL",
            b"a\r.\rMAIL",
            b"a\r\n.\nMAIL",
            b"a\r\n.\rMAIL",
            b"a\r.\r\nMAIL",
            b"a\n.\r\n",
            b"a\r\n.\n",
            b"bare\nlf\r\n.\r\n",
            b"bare\rcr\r\n.\r\n",
        ] {
            assert_eq!(read_all(&[fake]).0, Progress::BareNewline, "{fake:?}");
            // Split byte by byte across reads, the same.
            let pieces: Vec<&[u8]> = fake.chunks(1).collect();
            assert_eq!(read_all(&pieces).0, Progress::BareNewline, "{fake:?} split");
        }
    }

    #[test]
    fn nul_before_dot_is_not_an_end() {
        let (p, r) = read_all(&[b"a\r\n\0.\r\nb\r\n.\r\n"]);
        assert!(matches!(p, Progress::Done(_)));
        assert_eq!(r.body, b"a\r\n\0.\r\nb\r\n");
        assert!(r.nul);
        let (_, r) = read_all(&[b"a\r\n", b"..b\0", b"\r\n.\r\n"]);
        assert!(r.nul, "NUL after a stuffed dot, split across reads");
        let (_, r) = read_all(&[b"a\r\n.\r\n"]);
        assert!(!r.nul);
    }

    #[test]
    fn oversize_is_flagged_and_discarded() {
        let mut r = DataReader::new(10, 998);
        assert_eq!(r.feed(b"0123456789abc\r\n.\r\n"), Progress::Done(18));
        assert!(r.oversize);
        assert!(r.body.is_empty());
    }

    #[test]
    fn long_lines_are_flagged() {
        let mut line = vec![b'a'; 998];
        line.extend_from_slice(b"\r\n.\r\n");
        let mut r = DataReader::new(1 << 20, 998);
        assert!(matches!(r.feed(&line), Progress::Done(_)));
        assert!(!r.long_line);
        let mut line = vec![b'a'; 999];
        line.extend_from_slice(b"\r\n.\r\n");
        let mut r = DataReader::new(1 << 20, 998);
        assert!(matches!(r.feed(&line), Progress::Done(_)));
        assert!(r.long_line);
        // A stuffed dot does not count against the line.
        let mut line = b".".to_vec();
        line.extend(vec![b'.'; 998]);
        line.extend_from_slice(b"\r\n.\r\n");
        let mut r = DataReader::new(1 << 20, 998);
        assert!(matches!(r.feed(&line), Progress::Done(_)));
        assert!(!r.long_line, "stuffed dot counted");
        assert_eq!(r.longest_line, 998);
    }
}
