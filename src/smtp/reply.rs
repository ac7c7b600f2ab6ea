//! SMTP replies: code, enhanced status code and text. Clients see generic
//! text: never configuration values, SQL or secrets.

use std::fmt::Write as _;

/// One reply, possibly multi-line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// Enhanced status code (RFC 3463), e.g. "5.7.1"; empty for 220/221-style greetings.
    pub status: &'static str,
    pub lines: Vec<String>,
}

impl Reply {
    pub fn new(code: u16, status: &'static str, text: impl Into<String>) -> Reply {
        Reply {
            code,
            status,
            lines: vec![text.into()],
        }
    }

    /// Appends the reply, CRLF-terminated, to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let mut s = String::new();
        let last = self.lines.len().saturating_sub(1);
        for (i, line) in self.lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            // Enhanced codes go on every line (RFC 2034 §3), except on the
            // greeting and EHLO lines, which carry none.
            let _ = if self.status.is_empty() {
                write!(s, "{}{}{}\r\n", self.code, sep, line)
            } else {
                write!(s, "{}{}{} {}\r\n", self.code, sep, self.status, line)
            };
        }
        out.extend_from_slice(s.as_bytes());
    }

    pub fn is_positive(&self) -> bool {
        self.code < 400
    }
}

pub fn ok(status: &'static str) -> Reply {
    Reply::new(250, status, "OK")
}
pub fn bad_sequence(text: &str) -> Reply {
    Reply::new(503, "5.5.1", text)
}
pub fn not_implemented(cmd: &str) -> Reply {
    Reply::new(502, "5.5.1", format!("{cmd} is not implemented"))
}
pub fn line_too_long() -> Reply {
    Reply::new(500, "5.5.2", "command line too long (512 octets at most)")
}
pub fn bare_newline_in_command() -> Reply {
    Reply::new(500, "5.5.2", "command lines must end with CRLF")
}
pub fn bare_newline_in_data() -> Reply {
    Reply::new(
        550,
        "5.6.0",
        "message refused: bare CR or LF; every line must end with CRLF",
    )
}
pub fn too_large() -> Reply {
    Reply::new(552, "5.3.4", "message exceeds the maximum message size")
}
pub fn header_too_large() -> Reply {
    Reply::new(
        552,
        "5.3.4",
        "message header block exceeds the maximum size",
    )
}
/// A line over `[smtp] max_line_length` (`limit`, CRLF excluded).
pub fn text_line_too_long(limit: usize) -> Reply {
    Reply::new(
        550,
        "5.6.0",
        format!("message refused: a line is longer than {limit} octets"),
    )
}
/// A line over 998 octets that the copy cannot be made without (see
/// [`crate::rewrite::long_line_problem`]).
pub fn long_line_kept(reason: &str) -> Reply {
    Reply::new(
        550,
        "5.6.0",
        format!("message refused: {reason} (RFC 5322 2.1.1)"),
    )
}
pub fn too_many_recipients() -> Reply {
    Reply::new(452, "4.5.3", "too many recipients")
}
pub fn timeout(hostname: &str) -> Reply {
    Reply::new(
        421,
        "4.4.2",
        format!("{hostname} timeout exceeded, closing connection"),
    )
}
pub fn shutting_down(hostname: &str) -> Reply {
    Reply::new(
        421,
        "4.3.2",
        format!("{hostname} shutting down, try again later"),
    )
}
pub fn too_many_errors(hostname: &str) -> Reply {
    Reply::new(
        421,
        "4.7.0",
        format!("{hostname} too many errors, closing connection"),
    )
}
pub fn too_many_connections(hostname: &str) -> Reply {
    Reply::new(
        421,
        "4.7.0",
        format!("{hostname} too many connections, try again later"),
    )
}
pub fn store_failed() -> Reply {
    Reply::new(
        451,
        "4.3.0",
        "temporary failure storing the message, try again later",
    )
}
pub fn sync_error() -> Reply {
    Reply::new(
        554,
        "5.5.0",
        "protocol synchronization error: data sent before the 354 reply",
    )
}

// Hostile input (README "Hostile input → reply").

pub fn auth_blocked(hostname: &str) -> Reply {
    Reply::new(
        421,
        "4.7.0",
        format!("{hostname} too many authentication failures from your address, try again later"),
    )
}
pub fn auth_failed() -> Reply {
    // The same text for an unknown user, a wrong password and a locked
    // user: the reply never tells which part was wrong.
    Reply::new(535, "5.7.8", "authentication credentials invalid")
}
pub fn control_in_command() -> Reply {
    Reply::new(
        501,
        "5.5.4",
        "syntax error: CR, LF or NUL inside a command line or parameter",
    )
}
pub fn nul_in_data() -> Reply {
    Reply::new(
        550,
        "5.6.0",
        "message refused: NUL octet in the message (RFC 5322 2.1)",
    )
}
pub fn eight_bit_header() -> Reply {
    Reply::new(
        550,
        "5.6.7",
        "message refused: 8-bit octets in the header need MAIL FROM ... SMTPUTF8 (RFC 6532)",
    )
}
pub fn invalid_utf8_header() -> Reply {
    Reply::new(
        550,
        "5.6.7",
        "message refused: the header is not valid UTF-8 (RFC 6532 3.2)",
    )
}
pub fn non_ascii_address() -> Reply {
    Reply::new(
        553,
        "5.6.7",
        "non-ASCII address needs MAIL FROM ... SMTPUTF8 (RFC 6531)",
    )
}
pub fn routed_address() -> Reply {
    Reply::new(
        550,
        "5.7.1",
        "relay access denied: % and ! routing in the local part is not supported",
    )
}
pub fn data_too_slow(hostname: &str) -> Reply {
    Reply::new(
        421,
        "4.4.2",
        format!("{hostname} data transfer too slow, closing connection"),
    )
}

/// Maps a command parse error of `smtp-proto` to its reply.
pub fn parse_error(err: &smtp_proto::Error) -> Reply {
    use smtp_proto::Error as E;
    match err {
        E::UnknownCommand => Reply::new(500, "5.5.1", "command not recognized"),
        E::InvalidSenderAddress => Reply::new(501, "5.1.7", "bad sender address syntax"),
        E::InvalidRecipientAddress => Reply::new(501, "5.1.3", "bad recipient address syntax"),
        E::SyntaxError { syntax } => Reply::new(501, "5.5.4", format!("syntax: {syntax}")),
        E::InvalidParameter { param } => {
            Reply::new(501, "5.5.4", format!("invalid parameter {param}"))
        }
        E::UnsupportedParameter { .. } => Reply::new(555, "5.5.4", "unsupported parameter"),
        E::ResponseTooLong => line_too_long(),
        E::NeedsMoreData { .. } | E::InvalidResponse { .. } => {
            Reply::new(500, "5.5.2", "syntax error")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_line_replies_carry_status_on_each_line() {
        let r = Reply {
            code: 250,
            status: "2.0.0",
            lines: vec!["a".into(), "b".into()],
        };
        let mut out = Vec::new();
        r.write_to(&mut out);
        assert_eq!(out, b"250-2.0.0 a\r\n250 2.0.0 b\r\n");
    }

    #[test]
    fn greeting_has_no_status() {
        let mut out = Vec::new();
        Reply::new(220, "", "host ESMTP").write_to(&mut out);
        assert_eq!(out, b"220 host ESMTP\r\n");
    }
}
