//! The door every request goes through: from this machine, not from a web page, naming
//! this machine, with the token, and not too often.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, Method};
use axum::middleware::Next;
use axum::response::Response;

use crate::{is_loopback, ApiError, AppState};

/// Checks a request before any handler sees it.
pub(crate) async fn check(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    admit(&state, peer, request.method(), request.headers())?;
    Ok(next.run(request).await)
}

/// The checks of [`check`], in order: the cheapest and the ones that say the least first.
fn admit(
    state: &AppState,
    peer: SocketAddr,
    method: &Method,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    if !is_loopback(peer.ip()) {
        return Err(ApiError::forbidden(
            "not_local",
            "Sotto's API only answers programs on this machine",
        ));
    }
    if let Some(host) = headers.get(header::HOST) {
        let host = host.to_str().unwrap_or_default();
        if !is_loopback_host(host) {
            // A web page that made its own name point here (DNS rebinding).
            tracing::warn!("API request for host {host:?} refused");
            return Err(ApiError::forbidden(
                "host_not_allowed",
                "Requests must be made to 127.0.0.1, [::1] or localhost",
            ));
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or_default();
        if !is_loopback_origin(origin) {
            tracing::warn!("API request from the web page {origin:?} refused");
            return Err(ApiError::forbidden(
                "origin_not_allowed",
                "Web pages may not use Sotto's API: only programs on this machine",
            ));
        }
    }
    if method == Method::OPTIONS {
        // No cross-origin use: a preflight is never granted.
        return Err(ApiError::forbidden(
            "cors_closed",
            "Sotto's API does not answer cross-origin requests",
        ));
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(token) = token else {
        return Err(ApiError::unauthorized(
            "No API token: send `Authorization: Bearer <token>` with the token `sotto serve --print-token` prints (kept in ~/.config/sotto/api-token)",
        ));
    };
    if !same_secret(token.as_bytes(), state.config.token.as_bytes()) {
        return Err(ApiError::unauthorized(
            "Wrong API token: `sotto serve --print-token` prints the current one (it changes when regenerated)",
        ));
    }
    state
        .rate
        .admit(token, Instant::now())
        .map_err(ApiError::rate_limited)
}

/// Compares two secrets in a time that does not depend on where they differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `127.0.0.1`, `localhost` or `[::1]`, with or without a port.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<IpAddr>().is_ok_and(is_loopback)
}

/// An origin (`scheme://host[:port]`) on this machine.
fn is_loopback_origin(origin: &str) -> bool {
    origin
        .split_once("://")
        .is_some_and(|(scheme, host)| matches!(scheme, "http" | "https") && is_loopback_host(host))
}

/// A token bucket per client token: `burst` requests at once, then `rate` per second.
pub(crate) struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

struct Bucket {
    /// Requests that may be made now.
    tokens: f64,
    /// When `tokens` was counted.
    at: Instant,
}

impl RateLimiter {
    pub(crate) fn new(rate: f64, burst: u32) -> RateLimiter {
        RateLimiter {
            rate: rate.max(0.001),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::default(),
        }
    }

    /// Takes one request from `key`'s bucket, or says how long until one is there.
    pub(crate) fn admit(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let bucket = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / self.rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_of_this_machine_pass() {
        for host in [
            "127.0.0.1",
            "127.0.0.1:7377",
            "localhost:80",
            "LOCALHOST",
            "[::1]:7377",
            "[::1]",
            "127.0.0.2:1",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "evil.example:7377",
            "192.168.1.4",
            "[::2]:1",
            "",
            "localhost.evil.com",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
        assert!(is_loopback_origin("http://localhost:3000"));
        assert!(is_loopback_origin("https://[::1]"));
        for origin in [
            "null",
            "https://example.com",
            "file://",
            "http://10.0.0.1:7377",
        ] {
            assert!(!is_loopback_origin(origin), "{origin}");
        }
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"abcd"));
        assert!(!same_secret(b"", b"a"));
    }

    #[test]
    fn the_bucket_lets_a_burst_through_then_the_rate() {
        let limiter = RateLimiter::new(10.0, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.admit("k", t0).is_ok());
        }
        let wait = limiter.admit("k", t0).unwrap_err();
        assert!(
            (Duration::from_millis(99)..=Duration::from_millis(101)).contains(&wait),
            "{wait:?}"
        );
        // Another token has its own bucket.
        assert!(limiter.admit("other", t0).is_ok());
        // A tenth of a second later, one more.
        let t1 = t0 + Duration::from_millis(100);
        assert!(limiter.admit("k", t1).is_ok());
        assert!(limiter.admit("k", t1).is_err());
        // Long after, the bucket is full again, and no fuller.
        let t2 = t1 + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(limiter.admit("k", t2).is_ok());
        }
        assert!(limiter.admit("k", t2).is_err());
    }
}
