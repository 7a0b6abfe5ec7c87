//! Rate-limited warnings for HTTP limits that are hit: the first hit of a
//! limit is logged at once with the peer and what the client saw; later hits
//! within [`REPORT_INTERVAL`] are counted and the count goes out with the
//! next warning, so a flood of slow clients cannot flood the log.
//!
//! Lines are logged with the service's name as their target
//! (`schema-registry`, `rest-proxy`), which is how the platform's log tags
//! each line with the service that wrote it.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::activity::Stall;
use crate::limits::{HEADER_READ_TIMEOUT_MS, IDLE_TIMEOUT_MS, MAX_REQUEST_HEADER_SIZE, SERVER_CONNECTION_LIMIT};

/// At most one warning per limit in this interval.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(10);

/// A limit a connection can hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `header.read.timeout.ms`: the connection is closed.
    HeaderReadTimeout,
    /// `idle.timeout.ms`: the connection is closed.
    IdleTimeout,
    /// `server.connection.limit`: accepting waits for a connection to close.
    ConnectionLimit,
    /// `max.request.header.size`: 431 and the connection is closed.
    HeaderSize,
    /// The process cannot take another connection (open files, memory):
    /// accepting pauses briefly.
    Accept,
}

const LIMITS: usize = 5;

impl Limit {
    /// The config key, or what stands for it.
    pub fn key(self) -> &'static str {
        match self {
            Limit::HeaderReadTimeout => HEADER_READ_TIMEOUT_MS,
            Limit::IdleTimeout => IDLE_TIMEOUT_MS,
            Limit::ConnectionLimit => SERVER_CONNECTION_LIMIT,
            Limit::HeaderSize => MAX_REQUEST_HEADER_SIZE,
            Limit::Accept => "accept",
        }
    }

    /// The limit a timeout belongs to, and what the client saw.
    pub fn of_stall(stall: Stall) -> (Limit, &'static str) {
        match stall {
            Stall::Head => (Limit::HeaderReadTimeout, "closed: the request head did not arrive in time"),
            Stall::Idle => (Limit::IdleTimeout, "closed: nothing was received"),
            Stall::Body => (Limit::IdleTimeout, "closed: the request body stopped arriving"),
            Stall::Write => (Limit::IdleTimeout, "closed: the client did not read the response"),
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

#[derive(Debug, Default)]
struct Counter {
    last_report: Option<Instant>,
    total: u64,
    unreported: u64,
}

impl Counter {
    /// Counts a hit at `now`; `(total, hits since the last warning)` when
    /// this hit should be logged.
    fn hit(&mut self, now: Instant) -> Option<(u64, u64)> {
        self.total += 1;
        self.unreported += 1;
        let due = self.last_report.is_none_or(|last| now.duration_since(last) >= REPORT_INTERVAL);
        if !due {
            return None;
        }
        self.last_report = Some(now);
        Some((self.total, std::mem::take(&mut self.unreported)))
    }
}

/// Logs an event at warning level with the service's name as its target.
macro_rules! warn_as {
    ($service:expr, $($rest:tt)+) => {
        match $service {
            "schema-registry" => tracing::warn!(target: "schema-registry", $($rest)+),
            "rest-proxy" => tracing::warn!(target: "rest-proxy", $($rest)+),
            _ => tracing::warn!($($rest)+),
        }
    };
}

/// The hit counters of one service's limits.
#[derive(Debug)]
pub struct Reports {
    service: &'static str,
    counters: [Mutex<Counter>; LIMITS],
}

impl Reports {
    /// Counters for `service` (its name in the log).
    pub fn new(service: &'static str) -> Reports {
        Reports { service, counters: Default::default() }
    }

    /// Counts a hit of `limit` (by `peer`, when one is known) and logs it
    /// unless one was logged within [`REPORT_INTERVAL`]. `outcome` says what
    /// the client saw.
    pub fn hit(&self, limit: Limit, peer: Option<SocketAddr>, outcome: &str) {
        let logged = self.counters[limit.index()].lock().unwrap_or_else(|p| p.into_inner()).hit(Instant::now());
        let Some((total, since_last)) = logged else { return };
        let peer = peer.map_or_else(|| "-".to_string(), |p| p.to_string());
        warn_as!(
            self.service,
            limit = limit.key(),
            peer = %peer,
            hits_total = total,
            hits_since_last_warning = since_last,
            "HTTP connection limit reached: {outcome}"
        );
    }

    /// How often `limit` was hit.
    pub fn total(&self, limit: Limit) -> u64 {
        self.counters[limit.index()].lock().unwrap_or_else(|p| p.into_inner()).total
    }

    /// Logs an informational line about the server (not a limit).
    pub(crate) fn note(&self, message: &str) {
        match self.service {
            "schema-registry" => tracing::info!(target: "schema-registry", "{message}"),
            "rest-proxy" => tracing::info!(target: "rest-proxy", "{message}"),
            _ => tracing::info!("{message}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_hit_is_logged_then_counted_until_the_interval_passes() {
        let mut c = Counter::default();
        let t0 = Instant::now();
        assert_eq!(c.hit(t0), Some((1, 1)));
        assert_eq!(c.hit(t0 + Duration::from_secs(1)), None);
        assert_eq!(c.hit(t0 + Duration::from_secs(2)), None);
        assert_eq!(c.hit(t0 + REPORT_INTERVAL), Some((4, 3)), "the warning carries the hits it stood for");
    }

    #[test]
    fn limits_are_counted_apart() {
        let r = Reports::new("test");
        r.hit(Limit::IdleTimeout, None, "closed");
        r.hit(Limit::IdleTimeout, None, "closed");
        r.hit(Limit::ConnectionLimit, None, "waiting");
        assert_eq!((r.total(Limit::IdleTimeout), r.total(Limit::ConnectionLimit)), (2, 1));
        assert_eq!(r.total(Limit::HeaderReadTimeout), 0);
    }
}
