//! Serve's loop over the reports stored but not applied (a crash, or a
//! store error, came between storing and applying one): at start, every
//! few seconds, and at once when a door could not take a report whole.
//! Applying is once per report whichever node does it (`intake`), so every
//! node runs this loop.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};

use crate::config::reload::LiveConfig;
use crate::store::Store;

/// How often the loop looks for pending reports when nothing wakes it.
pub const EVERY: Duration = Duration::from_secs(5);
/// Reports applied per round.
const BATCH: i64 = 100;

/// Applies pending reports until shutdown; `wake` starts a round at once.
pub async fn run(
    live: LiveConfig,
    store: Store,
    wake: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let config = live.get();
        loop {
            match super::intake::process_pending(&store, &config, BATCH).await {
                Ok(done) => {
                    for p in &done {
                        tracing::info!(
                            report = p.received.id,
                            kind = %p.kind,
                            result = %p.applied.result,
                            "pending report applied"
                        );
                    }
                    // A full batch: more may wait.
                    if (done.len() as i64) < BATCH || *shutdown.borrow() {
                        break;
                    }
                }
                Err(e) => {
                    tracing::error!(cause = %e, "pending reports not applied; retried in a few seconds");
                    break;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = wake.notified() => {}
            _ = crate::shutdown::until_shutdown(&mut shutdown) => break,
        }
    }
}
