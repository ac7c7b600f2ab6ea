//! consent-relay: an SMTP relay that enforces consent.
//!
//! Data flows one way: `smtp` receives, its `intake` reads the campaign and
//! asks `consent::policy` for each recipient, `store` commits message,
//! decisions and deliveries in one transaction, and `delivery` sends each
//! recipient's copy upstream, rendered by `rewrite` with links signed by
//! `token`. `web` serves those links (one-click unsubscribe and the pages)
//! and changes consent through the same store; `cli` reads and changes it
//! too; `rights` holds the duties towards the people (export, erasure,
//! retention, the register, the double opt-in mail). `feedback` reads the
//! bounces and complaints that come back.
//!
//! The layers, from the pure core out: `consent`, `token`, `texts`, `mail`,
//! `time`, `net` and `rewrite` are pure (values in, values out; no store,
//! no sockets); `config` turns the TOML file into types; `store` is the
//! durable state; `feedback` reads reports (its `report` and `classify`
//! are pure; its rules will use the store); `smtp`, `delivery`, `web` and
//! `webhook` are the runtime edges; `rights` and `cli` sit on top; `server` wires `serve` together.

// The pure core.
pub mod consent;
pub mod mail;
pub mod net;
pub mod rewrite;
pub mod texts;
pub mod time;
pub mod token;

// Configuration and durable state.
pub mod config;
pub mod store;

// What comes back: bounces and complaints.
pub mod feedback;

// The runtime edges.
pub mod delivery;
pub mod metrics;
pub mod server;
pub mod shutdown;
pub mod smtp;
pub mod web;
pub mod webhook;

// Duties towards the people, and the command line.
pub mod cli;
pub mod rights;

#[cfg(test)]
mod layers;
