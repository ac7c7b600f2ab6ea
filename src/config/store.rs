//! `[store]`: which database holds the queue, the consent events and the
//! decisions, and its pool. Knows nothing of SQL: the store opens the URL.

use std::path::PathBuf;

use serde::Deserialize;

use super::{Check, shown};

/// `store.url`.
pub const DEFAULT_URL: &str = "sqlite://consent-relay.db";
/// `store.pool_size`.
pub const DEFAULT_POOL_SIZE: u32 = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// Path as written (relative paths are relative to the working directory).
    Sqlite(PathBuf),
    Postgres(String),
}

impl StoreUrl {
    /// `sqlite://PATH` (or `sqlite:PATH`) or `postgres://…`; the error says
    /// what is wrong and how to write it, for the caller to prefix with the
    /// key or flag that gave it (the value itself is shown only when it
    /// cannot hold a password).
    pub fn parse(text: &str) -> Result<StoreUrl, String> {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return match text.parse::<sqlx::postgres::PgConnectOptions>() {
                Ok(_) => Ok(StoreUrl::Postgres(text.to_owned())),
                Err(e) => Err(format!(
                    "is not a valid postgres:// url ({e}; use postgres://user@host/db)"
                )),
            };
        }
        match text
            .strip_prefix("sqlite://")
            .or_else(|| text.strip_prefix("sqlite:"))
        {
            Some("") => Err("names no file (use e.g. sqlite://consent-relay.db)".into()),
            Some(":memory:") => Err("an in-memory database would lose the queue on restart (use a file, e.g. sqlite://consent-relay.db)".into()),
            Some(path) => Ok(StoreUrl::Sqlite(PathBuf::from(path))),
            None => Err(format!(
                "{} is not a store url (use sqlite://PATH or postgres://user@host/db)",
                shown(text)
            )),
        }
    }
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub url: StoreUrl,
    /// Connections in the pool (default 8).
    pub pool_size: u32,
    /// Queue every consent event in `webhook_outbox` (`[webhook]` is set).
    pub webhook_outbox: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawStore {
    url: Option<String>,
    pool_size: Option<i64>,
}

/// `webhook_outbox`: the file has a `[webhook]` section.
pub(super) fn check(
    c: &mut Check<'_>,
    raw: &RawStore,
    webhook_outbox: bool,
) -> Option<StoreConfig> {
    let text = raw.url.as_deref().unwrap_or(DEFAULT_URL);
    let url = StoreUrl::parse(text)
        .map_err(|what| c.error("store.url", what))
        .ok();
    let pool_size = c.number("store.pool_size", raw.pool_size, DEFAULT_POOL_SIZE, 1..=256);
    Some(StoreConfig {
        url: url?,
        pool_size: pool_size?,
        webhook_outbox,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigError;
    use crate::config::testing::*;

    #[test]
    fn store_urls() {
        let store = |url: &str| {
            parse(&format!("{}\n[store]\nurl = \"{url}\"\n", minimal())).map(|c| c.store.url)
        };
        assert_eq!(
            store("sqlite:/var/lib/relay.db").expect("valid"),
            StoreUrl::Sqlite("/var/lib/relay.db".into())
        );
        assert_eq!(
            store("postgresql://relay@db/consent").expect("valid"),
            StoreUrl::Postgres("postgresql://relay@db/consent".into())
        );
        let Err(ConfigError::Invalid(lines)) = store("sqlite://:memory:") else {
            panic!("memory accepted")
        };
        assert_eq!(
            lines,
            [
                "consent-relay.toml: store.url: an in-memory database would lose the queue on restart (use a file, e.g. sqlite://consent-relay.db)"
            ]
        );
        let Err(ConfigError::Invalid(lines)) = store("mysql://root:hunter2@db/x") else {
            panic!("mysql accepted")
        };
        assert_eq!(
            lines,
            [
                "consent-relay.toml: store.url: the value is not a store url (use sqlite://PATH or postgres://user@host/db)"
            ]
        );
    }
}
