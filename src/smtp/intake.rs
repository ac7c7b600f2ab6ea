//! Accepting a finished message: read its campaign, decide for every
//! recipient, and commit message, decisions and deliveries in one
//! transaction. Whatever receives mail (the SMTP session today) calls
//! [`Intake::accept`] and answers from its result; `250` only after the commit.
//! Also records withdrawals asked for by mail ([`Intake::unsubscribe_by_mail`])
//! and hands reports to the feedback intake ([`Intake::report`]).
//!
//! Does not own the consent rule (`policy::decide`) nor the SQL (`store`),
//! nor anything of the SMTP dialogue: its callers turn a [`Refusal`] into a reply.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use tokio::sync::Notify;

use crate::config::{Campaign, CampaignState, Config, MissingCampaign};
use crate::consent::identity::Identity;
use crate::consent::policy::{self, Outcome};
use crate::consent::subject;
use crate::mail::address::Mailbox;
use crate::store::{MessageKind, NewMessage, RecipientDecision, Store, StoreError};

/// The SMTP envelope and where it came from.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// Empty for the null sender.
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub client_ip: IpAddr,
    pub helo: String,
    pub auth_user: Option<String>,
    /// The client used ESMTP (EHLO).
    pub esmtp: bool,
    /// The session was TLS (STARTTLS or the implicit-TLS listener).
    pub tls: bool,
    /// MAIL FROM carried SMTPUTF8 (RFC 6531).
    pub smtputf8: bool,
}

/// An accepted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub queue_id: String,
    pub delivered: usize,
    pub suppressed: usize,
}

/// Why a message was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("message has no {header} header naming its campaign")]
    NoCampaign { header: String },
    #[error("message has {header} headers naming different campaigns")]
    ConflictingCampaigns { header: String },
    #[error("unknown campaign {0:?}")]
    UnknownCampaign(String),
    #[error("campaign {0:?} is {1}")]
    ClosedCampaign(String, &'static str),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

impl Refusal {
    /// One word for `consent_relay_messages_refused_total{reason}`.
    pub fn metric_reason(&self) -> &'static str {
        match self {
            Refusal::NoCampaign { .. } => "no_campaign",
            Refusal::ConflictingCampaigns { .. } => "conflicting_campaigns",
            Refusal::UnknownCampaign(_) => "unknown_campaign",
            Refusal::ClosedCampaign(..) => "closed_campaign",
            Refusal::Store(_) => "store_failed",
        }
    }
}

#[derive(Clone)]
pub struct Intake {
    config: Arc<Config>,
    store: Store,
    /// Woken after each commit so delivery starts at once.
    wake: Arc<Notify>,
    /// Wakes serve's loop over pending reports after a report could not
    /// be taken whole (it may be stored but not yet applied).
    pending_reports: Arc<Notify>,
}

impl Intake {
    pub fn new(config: Arc<Config>, store: Store, wake: Arc<Notify>) -> Intake {
        Intake {
            config,
            store,
            wake,
            pending_reports: Arc::default(),
        }
    }

    /// The same intake waking `pending` when a report was not taken whole.
    pub fn waking_pending_reports(self, pending: Arc<Notify>) -> Intake {
        Intake {
            pending_reports: pending,
            ..self
        }
    }

    /// The same intake deciding with `config` (a session's, after a reload).
    pub fn with_config(&self, config: Arc<Config>) -> Intake {
        Intake {
            config,
            ..self.clone()
        }
    }

    /// Decides and stores one message. `raw` is the message as received
    /// (dot-stuffing undone).
    pub async fn accept(&self, envelope: &Envelope, raw: &[u8]) -> Result<Accepted, Refusal> {
        let campaign = self.campaign(raw)?;
        let recipients = distinct_recipients(&envelope.rcpt_to);
        let decided = self.decide(campaign, recipients).await?;
        let queue_id = ulid::Ulid::generate().to_string();
        let (delivered, suppressed) = (decided.delivered, decided.suppressed_by.len());
        let message = self.stored_message(
            envelope,
            raw,
            campaign,
            &queue_id,
            decided.rows,
            decided.now,
        );
        self.store.accept_message(message).await?;
        if delivered > 0 {
            self.wake.notify_one();
        }
        metrics::counter!(crate::metrics::MESSAGES_ACCEPTED).increment(1);
        for reason in decided.suppressed_by {
            metrics::counter!(crate::metrics::RECIPIENTS_SUPPRESSED, "reason" => reason, "stage" => "accept")
                .increment(1);
        }
        tracing::info!(
            queue_id = %queue_id,
            client = %envelope.client_ip,
            auth_user = envelope.auth_user.as_deref().unwrap_or(""),
            campaign = %campaign.id,
            delivered,
            suppressed,
            size = raw.len(),
            "message accepted"
        );
        Ok(Accepted {
            queue_id,
            delivered,
            suppressed,
        })
    }

    /// The active campaign the message's campaign header names (or
    /// `missing_campaign`'s, when it names none).
    fn campaign(&self, raw: &[u8]) -> Result<&Campaign, Refusal> {
        let cfg = &self.config;
        let header = &cfg.smtp.campaign_header;
        // Only the real header block counts (RFC 5322: up to the empty line
        // or the first line that is not a field), ids without regard to case.
        let values: Vec<String> = crate::mail::header::header_values(raw, header);
        let distinct: HashSet<String> = values.iter().map(|v| v.to_ascii_lowercase()).collect();
        let campaign_id = match (distinct.len(), &cfg.smtp.missing_campaign) {
            (0, MissingCampaign::Reject) => {
                return Err(Refusal::NoCampaign {
                    header: header.clone(),
                });
            }
            (0, MissingCampaign::Campaign(id)) => id.clone(),
            (1, _) => values[0].clone(),
            _ => {
                return Err(Refusal::ConflictingCampaigns {
                    header: header.clone(),
                });
            }
        };
        // The configured id is the one recorded (`check-config` refuses two
        // ids that differ only in case).
        let campaign = cfg
            .campaigns
            .iter()
            .find(|c| c.id.eq_ignore_ascii_case(&campaign_id))
            .ok_or_else(|| Refusal::UnknownCampaign(campaign_id.clone()))?;
        let id = campaign.id.clone();
        match campaign.state {
            CampaignState::Active => Ok(campaign),
            CampaignState::Inactive => Err(Refusal::ClosedCampaign(id, "inactive")),
            CampaignState::Deleted => Err(Refusal::ClosedCampaign(id, "deleted")),
        }
    }

    /// Reads the recipients' consent to `campaign` and decides for each, as
    /// of just after the read.
    async fn decide(
        &self,
        campaign: &Campaign,
        recipients: Vec<Identity>,
    ) -> Result<Decided, StoreError> {
        let signing = &self.config.signing;
        let hashes: Vec<Vec<String>> = recipients
            .iter()
            .map(|r| subject::identity_hashes(signing, r))
            .collect();
        let addresses: Vec<String> = recipients
            .iter()
            .map(|r| r.canonical().to_owned())
            .collect();
        let known = self
            .store
            .recipients_consent(&campaign.id, &addresses, &hashes)
            .await?;
        let now = crate::time::now_ms();
        let mut decided = Decided {
            now,
            rows: Vec::with_capacity(recipients.len()),
            delivered: 0,
            suppressed_by: Vec::new(),
        };
        for (identity, address) in recipients.iter().zip(addresses) {
            let k = known.get(&address).cloned().unwrap_or_default();
            let d = policy::decide(campaign, &k.consent, self.config.bounces.mandatory, now);
            // An erased person stays known only by their hash: a mandatory
            // copy to them creates no new subject.
            let new_subject = match (&k.subject_id, d.outcome) {
                (None, Outcome::Deliver) if !k.consent.erased => {
                    Some(subject::new_subject(signing, &address))
                }
                _ => None,
            };
            match d.outcome {
                Outcome::Deliver => decided.delivered += 1,
                Outcome::Suppress => decided.suppressed_by.push(d.reason.as_str()),
            }
            // Someone who was erased is not written down again by address.
            let recipient = if k.consent.erased && d.outcome == Outcome::Suppress {
                subject::erased_tag(&subject::new_subject(signing, &address).address_hash)
            } else {
                address
            };
            // The copy goes to the address as the client wrote it.
            let rcpt_to = (d.outcome == Outcome::Deliver && identity.spelling() != recipient)
                .then(|| identity.spelling().to_owned());
            decided.rows.push(RecipientDecision {
                recipient,
                rcpt_to,
                subject_id: k.subject_id,
                new_subject,
                outcome: d.outcome,
                reason: d.reason,
                event_id: d.event_id,
            });
        }
        Ok(decided)
    }

    /// The message as stored: a `Received:` header added, with its decisions.
    fn stored_message(
        &self,
        envelope: &Envelope,
        raw: &[u8],
        campaign: &Campaign,
        queue_id: &str,
        decisions: Vec<RecipientDecision>,
        now: i64,
    ) -> NewMessage {
        let mut body = received_header(&self.config, envelope, queue_id, now).into_bytes();
        body.extend_from_slice(raw);
        let header_message_id = crate::mail::header::message_id(raw);
        NewMessage {
            id: queue_id.to_owned(),
            kind: MessageKind::Relay,
            mail_from: envelope.mail_from.clone(),
            client_ip: envelope.client_ip.to_string(),
            helo: envelope.helo.clone(),
            auth_user: envelope.auth_user.clone(),
            campaign: campaign.id.clone(),
            header_message_id,
            body,
            received_at: now,
            recipients: decisions,
            smtputf8: envelope.smtputf8,
        }
    }
}

/// The decisions for one message, in envelope order.
struct Decided {
    /// When they were made (the message's `received_at`).
    now: i64,
    rows: Vec<RecipientDecision>,
    delivered: usize,
    /// The reason of each suppressed recipient.
    suppressed_by: Vec<&'static str>,
}

/// The envelope's recipients by identity, each person once, in envelope
/// order (one decision and one copy per person: two spellings of one
/// mailbox get one copy, to the first spelling). The session accepted only
/// mailboxes ([`Mailbox::parse`] reads what it wrote).
fn distinct_recipients(rcpt_to: &[String]) -> Vec<Identity> {
    let mut recipients: Vec<Identity> = Vec::with_capacity(rcpt_to.len());
    for r in rcpt_to {
        let identity = match Mailbox::parse(r) {
            Ok(m) => Identity::of_mailbox(&m, r),
            Err(e) => {
                tracing::error!(cause = %e, "a recipient the session took is not a mailbox; no copy for it");
                continue;
            }
        };
        if !recipients
            .iter()
            .any(|known| known.canonical() == identity.canonical())
        {
            recipients.push(identity);
        }
    }
    recipients
}

impl Intake {
    /// Records a withdrawal asked for by mail to `unsubscribe+TOKEN@domain`
    /// (RFC 2369 `mailto:` in List-Unsubscribe). An unknown or erased
    /// subject is ignored: the mail is still answered 250, as the address
    /// was valid when the link was made.
    pub async fn unsubscribe_by_mail(
        &self,
        claims: &crate::token::Claims,
        client: IpAddr,
        sender: &str,
    ) -> Result<(), StoreError> {
        let Some(address) = self
            .store
            .subject_by_id(&claims.subject_id)
            .await?
            .and_then(|s| s.address)
        else {
            return Ok(());
        };
        let campaign = claims
            .campaign
            .clone()
            .unwrap_or_else(|| crate::consent::ALL_CAMPAIGNS.to_owned());
        let sender: String = sender
            .chars()
            .filter(|c| !c.is_control())
            .take(256)
            .collect();
        let event = self
            .store
            .append_consent_event(crate::store::NewConsentEvent {
                new_subject: subject::new_subject(&self.config.signing, &address),
                address,
                campaign: campaign.clone(),
                action: crate::consent::Action::Withdraw,
                at: crate::time::now_ms(),
                source: crate::consent::Source::OneClick,
                ip: Some(client.to_string()),
                user_agent: None,
                evidence: Some(format!(
                    "{} from <{sender}>",
                    crate::consent::MAILTO_EVIDENCE
                )),
                actor: None,
            })
            .await?;
        tracing::info!(event = event.id, campaign = %campaign, client = %client, "unsubscribed by mail");
        Ok(())
    }
}

impl Intake {
    /// Stores and applies a report that came to the report address `to`
    /// (the SMTP door). The raw message as received, nothing added, so
    /// that the same report by another door is the same row.
    pub async fn report(
        &self,
        mail_from: String,
        to: String,
        client: IpAddr,
        raw: Vec<u8>,
    ) -> Result<crate::feedback::intake::Processed, crate::feedback::intake::IntakeError> {
        let size = raw.len();
        let report = crate::store::NewReport {
            door: crate::store::Door::Smtp,
            envelope_from: Some(mail_from),
            envelope_to: Some(to),
            client_ip: Some(client.to_string()),
            raw,
            received_at: crate::time::now_ms(),
            actor: None,
        };
        let r = crate::feedback::intake::receive(&self.store, &self.config, report).await;
        match &r {
            Ok(p) => crate::feedback::door::log_report(p, "smtp", &client.to_string(), size),
            Err(crate::feedback::intake::IntakeError::Store(_)) => {
                self.pending_reports.notify_one()
            }
            Err(_) => {}
        }
        r
    }
}

/// The trace header RFC 5321 4.4 requires of every relay.
fn received_header(cfg: &Config, env: &Envelope, queue_id: &str, now: i64) -> String {
    // RFC 3848 protocol names.
    let protocol = match (env.esmtp, env.tls, env.auth_user.is_some()) {
        (false, false, _) => "SMTP",
        (false, true, _) => "SMTPS",
        (true, false, false) => "ESMTP",
        (true, false, true) => "ESMTPA",
        (true, true, false) => "ESMTPS",
        (true, true, true) => "ESMTPSA",
    };
    // RFC 6531 4.3: UTF8SMTP, UTF8SMTPA, UTF8SMTPS, UTF8SMTPSA for an
    // SMTPUTF8 transaction (only possible after EHLO).
    let protocol = if env.smtputf8 {
        protocol.replacen("ESMTP", "UTF8SMTP", 1)
    } else {
        protocol.to_owned()
    };
    // HELO text comes from the client: keep it to printable ASCII without
    // parentheses so the header stays well-formed.
    let helo: String = env
        .helo
        .chars()
        .filter(|c| c.is_ascii_graphic() && !matches!(c, '(' | ')'))
        .take(128)
        .collect();
    let date = mail_builder::headers::date::Date::new(now / 1000).to_rfc822();
    format!(
        "Received: from {helo} ([{ip}])\r\n\tby {host} (consent-relay) with {protocol} id {queue_id};\r\n\t{date}\r\n",
        ip = env.client_ip,
        host = cfg.smtp.hostname,
    )
}
