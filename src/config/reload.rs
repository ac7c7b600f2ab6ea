//! Reloading the configuration while running (SIGHUP): the shared handle
//! every part of the relay reads its [`Config`] from, and what a reload
//! changed.
//!
//! Each part takes a snapshot per unit of work: an SMTP session at its
//! start (its limits, campaigns and keys stay those of its start), an HTTP
//! request, a delivery batch and each send, a retention purge. A new file
//! is checked like `check-config` first; one that fails is refused whole.
//! Keys read only at start (listen addresses, the store, the upstream pool,
//! the webhook dispatcher, ...) keep their old value until a restart;
//! [`Changes::restart`] names them.

use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use crate::config::Config;

/// The configuration in use, swapped whole by a reload. Cheap to clone.
#[derive(Clone)]
pub struct LiveConfig(Arc<ArcSwap<Config>>);

impl LiveConfig {
    pub fn new(config: Arc<Config>) -> LiveConfig {
        LiveConfig(Arc::new(ArcSwap::new(config)))
    }

    /// The configuration in use now: keep it for the unit of work.
    pub fn get(&self) -> Arc<Config> {
        self.0.load_full()
    }

    /// Puts `config` in use for every unit of work that starts from now on.
    pub fn set(&self, config: Arc<Config>) {
        self.0.store(config);
    }
}

impl From<Arc<Config>> for LiveConfig {
    fn from(config: Arc<Config>) -> LiveConfig {
        LiveConfig::new(config)
    }
}

/// Something built from the configuration (the HTTP router, the DKIM
/// signer), built again when the configuration in use is another one.
pub struct PerConfig<T> {
    /// The configuration it was last built for, and what was built.
    current: Mutex<(Arc<Config>, T)>,
}

impl<T: Clone> PerConfig<T> {
    pub fn new(config: Arc<Config>, value: T) -> PerConfig<T> {
        PerConfig {
            current: Mutex::new((config, value)),
        }
    }

    /// The value for `config`: the one built last if `config` is the same,
    /// else `build(config, previous value)`.
    pub fn get(&self, config: &Arc<Config>, build: impl FnOnce(&Arc<Config>, &T) -> T) -> T {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if !Arc::ptr_eq(&current.0, config) {
            let value = build(config, &current.1);
            *current = (config.clone(), value);
        }
        current.1.clone()
    }
}

/// What a new configuration changes, coarsely, for the log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Applied at once: "campaigns added: b", "texts", "smtp", ...
    pub applied: Vec<String>,
    /// Keys whose new value only a restart puts in use.
    pub restart: Vec<&'static str>,
}

impl Changes {
    /// `old` → `new`.
    pub fn between(old: &Config, new: &Config) -> Changes {
        let mut c = Changes::default();
        c.campaigns(old, new);
        let mut section = |name: &str, changed: bool| {
            if changed {
                c.applied.push(name.to_owned());
            }
        };
        section("texts", differs(&old.texts, &new.texts));
        section(
            "signing keys",
            old.signing.current != new.signing.current || old.signing.keys != new.signing.keys,
        );
        section("smtp", differs(&old.smtp, &new.smtp));
        section("http", differs(&old.http, &new.http));
        section("queue", differs(&old.queue, &new.queue));
        section("dkim", differs(&old.dkim, &new.dkim));
        section("retention", differs(&old.retention, &new.retention));
        section("erasure", differs(&old.erasure, &new.erasure));
        section("log", differs(&old.log, &new.log));
        c.restart = restart_only(old, new);
        c
    }

    fn campaigns(&mut self, old: &Config, new: &Config) {
        let ids = |from: &Config, other: &Config| -> Vec<String> {
            from.campaigns
                .iter()
                .filter(|c| other.campaign(&c.id).is_none())
                .map(|c| c.id.clone())
                .collect()
        };
        let added = ids(new, old);
        let removed = ids(old, new);
        let changed: Vec<String> = new
            .campaigns
            .iter()
            .filter(|c| old.campaign(&c.id).is_some_and(|o| differs(o, *c)))
            .map(|c| c.id.clone())
            .collect();
        for (what, ids) in [
            ("campaigns added", added),
            ("campaigns removed", removed),
            ("campaigns changed", changed),
        ] {
            if !ids.is_empty() {
                self.applied.push(format!("{what}: {}", ids.join(", ")));
            }
        }
    }

    /// The one log line's `changed` field.
    pub fn summary(&self) -> String {
        if self.applied.is_empty() {
            "nothing".to_owned()
        } else {
            self.applied.join("; ")
        }
    }
}

/// Keys read once at start, whose change waits for a restart.
fn restart_only(old: &Config, new: &Config) -> Vec<&'static str> {
    let (o, n) = (old, new);
    let (ou, nu) = (&o.upstream, &n.upstream);
    [
        ("smtp.listen", differs(&o.smtp.listen, &n.smtp.listen)),
        (
            "smtp.listen_tls",
            differs(&o.smtp.listen_tls, &n.smtp.listen_tls),
        ),
        (
            "smtp.max_connections",
            differs(&o.smtp.max_connections, &n.smtp.max_connections),
        ),
        ("smtp.tls_cert", differs(&o.smtp.tls_cert, &n.smtp.tls_cert)),
        ("smtp.tls_key", differs(&o.smtp.tls_key, &n.smtp.tls_key)),
        (
            "smtp.auth_max_failures_per_ip",
            differs(
                &o.smtp.guard.auth_max_failures_per_ip,
                &n.smtp.guard.auth_max_failures_per_ip,
            ),
        ),
        (
            "smtp.auth_max_failures_per_user",
            differs(
                &o.smtp.guard.auth_max_failures_per_user,
                &n.smtp.guard.auth_max_failures_per_user,
            ),
        ),
        (
            "smtp.auth_failure_window",
            differs(
                &o.smtp.guard.auth_failure_window,
                &n.smtp.guard.auth_failure_window,
            ),
        ),
        ("http.listen", differs(&o.http.listen, &n.http.listen)),
        (
            "http.rate_limit",
            differs(&o.http.rate_limit, &n.http.rate_limit),
        ),
        (
            "http.rate_limit_burst",
            differs(&o.http.rate_limit_burst, &n.http.rate_limit_burst),
        ),
        (
            "http.header_timeout",
            differs(&o.http.header_timeout, &n.http.header_timeout),
        ),
        (
            "http.max_connections_per_client",
            differs(
                &o.http.max_connections_per_client,
                &n.http.max_connections_per_client,
            ),
        ),
        ("queue.node", differs(&o.queue.node, &n.queue.node)),
        (
            "queue.node_heartbeat",
            differs(&o.queue.node_heartbeat, &n.queue.node_heartbeat),
        ),
        ("store.url", differs(&o.store.url, &n.store.url)),
        (
            "store.pool_size",
            differs(&o.store.pool_size, &n.store.pool_size),
        ),
        ("upstream.url", differs(&ou.target, &nu.target)),
        (
            "upstream.connections",
            differs(&ou.connections, &nu.connections),
        ),
        ("upstream.username", differs(&ou.username, &nu.username)),
        ("upstream.password_file", ou.password != nu.password),
        ("upstream.tls", differs(&ou.tls, &nu.tls)),
        ("upstream.ca_file", differs(&ou.ca_file, &nu.ca_file)),
        ("upstream.timeout", differs(&ou.timeout, &nu.timeout)),
        (
            "webhook",
            differs(&o.webhook, &n.webhook)
                || o.webhook.as_ref().map(|w| &w.secret) != n.webhook.as_ref().map(|w| &w.secret),
        ),
    ]
    .into_iter()
    .filter_map(|(key, changed)| changed.then_some(key))
    .collect()
}

/// Compared through `Debug`: the configuration types are plain data
/// (secrets print their length only; they are compared apart).
fn differs<T: Debug + ?Sized>(a: &T, b: &T) -> bool {
    format!("{a:?}") != format!("{b:?}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(extra_campaign: &str, listen: &str, max_size: usize) -> Config {
        let text = std::fs::read_to_string("config/consent-relay.toml").expect("example");
        let text = text.replace("127.0.0.1:2525", listen).replace(
            "max_message_size = 26214400",
            &format!("max_message_size = {max_size}"),
        ) + extra_campaign;
        Config::parse(Path::new("config/consent-relay.toml"), &text).expect("valid")
    }

    #[test]
    fn names_what_changed_and_what_needs_a_restart() {
        let old = config("", "127.0.0.1:2525", 26214400);
        assert_eq!(Changes::between(&old, &old), Changes::default());
        let extra = "\n[[campaign]]\nid = \"reload-b\"\nlabel = \"B\"\npolicy = \"opt-in\"\n";
        let new = config(extra, "127.0.0.1:2626", 4096);
        let c = Changes::between(&old, &new);
        assert_eq!(c.applied, ["campaigns added: reload-b", "smtp"]);
        assert_eq!(c.restart, ["smtp.listen"]);
        let back = Changes::between(&new, &old);
        assert_eq!(back.applied, ["campaigns removed: reload-b", "smtp"]);
        assert_eq!(back.summary(), "campaigns removed: reload-b; smtp");
    }

    #[test]
    fn a_set_config_is_what_the_next_get_returns() {
        let live = LiveConfig::new(Arc::new(config("", "127.0.0.1:2525", 26214400)));
        let before = live.get();
        live.set(Arc::new(config("", "127.0.0.1:2525", 4096)));
        assert_eq!(before.smtp.max_message_size, 26214400);
        assert_eq!(live.get().smtp.max_message_size, 4096);
    }
}
