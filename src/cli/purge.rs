//! `consent-relay purge [--dry-run]`: what `[retention]` no longer allows to
//! keep, removed now.

use super::open;
use crate::config::Config;
use crate::time::now_ms;

/// `purge [--dry-run]`: the purge `serve` runs every `[retention]
/// purge_interval`, run now.
pub(super) async fn run(config: &Config, dry_run: bool) -> anyhow::Result<()> {
    let store = open(config).await?;
    let r = &config.retention;
    let report = if dry_run {
        crate::rights::retention::dry_run(&store, r, now_ms()).await
    } else {
        crate::rights::retention::purge(&store, r, now_ms(), None).await
    };
    store.close().await;
    print!("{}", crate::rights::retention::summary(&report?, dry_run));
    Ok(())
}
