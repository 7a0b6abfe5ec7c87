//! The limits one HTTP service applies to its connections, their config
//! keys and defaults.
//!
//! The keys are Confluent rest-utils' where it has one (`idle.timeout.ms`,
//! `server.connection.limit`, `shutdown.graceful.ms`), so a
//! `schema-registry.properties` written for Confluent's registry keeps its
//! meaning; `header.read.timeout.ms` is Tributary's own (Jetty's idle timeout
//! covers request heads there, which a client can defeat by trickling bytes).
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `header.read.timeout.ms` | 30000 | a request head must arrive within this, counted from its first byte; 0 or less: no limit |
//! | `idle.timeout.ms` | 30000 | a connection making no progress this long is closed; 0 or less: no limit |
//! | `server.connection.limit` | 1000 | connections served at once; the next waits to be accepted; 0 or less: no limit |
//! | `shutdown.graceful.ms` | 5000 | on shutdown, how long requests in flight may take to finish |
//! | `max.request.header.size` | 8192 | largest request head (request line and headers), in bytes; at least 1024 |

use std::time::Duration;

/// `header.read.timeout.ms`.
pub const HEADER_READ_TIMEOUT_MS: &str = "header.read.timeout.ms";
/// `idle.timeout.ms` (Confluent rest-utils).
pub const IDLE_TIMEOUT_MS: &str = "idle.timeout.ms";
/// `server.connection.limit` (Confluent rest-utils).
pub const SERVER_CONNECTION_LIMIT: &str = "server.connection.limit";
/// `shutdown.graceful.ms` (Confluent rest-utils).
pub const SHUTDOWN_GRACEFUL_MS: &str = "shutdown.graceful.ms";
/// `max.request.header.size` (Confluent rest-utils).
pub const MAX_REQUEST_HEADER_SIZE: &str = "max.request.header.size";

/// Default of `header.read.timeout.ms`, in milliseconds.
pub const DEFAULT_HEADER_READ_TIMEOUT_MS: u64 = 30_000;
/// Default of `idle.timeout.ms`, in milliseconds (rest-utils' default).
pub const DEFAULT_IDLE_TIMEOUT_MS: u64 = 30_000;
/// Default of `server.connection.limit` (rest-utils has none by default).
pub const DEFAULT_SERVER_CONNECTION_LIMIT: u64 = 1_000;
/// Default of `shutdown.graceful.ms`, in milliseconds (rest-utils' default).
pub const DEFAULT_SHUTDOWN_GRACEFUL_MS: u64 = 5_000;
/// Default of `max.request.header.size`, in bytes (rest-utils' default).
pub const DEFAULT_MAX_REQUEST_HEADER_SIZE: usize = 8_192;
/// The smallest `max.request.header.size` taken; smaller values are raised to it.
pub const MIN_REQUEST_HEADER_SIZE: usize = 1_024;

/// The limits of one HTTP service's connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest time from the first byte of a request head to its end; `None`: no limit.
    pub header_read_timeout: Option<Duration>,
    /// Longest time a connection may make no progress (waiting for a
    /// request with nothing received, or, during a request, waiting for body
    /// bytes that do not come or for the client to read the response);
    /// `None`: no limit.
    pub idle_timeout: Option<Duration>,
    /// Connections served at once; `None`: no limit.
    pub max_connections: Option<usize>,
    /// On shutdown, how long requests in flight may take before their
    /// connections are closed anyway.
    pub shutdown_grace: Duration,
    /// Largest request head, in bytes: what a connection buffers while its
    /// head arrives. A larger head gets 431 and the connection is closed.
    pub max_header_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            header_read_timeout: Some(Duration::from_millis(DEFAULT_HEADER_READ_TIMEOUT_MS)),
            idle_timeout: Some(Duration::from_millis(DEFAULT_IDLE_TIMEOUT_MS)),
            max_connections: Some(DEFAULT_SERVER_CONNECTION_LIMIT as usize),
            shutdown_grace: Duration::from_millis(DEFAULT_SHUTDOWN_GRACEFUL_MS),
            max_header_bytes: DEFAULT_MAX_REQUEST_HEADER_SIZE,
        }
    }
}

/// A timeout in milliseconds as the keys take it: 0 or less is no limit.
pub fn timeout_from_ms(ms: i64) -> Option<Duration> {
    u64::try_from(ms).ok().filter(|&ms| ms > 0).map(Duration::from_millis)
}

/// A connection count as `server.connection.limit` takes it: 0 or less is no limit.
pub fn connections_from(count: i64) -> Option<usize> {
    usize::try_from(count).ok().filter(|&n| n > 0)
}

/// A head size as `max.request.header.size` takes it: at least [`MIN_REQUEST_HEADER_SIZE`].
pub fn header_bytes_from(bytes: i64) -> usize {
    usize::try_from(bytes).unwrap_or(0).max(MIN_REQUEST_HEADER_SIZE)
}

impl Limits {
    /// Whether `key` is one of these limits' keys.
    pub fn is_key(key: &str) -> bool {
        matches!(
            key,
            HEADER_READ_TIMEOUT_MS
                | IDLE_TIMEOUT_MS
                | SERVER_CONNECTION_LIMIT
                | SHUTDOWN_GRACEFUL_MS
                | MAX_REQUEST_HEADER_SIZE
        )
    }

    /// Sets the limit named by `key` from its text value. `Ok(false)` when
    /// `key` is not one of these limits' keys; an error names the key.
    pub fn set(&mut self, key: &str, value: &str) -> Result<bool, String> {
        if !Limits::is_key(key) {
            return Ok(false);
        }
        let value = value.trim();
        let number: i64 = value.parse().map_err(|_| format!("{key}={value:?}: not a whole number"))?;
        match key {
            HEADER_READ_TIMEOUT_MS => self.header_read_timeout = timeout_from_ms(number),
            IDLE_TIMEOUT_MS => self.idle_timeout = timeout_from_ms(number),
            SERVER_CONNECTION_LIMIT => self.max_connections = connections_from(number),
            MAX_REQUEST_HEADER_SIZE => self.max_header_bytes = header_bytes_from(number),
            _ => {
                let ms = u64::try_from(number).map_err(|_| format!("{key}={value:?}: must not be negative"))?;
                self.shutdown_grace = Duration::from_millis(ms);
            }
        }
        Ok(true)
    }

    /// The shortest timeout set, if any: how often a connection's state
    /// must be looked at so that no deadline is missed.
    pub(crate) fn shortest_timeout(&self) -> Option<Duration> {
        match (self.header_read_timeout, self.idle_timeout) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_set_limits_and_zero_or_less_means_none() {
        let mut l = Limits::default();
        assert_eq!(l.header_read_timeout, Some(Duration::from_secs(30)));
        assert_eq!(l.max_connections, Some(1000));
        assert_eq!(l.set("idle.timeout.ms", " 1500 "), Ok(true));
        assert_eq!(l.idle_timeout, Some(Duration::from_millis(1500)));
        assert_eq!(l.set("header.read.timeout.ms", "0"), Ok(true));
        assert_eq!(l.header_read_timeout, None);
        assert_eq!(l.set("server.connection.limit", "-1"), Ok(true));
        assert_eq!(l.max_connections, None);
        assert_eq!(l.set("server.connection.limit", "3"), Ok(true));
        assert_eq!(l.max_connections, Some(3));
        assert_eq!(l.set("shutdown.graceful.ms", "250"), Ok(true));
        assert_eq!(l.shutdown_grace, Duration::from_millis(250));
        assert_eq!(l.shortest_timeout(), Some(Duration::from_millis(1500)));
        assert_eq!(l.set("max.request.header.size", "16384"), Ok(true));
        assert_eq!(l.max_header_bytes, 16384);
        assert_eq!(l.set("max.request.header.size", "10"), Ok(true));
        assert_eq!(l.max_header_bytes, MIN_REQUEST_HEADER_SIZE);
        assert_eq!(l.set("kafkastore.topic", "x"), Ok(false));
        let err = l.set("idle.timeout.ms", "soon").expect_err("not a number");
        assert!(err.contains("idle.timeout.ms"), "{err}");
        assert!(l.set("shutdown.graceful.ms", "-5").is_err());
    }
}
