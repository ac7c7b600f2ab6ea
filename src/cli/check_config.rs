//! `consent-relay check-config`: the file, and what `serve` loads beyond it
//! (the same list its start and a reload read), checked; warnings printed.

use super::config_exit;
use crate::config::Config;
use crate::config::load::Loaded;

pub(super) fn run(config: &Config) -> anyhow::Result<()> {
    for w in &config.warnings {
        eprintln!("warning: {w}");
    }
    // What `serve` reads beyond the file: the list its start and a
    // reload read too.
    Loaded::load(config).map_err(config_exit)?;
    println!(
        "{}: OK ({} campaigns)",
        config.path.display(),
        config.campaigns.len()
    );
    Ok(())
}
