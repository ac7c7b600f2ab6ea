//! `consent-relay erase EMAIL`: the right to be forgotten; a keyed hash stays
//! as a suppression.

use anyhow::bail;

use super::open;
use crate::config::Config;

/// `erase EMAIL`: as `DELETE /api/v1/subjects/{email}`, source `admin`,
/// the audit row's actor `$USER` via cli.
pub(super) async fn run(config: &Config, email: &str) -> anyhow::Result<()> {
    let who = super::identity(email)?;
    let address = who.canonical();
    let store = open(config).await?;
    let report = crate::rights::erase(&store, config, &who, &super::campaign::operator()).await;
    store.close().await;
    let Some(r) = report? else {
        bail!("nothing is held about {address}; nothing erased");
    };
    println!(
        "erased {address} (subject {}): {} consent events kept without proof, {} decisions and {} deliveries now name erased:{}, {} queued copies cancelled, {} message bodies removed, {} upstream replies masked, {} bounces about it removed ({} not sent yet, dropped)",
        r.subject_id,
        r.events_kept,
        r.decisions,
        r.deliveries,
        r.address_hash,
        r.cancelled,
        r.bodies_removed,
        r.replies_scrubbed,
        r.bounces,
        r.bounces_dropped
    );
    Ok(())
}
