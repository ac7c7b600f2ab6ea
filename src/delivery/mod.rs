//! Delivery: lease due deliveries in batches, re-read consent just before
//! sending (a withdrawal after accept wins: `suppressed-late`), build each
//! recipient's copy, send it through the upstream's persistent connections,
//! and record every outcome. A 4xx or a connection fault defers with
//! backoff; a 5xx or `max_age` fails the delivery and queues one DSN.
//!
//! Knows nothing of the SMTP server side.

pub mod copy;
pub mod dkim;
pub mod dsn;
pub mod retry;
pub mod upstream;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Mutex, Notify, mpsc, watch};

use crate::config::Config;
use crate::config::reload::{LiveConfig, PerConfig};
use crate::policy::{self, Outcome};
use crate::rewrite::Template;
use crate::store::{
    AttemptRecord, ClaimedDelivery, DeliveryStatus, LateDecision, MessageKind, NewMessage,
    RecipientDecision, Store,
};
use crate::subject;
use retry::AttemptOutcome;
use upstream::{Connection, Copy, Upstream};

/// A message ready to be copied: parsed once, rendered per recipient.
struct Prepared {
    /// The message as stored (sent as it is for a DSN; its headers go
    /// back in a bounce).
    original: Arc<Vec<u8>>,
    /// `None` for messages the relay wrote itself (DSNs).
    template: Option<Template>,
}

/// Per message id.
type BodyCache = HashMap<String, Arc<Prepared>>;

/// A claimed delivery with what its copy is made from.
struct Job {
    delivery: ClaimedDelivery,
    prepared: Arc<Prepared>,
    /// The recipient's subject (their links name it).
    subject_id: Option<String>,
}

/// The delivery side of one node.
pub struct Delivery {
    /// Read per batch and per send (a reload swaps it).
    config: LiveConfig,
    store: Store,
    upstream: Arc<Upstream>,
    /// `[dkim]`: signs each rendered copy.
    signer: Arc<Signers>,
    /// Woken when a message was accepted.
    wake: Arc<Notify>,
    node: String,
}

impl Delivery {
    /// Errors name the configuration key (`upstream`, `dkim.private_key`).
    pub fn new(
        config: impl Into<LiveConfig>,
        store: Store,
        wake: Arc<Notify>,
    ) -> Result<Delivery, String> {
        let live = config.into();
        let config = live.get();
        let upstream = Upstream::new(&config.upstream, &config.smtp.hostname)
            .map_err(|e| format!("upstream: {e}"))?;
        let signer = config
            .dkim
            .as_ref()
            .map(dkim::Signer::load)
            .transpose()?
            .map(Arc::new);
        Ok(Delivery {
            signer: Arc::new(PerConfig::new(config, signer)),
            config: live,
            store,
            upstream: Arc::new(upstream),
            wake,
            node: ulid::Ulid::generate().to_string(),
        })
    }

    /// Runs until `shutdown` turns true; then finishes the sends in
    /// progress, records them, and hands the rest of its leases back.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        let cfg = self.config.get();
        let senders = cfg.upstream.connections.max(1);
        let capacity = cfg.queue.batch.max(senders * 4);
        let (job_tx, job_rx) = mpsc::channel::<Job>(capacity);
        let job_rx = Arc::new(Mutex::new(job_rx));
        let (rec_tx, rec_rx) = mpsc::unbounded_channel::<AttemptRecord>();
        let in_flight = Arc::new(AtomicUsize::new(0));
        let freed = Arc::new(Notify::new());

        let recorder = tokio::spawn(record_loop(self.store.clone(), rec_rx, self.wake.clone()));
        let mut tasks = Vec::with_capacity(senders);
        for _ in 0..senders {
            tasks.push(tokio::spawn(send_loop(
                self.config.clone(),
                self.upstream.clone(),
                self.signer.clone(),
                job_rx.clone(),
                rec_tx.clone(),
                in_flight.clone(),
                freed.clone(),
                shutdown.clone(),
            )));
        }

        self.claim_loop(&job_tx, &rec_tx, &in_flight, &freed, capacity, shutdown)
            .await;
        drop(job_tx);
        for t in tasks {
            let _ = t.await;
        }
        drop(rec_tx);
        let _ = recorder.await;
        match self.store.release_leases(&self.node).await {
            Ok(n) if n > 0 => tracing::info!(released = n, "delivery leases handed back"),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(cause = %e, "could not hand leases back; they expire by themselves")
            }
        }
    }

    async fn claim_loop(
        &self,
        jobs: &mpsc::Sender<Job>,
        records: &mpsc::UnboundedSender<AttemptRecord>,
        in_flight: &AtomicUsize,
        freed: &Notify,
        capacity: usize,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut cache: BodyCache = HashMap::new();
        let mut failures = 0u32;
        let mut cfg = self.config.get();
        while !*shutdown.borrow() {
            let now_in_use = self.config.get();
            if !Arc::ptr_eq(&cfg, &now_in_use) {
                // Reloaded: bodies are parsed again (the campaign header may differ).
                cache.clear();
                cfg = now_in_use;
            }
            let room = capacity.saturating_sub(in_flight.load(Ordering::Acquire));
            if room < capacity / 4 {
                tokio::select! {
                    _ = freed.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    _ = crate::until_shutdown(&mut shutdown) => break,
                }
                continue;
            }
            let now = crate::now_ms();
            let lease_until = now + cfg.queue.lease.as_millis() as i64;
            let limit = room.min(cfg.queue.batch) as i64;
            let claimed = match self
                .store
                .claim_due(&self.node, now, lease_until, limit)
                .await
            {
                Ok(c) => {
                    failures = 0;
                    c
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    tracing::error!(cause = %e, "claiming deliveries failed");
                    let backoff = Duration::from_millis(200 * u64::from(failures.min(25)));
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = crate::until_shutdown(&mut shutdown) => break,
                    }
                    continue;
                }
            };
            if claimed.is_empty() {
                let wait = match self.store.next_due().await {
                    Ok(Some(due)) => {
                        Duration::from_millis(due.saturating_sub(now).clamp(10, 5000) as u64)
                    }
                    _ => Duration::from_secs(5),
                };
                tokio::select! {
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                    _ = crate::until_shutdown(&mut shutdown) => break,
                }
                continue;
            }
            if cache.len() > 512 {
                cache.clear();
            }
            let ready = match self.prepare(&cfg, claimed, &mut cache, records).await {
                Ok(r) => r,
                Err(e) => {
                    // The leases expire and the rows are claimed again.
                    tracing::error!(cause = %e, "preparing deliveries failed");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            for job in ready {
                in_flight.fetch_add(1, Ordering::AcqRel);
                if jobs.send(job).await.is_err() {
                    return;
                }
            }
        }
    }

    /// Loads bodies, re-checks consent, and turns claimed rows into jobs;
    /// rows whose consent was withdrawn since accept are recorded as
    /// `suppressed-late` right here.
    async fn prepare(
        &self,
        cfg: &Config,
        claimed: Vec<ClaimedDelivery>,
        cache: &mut BodyCache,
        records: &mpsc::UnboundedSender<AttemptRecord>,
    ) -> Result<Vec<Job>, crate::store::StoreError> {
        let missing: Vec<String> = {
            let mut m: Vec<String> = claimed
                .iter()
                .filter(|c| !cache.contains_key(&c.message_id))
                .map(|c| c.message_id.clone())
                .collect();
            m.sort();
            m.dedup();
            m
        };
        if !missing.is_empty() {
            let kinds: HashMap<&str, MessageKind> = claimed
                .iter()
                .map(|c| (c.message_id.as_str(), c.kind))
                .collect();
            for (id, body) in self.store.message_bodies(&missing).await? {
                let template = (kinds.get(id.as_str()) == Some(&MessageKind::Relay)).then(|| {
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
                cache.insert(
                    id,
                    Arc::new(Prepared {
                        original: body,
                        template,
                    }),
                );
            }
        }

        // Consent, read again, one query per campaign in the batch.
        let mut late: HashMap<i64, LateDecision> = HashMap::new();
        let mut subjects: HashMap<i64, String> = HashMap::new();
        let mut by_campaign: HashMap<&str, Vec<&ClaimedDelivery>> = HashMap::new();
        for c in claimed.iter().filter(|c| c.kind == MessageKind::Relay) {
            by_campaign.entry(c.campaign.as_str()).or_default().push(c);
        }
        let now = crate::now_ms();
        for (campaign_id, rows) in by_campaign {
            let Some(campaign) = cfg.campaign(campaign_id) else {
                continue;
            };
            let addresses: Vec<String> = rows.iter().map(|r| r.recipient.clone()).collect();
            let hashes: Vec<Vec<String>> = addresses
                .iter()
                .map(|a| subject::address_hashes(&cfg.signing, a))
                .collect();
            let known = self
                .store
                .recipients_consent(campaign_id, &addresses, &hashes)
                .await?;
            for r in rows {
                let k = known.get(&r.recipient).cloned().unwrap_or_default();
                if let Some(id) = &k.subject_id {
                    subjects.insert(r.id, id.clone());
                }
                let d = policy::decide(campaign, &k.consent, now);
                if d.outcome == Outcome::Suppress {
                    late.insert(
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

        let mut jobs = Vec::with_capacity(claimed.len());
        for c in claimed {
            if let Some(l) = late.remove(&c.id) {
                tracing::info!(queue_id = %c.message_id, delivery = c.id, reason = %l.reason, "delivery suppressed late");
                metrics::counter!(crate::metrics::RECIPIENTS_SUPPRESSED, "reason" => l.reason.as_str(), "stage" => "send")
                    .increment(1);
                let _ = records.send(AttemptRecord {
                    delivery_id: c.id,
                    status: DeliveryStatus::SuppressedLate,
                    attempted: false,
                    reply: format!("consent changed after accept: {}", l.reason),
                    next_attempt_at: now,
                    late_decision: Some(l),
                    dsn: None,
                });
                continue;
            }
            let Some(prepared) = cache.get(&c.message_id).cloned() else {
                // The body is gone (purged): nothing can ever be sent.
                let _ = records.send(AttemptRecord {
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
                subject_id: subjects.remove(&c.id),
                delivery: c,
                prepared,
            });
        }
        Ok(jobs)
    }
}

#[allow(clippy::too_many_arguments)]
async fn send_loop(
    live: LiveConfig,
    upstream: Arc<Upstream>,
    signers: Arc<Signers>,
    jobs: Arc<Mutex<mpsc::Receiver<Job>>>,
    records: mpsc::UnboundedSender<AttemptRecord>,
    in_flight: Arc<AtomicUsize>,
    freed: Arc<Notify>,
    shutdown: watch::Receiver<bool>,
) {
    let mut conn: Option<Connection> = None;
    loop {
        if *shutdown.borrow() {
            break;
        }
        let job = {
            let mut rx = jobs.lock().await;
            let mut sd = shutdown.clone();
            tokio::select! {
                j = rx.recv() => j,
                _ = crate::until_shutdown(&mut sd) => None,
            }
        };
        let Some(job) = job else { break };
        let cfg = live.get();
        let signer = signers.get(&cfg, reload_signer);
        let d = &job.delivery;
        let name = format!("{}-{}", d.message_id, d.id);
        let rendered = render(&cfg, &job).map_err(|e| {
            // Never sent without working links: retried like any temporary
            // failure (a key problem is fixed in the configuration).
            tracing::error!(queue_id = %d.message_id, delivery = d.id, cause = %e, "cannot sign the recipient's links");
            AttemptOutcome::TemporaryFailure(format!("cannot sign the recipient's links: {e}"))
        });
        // With [dkim], every copy leaves signed or not at all: rewritten
        // copies, and the relay's own mail (bounces, confirmations, notices).
        let rendered = match (rendered, &signer) {
            (Ok(copy), Some(signer)) => match signer.sign(&copy) {
                Ok(signed) => Ok(std::borrow::Cow::Owned(signed)),
                Err(e) => {
                    tracing::error!(queue_id = %d.message_id, delivery = d.id, cause = %e, "cannot DKIM-sign the copy");
                    Err(AttemptOutcome::TemporaryFailure(format!(
                        "cannot DKIM-sign the copy: {e}"
                    )))
                }
            },
            (other, _) => other,
        };
        let outcome = match rendered {
            Ok(body) => {
                let copy = Copy {
                    mail_from: &d.mail_from,
                    recipient: &d.recipient,
                    body: &body,
                    name: &name,
                    smtputf8: d.smtputf8,
                };
                upstream.send(&mut conn, &copy).await
            }
            Err(outcome) => outcome,
        };
        let now = crate::now_ms();
        let (status, next) = retry::next_step(&outcome, d.attempts, d.received_at, now, &cfg.queue);
        let dsn = (status == DeliveryStatus::Failed
            && d.kind == MessageKind::Relay
            && !d.mail_from.is_empty())
        .then(|| bounce(&cfg, &job, &outcome, now));
        metrics::counter!(crate::metrics::DELIVERY_ATTEMPTS, "class" => crate::metrics::reply_class(&outcome))
            .increment(1);
        if status == DeliveryStatus::Sent {
            metrics::counter!(crate::metrics::RECIPIENTS_DELIVERED).increment(1);
            let waited = (now - d.received_at).max(0) as f64 / 1000.0;
            metrics::histogram!(crate::metrics::DELIVERY_SECONDS).record(waited);
        }
        tracing::info!(
            queue_id = %d.message_id,
            delivery = d.id,
            status = %status,
            attempt = d.attempts + 1,
            reply = %outcome.reply(),
            "delivery attempt"
        );
        let _ = records.send(AttemptRecord {
            delivery_id: d.id,
            status,
            attempted: true,
            reply: outcome.reply().to_owned(),
            next_attempt_at: next,
            late_decision: None,
            dsn,
        });
        in_flight.fetch_sub(1, Ordering::AcqRel);
        freed.notify_one();
    }
    if let Some(c) = conn {
        c.quit().await;
    }
}

/// `[dkim]`'s signer for the configuration in use.
type Signers = PerConfig<Option<Arc<dkim::Signer>>>;

/// The signer for a reloaded configuration (its key file is read again).
/// The reload checked that it loads; if it no longer does, the previous
/// signer stays, with an error.
fn reload_signer(
    cfg: &Arc<Config>,
    previous: &Option<Arc<dkim::Signer>>,
) -> Option<Arc<dkim::Signer>> {
    match cfg.dkim.as_ref().map(dkim::Signer::load).transpose() {
        Ok(signer) => signer.map(Arc::new),
        Err(e) => {
            tracing::error!(cause = %e, "dkim key not reloaded; the previous one stays in use");
            previous.clone()
        }
    }
}

/// The bytes to send: the recipient's rendered copy, or the message as
/// stored for what the relay wrote itself.
fn render<'a>(
    cfg: &Config,
    job: &'a Job,
) -> Result<std::borrow::Cow<'a, [u8]>, crate::token::TokenError> {
    let d = &job.delivery;
    let (Some(template), Some(campaign)) = (&job.prepared.template, cfg.campaign(&d.campaign))
    else {
        return Ok(std::borrow::Cow::Borrowed(&job.prepared.original[..]));
    };
    let links = job
        .subject_id
        .as_deref()
        .map(|s| copy::links(cfg, campaign, s))
        .transpose()?;
    Ok(std::borrow::Cow::Owned(copy::render(
        cfg,
        template,
        campaign,
        links.as_ref(),
    )))
}

/// The DSN message (kind `dsn`, null sender) for a failed delivery.
fn bounce(cfg: &Config, job: &Job, outcome: &AttemptOutcome, now: i64) -> NewMessage {
    let d = &job.delivery;
    let diagnostic = match outcome {
        AttemptOutcome::TemporaryFailure(r) => format!(
            "gave up after {}: {r}",
            humantime::format_duration(cfg.queue.max_age)
        ),
        other => other.reply().to_owned(),
    };
    let status = match outcome {
        AttemptOutcome::PermanentFailure(r) => dsn::status_of(r),
        _ => "4.4.7".to_owned(),
    };
    let id = ulid::Ulid::generate().to_string();
    let body = dsn::build(&dsn::Bounce {
        reporting_host: &cfg.smtp.hostname,
        queue_id: &d.message_id,
        original_sender: &d.mail_from,
        recipient: &d.recipient,
        diagnostic: &diagnostic,
        status: &status,
        original: &job.prepared.original,
        arrival: d.received_at,
        now,
    });
    let smtputf8 = d.smtputf8 || upstream::needs_smtputf8("", &d.mail_from, &body).is_some();
    NewMessage {
        id,
        kind: MessageKind::Dsn,
        mail_from: String::new(),
        client_ip: "127.0.0.1".into(),
        helo: cfg.smtp.hostname.clone(),
        auth_user: None,
        campaign: String::new(),
        header_message_id: None,
        body,
        received_at: now,
        recipients: vec![RecipientDecision {
            recipient: d.mail_from.clone(),
            subject_id: None,
            new_subject: None,
            outcome: Outcome::Deliver,
            reason: policy::Reason::Mandatory,
            event_id: None,
        }],
        // A UTF-8 sender, or UTF-8 in the report (RFC 6533), needs SMTPUTF8.
        smtputf8,
    }
}

/// Writes outcomes in batches; retries a failed write (the outcomes must
/// not be lost while the process lives; if it dies, leases expire and the
/// sends repeat: at-least-once upstream).
async fn record_loop(
    store: Store,
    mut rx: mpsc::UnboundedReceiver<AttemptRecord>,
    wake: Arc<Notify>,
) {
    let mut batch = Vec::with_capacity(512);
    loop {
        batch.clear();
        if rx.recv_many(&mut batch, 512).await == 0 {
            break;
        }
        let mut failures = 0u32;
        loop {
            match store.record_attempts(batch.clone()).await {
                Ok(()) => {
                    // A deferral changes when the next delivery is due; a
                    // bounce is a new delivery: let the claimer look again.
                    wake.notify_one();
                    break;
                }
                Err(e) => {
                    failures += 1;
                    tracing::error!(cause = %e, failures, "recording delivery outcomes failed; retrying");
                    if failures >= 50 {
                        tracing::error!(
                            "giving up recording; the leases will expire and the sends repeat"
                        );
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(failures.min(25))))
                        .await;
                }
            }
        }
    }
}
