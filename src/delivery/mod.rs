//! Delivery: lease due deliveries in batches, re-read consent just before
//! sending (a withdrawal after accept wins: `suppressed-late`), build each
//! recipient's copy, send it through the upstream's persistent connections,
//! and record every outcome. A 4xx or a connection fault defers with
//! backoff; a 5xx or `max_age` fails the delivery and queues one DSN.
//!
//! This module holds the types the parts share; the loops (claim, send,
//! record) are in [`worker`], the turning of claimed rows into jobs (bodies,
//! the consent re-check) in `prepare`, the pure schedule in [`retry`], the
//! connections in [`upstream`], the copy in [`copy`], the bounce in [`dsn`],
//! the signature in [`dkim`].
//!
//! Knows nothing of the SMTP server side.

pub mod copy;
pub mod dkim;
pub mod dsn;
pub mod node;
mod prepare;
pub mod retry;
pub mod upstream;
pub mod worker;

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::Notify;

use crate::config::reload::{LiveConfig, PerConfig};
use crate::rewrite::Template;
use crate::store::{ClaimedDelivery, Store};
use upstream::Upstream;

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

/// `[dkim]`'s signer for the configuration in use.
type Signers = PerConfig<Option<Arc<dkim::Signer>>>;

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
        let node = config.queue.node.clone();
        Ok(Delivery {
            signer: Arc::new(PerConfig::new(config, signer)),
            config: live,
            store,
            upstream: Arc::new(upstream),
            wake,
            node,
        })
    }
}
