//! Rate-limited warnings for limits that are hit: the first hit of a limit is
//! logged at once with the peer and what the client saw; later hits within
//! [`REPORT_INTERVAL`] are counted and the count goes out with the next
//! warning, so a flood of rejected connections cannot flood the log.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most one warning per limit in this interval.
pub(crate) const REPORT_INTERVAL: Duration = Duration::from_secs(10);

/// A limit a connection can hit, named by its config key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limit {
    /// `max.connections`: accepting waits for a connection to close, or a
    /// connection is closed after the limit was lowered.
    MaxConnections,
    /// `max.connections.per.ip`: the connection is closed after accept.
    MaxConnectionsPerIp,
    /// `max.connection.creation.rate`: accepting waits.
    MaxConnectionCreationRate,
    /// `queued.max.request.bytes`: the connection stops reading for a while.
    QueuedMaxRequestBytes,
    /// `socket.request.max.bytes`: the connection is closed.
    SocketRequestMaxBytes,
    /// `connections.max.idle.ms` with a request half sent or a response
    /// not read: the connection is closed.
    ConnectionsMaxIdleMs,
}

const LIMITS: usize = 6;

impl Limit {
    /// The config key.
    pub(crate) fn key(self) -> &'static str {
        match self {
            Limit::MaxConnections => "max.connections",
            Limit::MaxConnectionsPerIp => "max.connections.per.ip",
            Limit::MaxConnectionCreationRate => "max.connection.creation.rate",
            Limit::QueuedMaxRequestBytes => "queued.max.request.bytes",
            Limit::SocketRequestMaxBytes => "socket.request.max.bytes",
            Limit::ConnectionsMaxIdleMs => "connections.max.idle.ms",
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
    /// Counts a hit at `now`; returns `(total, hits since the last warning)`
    /// when this hit should be logged.
    fn hit(&mut self, now: Instant) -> Option<(u64, u64)> {
        self.total += 1;
        self.unreported += 1;
        let due = self.last_report.is_none_or(|last| now.duration_since(last) >= REPORT_INTERVAL);
        if !due {
            return None;
        }
        self.last_report = Some(now);
        let since = std::mem::take(&mut self.unreported);
        Some((self.total, since))
    }
}

/// The hit counters of every limit.
#[derive(Debug, Default)]
pub(crate) struct LimitReports {
    counters: [Mutex<Counter>; LIMITS],
}

impl LimitReports {
    /// Counts a hit of `limit` by `peer` and logs it unless one was logged
    /// within [`REPORT_INTERVAL`]. `outcome` says what the client saw.
    pub(crate) fn hit(&self, limit: Limit, peer: SocketAddr, outcome: &str) {
        let logged = self.counters[limit.index()].lock().unwrap_or_else(|p| p.into_inner()).hit(Instant::now());
        if let Some((total, since_last)) = logged {
            tracing::warn!(
                limit = limit.key(),
                %peer,
                hits_total = total,
                hits_since_last_warning = since_last,
                "connection limit reached: {outcome}"
            );
        }
    }

    /// How often `limit` was hit since the broker started.
    #[cfg(test)]
    pub(crate) fn total(&self, limit: Limit) -> u64 {
        self.counters[limit.index()].lock().unwrap_or_else(|p| p.into_inner()).total
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
        assert_eq!(c.hit(t0 + REPORT_INTERVAL + Duration::from_millis(1)), None);
    }

    #[test]
    fn limits_are_counted_separately() {
        let r = LimitReports::default();
        let peer: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        r.hit(Limit::MaxConnectionsPerIp, peer, "closed");
        r.hit(Limit::MaxConnectionsPerIp, peer, "closed");
        r.hit(Limit::ConnectionsMaxIdleMs, peer, "closed");
        assert_eq!(r.total(Limit::MaxConnectionsPerIp), 2);
        assert_eq!(r.total(Limit::ConnectionsMaxIdleMs), 1);
        assert_eq!(r.total(Limit::MaxConnections), 0);
        assert_eq!(Limit::ConnectionsMaxIdleMs.index(), LIMITS - 1);
    }
}
