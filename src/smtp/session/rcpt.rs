//! RCPT TO (RFC 5321 4.1.1.3): one recipient of the transaction. A
//! `unsubscribe+TOKEN@<unsubscribe_mailto_domain>` address is taken from
//! anyone with a valid token (RFC 2369); a report address (any address at
//! `[bounces] domain`, and `[complaints] address`) from anyone, as the one
//! recipient of its transaction (`452 4.5.3` to mixing it with others: the
//! client sends them separately); any other only from a client that may
//! send, as a plain mailbox without `%`/`!` routing, up to
//! `max_recipients`.

use std::borrow::Cow;

use smtp_proto::RcptTo;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{CONTROLS, Next, Phase, RECIPIENT_OVERSHOOT, Session};
use crate::mail::address::{AddressError, Mailbox};
use crate::smtp::reply::{self, Reply};
use crate::token::Purpose;

impl<S: AsyncRead + AsyncWrite + Unpin> Session<'_, S> {
    pub(super) fn handle_rcpt_to(&mut self, to: RcptTo<Cow<'_, str>>) -> Next {
        if let Phase::Connected | Phase::Greeted = self.phase {
            return self.refuse(reply::bad_sequence("send MAIL first"));
        }
        if to.orcpt.as_deref().is_some_and(|p| p.contains(CONTROLS)) {
            return self.refuse(reply::control_in_command());
        }
        let address = to.address.into_owned();
        if !self.smtputf8 && !address.is_ascii() {
            return self.refuse(reply::non_ascii_address());
        }
        // The one address parser (the API's too); the address as the client
        // wrote it, quoted again only where needed, is where the copy goes.
        let mailbox = Mailbox::from_unquoted(&address);
        if mailbox == Err(AddressError::Routed) {
            tracing::info!(peer = %self.peer, "recipient with % or ! routing refused");
            return self.refuse(reply::routed_address());
        }
        if self.is_report_address(&address) {
            return self.report_rcpt(address);
        }
        if self.report_to.is_some() {
            return self.refuse(separately());
        }
        if let Some(token) = self.unsubscribe_token(&address) {
            return self.unsubscribe_rcpt(token);
        }
        if !self.may_send() {
            // Outsiders may only write to the unsubscribe addresses.
            return self.refuse(Reply::new(
                554,
                "5.7.1",
                "relay access denied: this relay only accepts mail from its allowed networks",
            ));
        }
        if self.rcpt_to.len() + self.unsubscribes.len() >= self.ctx.config.smtp.max_recipients {
            return self.over_recipient_limit();
        }
        let mailbox = match mailbox {
            Ok(m) => m,
            Err(e) => {
                tracing::info!(peer = %self.peer, cause = %e, "recipient is not a mailbox");
                return self.refuse(Reply::new(
                    501,
                    "5.1.3",
                    format!("recipient must be a mailbox local@domain: {e}"),
                ));
            }
        };
        self.rcpt_to.push(mailbox.to_string());
        self.phase = Phase::Rcpt;
        self.reply(Reply::new(250, "2.1.5", "recipient OK"));
        Next::Continue
    }

    /// `452 4.5.3` for a RCPT over `max_recipients`: flow control, not an
    /// error (RFC 5321 4.5.3.1.10), until `RECIPIENT_OVERSHOOT` of them.
    fn over_recipient_limit(&mut self) -> Next {
        self.overshoot += 1;
        if self.overshoot > RECIPIENT_OVERSHOOT {
            return self.refuse(reply::too_many_recipients());
        }
        self.reply(reply::too_many_recipients());
        Next::Continue
    }

    /// The token of an `unsubscribe+TOKEN@<unsubscribe_mailto_domain>` address.
    fn unsubscribe_token<'a>(&self, address: &'a str) -> Option<&'a str> {
        let domain = self.ctx.config.http.unsubscribe_mailto_domain.as_deref()?;
        let (local, at) = address.rsplit_once('@')?;
        if !at.eq_ignore_ascii_case(domain) {
            return None;
        }
        local.strip_prefix("unsubscribe+")
    }

    /// An address at `[bounces] domain` (any local part: a token that does
    /// not verify is the intake's to record), or `[complaints] address`.
    fn is_report_address(&self, address: &str) -> bool {
        let cfg = &self.ctx.config;
        let at_bounce_domain = match (address.rsplit_once('@'), &cfg.bounces.domain) {
            (Some((_, domain)), Some(bounces)) => domain.eq_ignore_ascii_case(bounces),
            _ => false,
        };
        at_bounce_domain
            || cfg
                .complaints
                .address
                .as_deref()
                .is_some_and(|a| a.eq_ignore_ascii_case(address))
    }

    /// A report address: the transaction's one recipient.
    fn report_rcpt(&mut self, address: String) -> Next {
        if self.report_to.is_some() || !self.rcpt_to.is_empty() || !self.unsubscribes.is_empty() {
            return self.refuse(separately());
        }
        self.report_to = Some(address);
        self.phase = Phase::Rcpt;
        self.reply(Reply::new(250, "2.1.5", "report address OK"));
        Next::Continue
    }

    fn unsubscribe_rcpt(&mut self, token: &str) -> Next {
        match crate::token::verify_for(&self.ctx.config.signing, token, Purpose::Unsubscribe) {
            Ok(claims) => {
                self.unsubscribes.push(claims);
                self.phase = Phase::Rcpt;
                self.reply(Reply::new(250, "2.1.5", "recipient OK"));
                Next::Continue
            }
            Err(e) => {
                tracing::info!(peer = %self.peer, cause = %e, "unsubscribe address refused");
                self.refuse(Reply::new(550, "5.1.1", "no such unsubscribe address"))
            }
        }
    }
}

/// A report address and another recipient in one transaction: the client
/// sends them separately (RFC 5321 4.5.3.1.10: 452 is flow control, the
/// rest goes in another transaction).
fn separately() -> Reply {
    Reply::new(
        452,
        "4.5.3",
        "a report goes in a transaction of its own: send this recipient separately",
    )
}
