//! MAIL FROM (RFC 5321 4.1.1.2): starts a transaction once greeted, and
//! only for a client that may send (by network or AUTH), unless the relay
//! takes mail to its unsubscribe or report addresses from anyone. Checks the
//! declared SIZE, control characters in parameters, and SMTPUTF8.

use std::borrow::Cow;

use smtp_proto::MailFrom;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{CONTROLS, Next, Phase, Session};
use crate::smtp::reply::{self, Reply};

impl<S: AsyncRead + AsyncWrite + Unpin> Session<'_, S> {
    pub(super) fn handle_mail_from(&mut self, from: MailFrom<Cow<'_, str>>) -> Next {
        match self.phase {
            Phase::Connected => {
                return self.refuse(reply::bad_sequence("send EHLO or HELO first"));
            }
            Phase::Mail | Phase::Rcpt => {
                return self.refuse(reply::bad_sequence("nested MAIL command; send RSET first"));
            }
            Phase::Greeted => {}
        }
        if let Some(r) = self.mail_from_refusal(&from) {
            return self.refuse(r);
        }
        self.smtputf8 = from.flags & smtp_proto::MAIL_SMTPUTF8 != 0;
        self.mail_from = from.address.into_owned();
        self.phase = Phase::Mail;
        self.reply(Reply::new(250, "2.1.0", "sender OK"));
        Next::Continue
    }

    /// Why MAIL FROM is refused in the `Greeted` phase, if it is.
    fn mail_from_refusal(&self, from: &MailFrom<Cow<'_, str>>) -> Option<Reply> {
        if !self.may_send() && !super::open_to_anyone(&self.ctx.config) {
            return Some(Reply::new(530, "5.7.0", "authentication required"));
        }
        if from.size > self.ctx.config.smtp.max_message_size {
            tracing::info!(peer = %self.peer, declared_size = from.size, reason = "SIZE= over max_message_size", "message refused");
            crate::metrics::refused("too_large");
            return Some(reply::too_large());
        }
        if [&from.env_id, &from.trans_id, &from.auth]
            .into_iter()
            .flatten()
            .any(|p| p.contains(CONTROLS))
        {
            // xtext (+0D+0A) decodes to CR LF: such a parameter would
            // inject lines wherever it is written out again.
            return Some(reply::control_in_command());
        }
        if from.flags & smtp_proto::MAIL_SMTPUTF8 == 0 && !from.address.is_ascii() {
            return Some(reply::non_ascii_address());
        }
        None
    }
}
