//! `consent-relay export EMAIL`: everything held about a person, as JSON.

use anyhow::bail;

use super::open;
use crate::config::Config;

/// `export EMAIL`: the same JSON document as `GET /api/v1/subjects/{email}`,
/// with an audit row (`$USER` via cli).
pub(super) async fn run(config: &Config, email: &str) -> anyhow::Result<()> {
    let who = super::identity(email)?;
    let store = open(config).await?;
    let doc = crate::rights::export(&store, config, &who, &super::campaign::operator()).await;
    store.close().await;
    let Some(doc) = doc? else {
        bail!("nothing is held about {who}");
    };
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(())
}
