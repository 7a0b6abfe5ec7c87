//! Fetch from the closest replica (KIP-392), as the leader decides it.
//!
//! A consumer's Fetch from v11 carries its `client.rack` (`rack_id`). When
//! `replica.selector.class` names a selector, the leader of a replicated
//! partition asks it which replica the consumer should read from; if that
//! is a follower, the partition is answered with no records and
//! `preferred_read_replica` set to it, and the consumer moves there (the
//! follower side is in `handlers/fetch.rs`: it serves consumers below the
//! high watermark its leader reported).
//!
//! **Candidates** (Kafka's `ReplicaManager.findPreferredReadReplica`): the
//! leader itself, and each follower that is in the committed ISR, is a
//! registered unfenced broker with an endpoint, and holds the fetch offset
//! (its durable log end, the position its fetches report, is at least the
//! fetch offset, and its log start at most). The leader never names itself:
//! "the leader" is answered as no preferred replica (-1).
//!
//! **Selectors** ([`select`]): `LeaderSelector` always names the leader.
//! `RackAwareReplicaSelector` names the leader when the client sends no
//! rack, when no candidate is in the client's rack, or when the leader is in
//! it; otherwise the candidate of that rack with the highest log end offset,
//! then the one caught up most recently (then the lowest id, so the answer
//! does not change between identical fetches).

use tributary_config::ReplicaSelector;

use crate::cluster::Cluster;
use crate::partition::Partition;

/// One replica as a selector sees it (Kafka's `ReplicaView`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaView {
    /// Broker id.
    pub id: i32,
    /// Its `broker.rack`, if set.
    pub rack: Option<String>,
    /// Its log end offset as the leader knows it.
    pub log_end_offset: i64,
    /// How long ago it was last caught up with the leader (0 for the leader).
    pub time_since_caught_up_ms: u64,
}

/// The replica `selector` picks for a client in `client_rack` (empty: no
/// rack), among `leader` and the `followers` that may serve it; `None`
/// when that is the leader.
pub fn select(
    selector: ReplicaSelector,
    client_rack: &str,
    leader: &ReplicaView,
    followers: &[ReplicaView],
) -> Option<i32> {
    if selector != ReplicaSelector::RackAware || client_rack.is_empty() {
        return None;
    }
    let in_rack = |r: &&ReplicaView| r.rack.as_deref() == Some(client_rack);
    if in_rack(&leader) {
        return None;
    }
    followers
        .iter()
        .filter(in_rack)
        .filter(|r| r.id != leader.id)
        .max_by(|a, b| {
            a.log_end_offset
                .cmp(&b.log_end_offset)
                .then(b.time_since_caught_up_ms.cmp(&a.time_since_caught_up_ms))
                .then(b.id.cmp(&a.id))
        })
        .map(|r| r.id)
}

/// The follower a consumer in `client_rack`, fetching `partition` (which
/// this node leads) from `fetch_offset` through `listener`, should read
/// from instead; `None` to read here.
pub fn preferred_read_replica(
    cluster: &Cluster,
    partition: &Partition,
    listener: &str,
    client_rack: &str,
    fetch_offset: i64,
) -> Option<i32> {
    let selector = cluster.config.replica_selector;
    if selector == ReplicaSelector::None || !partition.is_leader() || !partition.is_replicated() {
        return None;
    }
    let view = partition.read_replica_view()?;
    let live = cluster.live_brokers(listener);
    let positions = partition.follower_positions();
    let followers: Vec<ReplicaView> = view
        .followers
        .iter()
        .filter(|f| f.log_end_offset >= fetch_offset)
        .filter(|f| positions.get(f.id).is_none_or(|p| p.log_start_offset <= fetch_offset))
        .filter_map(|f| {
            let endpoint = live.iter().find(|b| b.id == f.id)?;
            Some(ReplicaView {
                id: f.id,
                rack: endpoint.rack.clone(),
                log_end_offset: f.log_end_offset,
                time_since_caught_up_ms: view.now_ms.saturating_sub(f.last_caught_up_ms),
            })
        })
        .collect();
    let leader = ReplicaView {
        id: cluster.node_id,
        rack: cluster.config.rack.clone(),
        log_end_offset: view.leader_log_end_offset,
        time_since_caught_up_ms: 0,
    };
    let chosen = select(selector, client_rack, &leader, &followers)?;
    tracing::debug!(topic = %partition.topic, partition = partition.index, client_rack, replica = chosen,
        "a consumer is sent to its preferred read replica");
    Some(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(id: i32, rack: &str, log_end_offset: i64, time_since_caught_up_ms: u64) -> ReplicaView {
        ReplicaView { id, rack: (!rack.is_empty()).then(|| rack.to_string()), log_end_offset, time_since_caught_up_ms }
    }

    const RACK: ReplicaSelector = ReplicaSelector::RackAware;

    #[test]
    fn a_follower_in_the_clients_rack_is_preferred() {
        let leader = replica(1, "r1", 10, 0);
        let followers = [replica(2, "r2", 10, 5), replica(3, "r3", 10, 5)];
        assert_eq!(select(RACK, "r2", &leader, &followers), Some(2));
        assert_eq!(select(RACK, "r3", &leader, &followers), Some(3));
    }

    #[test]
    fn the_leader_is_kept_when_it_is_in_the_rack_or_no_replica_is() {
        let leader = replica(1, "r1", 10, 0);
        let followers = [replica(2, "r1", 10, 0), replica(3, "r3", 10, 0)];
        assert_eq!(select(RACK, "r1", &leader, &followers), None, "the leader is in the client's rack");
        assert_eq!(select(RACK, "r9", &leader, &followers), None, "no replica in the client's rack");
        assert_eq!(select(RACK, "", &leader, &followers), None, "a client without a rack");
        let rackless = replica(1, "", 10, 0);
        assert_eq!(select(RACK, "r3", &rackless, &followers), Some(3), "a leader without a rack is in no rack");
    }

    #[test]
    fn the_most_caught_up_replica_of_the_rack_wins() {
        let leader = replica(1, "r1", 20, 0);
        let followers = [replica(2, "r2", 18, 0), replica(3, "r2", 19, 900), replica(4, "r2", 19, 100)];
        assert_eq!(select(RACK, "r2", &leader, &followers), Some(4), "highest log end, then caught up last");
        let tied = [replica(5, "r2", 19, 100), replica(4, "r2", 19, 100)];
        assert_eq!(select(RACK, "r2", &leader, &tied), Some(4), "a full tie goes to the lowest id");
    }

    #[test]
    fn the_leader_selector_and_no_selector_always_name_the_leader() {
        let leader = replica(1, "r1", 10, 0);
        let followers = [replica(2, "r2", 10, 0)];
        assert_eq!(select(ReplicaSelector::Leader, "r2", &leader, &followers), None);
        assert_eq!(select(ReplicaSelector::None, "r2", &leader, &followers), None);
    }
}
