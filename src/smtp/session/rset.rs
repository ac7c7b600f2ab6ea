//! RSET (RFC 5321 4.1.1.5): ends the transaction in progress, in any phase.

use tokio::io::{AsyncRead, AsyncWrite};

use super::{Next, Session};
use crate::smtp::reply;

impl<S: AsyncRead + AsyncWrite + Unpin> Session<'_, S> {
    pub(super) fn handle_rset(&mut self) -> Next {
        self.reset_transaction();
        self.reply(reply::ok("2.0.0"));
        Next::Continue
    }
}
