//! STARTTLS (RFC 3207): offered when a certificate is configured and the
//! stream is plain; allowed once greeted and outside a transaction. The
//! handshake itself is the server's: this only answers 220 and ends the
//! session with [`super::Ended::StartTls`].

use tokio::io::{AsyncRead, AsyncWrite};

use super::{Next, Phase, Session, not_offered};
use crate::smtp::reply::{self, Reply};

impl<S: AsyncRead + AsyncWrite + Unpin> Session<'_, S> {
    pub(super) fn handle_starttls(&mut self) -> Next {
        if self.ctx.tls.is_none() {
            return self.refuse(not_offered("STARTTLS"));
        }
        if self.tls {
            return self.refuse(reply::bad_sequence("TLS is already active"));
        }
        match self.phase {
            Phase::Connected => return self.refuse(reply::bad_sequence("send EHLO first")),
            Phase::Mail | Phase::Rcpt => {
                return self.refuse(reply::bad_sequence(
                    "STARTTLS is not allowed during a mail transaction",
                ));
            }
            Phase::Greeted => {}
        }
        if !self.inbuf.is_empty() {
            // RFC 3207 4.2 / CVE-2011-0411: anything sent after STARTTLS
            // and before the handshake would otherwise run as if it had come
            // over TLS. The session is dropped instead.
            tracing::info!(peer = %self.peer, "commands pipelined after STARTTLS; session dropped");
            self.reply(Reply::new(
                554,
                "5.5.0",
                "protocol synchronization error: data sent after STARTTLS",
            ));
            return Next::Close;
        }
        self.reply(Reply::new(220, "2.0.0", "ready to start TLS"));
        Next::StartTls
    }
}
