//! The delivery worker of one node: a claim loop that leases due
//! deliveries in batches and turns them into jobs, `upstream.connections`
//! send loops that render, sign and send one copy at a time over a
//! persistent connection, and a record loop that writes the outcomes in
//! batches. On shutdown the sends in progress finish and are recorded, and
//! the rest of the leases go back.
//!
//! Does not decide what an outcome means (that is [`super::retry`]) nor
//! speak SMTP itself (that is [`super::upstream`]).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Mutex, Notify, mpsc, watch};

use super::retry::{self, AttemptOutcome};
use super::upstream::{self, Connection, Copy, Upstream};
use super::{BodyCache, Delivery, Job, Signers, copy, dkim, dsn};
use crate::config::Config;
use crate::config::reload::LiveConfig;
use crate::consent::logged;
use crate::consent::policy::{self, Outcome};
use crate::feedback::report::StatusCode;
use crate::store::{
    AttemptRecord, ClaimedDelivery, DeliveryStatus, MessageKind, NewMessage, RecipientDecision,
    Store, StoreError,
};
use crate::token;

impl Delivery {
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

    /// Claims while there is room among the jobs in flight, prepares what
    /// it claimed and hands the jobs to the send loops; waits for a wake,
    /// the next due time or room in between.
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
                if !pause(Some(freed), Duration::from_millis(200), &mut shutdown).await {
                    break;
                }
                continue;
            }
            let now = crate::time::now_ms();
            let claimed = match self.claim(&cfg, now, room).await {
                Ok(c) => {
                    failures = 0;
                    c
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    tracing::error!(cause = %e, "claiming deliveries failed");
                    let backoff = Duration::from_millis(200 * u64::from(failures.min(25)));
                    if !pause(None, backoff, &mut shutdown).await {
                        break;
                    }
                    continue;
                }
            };
            if claimed.is_empty() {
                if !pause(Some(&self.wake), self.idle_wait(now).await, &mut shutdown).await {
                    break;
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

    /// Leases up to `room` (and at most a batch) of the deliveries due at `now`.
    async fn claim(
        &self,
        cfg: &Config,
        now: i64,
        room: usize,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let lease_until = now + cfg.queue.lease.as_millis() as i64;
        let limit = room.min(cfg.queue.batch) as i64;
        self.store
            .claim_due(&self.node, now, lease_until, limit)
            .await
    }

    /// How long to wait when nothing was due: until the next due delivery
    /// (10 ms to 5 s), or 5 s when none is known.
    async fn idle_wait(&self, now: i64) -> Duration {
        match self.store.next_due().await {
            Ok(Some(due)) => Duration::from_millis(due.saturating_sub(now).clamp(10, 5000) as u64),
            _ => Duration::from_secs(5),
        }
    }
}

/// Waits for `wake` (if given) or `wait`; false when shutdown came first.
async fn pause(
    wake: Option<&Notify>,
    wait: Duration,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    let woken = async {
        match wake {
            Some(n) => n.notified().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = woken => true,
        _ = tokio::time::sleep(wait) => true,
        _ = crate::shutdown::until_shutdown(shutdown) => false,
    }
}

/// One sender: takes jobs until shutdown or the end of the jobs, sends each
/// copy over its own upstream connection, and passes the outcome on.
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
        let Some(job) = next_job(&jobs, &shutdown).await else {
            break;
        };
        let cfg = live.get();
        let signer = signers.get(&cfg, reload_signer);
        let d = &job.delivery;
        let outcome = match signed_copy(&cfg, signer.as_deref(), &job) {
            Ok(out) => {
                let name = format!("{}-{}", d.message_id, d.id);
                let copy = Copy {
                    mail_from: &out.mail_from,
                    recipient: &d.rcpt_to,
                    body: &out.body,
                    name: &name,
                    smtputf8: d.smtputf8,
                };
                upstream.send(&mut conn, &copy).await
            }
            Err(outcome) => outcome,
        };
        let _ = records.send(attempt_record(&cfg, &job, &outcome));
        in_flight.fetch_sub(1, Ordering::AcqRel);
        freed.notify_one();
    }
    if let Some(c) = conn {
        c.quit().await;
    }
}

/// The next job, `None` at shutdown or when the claim loop is gone.
async fn next_job(
    jobs: &Mutex<mpsc::Receiver<Job>>,
    shutdown: &watch::Receiver<bool>,
) -> Option<Job> {
    let mut rx = jobs.lock().await;
    let mut sd = shutdown.clone();
    tokio::select! {
        j = rx.recv() => j,
        _ = crate::shutdown::until_shutdown(&mut sd) => None,
    }
}

/// What goes upstream for one delivery: its envelope sender and its bytes.
struct Outgoing<'a> {
    mail_from: Cow<'a, str>,
    body: Cow<'a, [u8]>,
}

/// The copy to send, DKIM-signed when `[dkim]` is set; a failure to sign
/// the tokens or the copy is the attempt's (temporary) outcome.
fn signed_copy<'a>(
    cfg: &Config,
    signer: Option<&dkim::Signer>,
    job: &'a Job,
) -> Result<Outgoing<'a>, AttemptOutcome> {
    let d = &job.delivery;
    let rendered = render(cfg, job).map_err(|e| {
        // Never sent without working links: retried like any temporary
        // failure (a key problem is fixed in the configuration).
        tracing::error!(queue_id = %d.message_id, delivery = d.id, cause = %e, "cannot sign the recipient's tokens");
        AttemptOutcome::TemporaryFailure(format!("cannot sign the recipient's tokens: {e}"))
    })?;
    // With [dkim], every copy leaves signed or not at all: rewritten
    // copies, and the relay's own mail (bounces, confirmations, notices).
    let Some(signer) = signer else {
        return Ok(rendered);
    };
    match signer.sign(&rendered.body) {
        Ok(signed) => Ok(Outgoing {
            body: Cow::Owned(signed),
            ..rendered
        }),
        Err(e) => {
            tracing::error!(queue_id = %d.message_id, delivery = d.id, cause = %e, "cannot DKIM-sign the copy");
            Err(AttemptOutcome::TemporaryFailure(format!(
                "cannot DKIM-sign the copy: {e}"
            )))
        }
    }
}

/// What the attempt leads to (its status, the next attempt, a DSN when it
/// failed for good), counted and logged.
fn attempt_record(cfg: &Config, job: &Job, outcome: &AttemptOutcome) -> AttemptRecord {
    let d = &job.delivery;
    let now = crate::time::now_ms();
    let (status, next) = retry::next_step(outcome, d.attempts, d.received_at, now, &cfg.queue);
    let dsn = (status == DeliveryStatus::Failed
        && d.kind == MessageKind::Relay
        && !d.mail_from.is_empty())
    .then(|| bounce(cfg, job, outcome, now));
    metrics::counter!(crate::metrics::DELIVERY_ATTEMPTS, "class" => outcome.class()).increment(1);
    if status == DeliveryStatus::Sent {
        metrics::counter!(crate::metrics::RECIPIENTS_DELIVERED).increment(1);
        let waited = (now - d.received_at).max(0) as f64 / 1000.0;
        metrics::histogram!(crate::metrics::DELIVERY_SECONDS).record(waited);
    }
    // `[log] recipients`: the recipient by its keyed hash and the reply
    // without the address, unless the operator asked for them in clear.
    tracing::info!(
        queue_id = %d.message_id,
        delivery = d.id,
        recipient = %logged::logged_recipient(cfg, &d.recipient),
        status = %status,
        attempt = d.attempts + 1,
        reply = %logged::logged_reply(cfg, outcome.reply(), &[&d.recipient, &d.rcpt_to]),
        "delivery attempt"
    );
    AttemptRecord {
        delivery_id: d.id,
        status,
        attempted: true,
        reply: outcome.reply().to_owned(),
        next_attempt_at: next,
        campaign: (d.kind == MessageKind::Relay).then(|| d.campaign.clone()),
        late_decision: None,
        dsn,
        bounce: (status == DeliveryStatus::Failed && d.kind == MessageKind::Relay)
            .then(|| crate::feedback::intake::upstream_bounce(cfg, outcome.reply()))
            .flatten(),
    }
}

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

/// The recipient's rendered copy with its return path, or the message as
/// stored with its own envelope for what the relay wrote itself.
fn render<'a>(cfg: &Config, job: &'a Job) -> Result<Outgoing<'a>, String> {
    let d = &job.delivery;
    let as_stored = Outgoing {
        mail_from: Cow::Borrowed(&d.mail_from),
        body: Cow::Borrowed(&job.prepared.original[..]),
    };
    if d.kind != MessageKind::Relay {
        return Ok(as_stored);
    }
    // One HMAC per copy: the return path and the feedback headers.
    let delivery = token::bounce::local_part(&cfg.signing, d.id).map_err(|e| e.to_string())?;
    let mail_from = copy::return_path(cfg, &delivery, &d.mail_from);
    let (Some(template), Some(campaign)) = (&job.prepared.template, cfg.campaign(&d.campaign))
    else {
        return Ok(Outgoing {
            mail_from,
            ..as_stored
        });
    };
    let links = job
        .subject_id
        .as_deref()
        .map(|s| copy::links(cfg, campaign, s))
        .transpose()
        .map_err(|e| e.to_string())?;
    let body = copy::render(cfg, template, campaign, links.as_ref(), &delivery);
    Ok(Outgoing {
        mail_from,
        body: Cow::Owned(body),
    })
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
        AttemptOutcome::PermanentFailure(r) => StatusCode::from_reply(r)
            .unwrap_or(StatusCode::new(5, 0, 0))
            .to_string(),
        _ => "4.4.7".to_owned(),
    };
    let id = ulid::Ulid::generate().to_string();
    let body = dsn::build(&dsn::Bounce {
        reporting_host: &cfg.smtp.hostname,
        queue_id: &d.message_id,
        original_sender: &d.mail_from,
        recipient: &d.rcpt_to,
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
        header_message_id: crate::mail::header::message_id(&body),
        body,
        received_at: now,
        recipients: vec![RecipientDecision {
            recipient: d.mail_from.clone(),
            rcpt_to: None,
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
