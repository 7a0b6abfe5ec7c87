//! The group coordinator service: classic groups, consumer groups (KIP-848)
//! and committed offsets, persisted as Kafka-format records in the compacted
//! internal topic `__consumer_offsets` and rebuilt from it at start.
//!
//! ```text
//! handler ──lock──▶ ClassicGroup / ConsumerGroup / OffsetStore (sans-IO, crates/group)
//!                     │ effects: answers for parked joins/syncs, records to persist
//!                     ▼
//!            dispatch: append records to __consumer_offsets (partition by group hash),
//!                      wait until durable, then deliver the answers that follow
//! timer task: tick every group at its next deadline (session expiry, join deadlines,
//!             consumer group revocation deadlines)
//! ```
//!
//! A group id names either a classic group or a consumer group, never both.
//! Consumer group records are appended while the state lock is held, so
//! their order in the log is the order the changes were made in, and a
//! replay rebuilds the same group.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::{Notify, oneshot};
use tributary_config::BrokerConfig;
use tributary_group::assignor::AssignorKind;
use tributary_group::classic::{
    ClassicGroup, Effect, GroupConfig, GroupError, JoinRequest, JoinResult, RequestId, SyncResult,
};
use tributary_group::consumer::{ConsumerConfig, ConsumerGroup, GroupRecord, TopicInfo, TopicsView};
use tributary_group::offsets::{CommittedOffset, OffsetStore};
use tributary_group::records::{ConsumerValue, GroupValue, OffsetsKey, offsets_partition_for};
use tributary_protocol::ErrorCode;
use tributary_record::builder::RecordSpec;
use tributary_types::now_ms;

use crate::cluster::{Cluster, NewTopic, Registry};
use crate::error::ApiError;
use crate::internal::Appended;

/// The internal topic of group state.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Settings from the broker config.
#[derive(Debug, Clone)]
pub struct GroupSettings {
    /// Classic group limits.
    pub group: GroupConfig,
    /// Consumer group (KIP-848) limits and assignors.
    pub consumer: ConsumerConfig,
    /// `offsets.topic.num.partitions`.
    pub offsets_partitions: i32,
    /// `offsets.topic.replication.factor`.
    pub offsets_replication_factor: i16,
    /// `offsets.topic.segment.bytes`.
    pub offsets_segment_bytes: i64,
    /// `offsets.retention.minutes` in ms.
    pub retention_ms: i64,
    /// `offset.metadata.max.bytes`.
    pub metadata_max_bytes: usize,
}

impl GroupSettings {
    /// Reads the group keys of the broker config.
    pub fn from_config(config: &BrokerConfig) -> GroupSettings {
        let int = |key: &str| -> i64 {
            config
                .properties
                .get(key)
                .cloned()
                .or_else(|| BrokerConfig::default_of(key).map(str::to_string))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0)
        };
        let text = |key: &str| -> String {
            config
                .properties
                .get(key)
                .cloned()
                .or_else(|| BrokerConfig::default_of(key).map(str::to_string))
                .unwrap_or_default()
        };
        let mut assignors: Vec<AssignorKind> = Vec::new();
        for name in text("group.consumer.assignors").split(',').filter(|n| !n.trim().is_empty()) {
            match AssignorKind::from_name(name) {
                Some(kind) if !assignors.contains(&kind) => assignors.push(kind),
                Some(_) => {}
                None => tracing::warn!(assignor = name.trim(), "group.consumer.assignors: unknown assignor ignored"),
            }
        }
        if assignors.is_empty() {
            assignors = vec![AssignorKind::Uniform, AssignorKind::Range];
        }
        GroupSettings {
            consumer: ConsumerConfig {
                session_timeout_ms: int("group.consumer.session.timeout.ms").clamp(1, i64::from(i32::MAX)) as i32,
                heartbeat_interval_ms: int("group.consumer.heartbeat.interval.ms").clamp(1, i64::from(i32::MAX)) as i32,
                max_size: int("group.consumer.max.size").max(1) as usize,
                assignors,
            },
            group: GroupConfig {
                min_session_timeout_ms: int("group.min.session.timeout.ms") as i32,
                max_session_timeout_ms: int("group.max.session.timeout.ms") as i32,
                initial_rebalance_delay_ms: int("group.initial.rebalance.delay.ms") as i32,
                max_size: int("group.max.size").max(1) as usize,
            },
            offsets_partitions: int("offsets.topic.num.partitions").max(1) as i32,
            offsets_replication_factor: int("offsets.topic.replication.factor") as i16,
            offsets_segment_bytes: int("offsets.topic.segment.bytes"),
            retention_ms: int("offsets.retention.minutes").saturating_mul(60_000),
            metadata_max_bytes: int("offset.metadata.max.bytes").max(0) as usize,
        }
    }
}

/// Coordinator state behind one lock.
#[derive(Debug, Default)]
pub(crate) struct GroupsState {
    pub(crate) groups: HashMap<String, ClassicGroup>,
    pub(crate) consumer_groups: HashMap<String, ConsumerGroup>,
    pub(crate) offsets: OffsetStore,
    /// The topics as consumer groups see them, for the registry snapshot it was built from.
    topics: Option<(Arc<Registry>, Arc<TopicsView>)>,
    /// Parked joins and syncs, with the group each is for (dropped when the
    /// group is unloaded, so its members look for the coordinator again).
    joins: HashMap<RequestId, (String, oneshot::Sender<JoinResult>)>,
    syncs: HashMap<RequestId, (String, oneshot::Sender<SyncResult>)>,
    next_request: RequestId,
}

impl GroupsState {
    /// The cluster's topics for consumer groups (rebuilt when the registry changes).
    pub(crate) fn topics_view(&mut self, registry: &Arc<Registry>) -> Arc<TopicsView> {
        if let Some((seen, view)) = &self.topics
            && Arc::ptr_eq(seen, registry)
        {
            return view.clone();
        }
        let view = Arc::new(TopicsView::new(registry.topics.values().map(|t| {
            (
                t.name.clone(),
                TopicInfo { id: t.topic_id.0, partitions: t.partition_count() as i32, internal: t.is_internal() },
            )
        })));
        self.topics = Some((registry.clone(), view.clone()));
        view
    }

    /// Whether a group has no members (or does not exist).
    pub(crate) fn is_empty_group(&self, group: &str) -> bool {
        self.groups.get(group).is_none_or(|g| g.member_count() == 0)
            && self.consumer_groups.get(group).is_none_or(|g| g.member_count() == 0)
    }

    fn park_join(&mut self, group: &str) -> (RequestId, oneshot::Receiver<JoinResult>) {
        self.next_request += 1;
        let (tx, rx) = oneshot::channel();
        self.joins.insert(self.next_request, (group.to_string(), tx));
        (self.next_request, rx)
    }

    fn park_sync(&mut self, group: &str) -> (RequestId, oneshot::Receiver<SyncResult>) {
        self.next_request += 1;
        let (tx, rx) = oneshot::channel();
        self.syncs.insert(self.next_request, (group.to_string(), tx));
        (self.next_request, rx)
    }

    /// Forgets every group of the selected `__consumer_offsets` partitions
    /// (another broker coordinates them now); their parked joins and syncs
    /// are dropped, so those members find the coordinator again.
    pub(crate) fn unload(&mut self, gone: impl Fn(&str) -> bool) {
        self.groups.retain(|id, _| !gone(id));
        self.consumer_groups.retain(|id, _| !gone(id));
        let offsets: Vec<String> = self.offsets.groups().filter(|g| gone(g)).map(str::to_string).collect();
        for group in offsets {
            self.offsets.remove_group(&group);
        }
        self.joins.retain(|_, (group, _)| !gone(group));
        self.syncs.retain(|_, (group, _)| !gone(group));
    }

    /// Adds the groups and offsets replayed from partitions just loaded.
    pub(crate) fn merge(&mut self, fresh: GroupsState) {
        self.groups.extend(fresh.groups);
        self.consumer_groups.extend(fresh.consumer_groups);
        let groups: Vec<String> = fresh.offsets.groups().map(str::to_string).collect();
        for group in groups {
            for ((topic, partition), offset) in fresh.offsets.all(&group) {
                self.offsets.put(&group, topic, *partition, offset.clone());
            }
        }
    }
}

/// Whether the coordinator can serve requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Availability {
    /// Loading `__consumer_offsets`.
    Loading,
    /// Serving.
    Ready,
    /// Cannot serve, and why (with what to do).
    Unavailable(String),
}

/// The group coordinator of this broker.
#[derive(Debug)]
pub struct GroupService {
    /// Settings.
    pub settings: GroupSettings,
    state: Mutex<GroupsState>,
    availability: Mutex<Availability>,
    started: Instant,
    /// Wakes the timer task when deadlines may have moved earlier.
    pub(crate) wake: Notify,
    /// The state was reset after a panic and waits to be reloaded.
    reload_wanted: AtomicBool,
    /// The broker, once attached (for reloads).
    cluster: std::sync::OnceLock<std::sync::Weak<Cluster>>,
    /// In a cluster: the `__consumer_offsets` partitions whose groups are
    /// loaded here, each with the leader epoch it was loaded in.
    pub(crate) loaded: Mutex<BTreeMap<i32, i32>>,
}

fn group_error_code(e: GroupError) -> ErrorCode {
    ErrorCode::try_from_code(e.code()).unwrap_or(ErrorCode::UnknownServerError)
}

/// A group error as an API error.
pub(crate) fn api_error(e: GroupError) -> ApiError {
    let message = match e {
        GroupError::MemberIdRequired => "rejoin with the member id in this response",
        GroupError::RebalanceInProgress => "the group is rebalancing; rejoin",
        GroupError::IllegalGeneration => "the generation is not the group's current one",
        GroupError::UnknownMemberId => "the member is not part of the group",
        GroupError::FencedInstanceId => "another member with this group.instance.id took over",
        GroupError::InconsistentGroupProtocol => "no protocol in common with the group's members",
        GroupError::InvalidSessionTimeout => "session.timeout.ms is outside group.min/max.session.timeout.ms",
        GroupError::GroupMaxSizeReached => "the group has group.max.size members",
        GroupError::InvalidGroupId => "the group id is empty",
        GroupError::CoordinatorNotAvailable => "the group is being deleted",
    };
    ApiError::new(group_error_code(e), message)
}

impl GroupService {
    /// A coordinator that has not loaded yet.
    pub fn new(config: &BrokerConfig) -> GroupService {
        GroupService {
            settings: GroupSettings::from_config(config),
            state: Mutex::new(GroupsState::default()),
            availability: Mutex::new(Availability::Loading),
            started: Instant::now(),
            wake: Notify::new(),
            reload_wanted: AtomicBool::new(false),
            cluster: std::sync::OnceLock::new(),
            loaded: Mutex::new(BTreeMap::new()),
        }
    }

    /// Monotonic milliseconds for the state machines.
    pub(crate) fn now(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Locks the coordinator state. If an earlier holder panicked, the state
    /// may be inconsistent and is never served as is: it is rebuilt from
    /// `__consumer_offsets`, the source of truth, before the lock is handed
    /// on (off the async workers; the caller waits for the replay). Parked
    /// joins and syncs are dropped, so their members get
    /// COORDINATOR_NOT_AVAILABLE, find the coordinator again and rejoin. If
    /// even the replay fails, the coordinator answers
    /// COORDINATOR_NOT_AVAILABLE and the timer task tries again.
    pub(crate) fn state(&self) -> MutexGuard<'_, GroupsState> {
        match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => {
                let mut guard = poisoned.into_inner();
                tracing::error!(
                    "a panic while the group coordinator's lock was held may have left group state inconsistent; \
                     reloading it from {OFFSETS_TOPIC}"
                );
                let next_request = guard.next_request;
                *guard = GroupsState { next_request, ..GroupsState::default() };
                // Nothing is loaded any more: a failed replay leaves every partition to load again.
                self.loaded.lock().unwrap_or_else(|p| p.into_inner()).clear();
                self.state.clear_poison();
                let cluster = self.cluster.get().and_then(std::sync::Weak::upgrade);
                let replayed = match &cluster {
                    Some(cluster) => crate::cpu::off_workers(|| self.replay(cluster, None, RELOAD_DURABLE_WAIT)),
                    None => Err("the coordinator is not attached to a broker".to_string()),
                };
                let availability = match replayed {
                    Ok((fresh, loaded)) => {
                        *guard = GroupsState { next_request, ..fresh };
                        *self.loaded.lock().unwrap_or_else(|p| p.into_inner()) = loaded;
                        tracing::warn!("group coordinator state reloaded from {OFFSETS_TOPIC}");
                        Availability::Ready
                    }
                    Err(why) => {
                        tracing::error!(reason = %why, "reloading the group coordinator failed; retrying from the timer");
                        self.reload_wanted.store(true, Ordering::SeqCst);
                        self.wake.notify_one();
                        Availability::Unavailable(format!("the group coordinator is reloading its state: {why}"))
                    }
                };
                *self.availability.lock().unwrap_or_else(|p| p.into_inner()) = availability;
                guard
            }
        }
    }

    /// Lets the coordinator reach its broker (to reload after a panic).
    pub fn attach(&self, cluster: &Arc<Cluster>) {
        let _ = self.cluster.set(Arc::downgrade(cluster));
    }

    /// The broker this coordinator belongs to, once attached.
    pub(crate) fn cluster(&self) -> Option<Arc<Cluster>> {
        self.cluster.get().and_then(std::sync::Weak::upgrade)
    }

    /// Asks the timer task to rebuild the state (the `__consumer_offsets`
    /// partitions this node leads changed).
    pub(crate) fn request_reload(&self) {
        self.reload_wanted.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }

    /// Reloads the state after [`GroupService::state`] could not.
    /// Blocking; runs on the timer task's behalf.
    fn reload_if_wanted(&self, cluster: &Cluster) {
        if self.reload_wanted.swap(false, Ordering::SeqCst) {
            self.load(cluster);
        }
    }

    /// Half-changes the state and panics while holding the coordinator's
    /// lock, on a thread of its own, as a bug in a group state machine
    /// would: every group and committed offset is forgotten, then the panic.
    /// For fault-injection tests: the next request finds the lock poisoned,
    /// and nothing of the damaged state may be served.
    #[doc(hidden)]
    pub fn inject_panic_under_lock(&self) {
        std::thread::scope(|scope| {
            let _ = scope
                .spawn(|| {
                    let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
                    state.groups.clear();
                    state.consumer_groups.clear();
                    state.offsets = OffsetStore::default();
                    panic!("injected: a bug while the group coordinator's lock is held");
                })
                .join();
        });
    }

    /// Whether requests can be served now.
    pub fn availability(&self) -> Availability {
        self.availability.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Marks the coordinator as serving (its partitions' own state is
    /// tracked apart, see `coordinator_load.rs`).
    pub(crate) fn set_ready(&self) {
        *self.availability.lock().unwrap_or_else(|p| p.into_inner()) = Availability::Ready;
    }

    /// The error for requests while not ready, if any.
    pub(crate) fn not_ready(&self) -> Option<ApiError> {
        match self.availability() {
            Availability::Ready => None,
            Availability::Loading => Some(ApiError::new(ErrorCode::CoordinatorLoadInProgress, "loading group state")),
            Availability::Unavailable(why) => Some(ApiError::new(ErrorCode::CoordinatorNotAvailable, why)),
        }
    }

    /// Creates `__consumer_offsets` if needed and rebuilds groups and offsets
    /// from it. Blocking; runs once at start.
    pub fn load(&self, cluster: &Cluster) {
        if cluster.quorum().is_some() {
            self.load_led_partitions(cluster);
            return;
        }
        let outcome = self.load_inner(cluster);
        let availability = match outcome {
            Ok((groups, offsets)) => {
                tracing::info!(groups, offsets, "group coordinator ready");
                Availability::Ready
            }
            Err(why) => {
                tracing::error!(reason = %why, "group coordinator unavailable");
                Availability::Unavailable(why)
            }
        };
        *self.availability.lock().unwrap_or_else(|p| p.into_inner()) = availability;
    }

    fn load_inner(&self, cluster: &Cluster) -> Result<(usize, usize), String> {
        let settings = &self.settings;
        if !cluster.registry().topics.contains_key(OFFSETS_TOPIC) {
            if settings.offsets_replication_factor > 1 {
                return Err(format!(
                    "offsets.topic.replication.factor={} but this cluster has 1 broker; set offsets.topic.replication.factor=1",
                    settings.offsets_replication_factor
                ));
            }
            let mut configs = std::collections::BTreeMap::new();
            configs.insert("cleanup.policy".to_string(), "compact".to_string());
            configs.insert("segment.bytes".to_string(), settings.offsets_segment_bytes.to_string());
            configs.insert("compression.type".to_string(), "producer".to_string());
            let topic = NewTopic {
                name: OFFSETS_TOPIC.to_string(),
                num_partitions: settings.offsets_partitions,
                replication_factor: 1,
                assignments: Vec::new(),
                configs,
            };
            match cluster.create_topic(&topic) {
                Ok(_) => {}
                // Another broker of the cluster created it first.
                Err(e) if e.code == ErrorCode::TopicAlreadyExists => {}
                Err(e) => return Err(format!("cannot create {OFFSETS_TOPIC}: {}", e.message)),
            }
        }
        let (fresh, _) = self.replay(cluster, None, RELOAD_DURABLE_WAIT)?;
        let mut state = self.state();
        let next_request = state.next_request;
        *state = GroupsState { next_request, ..fresh };
        let groups = state.groups.len() + state.consumer_groups.len();
        Ok((groups, state.offsets.groups().count()))
    }

    /// The `__consumer_offsets` topic to create in a cluster.
    pub(crate) fn offsets_topic(&self) -> NewTopic {
        let settings = &self.settings;
        let mut configs = std::collections::BTreeMap::new();
        configs.insert("cleanup.policy".to_string(), "compact".to_string());
        configs.insert("segment.bytes".to_string(), settings.offsets_segment_bytes.to_string());
        configs.insert("compression.type".to_string(), "producer".to_string());
        NewTopic {
            name: OFFSETS_TOPIC.to_string(),
            num_partitions: settings.offsets_partitions,
            replication_factor: settings.offsets_replication_factor.max(1),
            assignments: Vec::new(),
            configs,
        }
    }

    /// Rebuilds the groups and committed offsets of the `__consumer_offsets`
    /// partitions this node leads (those of `only`, when given) from the
    /// log (everything appended to it, once committed, waiting at most
    /// `wait` for that), without the state lock. Returns them and the
    /// partitions read, each with the leader epoch it was read in.
    pub(crate) fn replay(
        &self,
        cluster: &Cluster,
        only: Option<&std::collections::BTreeSet<i32>>,
        wait: std::time::Duration,
    ) -> Result<(GroupsState, BTreeMap<i32, i32>), String> {
        let registry = cluster.registry();
        let Some(topic) = registry.topics.get(OFFSETS_TOPIC) else {
            return Err(format!("{OFFSETS_TOPIC} disappeared during load"));
        };
        let mut offsets = OffsetStore::default();
        let mut groups: HashMap<String, GroupValue> = HashMap::new();
        let mut consumer_groups: HashMap<String, ConsumerGroup> = HashMap::new();
        let mut records = 0usize;
        let mut read = BTreeMap::new();
        // Only the partitions this node leads: their groups are coordinated here.
        let selected = topic.partitions.iter().filter(|p| p.is_leader() && only.is_none_or(|o| o.contains(&p.index)));
        for partition in selected {
            let epoch = partition.leader_epoch();
            // Everything appended must be read, also what is still being
            // fsynced (a reload while commits are in flight).
            let hw = wait_until_durable(partition, wait)
                .map_err(|e| format!("cannot read {OFFSETS_TOPIC}-{}: {e}", partition.index))?;
            crate::internal::for_each_record(partition, hw, |offset, key, value| {
                records += 1;
                match OffsetsKey::decode(key) {
                    Ok(Some(OffsetsKey::Offset { group, topic, partition })) => match value {
                        None => {
                            offsets.remove(&group, &topic, partition);
                        }
                        Some(v) => match tributary_group::records::OffsetValue::decode(v) {
                            Ok(v) => offsets.put(&group, &topic, partition, CommittedOffset::from_value(&v, offset)),
                            Err(e) => tracing::warn!(offset, error = %e, "skipping an unreadable offset record"),
                        },
                    },
                    Ok(Some(OffsetsKey::Group { group })) => match value {
                        None => {
                            groups.remove(&group);
                        }
                        Some(v) => match GroupValue::decode(v) {
                            Ok(v) => {
                                groups.insert(group, v);
                            }
                            Err(e) => tracing::warn!(offset, error = %e, "skipping an unreadable group record"),
                        },
                    },
                    Ok(Some(key)) => replay_consumer(&mut consumer_groups, &key, value, offset),
                    Ok(None) => {}
                    Err(e) => tracing::warn!(offset, error = %e, "skipping an unreadable key"),
                }
            })
            .map_err(|e| format!("cannot read {OFFSETS_TOPIC}-{}: {e}", partition.index))?;
            read.insert(partition.index, epoch);
        }
        let now = self.now();
        let wall = now_ms();
        let mut state = GroupsState::default();
        for (id, value) in groups {
            if consumer_groups.contains_key(&id) {
                tracing::warn!(group = %id, "both a classic and a consumer group are recorded; keeping the consumer group");
                continue;
            }
            state.groups.insert(id.clone(), ClassicGroup::restore(&id, &value, now, wall));
        }
        for (id, mut group) in consumer_groups {
            group.restart_timers(now, &self.settings.consumer);
            state.consumer_groups.insert(id, group);
        }
        state.offsets = offsets;
        tracing::debug!(records, "replayed {OFFSETS_TOPIC}");
        Ok((state, read))
    }

    /// The `__consumer_offsets` partition of a group.
    pub fn partition_for(&self, group: &str) -> i32 {
        offsets_partition_for(group, self.settings.offsets_partitions)
    }

    /// Appends records of `group` to its partition of `__consumer_offsets` and
    /// waits until they are durable. Returns the offset of the first record.
    pub async fn persist(&self, cluster: &Cluster, group: &str, records: Vec<RecordSpec>) -> Result<i64, ApiError> {
        let appended =
            cluster.append_internal(OFFSETS_TOPIC, self.partition_for(group), records).map_err(coordinator_error)?;
        let base_offset = appended.base;
        appended.committed().await.map_err(coordinator_error)?;
        Ok(base_offset)
    }

    /// Appends the group metadata records among `effects` now, in order.
    /// Call it with the state lock held (the lock the effects were computed
    /// under), so that a group's metadata records land in the order its
    /// changes were made, whatever request or timer made them. What remains
    /// is delivered by [`GroupService::deliver`].
    pub(crate) fn stage(&self, cluster: &Cluster, effects: Vec<Effect>) -> Vec<Staged> {
        effects
            .into_iter()
            .filter_map(|effect| match effect {
                Effect::Persist(group, value) => {
                    let record = RecordSpec::new(
                        Some(&OffsetsKey::Group { group: group.clone() }.encode()),
                        Some(&value.encode()),
                        now_ms(),
                    );
                    match self.append_now(cluster, &group, vec![record]) {
                        Ok(pending) => Some(Staged::Durable(group, pending)),
                        Err(e) => {
                            tracing::warn!(group = %group, error = %e.message, "cannot persist group metadata");
                            Some(Staged::Durable(group, None))
                        }
                    }
                }
                Effect::Join(id, result) => Some(Staged::Join(id, result)),
                Effect::Sync(id, result) => Some(Staged::Sync(id, result)),
                Effect::Removed { group, member_id, instance_id, reason } => {
                    tracing::info!(group = %group, member = %member_id, instance = ?instance_id, %reason, "member removed from the group");
                    None
                }
            })
            .collect()
    }

    /// Delivers staged answers in order, each after the metadata records
    /// before it are durable.
    pub(crate) async fn deliver(&self, staged: Vec<Staged>) {
        for item in staged {
            match item {
                Staged::Durable(group, pending) => {
                    if let Err(e) = wait_pending(pending).await {
                        tracing::warn!(group = %group, error = %e.message, "group metadata not durable");
                    }
                }
                Staged::Join(id, result) => {
                    if let Some((_, tx)) = self.state().joins.remove(&id) {
                        let _ = tx.send(result);
                    }
                }
                Staged::Sync(id, result) => {
                    if let Some((_, tx)) = self.state().syncs.remove(&id) {
                        let _ = tx.send(result);
                    }
                }
            }
        }
        self.wake.notify_one();
    }

    /// Parks a join and runs the state machine; returns the receiver of the
    /// answer and the staged effects to deliver.
    pub(crate) fn join(&self, cluster: &Cluster, req: JoinRequest) -> (oneshot::Receiver<JoinResult>, Vec<Staged>) {
        let now = self.now();
        let wall = now_ms();
        let mut state = self.state();
        let group_id = req.group_id.clone();
        let (id, rx) = state.park_join(&group_id);
        let config = self.settings.group;
        let group = state.groups.entry(group_id.clone()).or_insert_with(|| ClassicGroup::new(&group_id));
        let mut new_id = || uuid::Uuid::new_v4().to_string();
        let effects = group.join(id, req, now, wall, &config, &mut new_id);
        (rx, self.stage(cluster, effects))
    }

    /// Parks a sync and runs the state machine.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn sync(
        &self,
        cluster: &Cluster,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        assignments: Vec<(String, Vec<u8>)>,
    ) -> (oneshot::Receiver<SyncResult>, Vec<Staged>) {
        let now = self.now();
        let wall = now_ms();
        let mut state = self.state();
        let (id, rx) = state.park_sync(group_id);
        let effects = match state.groups.get_mut(group_id) {
            Some(group) => {
                group.sync(id, generation, member_id, instance_id, protocol_type, protocol_name, assignments, now, wall)
            }
            None => vec![Effect::Sync(
                id,
                SyncResult {
                    error: Some(GroupError::UnknownMemberId),
                    protocol_type: None,
                    protocol_name: None,
                    assignment: Vec::new(),
                },
            )],
        };
        (rx, self.stage(cluster, effects))
    }

    /// Ticks the selected classic groups; returns the staged effects and
    /// their next deadline (monotonic ms).
    pub(crate) fn tick(&self, cluster: &Cluster, which: Selection<'_>) -> (Vec<Staged>, Option<u64>) {
        let now = self.now();
        let wall = now_ms();
        let config = self.settings.group;
        let mut state = self.state();
        let mut effects = Vec::new();
        let mut next = None;
        which.for_each(&mut state.groups, |_, group| {
            effects.extend(group.tick(now, wall, &config));
            next = earliest(next, group.next_deadline());
        });
        (self.stage(cluster, effects), next)
    }

    /// Expired committed offsets (retention) to tombstone, removed from memory.
    pub(crate) fn take_expired_offsets(&self) -> Vec<(String, String, i32)> {
        let wall = now_ms();
        let retention = self.settings.retention_ms;
        let mut state = self.state();
        let expired = state.offsets.expired(wall, retention, |g| state.is_empty_group(g));
        let mut out = Vec::with_capacity(expired.len());
        for (group, (topic, partition)) in expired {
            state.offsets.remove(&group, &topic, partition);
            out.push((group, topic, partition));
        }
        out
    }
}

/// Applies a consumer group record read back at `offset` during load.
fn replay_consumer(groups: &mut HashMap<String, ConsumerGroup>, key: &OffsetsKey, value: Option<&[u8]>, offset: i64) {
    if !key.is_consumer_group() {
        return;
    }
    let value = match value.map(|v| ConsumerValue::decode(key, v)) {
        None => None,
        Some(Ok(v)) => {
            if v.is_none() {
                return; // a record type kept for other brokers (subscription metadata)
            }
            v
        }
        Some(Err(e)) => {
            tracing::warn!(offset, error = %e, "skipping an unreadable consumer group record");
            return;
        }
    };
    let id = key.group().to_string();
    let group = groups.entry(id.clone()).or_insert_with(|| ConsumerGroup::new(&id));
    if !group.replay(key, value.as_ref()) {
        groups.remove(&id);
    }
}

/// Encodes consumer group records for `__consumer_offsets`.
pub(crate) fn encode_records(records: &[GroupRecord]) -> Vec<RecordSpec> {
    let now = now_ms();
    records
        .iter()
        .map(|r| RecordSpec::new(Some(&r.key.encode()), r.value.as_ref().map(ConsumerValue::encode).as_deref(), now))
        .collect()
}

/// Records appended and not yet committed.
pub(crate) type Pending = Option<Appended>;

/// A coordinator effect whose records are already appended (see
/// [`GroupService::stage`]).
pub(crate) enum Staged {
    /// Wait for this group's metadata record to be durable before what follows.
    Durable(String, Pending),
    Join(RequestId, JoinResult),
    Sync(RequestId, SyncResult),
}

/// Delivers staged coordinator effects (see [`GroupService::stage`]) in a
/// task of their own, each answer once the records before it are durable.
pub(crate) fn spawn_dispatch(cluster: &Arc<Cluster>, staged: Vec<Staged>) {
    if staged.is_empty() {
        return;
    }
    let cluster = cluster.clone();
    tokio::spawn(async move { cluster.groups.deliver(staged).await });
}

/// The coordinator's answer when a write to `__consumer_offsets` fails, as
/// Kafka's group coordinator maps the error of its acks=all append:
/// NOT_ENOUGH_REPLICAS (the partition's in-sync replicas are fewer than its
/// `min.insync.replicas`) and NOT_ENOUGH_REPLICAS_AFTER_APPEND become
/// COORDINATOR_NOT_AVAILABLE, which clients retry; others stay.
pub(crate) fn coordinator_error(e: ApiError) -> ApiError {
    match e.code {
        ErrorCode::NotEnoughReplicas | ErrorCode::NotEnoughReplicasAfterAppend => {
            ApiError::new(ErrorCode::CoordinatorNotAvailable, e.message)
        }
        _ => e,
    }
}

/// Waits until appended records are durable; the error to answer if they cannot be.
pub(crate) async fn wait_pending(pending: Pending) -> Result<(), ApiError> {
    let Some(appended) = pending else { return Ok(()) };
    appended.committed().await.map_err(|e| match e.code {
        ErrorCode::KafkaStorageError => ApiError::new(ErrorCode::CoordinatorNotAvailable, e.message),
        _ => coordinator_error(e),
    })
}

impl GroupService {
    /// Appends records of `group` now (call with the state lock held, so
    /// records land in the order the changes were made); returns what to
    /// wait for before answering.
    pub(crate) fn append_now(
        &self,
        cluster: &Cluster,
        group: &str,
        records: Vec<RecordSpec>,
    ) -> Result<Pending, ApiError> {
        if records.is_empty() {
            return Ok(None);
        }
        let partition = self.partition_for(group);
        Ok(Some(cluster.append_internal(OFFSETS_TOPIC, partition, records).map_err(coordinator_error)?))
    }

    /// Fences consumer group members whose session or revocation deadline
    /// passed; appends the records. Returns what to wait for and the next deadline.
    pub(crate) fn tick_consumer_groups(&self, cluster: &Cluster, which: Selection<'_>) -> (Vec<Pending>, Option<u64>) {
        let now = self.now();
        let mut state = self.state();
        let mut pending = Vec::new();
        let mut next = None;
        which.for_each(&mut state.consumer_groups, |id, group| {
            let (records, fenced) = group.tick(now);
            if !fenced.is_empty() {
                tracing::info!(group = %id, members = ?fenced, "consumer group members fenced (session or rebalance timeout)");
            }
            match self.append_now(cluster, id, encode_records(&records)) {
                Ok(Some(p)) => pending.push(Some(p)),
                Ok(None) => {}
                Err(e) => tracing::warn!(group = %id, error = %e.message, "cannot persist fenced members"),
            }
            next = earliest(next, group.next_deadline());
        });
        (pending, next)
    }
}

impl GroupService {
    /// Deletes consumer groups left without members and without committed
    /// offsets (as Kafka does when their offsets expire); appends their
    /// tombstones. Returns what to wait for.
    pub(crate) fn delete_abandoned_consumer_groups(&self, cluster: &Cluster) -> Vec<Pending> {
        let mut state = self.state();
        let abandoned: Vec<String> = state
            .consumer_groups
            .iter()
            .filter(|(id, g)| g.member_count() == 0 && !state.offsets.has_group(id))
            .map(|(id, _)| id.clone())
            .collect();
        let mut pending = Vec::new();
        for id in abandoned {
            let Some(group) = state.consumer_groups.remove(&id) else { continue };
            tracing::info!(group = %id, "deleting a consumer group without members or committed offsets");
            match self.append_now(cluster, &id, encode_records(&group.tombstones())) {
                Ok(p) => pending.push(p),
                Err(e) => tracing::warn!(group = %id, error = %e.message, "cannot write consumer group tombstones"),
            }
        }
        pending
    }
}

/// Longest a reload waits for what `__consumer_offsets` holds to be durable.
pub(crate) const RELOAD_DURABLE_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Waits (blocking) until everything appended to `partition` is durable;
/// returns the high watermark then.
fn wait_until_durable(partition: &crate::partition::Partition, limit: std::time::Duration) -> Result<i64, String> {
    let end = partition.log().log_end_offset();
    let deadline = Instant::now() + limit;
    loop {
        let progress = partition.progress();
        if progress.offline {
            return Err("the partition is offline".to_string());
        }
        if progress.high_watermark >= end {
            return Ok(progress.high_watermark);
        }
        if Instant::now() >= deadline {
            return Err(format!("offsets up to {end} did not become durable within {limit:?}"));
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// Runs group deadlines (session expiry, join deadlines) and offset retention.
pub(crate) async fn timer_loop(cluster: Arc<Cluster>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let service = &cluster.groups;
    let retention_check = std::time::Duration::from_millis(
        cluster
            .config
            .properties
            .get("offsets.retention.check.interval.ms")
            .and_then(|v| v.parse().ok())
            .unwrap_or(600_000),
    );
    let mut next_retention = tokio::time::Instant::now() + retention_check;
    loop {
        if service.reload_wanted.load(Ordering::SeqCst) {
            let c = cluster.clone();
            if let Err(e) = tokio::task::spawn_blocking(move || c.groups.reload_if_wanted(&c)).await {
                tracing::error!(error = %e, "reloading the group coordinator failed");
            }
        }
        let next = run_due_timers(&cluster, Selection::All);
        if tokio::time::Instant::now() >= next_retention {
            next_retention = tokio::time::Instant::now() + retention_check;
            expire_offsets(&cluster).await;
        }
        // Sleep until the next deadline itself (not a rounded number of
        // milliseconds from now), at most a second.
        let in_a_second = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
        let wake_at = next.map_or(in_a_second, |ms| {
            (tokio::time::Instant::from_std(service.started) + std::time::Duration::from_millis(ms)).min(in_a_second)
        });
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = service.wake.notified() => {}
            _ = tokio::time::sleep_until(wake_at) => {}
        }
    }
}

/// The groups a pass over deadlines looks at.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Selection<'a> {
    /// Every group (the timer loop, ListGroups).
    All,
    /// The groups a request names.
    Named(&'a [&'a str]),
}

impl Selection<'_> {
    /// Calls `f` on each selected group of `groups` that exists.
    fn for_each<G>(self, groups: &mut HashMap<String, G>, mut f: impl FnMut(&str, &mut G)) {
        match self {
            Selection::All => groups.iter_mut().for_each(|(id, g)| f(id, g)),
            Selection::Named(ids) => {
                for id in ids {
                    if let Some(g) = groups.get_mut(*id) {
                        f(id, g);
                    }
                }
            }
        }
    }
}

fn earliest(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// For a request that observes membership (DescribeGroups,
/// ConsumerGroupDescribe, ListGroups, DeleteGroups, OffsetDelete): the error
/// to answer while the coordinator loads; otherwise it first applies the
/// passed deadlines of the groups it looks at, so that what a client sees
/// right after a deadline never depends on when the timer loop last ran.
pub(crate) fn observe(cluster: &Arc<Cluster>, which: Selection<'_>) -> Option<ApiError> {
    let not_ready = cluster.groups.not_ready();
    if not_ready.is_none() {
        run_due_timers(cluster, which);
    }
    not_ready
}

/// Applies the selected groups' deadlines that have passed (session expiry,
/// join and revocation deadlines) and returns their next one.
///
/// Records are appended here, in order; waiting for them to be durable
/// happens off the caller, so a slow fsync never delays the next expiry.
pub(crate) fn run_due_timers(cluster: &Arc<Cluster>, which: Selection<'_>) -> Option<u64> {
    let service = &cluster.groups;
    let (staged, next) = service.tick(cluster, which);
    spawn_dispatch(cluster, staged);
    let (pending, next_consumer) = service.tick_consumer_groups(cluster, which);
    if !pending.is_empty() {
        tokio::spawn(async move {
            for p in pending {
                if let Err(e) = wait_pending(p).await {
                    tracing::warn!(error = %e.message, "consumer group records not durable");
                }
            }
        });
    }
    earliest(next, next_consumer)
}

async fn expire_offsets(cluster: &Cluster) {
    for p in cluster.groups.delete_abandoned_consumer_groups(cluster) {
        if let Err(e) = wait_pending(p).await {
            tracing::warn!(error = %e.message, "consumer group tombstones not durable");
        }
    }
    let expired = cluster.groups.take_expired_offsets();
    if expired.is_empty() {
        return;
    }
    tracing::info!(count = expired.len(), "expiring committed offsets (offsets.retention.minutes)");
    let mut by_group: HashMap<String, Vec<RecordSpec>> = HashMap::new();
    for (group, topic, partition) in expired {
        let key = OffsetsKey::Offset { group: group.clone(), topic, partition }.encode();
        by_group.entry(group).or_default().push(RecordSpec::new(Some(&key), None, now_ms()));
    }
    for (group, records) in by_group {
        if let Err(e) = cluster.groups.persist(cluster, &group, records).await {
            tracing::warn!(group = %group, error = %e.message, "cannot write offset tombstones");
        }
    }
}
