//! Mail-level helpers that are pure: they read message bytes and names
//! and decide, with no store, network or key. Used by config and delivery
//! alike, so that neither needs the other for them.

pub mod align;
