//! The quorum's timeouts: Kafka's `controller.quorum.*` settings, and what
//! each becomes in openraft 0.9's `Config` and in this crate's own election
//! driver (`election.rs`).
//!
//! | Kafka key | Kafka's meaning | here | default (Kafka's) |
//! |---|---|---|---|
//! | `controller.quorum.fetch.timeout.ms` (F) | a voter that has not fetched from the leader this long becomes a candidate | a voter that has not heard from the leader for a random time in [F/2, 2F/3) asks the leader whether it still leads a quorum (waiting at most F/3) and campaigns unless it does: at most F after the last contact | 600 (2000) |
//! | `controller.quorum.election.timeout.ms` (E) | a candidate (or a voter with no leader) waits a random time in [E, 2E) for the election to end | the same | 200 (1000) |
//! | `controller.quorum.election.backoff.max.ms` (B) | after a failed election, a random binary exponential backoff of at most B before the next | the same (50 ms × 2^attempts, capped at B) | 300 (1000) |
//! | `controller.quorum.retry.backoff.ms` | pause before a failed request is retried | pause between attempts to reach the leader of a forwarded operation; the first delay of the back-off from an unreachable peer | 20 (20) |
//!
//! Derived from F, with no Kafka key (Kafka's followers fetch; openraft's
//! leader pushes):
//!
//! - **heartbeat** F/6: openraft's `heartbeat_interval`. openraft checks it
//!   on a tick of 1.5 × the interval, so a leader heartbeats every F/4; it
//!   is also the timeout of every AppendEntries.
//! - **lease** F/3: openraft's `election_timeout_max`. A voter that heard
//!   from its leader within the lease refuses to vote for anyone, so a
//!   voter cut off from a live leader cannot take the quorum away from it.
//!   It ends before any voter stops waiting for the leader (F/2), so when
//!   the leader is gone the first candidate finds the other voters' leases
//!   expired.
//! - openraft's `election_timeout_min` is the lease less 1 ms: with
//!   openraft's own election timer off it only bounds a Vote request.
//! - **reconnect back-off**: from `retry.backoff.ms`, doubling, up to F/3
//!   (Kafka's Raft client: 50 ms up to 500 ms, fixed). A returning peer is
//!   picked up within F/3, well before any election would time out.
//!
//! Why the defaults differ from Kafka's: Tributary's goal is a committed
//! admin operation within one second of the quorum leader's death, with
//! defaults. Kafka's 2 s fetch timeout alone is twice that. The leader
//! check keeps short timeouts from turning a slow moment (a long fsync, a
//! busy machine) into an election: a voter only campaigns when the leader
//! does not answer, answers that it no longer leads, or has not heard from
//! a quorum within F.

use std::time::Duration;

/// Timeouts of one quorum member (see the module docs for the mapping).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// `controller.quorum.fetch.timeout.ms`: the longest a voter goes
    /// without hearing from a live leader before it campaigns.
    pub fetch_timeout: Duration,
    /// `controller.quorum.election.timeout.ms`: a candidate, or a voter
    /// that knows no leader, waits a random time in [E, 2E) before it
    /// campaigns (again).
    pub election_timeout: Duration,
    /// `controller.quorum.election.backoff.max.ms`: the cap of the random
    /// back-off added after each failed election.
    pub election_backoff_max: Duration,
    /// `controller.quorum.retry.backoff.ms`: pause between attempts to
    /// reach the leader; the first delay of the reconnect back-off.
    pub retry_backoff: Duration,
    /// How long a proposal or membership change may take, forwarding and
    /// waiting for a leader included (no Kafka key: an admin request's own
    /// timeout bounds it on the Kafka side).
    pub propose_timeout: Duration,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            fetch_timeout: Duration::from_millis(Timing::FETCH_TIMEOUT_DEFAULT_MS),
            election_timeout: Duration::from_millis(Timing::ELECTION_TIMEOUT_DEFAULT_MS),
            election_backoff_max: Duration::from_millis(Timing::ELECTION_BACKOFF_MAX_DEFAULT_MS),
            retry_backoff: Duration::from_millis(Timing::RETRY_BACKOFF_DEFAULT_MS),
            propose_timeout: Duration::from_secs(10),
        }
    }
}

/// The first step of the election back-off (Kafka's Raft client uses the same).
const ELECTION_BACKOFF_BASE: Duration = Duration::from_millis(50);

impl Timing {
    /// `controller.quorum.fetch.timeout.ms` default.
    pub const FETCH_TIMEOUT_DEFAULT_MS: u64 = 600;
    /// `controller.quorum.election.timeout.ms` default.
    pub const ELECTION_TIMEOUT_DEFAULT_MS: u64 = 200;
    /// `controller.quorum.election.backoff.max.ms` default.
    pub const ELECTION_BACKOFF_MAX_DEFAULT_MS: u64 = 300;
    /// `controller.quorum.retry.backoff.ms` default.
    pub const RETRY_BACKOFF_DEFAULT_MS: u64 = 20;
    /// The smallest fetch timeout accepted (a 10 ms heartbeat).
    pub const FETCH_TIMEOUT_MIN_MS: u64 = 60;

    /// Checks the values; one line naming the Kafka key at fault.
    pub fn validate(&self) -> Result<(), String> {
        if self.fetch_timeout < Duration::from_millis(Timing::FETCH_TIMEOUT_MIN_MS) {
            return Err(format!(
                "controller.quorum.fetch.timeout.ms must be at least {} (got {})",
                Timing::FETCH_TIMEOUT_MIN_MS,
                self.fetch_timeout.as_millis()
            ));
        }
        if self.election_timeout.is_zero() {
            return Err("controller.quorum.election.timeout.ms must be at least 1".into());
        }
        if self.propose_timeout.is_zero() {
            return Err("the proposal timeout must be positive".into());
        }
        Ok(())
    }

    /// The leader's heartbeat interval (openraft's `heartbeat_interval`,
    /// also its AppendEntries timeout): F/6.
    pub fn heartbeat(&self) -> Duration {
        self.fetch_timeout / 6
    }

    /// How long a voter that heard from its leader refuses other candidates
    /// (openraft's leader lease, its `election_timeout_max`): F/3.
    pub fn lease(&self) -> Duration {
        self.fetch_timeout / 3
    }

    /// The range a follower's wait without leader contact is drawn from
    /// before it checks on the leader: [F/2, 2F/3).
    pub fn suspicion(&self) -> (Duration, Duration) {
        (self.fetch_timeout / 2, self.fetch_timeout * 2 / 3)
    }

    /// How long a follower waits for the leader's answer to a leader check:
    /// F/3, so suspicion plus check stay within F.
    pub fn leader_check_timeout(&self) -> Duration {
        self.fetch_timeout / 3
    }

    /// The range a candidate's (or leaderless voter's) wait is drawn from:
    /// [E, 2E).
    pub fn election_wait(&self) -> (Duration, Duration) {
        (self.election_timeout, self.election_timeout * 2)
    }

    /// The upper bound of the random back-off after `failed` failed
    /// elections: 50 ms × 2^failed, at most `election_backoff_max`.
    pub fn election_backoff_bound(&self, failed: u32) -> Duration {
        ELECTION_BACKOFF_BASE.saturating_mul(1u32 << failed.min(20)).min(self.election_backoff_max)
    }

    /// The first and largest delay before another attempt to reach a peer
    /// that could not be reached: `retry_backoff` (at least 1 ms) doubling
    /// up to F/3.
    pub fn reconnect_backoff(&self) -> (Duration, Duration) {
        let max = self.fetch_timeout / 3;
        (self.retry_backoff.max(Duration::from_millis(1)).min(max), max)
    }

    /// How long a snapshot chunk may take to send and install.
    pub fn install_snapshot_timeout(&self) -> Duration {
        self.fetch_timeout * 3
    }
}

/// An endless exponential back-off: `first`, doubling, capped at `max`.
#[derive(Debug, Clone)]
pub struct ExponentialBackoff {
    next: Duration,
    max: Duration,
}

impl ExponentialBackoff {
    /// Starts at `first` (at most `max`).
    pub fn new(first: Duration, max: Duration) -> ExponentialBackoff {
        ExponentialBackoff { next: first.min(max), max }
    }
}

impl Iterator for ExponentialBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let now = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        Some(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fit_the_failover_budget() {
        let t = Timing::default();
        t.validate().expect("defaults are valid");
        assert_eq!(t.heartbeat(), Duration::from_millis(100));
        assert_eq!(t.lease(), Duration::from_millis(200));
        // The lease ends before any follower stops waiting, by a heartbeat.
        assert!(t.lease() + t.heartbeat() <= t.suspicion().0);
        // Suspicion and the leader check together stay within the fetch timeout.
        assert!(t.suspicion().1 + t.leader_check_timeout() <= t.fetch_timeout);
        // A returning peer is retried well within the fetch timeout.
        assert!(t.reconnect_backoff().1 <= t.fetch_timeout / 3);
    }

    #[test]
    fn the_election_backoff_doubles_up_to_its_cap() {
        let t = Timing::default();
        let bounds: Vec<u64> = (0..6).map(|f| t.election_backoff_bound(f).as_millis() as u64).collect();
        assert_eq!(bounds, vec![50, 100, 200, 300, 300, 300]);
        assert_eq!(t.election_backoff_bound(u32::MAX), t.election_backoff_max);
    }

    #[test]
    fn the_reconnect_backoff_doubles_up_to_its_cap() {
        let (first, max) = Timing::default().reconnect_backoff();
        let steps: Vec<u64> = ExponentialBackoff::new(first, max).take(6).map(|d| d.as_millis() as u64).collect();
        assert_eq!(steps, vec![20, 40, 80, 160, 200, 200]);
    }

    #[test]
    fn bad_values_name_the_kafka_key() {
        let t = Timing { fetch_timeout: Duration::from_millis(59), ..Timing::default() };
        assert!(t.validate().expect_err("too small").starts_with("controller.quorum.fetch.timeout.ms"));
        let t = Timing { election_timeout: Duration::ZERO, ..Timing::default() };
        assert!(t.validate().expect_err("zero").starts_with("controller.quorum.election.timeout.ms"));
    }
}
