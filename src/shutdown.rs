//! The one shutdown signal `serve` builds and passes down: a watch channel
//! whose value turns true once. Listeners stop accepting, sessions finish
//! their transaction, workers finish or hand back their leases.

/// Resolves once the shutdown flag is true (or its sender is gone).
pub async fn until_shutdown(rx: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}
