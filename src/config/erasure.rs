//! `[erasure]`: whether the person is told by mail that their data was
//! erased.

use serde::Deserialize;

/// `erasure.notify`.
pub const DEFAULT_NOTIFY: bool = false;

#[derive(Debug, Clone, Default)]
pub struct ErasureConfig {
    pub notify: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawErasure {
    notify: Option<bool>,
}

/// Nothing here can be wrong once the file has the right shape.
pub(super) fn check(raw: &RawErasure) -> ErasureConfig {
    ErasureConfig {
        notify: raw.notify.unwrap_or(DEFAULT_NOTIFY),
    }
}
