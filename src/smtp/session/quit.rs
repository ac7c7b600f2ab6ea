//! QUIT (RFC 5321 4.1.1.10): 221, then the session closes. A transaction
//! in progress is dropped (nothing was stored before DATA ended).

use tokio::io::{AsyncRead, AsyncWrite};

use super::{Next, Session};
use crate::smtp::reply::Reply;

impl<S: AsyncRead + AsyncWrite + Unpin> Session<'_, S> {
    pub(super) fn handle_quit(&mut self) -> Next {
        let host = &self.ctx.config.smtp.hostname;
        let r = Reply::new(221, "2.0.0", format!("{host} closing connection"));
        self.reply(r);
        Next::Close
    }
}
