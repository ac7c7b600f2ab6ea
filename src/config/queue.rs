//! `[queue]`: how delivery retries, how long it tries, and how it leases
//! and batches deliveries.

use std::time::Duration;

use serde::Deserialize;

use super::{Check, NONZERO};

/// `queue.retry_after`: the waits after each failed attempt; the last repeats.
pub const DEFAULT_RETRY_AFTER: [&str; 7] = ["30s", "2m", "10m", "30m", "1h", "2h", "4h"];
/// `queue.max_age`.
pub const DEFAULT_MAX_AGE: &str = "5d";
/// `queue.lease`.
pub const DEFAULT_LEASE: &str = "5m";
/// `queue.batch`.
pub const DEFAULT_BATCH: usize = 200;
/// `queue.node_heartbeat`.
pub const DEFAULT_NODE_HEARTBEAT: &str = "5s";
/// The longest `queue.node` name.
const NODE_MAX: usize = 64;
/// The example offered for a bad `queue.retry_after` entry.
const EXAMPLE_RETRY: &str = "30s";

#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// Backoff after each failed attempt; the last repeats. Never empty.
    pub retry_after: Vec<Duration>,
    /// After this long since the message was received, a delivery fails for good.
    pub max_age: Duration,
    /// How long a claimed delivery stays leased to a worker (default 5m).
    pub lease: Duration,
    /// Deliveries claimed per batch (default 200).
    pub batch: usize,
    /// This node's name, the owner of its leases (default the hostname):
    /// the same name after a restart takes its own leases back at once.
    pub node: String,
    /// How often a running node says it is alive (default 5s); a name not
    /// seen for twice that is free.
    pub node_heartbeat: Duration,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawQueue {
    retry_after: Option<Vec<String>>,
    max_age: Option<String>,
    lease: Option<String>,
    batch: Option<i64>,
    node: Option<String>,
    node_heartbeat: Option<String>,
}

pub(super) fn check(c: &mut Check<'_>, raw: &RawQueue) -> Option<QueueConfig> {
    let texts: Vec<&str> = match &raw.retry_after {
        Some(list) => list.iter().map(String::as_str).collect(),
        None => DEFAULT_RETRY_AFTER.to_vec(),
    };
    if texts.is_empty() {
        c.error(
            "queue.retry_after",
            r#"is empty (use e.g. ["30s", "2m", "10m", "1h"])"#,
        );
    }
    let retry_after: Vec<Option<Duration>> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            c.duration_of(
                &format!("queue.retry_after[{i}]"),
                t,
                EXAMPLE_RETRY,
                NONZERO,
            )
        })
        .collect();
    let max_age = c.duration("queue.max_age", &raw.max_age, DEFAULT_MAX_AGE, NONZERO);
    let lease = c.duration(
        "queue.lease",
        &raw.lease,
        DEFAULT_LEASE,
        Duration::from_secs(10),
    );
    let batch = c.number("queue.batch", raw.batch, DEFAULT_BATCH, 1..=10_000);
    let node = match &raw.node {
        Some(name) => Some(name.clone()),
        None => hostname(),
    };
    let node = match node {
        Some(name) if is_node_name(&name) => Some(name),
        Some(name) => {
            c.error(
                "queue.node",
                format_args!(
                    "{name:?} is not a node name (use 1 to {NODE_MAX} letters, digits, '.', '-' or '_', e.g. node = \"relay-1\")"
                ),
            );
            None
        }
        None => {
            c.error(
                "queue.node",
                "is not set and the hostname cannot be read (set a name for this node, e.g. node = \"relay-1\")",
            );
            None
        }
    };
    let node_heartbeat = c.duration(
        "queue.node_heartbeat",
        &raw.node_heartbeat,
        DEFAULT_NODE_HEARTBEAT,
        Duration::from_millis(100),
    );
    let retry_after: Vec<Duration> = retry_after.into_iter().collect::<Option<_>>()?;
    Some(QueueConfig {
        node: node?,
        node_heartbeat: node_heartbeat?,
        retry_after: (!retry_after.is_empty()).then_some(retry_after)?,
        max_age: max_age?,
        lease: lease?,
        batch: batch?,
    })
}

/// 1 to [`NODE_MAX`] of `[A-Za-z0-9._-]`.
fn is_node_name(name: &str) -> bool {
    (1..=NODE_MAX).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// This machine's hostname (`gethostname(2)`), if it is readable text.
fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at
    // most that many bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = std::str::from_utf8(&buf[..end]).ok()?.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use crate::config::testing::*;

    #[test]
    fn the_node_name_defaults_to_the_hostname_and_is_checked() {
        let config = parse(&minimal()).expect("valid");
        assert_eq!(Some(config.queue.node.clone()), super::hostname());
        assert_eq!(
            config.queue.node_heartbeat,
            std::time::Duration::from_secs(5)
        );
        let with = |node: &str| format!("{}\n[queue]\nnode = {node:?}\n", minimal());
        assert_eq!(
            parse(&with("relay-1.eu")).expect("valid").queue.node,
            "relay-1.eu"
        );
        single_error(
            &with("relay 1"),
            "consent-relay.toml: queue.node: \"relay 1\" is not a node name (use 1 to 64 letters, digits, '.', '-' or '_', e.g. node = \"relay-1\")",
        );
        single_error(
            &with(""),
            "consent-relay.toml: queue.node: \"\" is not a node name (use 1 to 64 letters, digits, '.', '-' or '_', e.g. node = \"relay-1\")",
        );
    }
}
