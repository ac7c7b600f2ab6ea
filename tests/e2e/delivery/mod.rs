//! Delivery upstream: the queue (retries, bounces, late suppression,
//! shutdown), the queue's leases at the store level, TLS to the upstream,
//! DKIM signatures checked by an independent verifier, and each copy's
//! return path and feedback headers.

mod dkim;
mod leases;
mod queue;
mod return_path;
mod upstream_tls;
