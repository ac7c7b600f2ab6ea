//! Webhooks (`[webhook]`): every consent event, from any path, is POSTed to
//! the CRM as JSON, signed (see [`signed`]), and retried with exponential
//! backoff until the CRM answers 2xx. The store queues each event in
//! `webhook_outbox` in the transaction that records it, so nothing is lost
//! across a crash or restart (at-least-once: the receiver dedups on `id`).
//! Notices (a bounce, a removed suppression, a paused or warned campaign)
//! are queued the same way in `webhook_notices` and posted alike, in the
//! room the consent events leave.
//!
//! A subject's events go out in order: the store only leases the oldest row
//! of each subject, so a later event waits until the earlier one was
//! accepted; different subjects are posted in parallel (`concurrency`),
//! one at a time while the CRM refuses every attempt. Wakes when this process committed an event, and polls every second for
//! events written by other processes (the CLI).
//!
//! Knows nothing of SMTP or HTML.

pub mod signed;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::WebhookConfig;
use crate::store::{ClaimedNotice, ClaimedWebhook, Store, WebhookOutcome};

/// How often the outbox is read for events written by other processes.
const POLL: Duration = Duration::from_secs(1);

/// How long past the request timeout a leased row stays leased.
const LEASE_MARGIN: Duration = Duration::from_secs(30);

/// The webhook side of one node.
pub struct Dispatcher {
    config: Arc<WebhookConfig>,
    store: Store,
    client: reqwest::Client,
    /// Lease owner name of this node.
    node: String,
}

impl Dispatcher {
    /// The HTTP client ([`client`]) is built here, with the roots of
    /// `ca_file` as [`crate::config::load::Loaded`] read them.
    pub fn new(
        config: &WebhookConfig,
        roots: Option<Vec<reqwest::Certificate>>,
        store: Store,
        node: &str,
    ) -> Result<Dispatcher, String> {
        Ok(Dispatcher {
            config: Arc::new(config.clone()),
            store,
            client: client(config, roots)?,
            node: node.to_owned(),
        })
    }

    /// Runs until `shutdown` turns true; then lets the attempts in flight
    /// finish, records them, and hands the remaining leases back.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let wake = self.store.events_written();
        let lease = self.config.timeout.saturating_add(LEASE_MARGIN);
        let mut attempts: JoinSet<Option<i64>> = JoinSet::new();
        // The earliest retry this node scheduled (rows of other nodes and
        // processes are found by the poll).
        let mut next_retry: Option<i64> = None;
        let mut failures = 0u32;
        // Attempts refused in a row, whatever the subject. Once every one of
        // the last `concurrency` was refused the CRM is likely down: one
        // attempt at a time, spaced by the backoff (`probe_at`), until one
        // is accepted, rather than every waiting subject in turn.
        let mut refused = 0i64;
        let mut probe_at: Option<i64> = None;
        let concurrency = self.config.concurrency;
        while !*shutdown.borrow() {
            let now = crate::time::now_ms();
            let room = if refused < concurrency as i64 {
                concurrency.saturating_sub(attempts.len())
            } else {
                usize::from(attempts.is_empty() && probe_at.is_none_or(|at| at <= now))
            };
            if room > 0 {
                let lease_until = now + lease.as_millis() as i64;
                match self.claim(now, lease_until, room as i64).await {
                    Ok(claimed) => {
                        failures = 0;
                        for c in claimed {
                            attempts.spawn(attempt(
                                self.config.clone(),
                                self.client.clone(),
                                self.store.clone(),
                                self.node.clone(),
                                c,
                            ));
                        }
                    }
                    Err(e) => {
                        failures = failures.saturating_add(1);
                        tracing::error!(cause = %e, "webhook: claiming events failed");
                    }
                }
            }
            let mut wait = POLL.saturating_mul(failures.clamp(1, 10));
            if let Some(at) = next_retry {
                wait = wait.min(Duration::from_millis(at.saturating_sub(now).max(0) as u64));
            }
            tokio::select! {
                Some(done) = attempts.join_next(), if !attempts.is_empty() => {
                    match done {
                        Ok(Some(mut at)) => {
                            refused += 1;
                            if refused >= concurrency as i64 {
                                if refused == concurrency as i64 {
                                    tracing::warn!(refused, "webhook: the CRM refused every recent attempt; trying one event at a time until it accepts one");
                                }
                                let wait = signed::backoff(refused - concurrency as i64 + 1, self.config.retry_min, self.config.retry_max);
                                let probe = crate::time::now_ms() + wait.as_millis() as i64;
                                probe_at = Some(probe);
                                at = probe;
                            }
                            next_retry = Some(next_retry.map_or(at, |n| n.min(at)));
                        }
                        Ok(None) => {
                            refused = 0;
                            probe_at = None;
                        }
                        Err(_) => {}
                    }
                }
                _ = wake.notified() => {}
                _ = tokio::time::sleep(wait) => {
                    if next_retry.is_some_and(|at| at <= crate::time::now_ms()) {
                        next_retry = None;
                    }
                }
                _ = crate::shutdown::until_shutdown(&mut shutdown) => break,
            }
        }
        while attempts.join_next().await.is_some() {}
        match self.store.release_webhooks(&self.node).await {
            Ok(n) if n > 0 => tracing::info!(released = n, "webhook leases handed back"),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(cause = %e, "could not hand webhook leases back; they expire by themselves")
            }
        }
    }
}

impl Dispatcher {
    /// Up to `limit` consent events, then notices in the room left.
    async fn claim(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<Posting>, crate::store::StoreError> {
        let mut claimed: Vec<Posting> = self
            .store
            .claim_webhooks(&self.node, now, lease_until, limit)
            .await?
            .into_iter()
            .map(Posting::Event)
            .collect();
        let room = limit - claimed.len() as i64;
        if room > 0 {
            claimed.extend(
                self.store
                    .claim_notices(&self.node, now, lease_until, room)
                    .await?
                    .into_iter()
                    .map(Posting::Notice),
            );
        }
        Ok(claimed)
    }
}

/// One row to post: a consent event or a notice.
enum Posting {
    Event(ClaimedWebhook),
    Notice(ClaimedNotice),
}

impl Posting {
    /// The row's id in its table.
    fn id(&self) -> i64 {
        match self {
            Posting::Event(c) => c.event.id,
            Posting::Notice(n) => n.id,
        }
    }

    fn attempts(&self) -> i64 {
        match self {
            Posting::Event(c) => c.attempts,
            Posting::Notice(n) => n.attempts,
        }
    }

    /// What the log names it by: the subject, or the notice's kind.
    fn about(&self) -> &str {
        match self {
            Posting::Event(c) => &c.event.subject_id,
            Posting::Notice(n) => n.kind.as_str(),
        }
    }

    fn body(&self, timestamp: i64) -> Vec<u8> {
        match self {
            Posting::Event(c) => signed::body(c, timestamp),
            Posting::Notice(n) => signed::notice_body(n, timestamp),
        }
    }

    async fn record(
        &self,
        store: &Store,
        node: &str,
        outcome: WebhookOutcome,
    ) -> Result<(), crate::store::StoreError> {
        match self {
            Posting::Event(_) => store.record_webhook(node, outcome).await,
            Posting::Notice(_) => store.record_notice(node, outcome).await,
        }
    }
}

/// The HTTP client for `[webhook]`: the timeout, no redirects, the system
/// roots or those of `ca_file` (`roots`, read by
/// [`crate::config::load::webhook_roots`]); an error names the
/// configuration key.
pub fn client(
    config: &WebhookConfig,
    roots: Option<Vec<reqwest::Certificate>>,
) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder();
    if let Some(certs) = roots {
        builder = builder.tls_built_in_root_certs(false);
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder
        .timeout(config.timeout)
        .connect_timeout(config.timeout)
        // A redirect would turn the POST into a GET elsewhere: a 3xx is
        // a failed attempt, tried again later.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("consent-relay/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("webhook.url: cannot build the HTTP client: {e}"))
}

/// One POST of one event; records the outcome. Returns when the next
/// attempt is due if this one failed.
async fn attempt(
    config: Arc<WebhookConfig>,
    client: reqwest::Client,
    store: Store,
    node: String,
    claimed: Posting,
) -> Option<i64> {
    let event_id = claimed.id();
    let number = claimed.attempts() + 1;
    let body = claimed.body(crate::time::now_ms() / 1000);
    let signature = signed::signature(&config.secret.0, &body);
    let started = Instant::now();
    let sent = client
        .post(config.url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(signed::SIGNATURE_HEADER, signature)
        .body(body)
        .send()
        .await;
    let elapsed_ms = started.elapsed().as_millis() as u64;
    let result = match sent {
        Ok(r) if r.status().is_success() => Ok(r.status().as_u16()),
        Ok(r) => Err(format!("HTTP {}", r.status())),
        // Without the URL: its path or query may hold a credential.
        Err(e) => Err(causes(&e.without_url())),
    };
    let (outcome, retry_at) = match result {
        Ok(status) => {
            tracing::info!(event = event_id, subject = %claimed.about(), attempt = number, status, elapsed_ms, "webhook: accepted");
            (WebhookOutcome::Delivered { event_id }, None)
        }
        Err(error) => {
            let wait = signed::backoff(number, config.retry_min, config.retry_max);
            let at = crate::time::now_ms() + wait.as_millis() as i64;
            tracing::warn!(event = event_id, subject = %claimed.about(), attempt = number, error = %error, elapsed_ms, retry_in_ms = wait.as_millis() as u64, "webhook: not accepted; will retry");
            let outcome = WebhookOutcome::Failed {
                event_id,
                error,
                next_attempt_at: at,
            };
            (outcome, Some(at))
        }
    };
    if let Err(e) = claimed.record(&store, &node, outcome).await {
        // The lease expires and the event is posted again (at-least-once).
        tracing::error!(event = event_id, cause = %e, "webhook: recording the attempt failed");
    }
    retry_at
}

/// An error with its causes (`error sending request: ...: connection refused`).
fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}
