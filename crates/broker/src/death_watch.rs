//! Evidence that a broker's process is gone, for the active controller.
//!
//! Kafka's controller learns that a broker died only when its heartbeats
//! stop for `broker.session.timeout.ms` (9 s by default), and the broker's
//! partitions have no leader that long. A process that dies has its sockets
//! closed by its kernel, though: its connections to the controller listener
//! close at once, and a new connection to its listener is refused. The
//! active controller checks a broker's listener when one of its connections
//! to the controller closed or its heartbeat is overdue; a refused
//! connection, later than the broker's last heartbeat, is proof the process
//! that heartbeated is not there, and the controller moves its leaderships
//! and fences it at once.
//!
//! No answer is no evidence: a paused process's kernel still accepts
//! connections, and a partitioned one's packets are dropped. Those wait for
//! the session timeout, as in Kafka. A broker that heartbeats after the
//! refusal (restarted on the same port) is alive again.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::net::TcpSocket;

/// How long a check waits for a connection: a refusal comes back at once;
/// anything slower is no evidence either way.
pub(crate) const CHECK_TIMEOUT: Duration = Duration::from_millis(300);

/// Brokers whose listener refused a connection, and when.
#[derive(Debug, Default)]
pub(crate) struct DeathWatch {
    refused_at: BTreeMap<i32, Instant>,
}

impl DeathWatch {
    /// Records that `broker`'s listener refused a connection at `at`; the
    /// first refusal since its last heartbeat is kept.
    pub(crate) fn record_refusal(&mut self, broker: i32, at: Instant) {
        self.refused_at.entry(broker).or_insert(at);
    }

    /// Whether `broker` is known to be gone: refused after its last
    /// heartbeat (`None`: never heartbeated to this controller).
    pub(crate) fn is_gone(&self, broker: i32, last_heartbeat: Option<Instant>) -> bool {
        self.refused_at.get(&broker).is_some_and(|refused| last_heartbeat.is_none_or(|hb| *refused > hb))
    }

    /// When `broker`'s listener last refused a connection.
    pub(crate) fn refused_at(&self, broker: i32) -> Option<Instant> {
        self.refused_at.get(&broker).copied()
    }

    /// Forgets evidence the broker's later heartbeats made stale, and
    /// brokers no longer registered.
    pub(crate) fn prune(&mut self, liveness: &BTreeMap<i32, Instant>, registered: impl Fn(i32) -> bool) {
        self.refused_at
            .retain(|broker, refused| registered(*broker) && liveness.get(broker).is_none_or(|hb| *refused > *hb));
    }
}

/// What a connection to a broker's listener said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// Accepted: a process listens there (it may still be paused).
    Accepted,
    /// Refused: nothing listens there.
    Refused,
    /// No answer in time, or another error: no evidence.
    Unknown,
}

/// Opens (and closes) a connection to `address` from `local_host`.
pub(crate) async fn check(address: &str, local_host: Option<IpAddr>) -> Check {
    let Ok(target) = address.parse::<SocketAddr>() else {
        return match tokio::time::timeout(CHECK_TIMEOUT, tokio::net::lookup_host(address.to_string())).await {
            Ok(Ok(mut addrs)) => match addrs.next() {
                Some(target) => connect(target, local_host).await,
                None => Check::Unknown,
            },
            _ => Check::Unknown,
        };
    };
    connect(target, local_host).await
}

async fn connect(target: SocketAddr, local_host: Option<IpAddr>) -> Check {
    let socket = match if target.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() } {
        Ok(s) => s,
        Err(_) => return Check::Unknown,
    };
    if let Some(host) = local_host.filter(|h| h.is_ipv4() == target.is_ipv4() && !h.is_unspecified())
        && socket.bind(SocketAddr::new(host, 0)).is_err()
    {
        return Check::Unknown;
    }
    match tokio::time::timeout(CHECK_TIMEOUT, socket.connect(target)).await {
        Ok(Ok(_stream)) => Check::Accepted,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Check::Refused,
        _ => Check::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_counts_only_after_the_last_heartbeat() {
        let mut w = DeathWatch::default();
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_millis(10);
        let t2 = t0 + Duration::from_millis(20);
        assert!(!w.is_gone(1, Some(t0)), "no refusal, no evidence");
        w.record_refusal(1, t1);
        assert!(w.is_gone(1, Some(t0)), "refused after the heartbeat");
        assert!(w.is_gone(1, None), "refused, never heartbeated here");
        assert!(!w.is_gone(1, Some(t2)), "heartbeated after the refusal: restarted");
        assert!(!w.is_gone(2, None));
        w.record_refusal(1, t2);
        assert_eq!(w.refused_at(1), Some(t1), "the first refusal is kept");
    }

    #[test]
    fn stale_and_unregistered_evidence_is_pruned() {
        let mut w = DeathWatch::default();
        let t0 = Instant::now();
        w.record_refusal(1, t0);
        w.record_refusal(2, t0);
        w.record_refusal(3, t0);
        let later = t0 + Duration::from_millis(5);
        let liveness = BTreeMap::from([(1, later)]);
        w.prune(&liveness, |b| b != 3);
        assert!(!w.is_gone(1, None), "1 heartbeated after the refusal");
        assert!(w.is_gone(2, None), "2 did not");
        assert!(!w.is_gone(3, None), "3 is no longer registered");
    }

    #[tokio::test]
    async fn a_closed_port_is_refused_and_a_listening_one_accepted() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a free port");
        let open = listener.local_addr().expect("bound address").to_string();
        assert_eq!(check(&open, None).await, Check::Accepted);
        drop(listener);
        assert_eq!(check(&open, None).await, Check::Refused);
    }
}
