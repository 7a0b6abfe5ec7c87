//! Replication throttles, as Kafka's `ReplicationQuotaManager` applies them
//! to reassignment traffic.
//!
//! - Broker configs `leader.replication.throttled.rate` and
//!   `follower.replication.throttled.rate` (bytes/s, dynamic) cap the
//!   replication traffic of the throttled replicas, each measured over
//!   `replication.quota.window.num` samples of
//!   `replication.quota.window.size.seconds`.
//! - Topic configs `leader.replication.throttled.replicas` and
//!   `follower.replication.throttled.replicas` (`partition:broker,...` or
//!   `*`) say which replicas are throttled.
//! - **Leader side**: a follower fetch for a partition whose topic lists
//!   (partition, that follower) gets no records while the leader's rate is
//!   above its limit; the bytes it does get are recorded.
//! - **Follower side**: a follower does not fetch a partition whose topic
//!   lists (partition, this broker) while its rate is above its limit; the
//!   bytes it fetches are recorded.
//!
//! The rate is Kafka's sampled rate: the bytes of the samples in the window
//! over the time they span, counted as at least `samples - 1` full windows
//! (so a new throttle does not see a burst as a huge rate). A throttle is
//! checked before a fetch and charged after it, so one fetch may pass the
//! limit; the next waits until the rate is back below it.

use std::collections::VecDeque;
use std::sync::Mutex;

use tributary_config::BrokerLayers;

/// Broker config: the leader-side limit.
pub const LEADER_RATE: &str = "leader.replication.throttled.rate";
/// Broker config: the follower-side limit.
pub const FOLLOWER_RATE: &str = "follower.replication.throttled.rate";
/// Topic config: replicas throttled on the leader side.
pub const LEADER_REPLICAS: &str = "leader.replication.throttled.replicas";
/// Topic config: replicas throttled on the follower side.
pub const FOLLOWER_REPLICAS: &str = "follower.replication.throttled.replicas";

/// The samples a rate is measured over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaWindow {
    /// Number of samples kept.
    pub samples: u32,
    /// Length of one sample.
    pub size_ms: u64,
}

impl QuotaWindow {
    /// The window the broker's configs set.
    pub fn of(layers: &BrokerLayers) -> QuotaWindow {
        let int = |key: &str, default: u64| {
            layers.broker_value(key).and_then(|v| v.value).and_then(|v| v.parse::<u64>().ok()).unwrap_or(default)
        };
        QuotaWindow {
            samples: u32::try_from(int("replication.quota.window.num", 11)).unwrap_or(11).max(1),
            size_ms: int("replication.quota.window.size.seconds", 1).max(1).saturating_mul(1000),
        }
    }
}

/// One side's limit in force: bytes per second and the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    /// Bytes per second.
    pub bytes_per_second: u64,
    /// The window it is measured over.
    pub window: QuotaWindow,
}

impl Throttle {
    /// The limit broker config `key` sets, `None` when unlimited (Kafka's default `Long.MAX_VALUE`).
    pub fn of(layers: &BrokerLayers, key: &str) -> Option<Throttle> {
        let rate = layers.broker_value(key).and_then(|v| v.value).and_then(|v| v.parse::<i64>().ok())?;
        if rate == i64::MAX || rate < 0 {
            return None;
        }
        Some(Throttle { bytes_per_second: rate as u64, window: QuotaWindow::of(layers) })
    }
}

/// One side's measured replication traffic.
#[derive(Debug, Default)]
pub struct ReplicationQuota {
    /// (sample start, bytes), oldest first.
    samples: Mutex<VecDeque<(u64, u64)>>,
}

impl ReplicationQuota {
    fn samples(&self) -> std::sync::MutexGuard<'_, VecDeque<(u64, u64)>> {
        self.samples.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts `bytes` sent or fetched at `now_ms`.
    pub fn record(&self, now_ms: u64, bytes: u64, window: QuotaWindow) {
        let mut samples = self.samples();
        expire(&mut samples, now_ms, window);
        let start = now_ms - now_ms % window.size_ms;
        match samples.back_mut() {
            Some((s, b)) if *s == start => *b = b.saturating_add(bytes),
            _ => samples.push_back((start, bytes)),
        }
        while samples.len() > window.samples as usize {
            samples.pop_front();
        }
    }

    /// The measured rate at `now_ms`, bytes per second.
    pub fn rate(&self, now_ms: u64, window: QuotaWindow) -> f64 {
        let mut samples = self.samples();
        expire(&mut samples, now_ms, window);
        let Some(&(oldest, _)) = samples.front() else { return 0.0 };
        let total: u64 = samples.iter().map(|(_, b)| b).sum();
        let mut elapsed = now_ms.saturating_sub(oldest);
        let full = elapsed / window.size_ms;
        let min_full = u64::from(window.samples.saturating_sub(1));
        if full < min_full {
            elapsed += (min_full - full) * window.size_ms;
        }
        total as f64 * 1000.0 / elapsed.max(1) as f64
    }

    /// Whether the rate is above `throttle`'s limit (never without one).
    pub fn is_exceeded(&self, now_ms: u64, throttle: Option<Throttle>) -> bool {
        throttle.is_some_and(|t| self.rate(now_ms, t.window) > t.bytes_per_second as f64)
    }
}

fn expire(samples: &mut VecDeque<(u64, u64)>, now_ms: u64, window: QuotaWindow) {
    let horizon = now_ms.saturating_sub(u64::from(window.samples) * window.size_ms);
    while samples.front().is_some_and(|&(start, _)| start + window.size_ms <= horizon) {
        samples.pop_front();
    }
}

/// The leader-side and follower-side traffic of this broker.
#[derive(Debug, Default)]
pub struct ReplicationQuotas {
    /// Bytes this broker sent, as leader, to throttled followers.
    pub leader: ReplicationQuota,
    /// Bytes this broker fetched, as follower, for throttled partitions.
    pub follower: ReplicationQuota,
}

/// Whether a throttled-replicas list (`partition:broker,...` or `*`) names
/// `broker`'s replica of `partition`.
pub fn lists_replica(list: &str, partition: i32, broker: i32) -> bool {
    list.split(',').map(str::trim).any(|entry| {
        entry == "*"
            || entry
                .split_once(':')
                .is_some_and(|(p, b)| p.trim().parse::<i32>() == Ok(partition) && b.trim().parse::<i32>() == Ok(broker))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: QuotaWindow = QuotaWindow { samples: 11, size_ms: 1000 };

    #[test]
    fn throttled_replica_lists_name_partition_broker_pairs_or_everything() {
        assert!(lists_replica("0:1,1:2", 1, 2));
        assert!(lists_replica(" 0:1 , 1:2 ", 0, 1));
        assert!(!lists_replica("0:1,1:2", 0, 2));
        assert!(lists_replica("*", 7, 9));
        assert!(!lists_replica("", 0, 1));
    }

    #[test]
    fn a_rate_spans_at_least_the_full_window_and_forgets_old_samples() {
        let q = ReplicationQuota::default();
        q.record(10_000, 10_000, WINDOW);
        // One sample: counted over 10 full windows, not one.
        assert_eq!(q.rate(10_000, WINDOW), 1000.0);
        let limit = |rate| Some(Throttle { bytes_per_second: rate, window: WINDOW });
        assert!(q.is_exceeded(10_000, limit(999)));
        assert!(!q.is_exceeded(10_000, limit(1000)));
        assert!(!q.is_exceeded(10_000, None), "no throttle, never exceeded");
        // Later samples add up; the window slides past the first.
        q.record(15_000, 5_000, WINDOW);
        assert_eq!(q.rate(15_000, WINDOW), 1500.0);
        assert_eq!(q.rate(25_000, WINDOW), 500.0, "the first sample left the window");
        assert_eq!(q.rate(40_000, WINDOW), 0.0);
    }

    #[test]
    fn an_unlimited_or_unset_rate_is_no_throttle() {
        let mut layers = BrokerLayers::default();
        assert_eq!(Throttle::of(&layers, LEADER_RATE), None, "Kafka's default is Long.MAX_VALUE");
        layers.dynamic_broker.insert(LEADER_RATE.to_string(), "2048".to_string());
        assert_eq!(Throttle::of(&layers, LEADER_RATE), Some(Throttle { bytes_per_second: 2048, window: WINDOW }));
        layers.dynamic_default.insert(FOLLOWER_RATE.to_string(), "10".to_string());
        assert_eq!(Throttle::of(&layers, FOLLOWER_RATE).map(|t| t.bytes_per_second), Some(10));
    }
}
