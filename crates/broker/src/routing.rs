//! What a client is told about the whole cluster, from the committed image:
//! the brokers it may talk to (registered and unfenced, each with its
//! endpoint for the listener the request arrived on), the controller id it
//! is shown, who leads a partition, and which broker coordinates a group
//! (the leader of the group's `__consumer_offsets` partition). A node alone
//! answers for itself, as before.
//!
//! A client that sends a produce or fetch to a broker that does not lead the
//! partition is told where the leader is in the same answer (KIP-951,
//! [`Cluster::leader_hint`]), so it goes there without asking Metadata first.

use tributary_config::Listener;
use tributary_group::records::offsets_partition_for;
use tributary_protocol::ErrorCode;

use crate::cluster::Cluster;
use crate::error::ApiError;
use crate::groups::OFFSETS_TOPIC;
use crate::registry::TopicState;

/// The replication factor of an internal topic created now: the wanted
/// one, capped by the `live` brokers; `None` while no broker is live.
pub fn capped_replication_factor(wanted: i16, live: usize) -> Option<i16> {
    let live = i16::try_from(live).unwrap_or(i16::MAX);
    (live > 0).then(|| wanted.max(1).min(live))
}

/// A broker as clients reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerEndpoint {
    /// Broker id.
    pub id: i32,
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Rack.
    pub rack: Option<String>,
}

/// Where a partition's leader is, for a client that asked another broker
/// (KIP-951): Produce v10+ answers NOT_LEADER_OR_FOLLOWER, and Fetch v16+
/// NOT_LEADER_OR_FOLLOWER and FENCED_LEADER_EPOCH, with the leader's id and
/// epoch per partition and its endpoint among the response's node endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderHint {
    /// The leader's broker id, -1 when the partition has none.
    pub leader_id: i32,
    /// Its leader epoch, -1 when unknown.
    pub leader_epoch: i32,
    /// The leader's endpoint for the request's listener, when it is a live
    /// broker (a fenced or unregistered leader is named without one).
    pub endpoint: Option<BrokerEndpoint>,
}

fn pick<'a>(listeners: &'a [Listener], name: &str) -> Option<&'a Listener> {
    listeners.iter().find(|l| l.name == name).or_else(|| listeners.first())
}

impl Cluster {
    /// The brokers clients of `listener` are told about.
    pub fn live_brokers(&self, listener: &str) -> Vec<BrokerEndpoint> {
        if self.quorum().is_none() {
            let advertised = self.advertised_listeners();
            return pick(&advertised, listener)
                .map(|l| BrokerEndpoint {
                    id: self.node_id,
                    host: l.host.clone(),
                    port: l.port,
                    rack: self.config.rack.clone(),
                })
                .into_iter()
                .collect();
        }
        let image = self.image();
        image
            .brokers
            .values()
            .filter(|b| !b.fenced)
            .filter_map(|b| {
                let l = b.listeners.iter().find(|l| l.name == listener).or_else(|| b.listeners.first())?;
                Some(BrokerEndpoint { id: b.broker_id, host: l.host.clone(), port: l.port, rack: b.rack.clone() })
            })
            .collect()
    }

    /// Where `topic`'s partition `index` is led now, for clients of
    /// `listener`: from the newest committed image (the request may have
    /// started on an older one), else from the image the request saw; a
    /// partition unknown to both has no leader (-1, -1).
    pub fn leader_hint(&self, topic: &TopicState, index: i32, listener: &str) -> LeaderHint {
        let image = self.image();
        let current = image.topics.get(&topic.name).filter(|t| t.topic_id == topic.topic_id);
        let meta = usize::try_from(index)
            .ok()
            .and_then(|i| current.and_then(|t| t.partitions.get(i)).or_else(|| topic.image.partitions.get(i)));
        let Some(meta) = meta else {
            return LeaderHint { leader_id: -1, leader_epoch: -1, endpoint: None };
        };
        let endpoint =
            (meta.leader >= 0).then(|| self.live_brokers(listener).into_iter().find(|b| b.id == meta.leader)).flatten();
        LeaderHint { leader_id: meta.leader, leader_epoch: meta.leader_epoch, endpoint }
    }

    /// The controller id clients are shown: the active controller when it
    /// is also a live broker, else a live broker (the lowest id), as KRaft
    /// brokers report one clients can send admin requests to; -1 if none.
    pub fn controller_id(&self, live: &[BrokerEndpoint]) -> i32 {
        let Some(q) = self.quorum() else { return self.node_id };
        match q.quorum.leader() {
            Some(leader) if live.iter().any(|b| b.id == leader) => leader,
            _ => live.iter().map(|b| b.id).min().unwrap_or(-1),
        }
    }

    /// The broker that coordinates `group`, for clients of `listener`.
    pub fn coordinator_for(&self, group: &str, listener: &str) -> Result<BrokerEndpoint, ApiError> {
        let live = self.live_brokers(listener);
        if self.quorum().is_none() {
            return live
                .into_iter()
                .next()
                .ok_or_else(|| ApiError::new(ErrorCode::CoordinatorNotAvailable, "no listener"));
        }
        let leader = self.offsets_leader(group)?;
        live.into_iter().find(|b| b.id == leader).ok_or_else(|| {
            ApiError::new(ErrorCode::CoordinatorNotAvailable, "The coordinator of this group is not available.")
        })
    }

    fn offsets_leader(&self, group: &str) -> Result<i32, ApiError> {
        let image = self.image();
        let unavailable = || ApiError::new(ErrorCode::CoordinatorNotAvailable, "The coordinator is not available.");
        let Some(topic) = image.topics.get(OFFSETS_TOPIC) else {
            self.create_offsets_topic();
            return Err(unavailable());
        };
        let count = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
        let partition = usize::try_from(offsets_partition_for(group, count)).unwrap_or(0);
        match topic.partitions.get(partition).map(|p| p.leader) {
            Some(leader) if leader >= 0 => Ok(leader),
            _ => Err(unavailable()),
        }
    }

    /// Creates `__consumer_offsets` in the background (the client that asked
    /// for a coordinator retries meanwhile), with
    /// `offsets.topic.replication.factor` replicas, or as many as there are
    /// live brokers when there are fewer (said in the log).
    fn create_offsets_topic(&self) {
        let Some(q) = self.quorum() else { return };
        let Some(cluster) = self.groups.cluster() else { return };
        let mut topic = self.groups.offsets_topic();
        let live = self.placement_candidates().len();
        let Some(capped) = capped_replication_factor(topic.replication_factor, live) else { return };
        if capped < topic.replication_factor {
            tracing::warn!(
                wanted = topic.replication_factor,
                live_brokers = live,
                replication_factor = capped,
                "creating {OFFSETS_TOPIC} with fewer replicas than offsets.topic.replication.factor: only {live} \
                 broker(s) are live; add brokers and reassign its partitions for the full replication factor"
            );
        }
        topic.replication_factor = capped;
        q.runtime.spawn_blocking(move || match cluster.create_topic(&topic) {
            Ok(_) => tracing::info!(replication_factor = topic.replication_factor, "created {OFFSETS_TOPIC}"),
            Err(e) if e.code == ErrorCode::TopicAlreadyExists => {}
            Err(e) => tracing::warn!(error = %e.message, "cannot create {OFFSETS_TOPIC} yet"),
        });
    }

    /// NOT_COORDINATOR when another broker coordinates `group` (a cluster
    /// only), so the client asks FindCoordinator again.
    pub(crate) fn not_coordinator(&self, group: &str) -> Option<ApiError> {
        self.quorum()?;
        match self.offsets_leader(group) {
            Ok(leader) if leader == self.node_id => None,
            Ok(_) => Some(ApiError::new(ErrorCode::NotCoordinator, "This is not the correct coordinator.")),
            Err(e) => Some(e),
        }
    }

    /// Why this node cannot serve `group` now: another broker coordinates
    /// it (NOT_COORDINATOR), its `__consumer_offsets` partition is still
    /// loading here (COORDINATOR_LOAD_IN_PROGRESS), or the coordinator is
    /// unavailable.
    pub(crate) fn group_not_ready(&self, group: &str) -> Option<ApiError> {
        if let Some(e) = self.not_coordinator(group) {
            return Some(e);
        }
        if self.quorum().is_some()
            && let Some(e) = self.groups.partition_not_loaded(group)
        {
            return Some(e);
        }
        self.groups.not_ready()
    }
}

#[cfg(test)]
mod tests {
    use super::capped_replication_factor;

    #[test]
    fn internal_topics_take_at_most_the_live_brokers() {
        assert_eq!(capped_replication_factor(3, 3), Some(3));
        assert_eq!(capped_replication_factor(3, 5), Some(3));
        assert_eq!(capped_replication_factor(3, 1), Some(1));
        assert_eq!(capped_replication_factor(3, 0), None, "no broker to place on yet");
        assert_eq!(capped_replication_factor(0, 3), Some(1), "a misconfigured 0 still gets one replica");
    }
}
