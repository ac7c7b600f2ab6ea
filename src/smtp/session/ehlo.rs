//! EHLO and HELO (RFC 5321 4.1.1.1): greet, start afresh, and for EHLO
//! list the extensions this session offers. Allowed in every phase; either
//! one ends a transaction in progress.

use tokio::io::{AsyncRead, AsyncWrite};

use super::{Next, Phase, Session};
use crate::smtp::reply::Reply;

impl<S: AsyncRead + AsyncWrite + Unpin> Session<'_, S> {
    pub(super) fn handle_ehlo(&mut self, host: String) -> Next {
        self.greeted(host, true);
        let cfg = &self.ctx.config.smtp;
        let mut lines = vec![
            format!("{} greets {}", cfg.hostname, self.peer.ip()),
            "PIPELINING".into(),
            format!("SIZE {}", cfg.max_message_size),
            "8BITMIME".into(),
            "ENHANCEDSTATUSCODES".into(),
            "SMTPUTF8".into(),
        ];
        if self.starttls_offered() {
            lines.push("STARTTLS".into());
        }
        if self.auth_allowed() {
            lines.push("AUTH PLAIN LOGIN".into());
        }
        lines.push("HELP".into());
        self.reply(Reply {
            code: 250,
            status: "",
            lines,
        });
        Next::Continue
    }

    pub(super) fn handle_helo(&mut self, host: String) -> Next {
        self.greeted(host, false);
        let r = Reply::new(250, "", self.ctx.config.smtp.hostname.clone());
        self.reply(r);
        Next::Continue
    }

    fn greeted(&mut self, host: String, esmtp: bool) {
        self.helo = host;
        self.esmtp = esmtp;
        self.phase = Phase::Greeted;
        self.reset_transaction();
    }
}
