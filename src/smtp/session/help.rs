//! HELP (RFC 5321 4.1.1.8): how to use the relay (the campaign header)
//! and the commands this session accepts.

use tokio::io::{AsyncRead, AsyncWrite};

use super::{Next, Session};
use crate::smtp::reply::Reply;

impl<S: AsyncRead + AsyncWrite + Unpin> Session<'_, S> {
    pub(super) fn handle_help(&mut self) -> Next {
        let mut commands = vec!["EHLO", "HELO"];
        if self.starttls_offered() {
            commands.push("STARTTLS");
        }
        if self.auth_allowed() {
            commands.push("AUTH");
        }
        commands.extend([
            "MAIL", "RCPT", "DATA", "RSET", "NOOP", "VRFY", "HELP", "QUIT",
        ]);
        self.reply(Reply {
            code: 214,
            status: "2.0.0",
            lines: vec![
                "consent-relay: tag each message with its campaign header".into(),
                format!("commands: {}", commands.join(" ")),
            ],
        });
        Next::Continue
    }
}
