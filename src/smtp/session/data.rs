//! DATA (RFC 5321 4.1.1.4): after at least one accepted RCPT, reads the
//! message under the `data_timeout` / `min_data_rate` budget, refuses what
//! cannot be relayed (too large, lines over `max_line_length` or long lines
//! that no copy could be made without, NUL, 8-bit headers without SMTPUTF8
//! or headers that are not UTF-8 with it), records `unsubscribe+TOKEN` requests, and hands the rest to
//! the intake; the reply says what the intake did. A report (the
//! transaction's recipient is a report address) goes to the feedback
//! intake instead, up to `[bounces] max_report_size`, with none of the
//! checks a relayed message needs: `250` once it is stored, `550 5.6.0`
//! for a message that is not a report, `451 4.3.0` when the store cannot
//! take it. Does not decide consent nor store anything itself.

use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite};

use super::{Late, MAX_TEXT_LINE, Next, Phase, Session};
use crate::feedback::intake::IntakeError;
use crate::smtp::data::{DataReader, Progress};
use crate::smtp::intake::{Accepted, Envelope, Refusal};
use crate::smtp::reply::{self, Reply};

impl<S: AsyncRead + AsyncWrite + Unpin> Session<'_, S> {
    pub(super) async fn handle_data(&mut self) -> std::io::Result<Next> {
        match self.phase {
            Phase::Rcpt => {}
            Phase::Mail => return Ok(self.refuse(Reply::new(554, "5.5.1", "no valid recipients"))),
            _ => return Ok(self.refuse(reply::bad_sequence("send MAIL and RCPT first"))),
        }
        if !self.inbuf.is_empty() {
            // RFC 2920: DATA ends a pipelined group; the client must
            // wait for 354. Anything already here would be read as
            // message text that the client did not mean as such.
            self.reply(reply::sync_error());
            return Ok(Next::Close);
        }
        self.reply(Reply::new(354, "", "end data with <CR><LF>.<CR><LF>"));
        let Some(message) = self.read_message().await? else {
            return Ok(Next::Close);
        };
        if let Some(to) = self.report_to.take() {
            let r = self.report(to, message).await;
            self.reset_transaction();
            self.reply(r);
            return Ok(Next::Continue);
        }
        let r = match self.message_refusal(&message) {
            Some(r) => r,
            None => {
                let started = std::time::Instant::now();
                let r = self.deliver(message.body).await;
                metrics::histogram!(crate::metrics::ACCEPT_SECONDS)
                    .record(started.elapsed().as_secs_f64());
                r
            }
        };
        self.reset_transaction();
        self.reply(r);
        Ok(Next::Continue)
    }

    /// Reads the message after 354, up to the end of data; `None` when the
    /// session must close (a disconnect, a timeout, or a bare CR or LF,
    /// answered here). Input after the end of data stays buffered.
    async fn read_message(&mut self) -> std::io::Result<Option<DataReader>> {
        let cfg = &self.ctx.config.smtp;
        let max_size = match self.report_to {
            Some(_) => self.ctx.config.bounces.max_report_size,
            None => cfg.max_message_size,
        };
        let mut reader = DataReader::new(max_size, cfg.max_line_length);
        let mut budget = Budget::new(cfg.data_timeout, cfg.guard.min_data_rate);
        let mut pending = std::mem::take(&mut self.inbuf);
        loop {
            match reader.feed(&pending) {
                Progress::NeedMore => {
                    pending.clear();
                    let started = Instant::now();
                    let late = budget.late();
                    if !self.read_more(started + budget.left, true, late).await? {
                        // Cut by a disconnect or a timeout: nothing is stored.
                        return Ok(None);
                    }
                    pending = std::mem::take(&mut self.inbuf);
                    budget.spend(started.elapsed(), pending.len());
                }
                Progress::Done(used) => {
                    self.inbuf = pending.split_off(used);
                    return Ok(Some(reader));
                }
                Progress::BareNewline => {
                    tracing::info!(peer = %self.peer, "message refused: bare CR or LF in DATA");
                    crate::metrics::refused("bare_newline");
                    self.reply(reply::bare_newline_in_data());
                    self.reset_transaction();
                    return Ok(None);
                }
            }
        }
    }

    /// Why a whole message is refused before the intake sees it, if it is
    /// (counted in the refusal metric, and logged: every refused message
    /// gets its line).
    fn message_refusal(&self, message: &DataReader) -> Option<Reply> {
        let cfg = &self.ctx.config.smtp;
        let header_end = crate::mail::header::header_end(&message.body);
        let header = &message.body[..header_end];
        let (reason, r) = if message.oversize {
            ("too_large", reply::too_large())
        } else if message.long_line {
            (
                "line_too_long",
                reply::text_line_too_long(cfg.max_line_length),
            )
        } else if message.nul {
            ("nul", reply::nul_in_data())
        } else if header_end > cfg.max_header_size {
            ("header_too_large", reply::header_too_large())
        } else if !self.smtputf8 && !header.is_ascii() {
            // RFC 6532 3: UTF-8 in header fields only with SMTPUTF8; 8BITMIME
            // covers the body alone.
            ("eight_bit_header", reply::eight_bit_header())
        } else if std::str::from_utf8(header).is_err() {
            // RFC 6532 3.2: with SMTPUTF8, header fields are UTF-8.
            ("invalid_utf8_header", reply::invalid_utf8_header())
        } else if let Some(why) = (message.longest_line > MAX_TEXT_LINE)
            .then(|| crate::rewrite::long_line_problem(&message.body))
            .flatten()
        {
            // Longer body lines are taken and their part re-encoded in the
            // copies; what cannot be is refused, never forwarded broken.
            ("line_too_long", reply::long_line_kept(&why))
        } else {
            return None;
        };
        tracing::info!(peer = %self.peer, reason = %r.lines.join(" "), "message refused");
        crate::metrics::refused(reason);
        Some(r)
    }

    /// Records the transaction's unsubscribe requests, then hands the
    /// message to the intake if it has other recipients.
    async fn deliver(&mut self, body: Vec<u8>) -> Reply {
        if !self.unsubscribes.is_empty() {
            let claims = std::mem::take(&mut self.unsubscribes);
            if let Err(r) = self.unsubscribe_by_mail(&claims).await {
                return r;
            }
            if self.rcpt_to.is_empty() {
                return Reply::new(
                    250,
                    "2.0.0",
                    format!("unsubscribed ({} request(s) recorded)", claims.len()),
                );
            }
        }
        let envelope = self.take_envelope();
        let accepted = self.ctx.intake.accept(&envelope, &body).await;
        self.intake_reply(accepted)
    }

    /// Hands a report to the feedback intake; the reply says what it did.
    async fn report(&mut self, to: String, message: DataReader) -> Reply {
        if message.oversize {
            tracing::info!(peer = %self.peer, reason = "over [bounces] max_report_size", "report refused");
            crate::metrics::refused("report_too_large");
            return Reply::new(552, "5.3.4", "report exceeds the maximum report size");
        }
        let from = std::mem::take(&mut self.mail_from);
        match self
            .ctx
            .intake
            .report(from, to, self.peer.ip(), message.body)
            .await
        {
            Ok(p) => Reply::new(
                250,
                "2.0.0",
                format!("report {} received ({})", p.received.id, p.applied.result),
            ),
            Err(IntakeError::NotAReport(why)) => {
                tracing::info!(peer = %self.peer, reason = %why, "report refused: not a report");
                crate::metrics::refused("not_a_report");
                Reply::new(550, "5.6.0", format!("not a report: {why}"))
            }
            Err(IntakeError::TooBig { .. }) => {
                crate::metrics::refused("report_too_large");
                Reply::new(552, "5.3.4", "report exceeds the maximum report size")
            }
            Err(IntakeError::Store(e)) => {
                tracing::error!(peer = %self.peer, cause = %e, "report not stored");
                crate::metrics::refused("store_failed");
                reply::store_failed()
            }
        }
    }

    async fn unsubscribe_by_mail(&self, claims: &[crate::token::Claims]) -> Result<(), Reply> {
        for c in claims {
            if let Err(e) = self
                .ctx
                .intake
                .unsubscribe_by_mail(c, self.peer.ip(), &self.mail_from)
                .await
            {
                tracing::error!(peer = %self.peer, cause = %e, "unsubscribe by mail not recorded");
                return Err(reply::store_failed());
            }
        }
        Ok(())
    }

    /// The transaction's envelope (its sender and recipients taken out).
    fn take_envelope(&mut self) -> Envelope {
        Envelope {
            mail_from: std::mem::take(&mut self.mail_from),
            rcpt_to: std::mem::take(&mut self.rcpt_to),
            client_ip: self.peer.ip(),
            helo: self.helo.clone(),
            auth_user: self.auth_user.clone(),
            esmtp: self.esmtp,
            tls: self.tls,
            smtputf8: self.smtputf8,
        }
    }

    fn intake_reply(&self, accepted: Result<Accepted, Refusal>) -> Reply {
        match accepted {
            Ok(a) => Reply::new(
                250,
                "2.0.0",
                format!(
                    "queued as {} ({} delivered, {} suppressed)",
                    a.queue_id, a.delivered, a.suppressed
                ),
            ),
            Err(Refusal::Store(e)) => {
                tracing::error!(peer = %self.peer, cause = %e, "message not stored");
                crate::metrics::refused("store_failed");
                reply::store_failed()
            }
            Err(refusal) => {
                if let Refusal::UnknownCampaign(_) = refusal {
                    // The known ids help the operator; the client is not told them.
                    let known: Vec<&str> = (self.ctx.config.campaigns.iter())
                        .map(|c| c.id.as_str())
                        .collect();
                    tracing::info!(peer = %self.peer, reason = %refusal, known_campaigns = %known.join(", "), "message refused");
                } else {
                    tracing::info!(peer = %self.peer, reason = %refusal, "message refused");
                }
                crate::metrics::refused(refusal.metric_reason());
                Reply::new(550, "5.7.1", format!("message refused: {refusal}"))
            }
        }
    }
}

/// How long a DATA transfer may still take (Postfix's smtpd_min_data_rate
/// model): it starts at `data_timeout`, each read spends the time it waited
/// and earns `octets / min_data_rate` seconds, never above `data_timeout`.
/// So an idle client is cut after `data_timeout`, and one that trickles
/// bytes slower than the minimum rate soon after.
struct Budget {
    left: Duration,
    full: Duration,
    min_rate: u64,
    received: bool,
}

impl Budget {
    fn new(full: Duration, min_rate: u64) -> Budget {
        Budget {
            left: full,
            full,
            min_rate,
            received: false,
        }
    }

    fn spend(&mut self, waited: Duration, octets: usize) {
        self.received |= octets > 0;
        let earned = Duration::from_secs_f64(octets as f64 / self.min_rate as f64);
        self.left = (self.left.saturating_sub(waited) + earned).min(self.full);
    }

    /// What running out now would mean.
    fn late(&self) -> Late {
        if self.received && self.left < self.full {
            Late::Slow
        } else {
            Late::Idle
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_budget_runs_out_for_a_trickle_and_never_grows_past_the_timeout() {
        let full = Duration::from_secs(1);
        let mut b = Budget::new(full, 1000);
        assert!(matches!(b.late(), Late::Idle));
        // 1 octet every 250 ms earns 1 ms each time: gone after 4 reads.
        for _ in 0..4 {
            b.spend(Duration::from_millis(250), 1);
        }
        assert_eq!(b.left, Duration::from_millis(4));
        assert!(matches!(b.late(), Late::Slow));
        // A fast burst refills the budget, but only up to data_timeout.
        b.spend(Duration::from_millis(1), 1_000_000);
        assert_eq!(b.left, full);
        assert!(matches!(b.late(), Late::Idle));
    }
}
