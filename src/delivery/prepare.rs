//! Turning claimed rows into jobs: the message bodies (parsed once into a
//! template, cached per message), the consent read again just before
//! sending, one query per campaign in the batch, and the rows that will
//! never be sent recorded at once: `suppressed-late` when consent was
//! withdrawn since accept, `failed` when the body is gone.
//!
//! Does not send anything (that is [`super::worker`]).

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::{BodyCache, Delivery, Job, Prepared};
use crate::config::Config;
use crate::consent::identity::Identity;
use crate::consent::policy::{self, Outcome};
use crate::consent::subject;
use crate::rewrite::Template;
use crate::store::{
    AttemptRecord, ClaimedDelivery, DeliveryStatus, LateDecision, MessageKind, StoreError,
};

/// What the consent re-check found, by delivery id.
#[derive(Default)]
struct Rechecked {
    /// Deliveries whose recipient no longer consents.
    late: HashMap<i64, LateDecision>,
    /// The recipient's subject, where there is one.
    subjects: HashMap<i64, String>,
}

impl Delivery {
    /// Loads bodies, re-checks consent, and turns claimed rows into jobs;
    /// rows whose consent was withdrawn since accept are recorded as
    /// `suppressed-late` right here.
    pub(super) async fn prepare(
        &self,
        cfg: &Config,
        claimed: Vec<ClaimedDelivery>,
        cache: &mut BodyCache,
        records: &mpsc::UnboundedSender<AttemptRecord>,
    ) -> Result<Vec<Job>, StoreError> {
        self.load_bodies(cfg, &claimed, cache).await?;
        let now = crate::time::now_ms();
        let rechecked = self.recheck_consent(cfg, &claimed, now).await?;
        Ok(into_jobs(claimed, rechecked, cache, records, now))
    }

    /// Puts the bodies of `claimed` that are not cached yet into `cache`.
    async fn load_bodies(
        &self,
        cfg: &Config,
        claimed: &[ClaimedDelivery],
        cache: &mut BodyCache,
    ) -> Result<(), StoreError> {
        let mut missing: Vec<String> = claimed
            .iter()
            .filter(|c| !cache.contains_key(&c.message_id))
            .map(|c| c.message_id.clone())
            .collect();
        missing.sort();
        missing.dedup();
        if missing.is_empty() {
            return Ok(());
        }
        let kinds: HashMap<&str, MessageKind> = claimed
            .iter()
            .map(|c| (c.message_id.as_str(), c.kind))
            .collect();
        for (id, body) in self.store.message_bodies(&missing).await? {
            let relay = kinds.get(id.as_str()) == Some(&MessageKind::Relay);
            let prepared = prepare_body(cfg, &id, body, relay);
            cache.insert(id, Arc::new(prepared));
        }
        Ok(())
    }

    /// Consent, read again, one query per campaign in the batch (relayed
    /// messages only: the relay's own mail is not subject to it).
    async fn recheck_consent(
        &self,
        cfg: &Config,
        claimed: &[ClaimedDelivery],
        now: i64,
    ) -> Result<Rechecked, StoreError> {
        let mut rechecked = Rechecked::default();
        let mut by_campaign: HashMap<&str, Vec<&ClaimedDelivery>> = HashMap::new();
        for c in claimed.iter().filter(|c| c.kind == MessageKind::Relay) {
            by_campaign.entry(c.campaign.as_str()).or_default().push(c);
        }
        for (campaign_id, rows) in by_campaign {
            let Some(campaign) = cfg.campaign(campaign_id) else {
                continue;
            };
            let addresses: Vec<String> = rows.iter().map(|r| r.recipient.clone()).collect();
            // The hashes of every form the person may have been erased
            // under (the copy's address as written, and its identity).
            let hashes: Vec<Vec<String>> = rows
                .iter()
                .map(|r| match Identity::of(&r.rcpt_to) {
                    Ok(i) => subject::identity_hashes(&cfg.signing, &i),
                    Err(_) => subject::address_hashes(&cfg.signing, &r.recipient),
                })
                .collect();
            let known = self
                .store
                .recipients_consent(campaign_id, &addresses, &hashes)
                .await?;
            for r in rows {
                let k = known.get(&r.recipient).cloned().unwrap_or_default();
                if let Some(id) = &k.subject_id {
                    rechecked.subjects.insert(r.id, id.clone());
                }
                let d = policy::decide(campaign, &k.consent, cfg.bounces.mandatory, now);
                if d.outcome == Outcome::Suppress {
                    rechecked.late.insert(
                        r.id,
                        LateDecision {
                            message_id: r.message_id.clone(),
                            recipient: r.recipient.clone(),
                            subject_id: k.subject_id,
                            campaign: campaign_id.to_owned(),
                            reason: d.reason,
                            event_id: d.event_id,
                        },
                    );
                }
            }
        }
        Ok(rechecked)
    }
}

/// A body as stored, ready to be copied: a relayed message is parsed into
/// its template (and its From checked against `[dkim]` once per message).
fn prepare_body(cfg: &Config, id: &str, body: Arc<Vec<u8>>, relay: bool) -> Prepared {
    let template = relay.then(|| {
        let t = Template::parse(&body, &cfg.smtp.campaign_header);
        if let Some(reason) = t.fallback_reason() {
            tracing::info!(queue_id = %id, reason, "copies made without rewriting part of the body");
        }
        t
    });
    // Rewriting keeps From: one check per message, not per copy.
    if let Some(dkim) = &cfg.dkim
        && let Some(from) = crate::mail::align::misaligned_from(&body, &dkim.domain)
    {
        tracing::warn!(queue_id = %id, from_domain = %from, dkim_domain = %dkim.domain, "the message's From domain does not align with dkim.domain (DMARC relaxed); its copies are signed anyway");
    }
    Prepared {
        original: body,
        template,
    }
}

/// The jobs to send; the rows that will never be sent are recorded now.
fn into_jobs(
    claimed: Vec<ClaimedDelivery>,
    mut rechecked: Rechecked,
    cache: &BodyCache,
    records: &mpsc::UnboundedSender<AttemptRecord>,
    now: i64,
) -> Vec<Job> {
    let mut jobs = Vec::with_capacity(claimed.len());
    for c in claimed {
        if let Some(l) = rechecked.late.remove(&c.id) {
            let _ = records.send(suppressed_late(&c, l, now));
            continue;
        }
        let Some(prepared) = cache.get(&c.message_id).cloned() else {
            // The body is gone (purged): nothing can ever be sent.
            let _ = records.send(AttemptRecord {
                bounce: None,
                delivery_id: c.id,
                status: DeliveryStatus::Failed,
                attempted: false,
                reply: "message body no longer stored".into(),
                next_attempt_at: now,
                late_decision: None,
                dsn: None,
            });
            continue;
        };
        jobs.push(Job {
            subject_id: rechecked.subjects.remove(&c.id),
            delivery: c,
            prepared,
        });
    }
    jobs
}

/// The record of a delivery whose consent changed after accept, counted
/// and logged.
fn suppressed_late(c: &ClaimedDelivery, l: LateDecision, now: i64) -> AttemptRecord {
    tracing::info!(queue_id = %c.message_id, delivery = c.id, reason = %l.reason, "delivery suppressed late");
    metrics::counter!(crate::metrics::RECIPIENTS_SUPPRESSED, "reason" => l.reason.as_str(), "stage" => "send")
        .increment(1);
    AttemptRecord {
        delivery_id: c.id,
        status: DeliveryStatus::SuppressedLate,
        attempted: false,
        reply: format!("consent changed after accept: {}", l.reason),
        next_attempt_at: now,
        late_decision: Some(l),
        dsn: None,
        bounce: None,
    }
}
