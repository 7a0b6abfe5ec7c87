//! The classic consumer group protocol (JoinGroup, SyncGroup, Heartbeat,
//! LeaveGroup) as a sans-IO state machine.
//!
//! ```text
//!            join (new group)            all members joined / deadline
//!  Empty ───────────────────▶ PreparingRebalance ─────────────────────▶ CompletingRebalance
//!    ▲                              ▲      ▲                                 │ leader's SyncGroup
//!    │ last member leaves/expires   │      └────── member joins/leaves ──────┤
//!    └──────────────────────────────┴──────────── member joins/leaves ── Stable ◀┘
//! ```
//!
//! Requests that must wait (a JoinGroup until the rebalance completes, a
//! SyncGroup until the leader's assignment arrives) are parked under the
//! caller's [`RequestId`] and answered later through [`Effect`]s. Time is a
//! plain millisecond counter passed in, so the machine is deterministic.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::records::{GroupValue, MemberValue};

/// Identifies a parked request so its answer can be routed back.
pub type RequestId = u64;

/// Group states, with Kafka's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    /// No members; may hold committed offsets.
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Waiting for the leader's assignment.
    CompletingRebalance,
    /// Everyone has an assignment.
    Stable,
    /// Deleted.
    Dead,
}

impl GroupState {
    /// The name Kafka reports in DescribeGroups/ListGroups.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// Errors the classic protocol answers with (Kafka error codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupError {
    /// 24
    InvalidGroupId,
    /// 25
    UnknownMemberId,
    /// 26
    InvalidSessionTimeout,
    /// 27
    RebalanceInProgress,
    /// 22
    IllegalGeneration,
    /// 23
    InconsistentGroupProtocol,
    /// 79
    MemberIdRequired,
    /// 81
    GroupMaxSizeReached,
    /// 82
    FencedInstanceId,
    /// 15
    CoordinatorNotAvailable,
}

impl GroupError {
    /// The Kafka error code.
    pub fn code(self) -> i16 {
        match self {
            GroupError::InvalidGroupId => 24,
            GroupError::UnknownMemberId => 25,
            GroupError::InvalidSessionTimeout => 26,
            GroupError::RebalanceInProgress => 27,
            GroupError::IllegalGeneration => 22,
            GroupError::InconsistentGroupProtocol => 23,
            GroupError::MemberIdRequired => 79,
            GroupError::GroupMaxSizeReached => 81,
            GroupError::FencedInstanceId => 82,
            GroupError::CoordinatorNotAvailable => 15,
        }
    }
}

/// Limits from the broker config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupConfig {
    /// `group.min.session.timeout.ms`.
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`.
    pub max_session_timeout_ms: i32,
    /// `group.initial.rebalance.delay.ms`.
    pub initial_rebalance_delay_ms: i32,
    /// `group.max.size`.
    pub max_size: usize,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            initial_rebalance_delay_ms: 3_000,
            max_size: i32::MAX as usize,
        }
    }
}

/// A JoinGroup as the machine sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinRequest {
    /// Group id.
    pub group_id: String,
    /// Member id ("" on first join).
    pub member_id: String,
    /// Static membership id.
    pub group_instance_id: Option<String>,
    /// Client id (prefix of generated member ids).
    pub client_id: String,
    /// Client host, as Kafka reports it ("/1.2.3.4").
    pub client_host: String,
    /// Session timeout.
    pub session_timeout_ms: i32,
    /// Rebalance timeout (v0: the session timeout).
    pub rebalance_timeout_ms: i32,
    /// Protocol type.
    pub protocol_type: String,
    /// Supported protocols with their metadata, most preferred first.
    pub protocols: Vec<(String, Vec<u8>)>,
    /// Whether the client handles MEMBER_ID_REQUIRED (JoinGroup v4+).
    pub require_known_member_id: bool,
}

/// A member as JoinGroup reports it to the leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedMember {
    /// Member id.
    pub member_id: String,
    /// Static membership id.
    pub group_instance_id: Option<String>,
    /// Metadata for the chosen protocol.
    pub metadata: Vec<u8>,
}

/// The answer to a JoinGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinResult {
    /// Error, if any (MEMBER_ID_REQUIRED carries `member_id`).
    pub error: Option<GroupError>,
    /// Generation.
    pub generation: i32,
    /// Protocol type.
    pub protocol_type: Option<String>,
    /// Chosen protocol.
    pub protocol_name: Option<String>,
    /// Leader member id.
    pub leader: String,
    /// This member's id.
    pub member_id: String,
    /// All members (only for the leader).
    pub members: Vec<JoinedMember>,
}

impl JoinResult {
    fn error(error: GroupError, member_id: &str) -> JoinResult {
        JoinResult {
            error: Some(error),
            generation: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id: member_id.to_string(),
            members: Vec::new(),
        }
    }
}

/// The answer to a SyncGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncResult {
    /// Error, if any.
    pub error: Option<GroupError>,
    /// Protocol type.
    pub protocol_type: Option<String>,
    /// Chosen protocol.
    pub protocol_name: Option<String>,
    /// This member's assignment.
    pub assignment: Vec<u8>,
}

impl SyncResult {
    fn error(error: GroupError) -> SyncResult {
        SyncResult { error: Some(error), protocol_type: None, protocol_name: None, assignment: Vec::new() }
    }
}

/// Something the runtime must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Answer a parked JoinGroup.
    Join(RequestId, JoinResult),
    /// Answer a parked SyncGroup.
    Sync(RequestId, SyncResult),
    /// Write the group's metadata to `__consumer_offsets` (before answering
    /// the syncs that follow it in the same effect list).
    Persist(String, GroupValue),
    /// A member left the group (for the coordinator's log).
    Removed {
        /// The group.
        group: String,
        /// The member that left.
        member_id: String,
        /// Its `group.instance.id`, for a static member.
        instance_id: Option<String>,
        /// Why it left.
        reason: Departure,
    },
}

/// Why a member left a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Departure {
    /// It sent LeaveGroup.
    Left,
    /// No heartbeat within its session timeout.
    SessionTimeout,
    /// It did not rejoin before the rebalance deadline.
    RebalanceTimeout,
}

impl std::fmt::Display for Departure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Departure::Left => "left the group",
            Departure::SessionTimeout => "session timeout",
            Departure::RebalanceTimeout => "did not rejoin before the rebalance deadline",
        })
    }
}

#[derive(Debug, Clone)]
struct Member {
    id: String,
    instance_id: Option<String>,
    client_id: String,
    client_host: String,
    session_timeout_ms: i32,
    rebalance_timeout_ms: i32,
    protocols: Vec<(String, Vec<u8>)>,
    assignment: Vec<u8>,
    awaiting_join: Option<RequestId>,
    awaiting_sync: Option<RequestId>,
    /// When the session expires unless the member heartbeats.
    expires_at_ms: u64,
    is_new: bool,
}

impl Member {
    fn metadata_for(&self, protocol: &str) -> Vec<u8> {
        self.protocols.iter().find(|(n, _)| n == protocol).map(|(_, m)| m.clone()).unwrap_or_default()
    }

    fn same_protocols(&self, other: &[(String, Vec<u8>)]) -> bool {
        self.protocols == other
    }
}

/// One classic group.
#[derive(Debug, Clone)]
pub struct ClassicGroup {
    id: String,
    state: GroupState,
    protocol_type: Option<String>,
    protocol_name: Option<String>,
    generation: i32,
    leader: Option<String>,
    members: BTreeMap<String, Member>,
    static_members: HashMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, with their expiry.
    pending: HashMap<String, u64>,
    /// When the current join phase ends regardless of stragglers.
    rebalance_deadline_ms: Option<u64>,
    /// During the initial delayed join, the latest the delay may extend to.
    initial_join_limit_ms: Option<u64>,
    state_timestamp_ms: i64,
}

/// What DescribeGroups reports about a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    /// Member id.
    pub member_id: String,
    /// Static membership id.
    pub group_instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Metadata of the chosen protocol.
    pub metadata: Vec<u8>,
    /// Current assignment.
    pub assignment: Vec<u8>,
}

/// What DescribeGroups reports about a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// State name.
    pub state: GroupState,
    /// Protocol type ("" if none).
    pub protocol_type: String,
    /// Chosen protocol ("" if none).
    pub protocol: String,
    /// Members (only in a state where they have protocols chosen).
    pub members: Vec<MemberDescription>,
}

impl ClassicGroup {
    /// A new, empty group.
    pub fn new(id: &str) -> ClassicGroup {
        ClassicGroup {
            id: id.to_string(),
            state: GroupState::Empty,
            protocol_type: None,
            protocol_name: None,
            generation: 0,
            leader: None,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            pending: HashMap::new(),
            rebalance_deadline_ms: None,
            initial_join_limit_ms: None,
            state_timestamp_ms: -1,
        }
    }

    /// Restores a group from its persisted metadata (coordinator load). Members
    /// get a fresh session; those that do not heartbeat in time expire.
    pub fn restore(id: &str, value: &GroupValue, now_ms: u64, wall_ms: i64) -> ClassicGroup {
        let mut g = ClassicGroup::new(id);
        g.generation = value.generation;
        g.protocol_type = (!value.protocol_type.is_empty()).then(|| value.protocol_type.clone());
        g.protocol_name = value.protocol.clone();
        g.leader = value.leader.clone();
        g.state_timestamp_ms = wall_ms;
        for m in &value.members {
            let member = Member {
                id: m.member_id.clone(),
                instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                session_timeout_ms: m.session_timeout_ms,
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                protocols: vec![(value.protocol.clone().unwrap_or_default(), m.subscription.clone())],
                assignment: m.assignment.clone(),
                awaiting_join: None,
                awaiting_sync: None,
                expires_at_ms: now_ms + m.session_timeout_ms.max(0) as u64,
                is_new: false,
            };
            if let Some(instance) = &member.instance_id {
                g.static_members.insert(instance.clone(), member.id.clone());
            }
            g.members.insert(member.id.clone(), member);
        }
        g.state = if g.members.is_empty() { GroupState::Empty } else { GroupState::Stable };
        g
    }

    /// The group id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Current state.
    pub fn state(&self) -> GroupState {
        self.state
    }

    /// Current generation.
    pub fn generation(&self) -> i32 {
        self.generation
    }

    /// Protocol type, if chosen.
    pub fn protocol_type(&self) -> Option<&str> {
        self.protocol_type.as_deref()
    }

    /// Whether `member_id` is a member.
    pub fn has_member(&self, member_id: &str) -> bool {
        self.members.contains_key(member_id)
    }

    /// Number of members.
    pub fn member_count(&self) -> usize {
        self.members.len()
    }

    /// For DescribeGroups.
    pub fn describe(&self) -> GroupDescription {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let show_members =
            matches!(self.state, GroupState::Stable | GroupState::CompletingRebalance | GroupState::PreparingRebalance);
        GroupDescription {
            state: self.state,
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            protocol: if self.state == GroupState::Stable || self.state == GroupState::CompletingRebalance {
                protocol.clone()
            } else {
                String::new()
            },
            members: if show_members {
                self.members
                    .values()
                    .map(|m| MemberDescription {
                        member_id: m.id.clone(),
                        group_instance_id: m.instance_id.clone(),
                        client_id: m.client_id.clone(),
                        client_host: m.client_host.clone(),
                        metadata: m.metadata_for(&protocol),
                        assignment: if self.state == GroupState::Stable { m.assignment.clone() } else { Vec::new() },
                    })
                    .collect()
            } else {
                Vec::new()
            },
        }
    }

    /// The persisted form of the group.
    pub fn to_value(&self) -> GroupValue {
        let protocol = self.protocol_name.clone();
        GroupValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: protocol.clone(),
            leader: self.leader.clone(),
            current_state_timestamp: self.state_timestamp_ms,
            members: self
                .members
                .values()
                .map(|m| MemberValue {
                    member_id: m.id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: m.metadata_for(protocol.as_deref().unwrap_or_default()),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    fn set_state(&mut self, state: GroupState, wall_ms: i64) {
        self.state = state;
        self.state_timestamp_ms = wall_ms;
    }

    /// Protocols every member (and the candidate `protocols`, if given) supports.
    fn common_protocols(&self, candidate: Option<&[(String, Vec<u8>)]>) -> HashSet<String> {
        let mut sets =
            self.members.values().map(|m| m.protocols.iter().map(|(n, _)| n.clone()).collect::<HashSet<_>>());
        let mut common: Option<HashSet<String>> = sets.next();
        for s in sets {
            if let Some(c) = common.as_mut() {
                c.retain(|p| s.contains(p));
            }
        }
        match (common, candidate) {
            (Some(mut c), Some(cand)) => {
                c.retain(|p| cand.iter().any(|(n, _)| n == p));
                c
            }
            (Some(c), None) => c,
            (None, Some(cand)) => cand.iter().map(|(n, _)| n.clone()).collect(),
            (None, None) => HashSet::new(),
        }
    }

    /// Picks the protocol most members prefer among those all support.
    fn select_protocol(&self) -> Option<String> {
        let candidates = self.common_protocols(None);
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some((name, _)) = m.protocols.iter().find(|(n, _)| candidates.contains(n)) {
                *votes.entry(name.as_str()).or_default() += 1;
            }
        }
        // Most votes wins; ties go to the first member's preference order.
        let first = self.members.values().next()?;
        let best = votes.values().copied().max()?;
        first.protocols.iter().map(|(n, _)| n.as_str()).find(|n| votes.get(n) == Some(&best)).map(str::to_string)
    }

    /// Whether `instance_id` belongs to a different member than `member_id`
    /// (a zombie of a static member that has rejoined).
    fn is_fenced(&self, member_id: &str, instance_id: Option<&str>) -> bool {
        instance_id.is_some_and(|instance| self.static_members.get(instance).is_some_and(|known| known != member_id))
    }

    fn all_members_joined(&self) -> bool {
        self.pending.is_empty() && self.members.values().all(|m| m.awaiting_join.is_some())
    }

    fn prepare_rebalance(&mut self, now_ms: u64, wall_ms: i64, config: &GroupConfig, effects: &mut Vec<Effect>) {
        let rebalance_timeout = self.members.values().map(|m| m.rebalance_timeout_ms.max(0) as u64).max().unwrap_or(0);
        if self.state == GroupState::Empty && config.initial_rebalance_delay_ms > 0 {
            let delay = config.initial_rebalance_delay_ms as u64;
            self.rebalance_deadline_ms = Some(now_ms + delay.min(rebalance_timeout.max(delay)));
            self.initial_join_limit_ms = Some(now_ms + rebalance_timeout.max(delay));
        } else {
            self.rebalance_deadline_ms = Some(now_ms + rebalance_timeout);
            self.initial_join_limit_ms = None;
        }
        // Members parked in SyncGroup (waiting for the leader's assignment)
        // learn that the generation is over and rejoin, as with Kafka.
        for m in self.members.values_mut() {
            if let Some(req) = m.awaiting_sync.take() {
                effects.push(Effect::Sync(req, SyncResult::error(GroupError::RebalanceInProgress)));
            }
        }
        self.set_state(GroupState::PreparingRebalance, wall_ms);
    }

    /// Handles a JoinGroup.
    pub fn join(
        &mut self,
        id: RequestId,
        req: JoinRequest,
        now_ms: u64,
        wall_ms: i64,
        config: &GroupConfig,
        new_member_id: &mut dyn FnMut() -> String,
    ) -> Vec<Effect> {
        let mut effects = Vec::new();
        if req.session_timeout_ms < config.min_session_timeout_ms
            || req.session_timeout_ms > config.max_session_timeout_ms
        {
            effects.push(Effect::Join(id, JoinResult::error(GroupError::InvalidSessionTimeout, &req.member_id)));
            return effects;
        }
        if self.state == GroupState::Dead {
            effects.push(Effect::Join(id, JoinResult::error(GroupError::CoordinatorNotAvailable, &req.member_id)));
            return effects;
        }
        let protocols_fit = if self.members.is_empty() {
            !req.protocol_type.is_empty() && !req.protocols.is_empty()
        } else {
            self.protocol_type.as_deref().is_none_or(|t| t == req.protocol_type)
                && !self.common_protocols(Some(&req.protocols)).is_empty()
        };
        if !protocols_fit {
            effects.push(Effect::Join(id, JoinResult::error(GroupError::InconsistentGroupProtocol, &req.member_id)));
            return effects;
        }

        if req.member_id.is_empty() {
            self.join_unknown_member(id, req, now_ms, wall_ms, config, new_member_id, &mut effects);
        } else {
            self.join_known_member(id, req, now_ms, wall_ms, config, &mut effects);
        }
        self.maybe_complete_join(now_ms, wall_ms, &mut effects);
        effects
    }

    #[allow(clippy::too_many_arguments)]
    fn join_unknown_member(
        &mut self,
        id: RequestId,
        req: JoinRequest,
        now_ms: u64,
        wall_ms: i64,
        config: &GroupConfig,
        new_member_id: &mut dyn FnMut() -> String,
        effects: &mut Vec<Effect>,
    ) {
        let member_id = format!("{}-{}", req.client_id, new_member_id());
        if let Some(instance) = req.group_instance_id.clone() {
            if let Some(old_id) = self.static_members.get(&instance).cloned() {
                // A static member comes back under a new member id: fence the old id.
                self.replace_static_member(&old_id, &member_id, effects);
                if let Some(m) = self.members.get_mut(&member_id) {
                    m.expires_at_ms = now_ms + req.session_timeout_ms as u64;
                }
                let unchanged = self.members.get(&member_id).is_some_and(|m| m.same_protocols(&req.protocols));
                if self.state == GroupState::Stable && unchanged {
                    // Rejoining without a change: no rebalance; hand back the current generation.
                    let result = self.join_result_for(&member_id);
                    effects.push(Effect::Join(id, result));
                    return;
                }
                self.update_member(&member_id, &req, id, now_ms);
                if self.state != GroupState::PreparingRebalance {
                    self.prepare_rebalance(now_ms, wall_ms, config, effects);
                }
                return;
            }
        } else if req.require_known_member_id {
            self.pending.insert(member_id.clone(), now_ms + req.session_timeout_ms as u64);
            effects.push(Effect::Join(id, JoinResult::error(GroupError::MemberIdRequired, &member_id)));
            return;
        }
        if self.members.len() >= config.max_size {
            effects.push(Effect::Join(id, JoinResult::error(GroupError::GroupMaxSizeReached, &member_id)));
            return;
        }
        self.add_member(member_id, &req, id, now_ms, wall_ms, config, effects);
    }

    fn join_known_member(
        &mut self,
        id: RequestId,
        req: JoinRequest,
        now_ms: u64,
        wall_ms: i64,
        config: &GroupConfig,
        effects: &mut Vec<Effect>,
    ) {
        let member_id = req.member_id.clone();
        if self.pending.remove(&member_id).is_some() {
            if self.members.len() >= config.max_size {
                effects.push(Effect::Join(id, JoinResult::error(GroupError::GroupMaxSizeReached, &member_id)));
                return;
            }
            self.add_member(member_id, &req, id, now_ms, wall_ms, config, effects);
            return;
        }
        if self.is_fenced(&member_id, req.group_instance_id.as_deref()) {
            effects.push(Effect::Join(id, JoinResult::error(GroupError::FencedInstanceId, &member_id)));
            return;
        }
        let Some(member) = self.members.get(&member_id) else {
            effects.push(Effect::Join(id, JoinResult::error(GroupError::UnknownMemberId, &member_id)));
            return;
        };
        let unchanged = member.same_protocols(&req.protocols);
        match self.state {
            GroupState::PreparingRebalance => self.update_member(&member_id, &req, id, now_ms),
            GroupState::CompletingRebalance if unchanged => {
                // A retried join: answer with the generation just formed.
                effects.push(Effect::Join(id, self.join_result_for(&member_id)));
            }
            GroupState::Stable if unchanged && self.leader.as_deref() != Some(member_id.as_str()) => {
                effects.push(Effect::Join(id, self.join_result_for(&member_id)));
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.update_member(&member_id, &req, id, now_ms);
                self.prepare_rebalance(now_ms, wall_ms, config, effects);
            }
            GroupState::Empty | GroupState::Dead => {
                effects.push(Effect::Join(id, JoinResult::error(GroupError::UnknownMemberId, &member_id)));
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn add_member(
        &mut self,
        member_id: String,
        req: &JoinRequest,
        id: RequestId,
        now_ms: u64,
        wall_ms: i64,
        config: &GroupConfig,
        effects: &mut Vec<Effect>,
    ) {
        if self.members.is_empty() {
            self.protocol_type = Some(req.protocol_type.clone());
        }
        if let Some(instance) = &req.group_instance_id {
            self.static_members.insert(instance.clone(), member_id.clone());
        }
        self.members.insert(
            member_id.clone(),
            Member {
                id: member_id,
                instance_id: req.group_instance_id.clone(),
                client_id: req.client_id.clone(),
                client_host: req.client_host.clone(),
                session_timeout_ms: req.session_timeout_ms,
                rebalance_timeout_ms: req.rebalance_timeout_ms,
                protocols: req.protocols.clone(),
                assignment: Vec::new(),
                awaiting_join: Some(id),
                awaiting_sync: None,
                expires_at_ms: now_ms + req.session_timeout_ms as u64,
                is_new: true,
            },
        );
        match self.state {
            GroupState::PreparingRebalance => {
                // During the initial delay, each newcomer extends the wait (up to the limit).
                if let (Some(limit), Some(deadline)) = (self.initial_join_limit_ms, self.rebalance_deadline_ms) {
                    let extended = (now_ms + config.initial_rebalance_delay_ms.max(0) as u64).min(limit);
                    self.rebalance_deadline_ms = Some(deadline.max(extended));
                }
            }
            _ => self.prepare_rebalance(now_ms, wall_ms, config, effects),
        }
    }

    fn update_member(&mut self, member_id: &str, req: &JoinRequest, id: RequestId, now_ms: u64) {
        if let Some(m) = self.members.get_mut(member_id) {
            m.protocols = req.protocols.clone();
            m.session_timeout_ms = req.session_timeout_ms;
            m.rebalance_timeout_ms = req.rebalance_timeout_ms;
            m.client_id = req.client_id.clone();
            m.client_host = req.client_host.clone();
            m.awaiting_join = Some(id);
            m.expires_at_ms = now_ms + req.session_timeout_ms as u64;
        }
    }

    /// Moves a static member to a new member id; the old id's parked requests
    /// are answered FENCED_INSTANCE_ID.
    fn replace_static_member(&mut self, old_id: &str, new_id: &str, effects: &mut Vec<Effect>) {
        let Some(mut member) = self.members.remove(old_id) else {
            return;
        };
        if let Some(req) = member.awaiting_join.take() {
            effects.push(Effect::Join(req, JoinResult::error(GroupError::FencedInstanceId, old_id)));
        }
        if let Some(req) = member.awaiting_sync.take() {
            effects.push(Effect::Sync(req, SyncResult::error(GroupError::FencedInstanceId)));
        }
        member.id = new_id.to_string();
        if let Some(instance) = &member.instance_id {
            self.static_members.insert(instance.clone(), new_id.to_string());
        }
        if self.leader.as_deref() == Some(old_id) {
            self.leader = Some(new_id.to_string());
        }
        self.members.insert(new_id.to_string(), member);
    }

    fn join_result_for(&self, member_id: &str) -> JoinResult {
        let protocol = self.protocol_name.clone();
        let leader = self.leader.clone().unwrap_or_default();
        let members = if leader == member_id {
            self.members
                .values()
                .map(|m| JoinedMember {
                    member_id: m.id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    metadata: m.metadata_for(protocol.as_deref().unwrap_or_default()),
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinResult {
            error: None,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: protocol,
            leader,
            member_id: member_id.to_string(),
            members,
        }
    }

    fn maybe_complete_join(&mut self, now_ms: u64, wall_ms: i64, effects: &mut Vec<Effect>) {
        if self.state != GroupState::PreparingRebalance {
            return;
        }
        let deadline_passed = self.rebalance_deadline_ms.is_some_and(|d| now_ms >= d);
        // During the initial delay only the deadline completes the join.
        let early = self.initial_join_limit_ms.is_none() && self.all_members_joined();
        if !(deadline_passed || early) {
            return;
        }
        // Members that did not rejoin in time leave the group.
        let stragglers: Vec<String> =
            self.members.values().filter(|m| m.awaiting_join.is_none()).map(|m| m.id.clone()).collect();
        for id in stragglers {
            self.remove_member(&id, Departure::RebalanceTimeout, effects);
        }
        self.pending.clear();
        self.rebalance_deadline_ms = None;
        self.initial_join_limit_ms = None;
        self.generation += 1;
        if self.members.is_empty() {
            self.protocol_name = None;
            self.leader = None;
            self.set_state(GroupState::Empty, wall_ms);
            effects.push(Effect::Persist(self.id.clone(), self.to_value()));
            return;
        }
        self.protocol_name = self.select_protocol();
        if self.leader.as_ref().is_none_or(|l| !self.members.contains_key(l)) {
            self.leader = self.members.keys().next().cloned();
        }
        self.set_state(GroupState::CompletingRebalance, wall_ms);
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for member_id in ids {
            let result = self.join_result_for(&member_id);
            if let Some(m) = self.members.get_mut(&member_id) {
                m.is_new = false;
                m.expires_at_ms = now_ms + m.session_timeout_ms as u64;
                if let Some(req) = m.awaiting_join.take() {
                    effects.push(Effect::Join(req, result));
                }
            }
        }
    }

    fn remove_member(&mut self, member_id: &str, reason: Departure, effects: &mut Vec<Effect>) {
        if let Some(m) = self.members.remove(member_id) {
            effects.push(Effect::Removed {
                group: self.id.clone(),
                member_id: m.id.clone(),
                instance_id: m.instance_id.clone(),
                reason,
            });
            if let Some(instance) = &m.instance_id
                && self.static_members.get(instance).is_some_and(|id| id == member_id)
            {
                self.static_members.remove(instance);
            }
            if let Some(req) = m.awaiting_join {
                effects.push(Effect::Join(req, JoinResult::error(GroupError::UnknownMemberId, member_id)));
            }
            if let Some(req) = m.awaiting_sync {
                effects.push(Effect::Sync(req, SyncResult::error(GroupError::UnknownMemberId)));
            }
        }
        if self.leader.as_deref() == Some(member_id) {
            self.leader = self.members.keys().next().cloned();
        }
    }

    /// Handles a SyncGroup.
    #[allow(clippy::too_many_arguments)]
    pub fn sync(
        &mut self,
        id: RequestId,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        assignments: Vec<(String, Vec<u8>)>,
        now_ms: u64,
        wall_ms: i64,
    ) -> Vec<Effect> {
        let fail = |e| vec![Effect::Sync(id, SyncResult::error(e))];
        if self.is_fenced(member_id, instance_id) {
            return fail(GroupError::FencedInstanceId);
        }
        if !self.members.contains_key(member_id) {
            return fail(GroupError::UnknownMemberId);
        }
        if generation != self.generation {
            return fail(GroupError::IllegalGeneration);
        }
        if protocol_type.is_some_and(|t| Some(t) != self.protocol_type.as_deref())
            || protocol_name.is_some_and(|n| Some(n) != self.protocol_name.as_deref())
        {
            return fail(GroupError::InconsistentGroupProtocol);
        }
        match self.state {
            GroupState::Empty | GroupState::Dead => fail(GroupError::UnknownMemberId),
            GroupState::PreparingRebalance => fail(GroupError::RebalanceInProgress),
            GroupState::Stable => {
                let m = &self.members[member_id];
                vec![Effect::Sync(id, self.sync_result(m))]
            }
            GroupState::CompletingRebalance => {
                if let Some(m) = self.members.get_mut(member_id) {
                    m.awaiting_sync = Some(id);
                    m.expires_at_ms = now_ms + m.session_timeout_ms as u64;
                }
                if self.leader.as_deref() != Some(member_id) {
                    return Vec::new();
                }
                let given: HashMap<String, Vec<u8>> = assignments.into_iter().collect();
                for m in self.members.values_mut() {
                    m.assignment = given.get(&m.id).cloned().unwrap_or_default();
                }
                self.set_state(GroupState::Stable, wall_ms);
                let mut effects = vec![Effect::Persist(self.id.clone(), self.to_value())];
                let answers: Vec<(RequestId, SyncResult)> = self
                    .members
                    .values()
                    .filter_map(|m| m.awaiting_sync.map(|req| (req, self.sync_result(m))))
                    .collect();
                for m in self.members.values_mut() {
                    m.awaiting_sync = None;
                }
                effects.extend(answers.into_iter().map(|(req, r)| Effect::Sync(req, r)));
                effects
            }
        }
    }

    fn sync_result(&self, m: &Member) -> SyncResult {
        SyncResult {
            error: None,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            assignment: m.assignment.clone(),
        }
    }

    /// Handles a Heartbeat: `Ok(())` or the error to answer.
    pub fn heartbeat(
        &mut self,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
        now_ms: u64,
    ) -> Result<(), GroupError> {
        if self.is_fenced(member_id, instance_id) {
            return Err(GroupError::FencedInstanceId);
        }
        if matches!(self.state, GroupState::Empty | GroupState::Dead) || !self.members.contains_key(member_id) {
            return Err(GroupError::UnknownMemberId);
        }
        if generation != self.generation {
            return Err(GroupError::IllegalGeneration);
        }
        if let Some(m) = self.members.get_mut(member_id) {
            m.expires_at_ms = now_ms + m.session_timeout_ms as u64;
        }
        match self.state {
            GroupState::PreparingRebalance => Err(GroupError::RebalanceInProgress),
            _ => Ok(()),
        }
    }

    /// Handles one member of a LeaveGroup.
    pub fn leave(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        now_ms: u64,
        wall_ms: i64,
        config: &GroupConfig,
    ) -> (Result<(), GroupError>, Vec<Effect>) {
        let mut effects = Vec::new();
        let resolved = match instance_id {
            Some(instance) => match self.static_members.get(instance) {
                Some(known) if member_id.is_empty() || known == member_id => known.clone(),
                Some(_) => return (Err(GroupError::FencedInstanceId), effects),
                None => return (Err(GroupError::UnknownMemberId), effects),
            },
            None => member_id.to_string(),
        };
        if self.pending.remove(&resolved).is_some() {
            self.maybe_complete_join(now_ms, wall_ms, &mut effects);
            return (Ok(()), effects);
        }
        if !self.members.contains_key(&resolved) {
            return (Err(GroupError::UnknownMemberId), effects);
        }
        self.remove_member(&resolved, Departure::Left, &mut effects);
        self.after_departure(now_ms, wall_ms, config, &mut effects);
        (Ok(()), effects)
    }

    fn after_departure(&mut self, now_ms: u64, wall_ms: i64, config: &GroupConfig, effects: &mut Vec<Effect>) {
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                if self.members.is_empty() {
                    // Nobody left to rebalance: the group is empty at the next generation.
                    self.generation += 1;
                    self.protocol_name = None;
                    self.leader = None;
                    self.set_state(GroupState::Empty, wall_ms);
                    effects.push(Effect::Persist(self.id.clone(), self.to_value()));
                } else {
                    self.prepare_rebalance(now_ms, wall_ms, config, effects);
                    self.maybe_complete_join(now_ms, wall_ms, effects);
                }
            }
            GroupState::PreparingRebalance => self.maybe_complete_join(now_ms, wall_ms, effects),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    /// Expires sessions and completes joins whose deadline passed.
    pub fn tick(&mut self, now_ms: u64, wall_ms: i64, config: &GroupConfig) -> Vec<Effect> {
        let mut effects = Vec::new();
        self.pending.retain(|_, expires| *expires > now_ms);
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| m.awaiting_join.is_none() && m.expires_at_ms <= now_ms)
            .map(|m| m.id.clone())
            .collect();
        for id in &expired {
            self.remove_member(id, Departure::SessionTimeout, &mut effects);
        }
        if !expired.is_empty() {
            self.after_departure(now_ms, wall_ms, config, &mut effects);
        }
        self.maybe_complete_join(now_ms, wall_ms, &mut effects);
        effects
    }

    /// The earliest time [`ClassicGroup::tick`] has something to do.
    pub fn next_deadline(&self) -> Option<u64> {
        let sessions = self.members.values().filter(|m| m.awaiting_join.is_none()).map(|m| m.expires_at_ms);
        let pending = self.pending.values().copied();
        sessions.chain(pending).chain(self.rebalance_deadline_ms).min()
    }

    /// Marks the group deleted (DeleteGroups on an empty group).
    pub fn mark_dead(&mut self, wall_ms: i64) {
        self.set_state(GroupState::Dead, wall_ms);
    }
}

#[cfg(test)]
mod tests;
