//! Per-IP rate limit on the routes a stranger can reach with a token or a
//! guess: the link pages (`/u`, `/p`, `/o`) and the admin API (`/api`).
//! `/healthz`, `/metrics` and anything else are not counted.
//!
//! A keyed GCRA limiter (`governor`): each client address gets
//! `[http] rate_limit` requests a minute with bursts of
//! `rate_limit_burst`; beyond that the answer is `429` with `Retry-After`
//! (seconds), before any handler runs, so enumerating tokens or API
//! tokens costs the client time and the relay nothing. The key is the TCP
//! peer (IPv4-mapped IPv6 as IPv4, IPv6 by its /64: [`crate::net::client_key`]);
//! `X-Forwarded-For` is not trusted.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::http::header::{self, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::HttpConfig;

/// Path prefixes that are limited.
const LIMITED: [&str; 4] = ["/u/", "/p/", "/o/", "/api/"];
/// Forget idle addresses every this many requests (bounds the memory).
const SWEEP_EVERY: u64 = 4096;

/// The shared limiter; `None` inside when `rate_limit = 0`.
#[derive(Clone)]
pub struct Limiter(Option<Arc<Inner>>);

struct Inner {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    seen: AtomicU64,
}

impl Limiter {
    pub fn new(config: &HttpConfig) -> Limiter {
        let Some(per_minute) = NonZeroU32::new(config.rate_limit) else {
            return Limiter(None);
        };
        let burst = NonZeroU32::new(config.rate_limit_burst).unwrap_or(NonZeroU32::MIN);
        Limiter(Some(Arc::new(Inner {
            limiter: RateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(burst)),
            seen: AtomicU64::new(0),
        })))
    }
}

/// Whether `path` is counted.
fn limited(path: &str) -> bool {
    LIMITED.iter().any(|p| path.starts_with(p)) || path == "/api"
}

/// The middleware: `429` with `Retry-After` once an address is over its
/// quota on a limited route.
pub async fn check(State(limiter): State<Limiter>, req: Request, next: Next) -> Response {
    let Some(inner) = limiter.0.as_ref() else {
        return next.run(req).await;
    };
    if !limited(req.uri().path()) {
        return next.run(req).await;
    }
    let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>() else {
        return next.run(req).await;
    };
    let ip = peer.ip().to_canonical();
    if inner.seen.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
        inner.limiter.retain_recent();
        inner.limiter.shrink_to_fit();
    }
    match inner.limiter.check_key(&crate::net::client_key(ip)) {
        Ok(()) => next.run(req).await,
        Err(not_until) => {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            tracing::info!(peer = %ip, retry_after = seconds, "http rate limit");
            let mut res = StatusCode::TOO_MANY_REQUESTS.into_response();
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
            res
        }
    }
}

#[cfg(test)]
mod tests {
    use super::limited;

    #[test]
    fn only_the_link_and_api_routes_are_limited() {
        for p in ["/u/x", "/p/x", "/o/x", "/api/v1/campaigns", "/api"] {
            assert!(limited(p), "{p}");
        }
        for p in ["/healthz", "/metrics", "/", "/up/x", "/apix"] {
            assert!(!limited(p), "{p}");
        }
    }
}
