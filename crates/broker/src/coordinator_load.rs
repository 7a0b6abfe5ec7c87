//! Group coordinators follow their `__consumer_offsets` partition, as in
//! Kafka: a broker coordinates the groups of the partitions it leads. When
//! it becomes a partition's leader it loads that partition's groups and
//! committed offsets from the (replicated) log; while it does, requests for
//! those groups get COORDINATOR_LOAD_IN_PROGRESS. When it stops leading one,
//! it unloads that partition's groups, and their requests get
//! NOT_COORDINATOR (FindCoordinator names the new leader).
//!
//! ```text
//! metadata publish: the led offsets partitions changed ─▶ request_reload
//! timer task ─▶ load_led_partitions:
//!     loaded, no longer led (or led in another epoch) ─▶ unload its groups
//!     led, not loaded ─▶ replay it (up to its log end, once committed) ─▶ merge ─▶ loaded
//! request for group g (partition p = hash(g)):
//!     image: another broker leads p ─▶ NOT_COORDINATOR
//!     p not loaded here (yet)       ─▶ COORDINATOR_LOAD_IN_PROGRESS
//! ```
//!
//! A partition is loaded at the leader epoch it was read in: leading it
//! again in a later epoch (another broker led it in between, and may have
//! written to it) reloads it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tributary_protocol::ErrorCode;

use crate::cluster::Cluster;
use crate::error::ApiError;
use crate::groups::{GroupService, OFFSETS_TOPIC};

/// Pause before a failed load is tried again (by the timer task).
const RETRY_AFTER: Duration = Duration::from_millis(200);
/// Longest one load waits for a newly led partition's log to be committed
/// (its followers to catch up); past it the load is tried again, so the
/// timer task stays responsive (to shutdown, to other partitions).
const COMMITTED_WAIT: Duration = Duration::from_secs(1);

impl GroupService {
    /// The offsets partitions loaded here, with their epochs.
    fn loaded_partitions(&self) -> BTreeMap<i32, i32> {
        self.loaded.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Whether the groups of offsets partition `partition` are loaded here.
    pub(crate) fn is_loaded(&self, partition: i32) -> bool {
        self.loaded.lock().unwrap_or_else(|p| p.into_inner()).contains_key(&partition)
    }

    /// Brings the loaded partitions in line with the led ones: unloads what
    /// this node no longer leads, loads what it newly leads. Blocking; runs
    /// on the timer task's behalf. A partition that cannot be read yet is
    /// tried again shortly.
    pub(crate) fn load_led_partitions(&self, cluster: &Cluster) {
        let led: BTreeMap<i32, i32> = cluster
            .registry()
            .topics
            .get(OFFSETS_TOPIC)
            .map(|t| t.partitions.iter().filter(|p| p.is_leader()).map(|p| (p.index, p.leader_epoch())).collect())
            .unwrap_or_default();
        let loaded = self.loaded_partitions();
        let stale: BTreeSet<i32> =
            loaded.iter().filter(|(p, epoch)| led.get(p) != Some(epoch)).map(|(p, _)| *p).collect();
        if !stale.is_empty() {
            self.loaded.lock().unwrap_or_else(|p| p.into_inner()).retain(|p, _| !stale.contains(p));
            let count = self.settings.offsets_partitions;
            let mut state = self.state();
            state.unload(|group| stale.contains(&tributary_group::records::offsets_partition_for(group, count)));
            drop(state);
            tracing::info!(partitions = ?stale, "unloaded the groups of {OFFSETS_TOPIC} partitions this broker no longer leads");
        }
        let wanted: BTreeSet<i32> =
            led.keys().filter(|p| !loaded.contains_key(p) || stale.contains(p)).copied().collect();
        let mut retry = false;
        // One partition at a time: one whose followers lag does not hold up the others.
        for partition in wanted {
            match self.replay(cluster, Some(&BTreeSet::from([partition])), COMMITTED_WAIT) {
                Ok((fresh, read)) => self.merge_loaded(cluster, fresh, read),
                Err(why) => {
                    tracing::debug!(reason = %why, partition, "cannot load group state yet; retrying");
                    retry = true;
                }
            }
        }
        if retry {
            std::thread::sleep(RETRY_AFTER);
            self.request_reload();
        }
        self.set_ready();
    }

    /// Adds what was replayed from newly led partitions to the coordinator's
    /// state, for those still led in the epoch they were read in (leadership
    /// may have moved meanwhile), and marks them loaded.
    fn merge_loaded(&self, cluster: &Cluster, mut fresh: crate::groups::GroupsState, read: BTreeMap<i32, i32>) {
        let groups = fresh.groups.len() + fresh.consumer_groups.len();
        let mut state = self.state();
        let current = cluster.registry();
        let still: BTreeMap<i32, i32> = read
            .into_iter()
            .filter(|(p, epoch)| {
                current
                    .partition(OFFSETS_TOPIC, *p)
                    .is_some_and(|part| part.is_leader() && part.leader_epoch() == *epoch)
            })
            .collect();
        let count = self.settings.offsets_partitions;
        fresh.unload(|group| !still.contains_key(&tributary_group::records::offsets_partition_for(group, count)));
        state.merge(fresh);
        if !still.is_empty() {
            tracing::info!(partitions = ?still.keys().collect::<Vec<_>>(), groups,
                "loaded the groups of {OFFSETS_TOPIC} partitions this broker now leads");
        }
        // Marked loaded under the state lock: a commit that checks it sees the merged state.
        self.loaded.lock().unwrap_or_else(|p| p.into_inner()).extend(still);
        drop(state);
    }

    /// COORDINATOR_LOAD_IN_PROGRESS while the groups of `group`'s offsets
    /// partition are not loaded here (a cluster only; call once this node
    /// is known to lead it).
    pub(crate) fn partition_not_loaded(&self, group: &str) -> Option<ApiError> {
        let partition = self.partition_for(group);
        (!self.is_loaded(partition)).then(|| {
            ApiError::new(
                ErrorCode::CoordinatorLoadInProgress,
                format!("loading the groups of {OFFSETS_TOPIC}-{partition}, which this broker leads now"),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use tributary_group::classic::ClassicGroup;
    use tributary_group::offsets::CommittedOffset;
    use tributary_group::records::offsets_partition_for;

    use crate::groups::GroupsState;

    const PARTITIONS: i32 = 6;

    fn offset(at: i64) -> CommittedOffset {
        CommittedOffset {
            offset: at,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp_ms: 0,
            expire_timestamp_ms: -1,
            log_offset: at,
        }
    }

    /// Two group ids whose offsets partitions differ.
    fn two_groups() -> (String, String) {
        let first = "group-0".to_string();
        let p = offsets_partition_for(&first, PARTITIONS);
        let second = (1..).map(|i| format!("group-{i}")).find(|g| offsets_partition_for(g, PARTITIONS) != p);
        (first, second.expect("some group lands elsewhere"))
    }

    fn state_with(groups: &[&str]) -> GroupsState {
        let mut state = GroupsState::default();
        for g in groups {
            state.groups.insert(g.to_string(), ClassicGroup::new(g));
            state.offsets.put(g, "orders", 0, offset(7));
        }
        state
    }

    #[test]
    fn unloading_a_partition_forgets_only_its_groups_and_offsets() {
        let (kept, gone) = two_groups();
        let gone_partition = offsets_partition_for(&gone, PARTITIONS);
        let mut state = state_with(&[&kept, &gone]);
        state.unload(|g| offsets_partition_for(g, PARTITIONS) == gone_partition);
        assert!(state.groups.contains_key(&kept) && !state.groups.contains_key(&gone));
        assert!(state.offsets.has_group(&kept) && !state.offsets.has_group(&gone));
    }

    #[test]
    fn merging_a_loaded_partition_keeps_what_was_there() {
        let (here, loaded) = two_groups();
        let mut state = state_with(&[&here]);
        state.merge(state_with(&[&loaded]));
        assert!(state.groups.contains_key(&here) && state.groups.contains_key(&loaded));
        assert_eq!(state.offsets.get(&loaded, "orders", 0).map(|o| o.offset), Some(7));
        assert_eq!(state.offsets.get(&here, "orders", 0).map(|o| o.offset), Some(7));
    }
}
