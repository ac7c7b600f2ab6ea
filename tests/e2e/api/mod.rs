//! The admin API under `/api/v1` over real HTTP: its routes, and
//! `Idempotency-Key` on consent posts.

mod disk_full;
mod idempotency;
mod routes;
