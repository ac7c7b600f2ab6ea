//! The admin API under `/api/v1` over real HTTP: its routes, the decision
//! log's filters and order, and `Idempotency-Key` on consent posts.

mod decisions;
mod disk_full;
mod idempotency;
mod routes;
