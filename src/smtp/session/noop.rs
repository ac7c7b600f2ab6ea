//! NOOP (RFC 5321 4.1.1.9): answered 250 in any phase; changes nothing.

use tokio::io::{AsyncRead, AsyncWrite};

use super::{Next, Session};
use crate::smtp::reply;

impl<S: AsyncRead + AsyncWrite + Unpin> Session<'_, S> {
    pub(super) fn handle_noop(&mut self) -> Next {
        self.reply(reply::ok("2.0.0"));
        Next::Continue
    }
}
