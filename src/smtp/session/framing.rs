//! The session's wire: reading command lines (CRLF, at most 512 octets,
//! an AUTH line up to 12288), buffering replies and flushing them before
//! each read, and the timeouts and shutdown that end a read. Does not know
//! what a command means: each whole line goes to [`Session::command`].

use std::time::Instant;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{Late, MAX_AUTH_LINE, MAX_COMMAND_LINE, Next, Session};
use crate::smtp::reply::{self, Reply};

impl<S: AsyncRead + AsyncWrite + Unpin> Session<'_, S> {
    pub(super) async fn flush(&mut self) -> std::io::Result<()> {
        if !self.out.is_empty() {
            self.stream.write_all(&self.out).await?;
            self.stream.flush().await?;
            self.out.clear();
        }
        Ok(())
    }

    /// Reads more input; `Ok(false)` at end of stream, past `deadline` or
    /// on shutdown (after saying so to the client).
    pub(super) async fn read_more(
        &mut self,
        deadline: Instant,
        in_data: bool,
        late: Late,
    ) -> std::io::Result<bool> {
        self.flush().await?;
        let mut chunk = [0u8; 8192];
        let mut shutdown = self.ctx.shutdown.clone();
        let host = self.ctx.config.smtp.hostname.clone();
        enum Read {
            Data(std::io::Result<usize>),
            TimedOut,
            Shutdown,
        }
        let outcome = tokio::select! {
            r = tokio::time::timeout_at(deadline.into(), self.stream.read(&mut chunk)) => match r {
                Ok(r) => Read::Data(r),
                Err(_) => Read::TimedOut,
            },
            // A message in transfer is finished first; between commands the
            // client is told to come back later.
            _ = crate::shutdown::until_shutdown(&mut shutdown), if !in_data => Read::Shutdown,
        };
        match outcome {
            Read::Data(Ok(0)) => Ok(false),
            Read::Data(Ok(n)) => {
                self.inbuf.extend_from_slice(&chunk[..n]);
                Ok(true)
            }
            Read::Data(Err(e)) => Err(e),
            Read::TimedOut => {
                tracing::info!(peer = %self.peer, in_data, "client too slow; session closed");
                self.reply(match late {
                    Late::Idle => reply::timeout(&host),
                    Late::Slow => reply::data_too_slow(&host),
                });
                self.flush().await?;
                Ok(false)
            }
            Read::Shutdown => {
                self.reply(reply::shutting_down(&host));
                self.flush().await?;
                Ok(false)
            }
        }
    }

    /// Serves commands; `Ok(true)` when the client is to start TLS.
    pub(super) async fn serve(&mut self) -> std::io::Result<bool> {
        let command_timeout = self.ctx.config.smtp.command_timeout;
        let mut discarding = false;
        // Each command line must be whole within command_timeout of the
        // wait for it starting: trickling bytes does not extend it.
        let mut deadline = None;
        loop {
            let Some(nl) = self.inbuf.iter().position(|&b| b == b'\n') else {
                if self.inbuf.len() > line_limit(&self.inbuf) {
                    // Too long already: answer once, then drop input up to the next LF.
                    if !discarding {
                        self.reply(reply::line_too_long());
                        discarding = true;
                        if self.count_error() {
                            return self.flush().await.map(|()| false);
                        }
                    }
                    self.inbuf.clear();
                }
                let until = *deadline.get_or_insert_with(|| Instant::now() + command_timeout);
                if !self.read_more(until, false, Late::Idle).await? {
                    return Ok(false);
                }
                continue;
            };
            deadline = None;
            let line: Vec<u8> = self.inbuf.drain(..=nl).collect();
            if std::mem::take(&mut discarding) {
                continue;
            }
            let next = match malformed(&line) {
                Some(r) => self.refuse(r),
                None => self.command(&line).await?,
            };
            match next {
                Next::Continue => {}
                Next::Close => return self.flush().await.map(|()| false),
                Next::StartTls => return self.flush().await.map(|()| true),
            }
        }
    }
}

/// What is wrong with a command line (`line` ends in LF) before parsing:
/// too long, a bare LF, or CR or NUL inside it.
fn malformed(line: &[u8]) -> Option<Reply> {
    if line.len() > line_limit(line) {
        return Some(reply::line_too_long());
    }
    let body = &line[..line.len() - 1];
    if body.last() != Some(&b'\r') {
        return Some(reply::bare_newline_in_command());
    }
    if body[..body.len() - 1].iter().any(|&b| b == b'\r' || b == 0) {
        return Some(reply::control_in_command());
    }
    None
}

/// The longest line allowed for the command `buf` starts with: RFC 4954 4
/// lets an AUTH line carry an initial response of up to 12288 octets.
fn line_limit(buf: &[u8]) -> usize {
    if buf.len() >= 5 && buf[..5].eq_ignore_ascii_case(b"AUTH ") {
        MAX_AUTH_LINE
    } else {
        MAX_COMMAND_LINE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_auth_lines_may_be_long() {
        assert_eq!(line_limit(b"AUTH PLAIN AGNybQ"), MAX_AUTH_LINE);
        assert_eq!(line_limit(b"auth plain"), MAX_AUTH_LINE);
        assert_eq!(line_limit(b"AUTHX"), MAX_COMMAND_LINE);
        assert_eq!(line_limit(b"MAIL FROM:<a@b>"), MAX_COMMAND_LINE);
    }
}
