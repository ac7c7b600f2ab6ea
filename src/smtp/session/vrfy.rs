//! VRFY and EXPN (RFC 5321 3.5): this relay never tells which addresses
//! exist. VRFY gets the 252 of RFC 5321 3.5.3; EXPN is refused.

use tokio::io::{AsyncRead, AsyncWrite};

use super::{Next, Session};
use crate::smtp::reply::Reply;

impl<S: AsyncRead + AsyncWrite + Unpin> Session<'_, S> {
    pub(super) fn handle_vrfy(&mut self) -> Next {
        self.reply(Reply::new(
            252,
            "2.5.0",
            "cannot verify the user, but will accept the message",
        ));
        Next::Continue
    }

    pub(super) fn handle_expn(&mut self) -> Next {
        self.refuse(Reply::new(502, "5.5.1", "EXPN is not available"))
    }
}
