//! `consent-relay log-hash EMAIL`: how the relay's log lines name an
//! address under `[log] recipients = "hash"` (the start of its keyed hash
//! under the current signing key), to find one person's lines with grep.

use anyhow::bail;
use clap::Args;

use crate::config::{Config, LogRecipients};
use crate::consent::identity::Identity;
use crate::consent::logged;

#[derive(Args, Debug)]
pub struct LogHashArgs {
    pub email: String,
    /// Also the hash under each older signing key (log lines written
    /// before a key rotation), as `KEY_ID HASH` lines, the current first
    #[arg(long)]
    pub all_keys: bool,
}

pub(super) fn run(config: &Config, a: LogHashArgs) -> anyhow::Result<()> {
    if let Err(e) = Identity::of(&a.email) {
        bail!(
            "{:?} is not an email address ({e}); e.g. consent-relay log-hash ann@example.net",
            a.email
        );
    }
    let hashes = logged::log_hashes(&config.signing, &a.email);
    if a.all_keys {
        for (key_id, hash) in &hashes {
            println!("{key_id} {hash}");
        }
    } else if let Some((_, hash)) = hashes.first() {
        println!("{hash}");
    }
    if config.log.recipients == LogRecipients::Clear {
        eprintln!(
            "note: [log] recipients = \"clear\": the relay's log lines name addresses in clear, not by this hash"
        );
    }
    Ok(())
}
