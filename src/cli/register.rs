//! `consent-relay register [--json]`: the processing register (GDPR Art. 30)
//! the configuration implies.

use crate::config::Config;
use crate::rights::register;

pub(super) fn run(config: &Config, json: bool) -> anyhow::Result<()> {
    let register = register::register(config);
    if json {
        println!("{}", serde_json::to_string_pretty(&register)?);
    } else {
        print!("{}", register::table(&register));
    }
    Ok(())
}
