//! Delivery upstream: the queue (retries, bounces, late suppression,
//! shutdown), the queue's leases at the store level, TLS to the upstream,
//! and DKIM signatures checked by an independent verifier.

mod dkim;
mod leases;
mod queue;
mod upstream_tls;
