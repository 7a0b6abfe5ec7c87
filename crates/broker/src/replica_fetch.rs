//! Follower fetches as the leader sees them: who may fetch as a replica,
//! and the seam through which every follower fetch reaches the replication
//! core.
//!
//! A Fetch names its sender in `ReplicaId` (v0-14) or `ReplicaState`
//! (v15+, with the sender's broker epoch); a negative id is a consumer
//! (-1, or Kafka's debugging -2 and future-replica -3, which a network
//! client has no use for and which read as a consumer does). A non-negative
//! id claims to be a follower, which reads up to the log end offset rather
//! than the high watermark and moves the leader's view of that follower. The
//! leader serves such a fetch only if the id names a broker that is
//! registered, unfenced and a replica of the partition (not the leader
//! itself); otherwise the partition gets Kafka's answer for a replica it
//! does not recognise, UNKNOWN_LEADER_EPOCH when the fetch names a leader
//! epoch and NOT_LEADER_OR_FOLLOWER when it does not, both of which a
//! follower retries. A broker epoch (v15+) older than the registration's is
//! NOT_LEADER_OR_FOLLOWER, as Kafka fences a stale fetch state update.
//!
//! Without authentication a client can still claim the id (and epoch) of a
//! live replica broker; Kafka relies on its CLUSTER_ACTION ACL there.
//!
//! **The seam.** Each served follower fetch (not one answered with a
//! diverging epoch or an error) is recorded as a [`ReplicaFetch`]: the
//! follower's fetch offset is what it has fsynced (a Tributary follower
//! fetches from its durable offset, see `docs/ARCHITECTURE.md`), so it is
//! the position the high watermark may advance to. [`FollowerPositions`]
//! keeps the newest per follower, visible to tests and to whoever reads a
//! partition's state; the replication core consumes fetches through a
//! [`ReplicaFetchObserver`] it installs on the partition
//! ([`crate::partition::Partition::set_replica_fetch_observer`]) to move the
//! high watermark and to decide ISR changes.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

use kafka_protocol::messages::FetchRequest;
use tributary_metadata::{BrokerRegistration, PartitionMeta};
use tributary_protocol::ErrorCode;

/// Who sent a Fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetcher {
    /// A consumer: reads below the high watermark.
    Consumer,
    /// A follower replica, by its own account.
    Replica {
        /// Its broker id.
        id: i32,
        /// Its broker epoch (-1 when the request version has none).
        epoch: i64,
    },
}

impl Fetcher {
    /// The sender of `request` at `version`.
    pub fn of(version: i16, request: &FetchRequest) -> Fetcher {
        let (id, epoch) = if version >= 15 {
            (request.replica_state.replica_id.0, request.replica_state.replica_epoch)
        } else {
            (request.replica_id.0, -1)
        };
        if id >= 0 { Fetcher::Replica { id, epoch } } else { Fetcher::Consumer }
    }
}

/// Whether broker `replica` (with broker epoch `replica_epoch`) may fetch
/// `partition`, led by `leader_id`, as a follower; the partition's error
/// code if not. `current_leader_epoch` is the fetch's (-1 when absent).
pub fn check_replica(
    brokers: &BTreeMap<i32, BrokerRegistration>,
    partition: &PartitionMeta,
    leader_id: i32,
    (replica, replica_epoch): (i32, i64),
    current_leader_epoch: i32,
) -> Result<(), ErrorCode> {
    let unrecognised =
        if current_leader_epoch >= 0 { ErrorCode::UnknownLeaderEpoch } else { ErrorCode::NotLeaderOrFollower };
    let Some(registration) = brokers.get(&replica) else {
        return Err(unrecognised);
    };
    if replica == leader_id || !partition.replicas.contains(&replica) || registration.fenced {
        return Err(unrecognised);
    }
    if replica_epoch != -1 && registration.broker_epoch > replica_epoch {
        return Err(ErrorCode::NotLeaderOrFollower);
    }
    Ok(())
}

/// One follower fetch the leader served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaFetch {
    /// The follower's broker id.
    pub replica_id: i32,
    /// Its broker epoch (-1 when the request had none).
    pub replica_epoch: i64,
    /// Where it fetched from: every offset below is on its disk.
    pub fetch_offset: i64,
    /// The epoch of the last batch it holds (`LastFetchedEpoch`, v12+), if sent.
    pub last_fetched_epoch: Option<i32>,
    /// Its log start offset (-1 when the request had none).
    pub log_start_offset: i64,
    /// The leader's log end offset when the fetch was read (Kafka counts a
    /// follower as caught up at this fetch when `fetch_offset` reached it).
    pub leader_log_end_offset: i64,
    /// When the leader read it.
    pub at: Instant,
}

/// Receives every follower fetch a leader serves for one partition. Called
/// on the fetch's task without the partition's lock; keep it short (record,
/// or send on a channel).
pub trait ReplicaFetchObserver: Send + Sync + std::fmt::Debug {
    /// A follower fetched.
    fn replica_fetched(&self, fetch: &ReplicaFetch);
}

/// The newest fetch of each follower of a partition this node leads.
/// Cleared when the node's role or leader epoch for the partition changes
/// (positions learnt under an older epoch say nothing about the new one).
#[derive(Debug, Default)]
pub struct FollowerPositions {
    latest: Mutex<BTreeMap<i32, ReplicaFetch>>,
}

impl FollowerPositions {
    /// The newest fetch of `replica`, if any since the last role change.
    pub fn get(&self, replica: i32) -> Option<ReplicaFetch> {
        self.lock().get(&replica).copied()
    }

    /// Every follower's newest fetch.
    pub fn all(&self) -> BTreeMap<i32, ReplicaFetch> {
        self.lock().clone()
    }

    /// Forgets every position.
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<i32, ReplicaFetch>> {
        self.latest.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl ReplicaFetchObserver for FollowerPositions {
    fn replica_fetched(&self, fetch: &ReplicaFetch) {
        self.lock().insert(fetch.replica_id, *fetch);
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::BrokerId;
    use kafka_protocol::messages::fetch_request::ReplicaState;

    use super::*;

    fn registration(id: i32, epoch: i64, fenced: bool) -> BrokerRegistration {
        BrokerRegistration {
            broker_id: id,
            incarnation_id: [0; 16],
            broker_epoch: epoch,
            listeners: Vec::new(),
            rack: None,
            fenced,
            in_controlled_shutdown: false,
        }
    }

    fn brokers() -> BTreeMap<i32, BrokerRegistration> {
        [registration(1, 10, false), registration(2, 20, false), registration(3, 30, true), registration(4, 40, false)]
            .into_iter()
            .map(|b| (b.broker_id, b))
            .collect()
    }

    fn partition() -> PartitionMeta {
        PartitionMeta { replicas: vec![1, 2, 3, 5], leader: 1, leader_epoch: 4, isr: vec![1, 2], partition_epoch: 7 }
    }

    #[test]
    fn the_sender_is_read_where_each_version_puts_it() {
        let old = FetchRequest::default().with_replica_id(BrokerId(2));
        assert_eq!(Fetcher::of(14, &old), Fetcher::Replica { id: 2, epoch: -1 });
        assert_eq!(Fetcher::of(15, &old), Fetcher::Consumer, "v15+ ignores the old field");
        let new = FetchRequest::default()
            .with_replica_state(ReplicaState::default().with_replica_id(BrokerId(2)).with_replica_epoch(20));
        assert_eq!(Fetcher::of(15, &new), Fetcher::Replica { id: 2, epoch: 20 });
        for id in [-1, -2, -3] {
            assert_eq!(Fetcher::of(11, &FetchRequest::default().with_replica_id(BrokerId(id))), Fetcher::Consumer);
        }
    }

    #[test]
    fn only_registered_unfenced_replicas_other_than_the_leader_may_fetch() {
        let (b, p) = (brokers(), partition());
        assert_eq!(check_replica(&b, &p, 1, (2, 20), 4), Ok(()));
        assert_eq!(check_replica(&b, &p, 1, (2, -1), -1), Ok(()));
        assert_eq!(check_replica(&b, &p, 1, (2, 21), 4), Ok(()), "a newer epoch than the leader knows is fine");
        for (who, why) in [
            (9, "not a broker"),
            (4, "not a replica"),
            (3, "fenced"),
            (5, "a replica never registered"),
            (1, "the leader"),
        ] {
            assert_eq!(check_replica(&b, &p, 1, (who, -1), 4), Err(ErrorCode::UnknownLeaderEpoch), "{why}");
            assert_eq!(check_replica(&b, &p, 1, (who, -1), -1), Err(ErrorCode::NotLeaderOrFollower), "{why}");
        }
        assert_eq!(check_replica(&b, &p, 1, (2, 19), 4), Err(ErrorCode::NotLeaderOrFollower), "a stale broker epoch");
    }

    #[test]
    fn positions_keep_each_followers_newest_fetch() {
        let positions = FollowerPositions::default();
        let fetch = |replica_id, fetch_offset| ReplicaFetch {
            replica_id,
            replica_epoch: -1,
            fetch_offset,
            last_fetched_epoch: None,
            log_start_offset: 0,
            leader_log_end_offset: 10,
            at: Instant::now(),
        };
        positions.replica_fetched(&fetch(2, 3));
        positions.replica_fetched(&fetch(3, 5));
        positions.replica_fetched(&fetch(2, 7));
        assert_eq!(positions.get(2).map(|f| f.fetch_offset), Some(7));
        assert_eq!(positions.all().len(), 2);
        positions.clear();
        assert!(positions.get(3).is_none());
    }
}
