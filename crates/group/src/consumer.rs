//! The consumer group protocol (KIP-848, ConsumerGroupHeartbeat) as a
//! sans-IO state machine.
//!
//! ```text
//!  heartbeat ──▶ 1. member created/updated ── subscription or topic metadata changed ──▶ group epoch + 1
//!                2. group epoch > assignment epoch ──▶ assignor computes a new target assignment
//!                3. member reconciled towards its target:
//!                     owns partitions the target drops ──▶ UNREVOKED_PARTITIONS (same epoch)
//!                                                          until the member stops reporting them
//!                     target partitions still owned by others ──▶ UNRELEASED_PARTITIONS (new epoch,
//!                                                          gets them once released)
//!                     otherwise ──▶ STABLE at the assignment epoch
//!  tick ──▶ session expiry (group.consumer.session.timeout.ms) and revocations that
//!           took longer than the member's rebalance timeout fence the member
//! ```
//!
//! A partition is given to a member only when no other member owns it
//! (assigned or pending revocation), so no partition ever has two owners.
//!
//! Every change is also returned as records of `__consumer_offsets` (key
//! types 3 and 5-8, see [`crate::records`]); [`ConsumerGroup::replay`]
//! rebuilds the same group from them. Time is a millisecond counter passed in.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::assignor::{AssignmentInput, AssignorKind, assign};
use crate::records::{ConsumerCurrentValue, ConsumerGroupValue, ConsumerMemberValue, ConsumerValue, OffsetsKey};

/// A topic id.
pub type TopicUuid = [u8; 16];

/// Partitions by topic id.
pub type Assignment = BTreeMap<TopicUuid, BTreeSet<i32>>;

/// Most compiled subscription regexes a group keeps.
const REGEX_CACHE_MAX: usize = 64;

/// Member epoch of a leave request.
pub const LEAVE_EPOCH: i32 = -1;
/// Member epoch of a static member's temporary leave.
pub const STATIC_LEAVE_EPOCH: i32 = -2;

/// Where a member is in reconciling towards its target assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    /// Owns exactly its target assignment.
    Stable,
    /// Must give up partitions before it moves to the next epoch.
    UnrevokedPartitions,
    /// At the new epoch, waiting for partitions other members still own.
    UnreleasedPartitions,
    /// A state this code does not know (from a record of a newer broker).
    Unknown,
}

impl MemberState {
    /// The value stored in records.
    pub fn code(self) -> i8 {
        match self {
            MemberState::Stable => 0,
            MemberState::UnrevokedPartitions => 1,
            MemberState::UnreleasedPartitions => 2,
            MemberState::Unknown => 127,
        }
    }

    /// The state of a stored value.
    pub fn from_code(code: i8) -> MemberState {
        match code {
            0 => MemberState::Stable,
            1 => MemberState::UnrevokedPartitions,
            2 => MemberState::UnreleasedPartitions,
            _ => MemberState::Unknown,
        }
    }
}

/// Consumer group states, with Kafka's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerGroupState {
    /// No members.
    Empty,
    /// A new target assignment is due.
    Assigning,
    /// Some members have not reached the target assignment yet.
    Reconciling,
    /// Every member owns its target assignment.
    Stable,
    /// Deleted.
    Dead,
}

impl ConsumerGroupState {
    /// The name ListGroups, DescribeGroups and ConsumerGroupDescribe report.
    pub fn name(self) -> &'static str {
        match self {
            ConsumerGroupState::Empty => "Empty",
            ConsumerGroupState::Assigning => "Assigning",
            ConsumerGroupState::Reconciling => "Reconciling",
            ConsumerGroupState::Stable => "Stable",
            ConsumerGroupState::Dead => "Dead",
        }
    }
}

/// Errors of the consumer group protocol (Kafka error codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerError {
    /// 42
    InvalidRequest,
    /// 25
    UnknownMemberId,
    /// 69
    GroupIdNotFound,
    /// 81
    GroupMaxSizeReached,
    /// 82
    FencedInstanceId,
    /// 110
    FencedMemberEpoch,
    /// 111
    UnreleasedInstanceId,
    /// 112
    UnsupportedAssignor,
    /// 113
    StaleMemberEpoch,
    /// 128
    InvalidRegularExpression,
}

impl ConsumerError {
    /// The Kafka error code.
    pub fn code(self) -> i16 {
        match self {
            ConsumerError::InvalidRequest => 42,
            ConsumerError::UnknownMemberId => 25,
            ConsumerError::GroupIdNotFound => 69,
            ConsumerError::GroupMaxSizeReached => 81,
            ConsumerError::FencedInstanceId => 82,
            ConsumerError::FencedMemberEpoch => 110,
            ConsumerError::UnreleasedInstanceId => 111,
            ConsumerError::UnsupportedAssignor => 112,
            ConsumerError::StaleMemberEpoch => 113,
            ConsumerError::InvalidRegularExpression => 128,
        }
    }
}

/// An error with the message sent back to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The error.
    pub error: ConsumerError,
    /// Why, for the client's log.
    pub message: String,
}

fn fail<T>(error: ConsumerError, message: impl Into<String>) -> Result<T, Failure> {
    Err(Failure { error, message: message.into() })
}

/// Limits and defaults from the broker config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerConfig {
    /// `group.consumer.session.timeout.ms`.
    pub session_timeout_ms: i32,
    /// `group.consumer.heartbeat.interval.ms`.
    pub heartbeat_interval_ms: i32,
    /// `group.consumer.max.size`.
    pub max_size: usize,
    /// `group.consumer.assignors`; the first is the default.
    pub assignors: Vec<AssignorKind>,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 5_000,
            max_size: i32::MAX as usize,
            assignors: vec![AssignorKind::Uniform, AssignorKind::Range],
        }
    }
}

impl ConsumerConfig {
    fn assignor(&self, name: &str) -> Option<AssignorKind> {
        AssignorKind::from_name(name).filter(|k| self.assignors.contains(k))
    }

    fn default_assignor(&self) -> AssignorKind {
        self.assignors.first().copied().unwrap_or(AssignorKind::Uniform)
    }
}

/// A topic the groups can subscribe to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// Id.
    pub id: TopicUuid,
    /// Partition count.
    pub partitions: i32,
    /// Internal topics are never matched by a regex subscription.
    pub internal: bool,
}

/// The cluster's topics, as the groups see them.
#[derive(Debug, Clone, Default)]
pub struct TopicsView {
    by_name: BTreeMap<String, TopicInfo>,
    names: HashMap<TopicUuid, String>,
}

impl TopicsView {
    /// A view of these topics.
    pub fn new(topics: impl IntoIterator<Item = (String, TopicInfo)>) -> TopicsView {
        let by_name: BTreeMap<String, TopicInfo> = topics.into_iter().collect();
        let names = by_name.iter().map(|(n, t)| (t.id, n.clone())).collect();
        TopicsView { by_name, names }
    }

    /// A topic by name.
    pub fn get(&self, name: &str) -> Option<&TopicInfo> {
        self.by_name.get(name)
    }

    /// The name of a topic id.
    pub fn name_of(&self, id: &TopicUuid) -> Option<&str> {
        self.names.get(id).map(String::as_str)
    }
}

/// A ConsumerGroupHeartbeat as the machine sees it. `None` fields are
/// "unchanged since the last heartbeat".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeartbeatRequest {
    /// Member id (v1: chosen by the client; v0: empty on the first join).
    pub member_id: String,
    /// 0 to join, -1 to leave, -2 for a static member's temporary leave.
    pub member_epoch: i32,
    /// Static membership id.
    pub instance_id: Option<String>,
    /// Rack.
    pub rack_id: Option<String>,
    /// -1 when unchanged.
    pub rebalance_timeout_ms: i32,
    /// Subscribed topic names.
    pub subscribed_topic_names: Option<Vec<String>>,
    /// Subscribed topic regex (RE2/J syntax); "" means none.
    pub subscribed_topic_regex: Option<String>,
    /// Server-side assignor.
    pub server_assignor: Option<String>,
    /// Partitions the member owns now.
    pub owned: Option<Vec<(TopicUuid, Vec<i32>)>>,
    /// Client id (request header).
    pub client_id: String,
    /// Client host ("/1.2.3.4").
    pub client_host: String,
}

/// The answer to a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatResponse {
    /// Member id.
    pub member_id: String,
    /// The epoch to heartbeat with next.
    pub member_epoch: i32,
    /// How often to heartbeat.
    pub heartbeat_interval_ms: i32,
    /// The member's assignment, when it changed or the request was a full one.
    pub assignment: Option<Assignment>,
}

/// A record to append to `__consumer_offsets` (`None` value = tombstone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRecord {
    /// Key.
    pub key: OffsetsKey,
    /// Value.
    pub value: Option<ConsumerValue>,
}

/// One member of a consumer group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Member id.
    pub id: String,
    /// Static membership id.
    pub instance_id: Option<String>,
    /// Rack.
    pub rack_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Subscribed topic names.
    pub subscribed_topic_names: Vec<String>,
    /// Subscribed topic regex.
    pub subscribed_topic_regex: Option<String>,
    /// Rebalance timeout (ms).
    pub rebalance_timeout_ms: i32,
    /// Server-side assignor asked for.
    pub server_assignor: Option<String>,
    /// Current epoch.
    pub epoch: i32,
    /// Epoch before the last bump.
    pub previous_epoch: i32,
    /// Reconciliation state.
    pub state: MemberState,
    /// Partitions the member owns.
    pub assigned: Assignment,
    /// Partitions it must give up.
    pub pending_revocation: Assignment,
    session_deadline_ms: u64,
    rebalance_deadline_ms: Option<u64>,
}

impl Member {
    fn new(id: &str) -> Member {
        Member {
            id: id.to_string(),
            instance_id: None,
            rack_id: None,
            client_id: String::new(),
            client_host: String::new(),
            subscribed_topic_names: Vec::new(),
            subscribed_topic_regex: None,
            rebalance_timeout_ms: -1,
            server_assignor: None,
            epoch: 0,
            previous_epoch: 0,
            state: MemberState::Stable,
            assigned: Assignment::new(),
            pending_revocation: Assignment::new(),
            session_deadline_ms: 0,
            rebalance_deadline_ms: None,
        }
    }

    fn metadata_value(&self) -> ConsumerMemberValue {
        ConsumerMemberValue {
            instance_id: self.instance_id.clone(),
            rack_id: self.rack_id.clone(),
            client_id: self.client_id.clone(),
            client_host: self.client_host.clone(),
            subscribed_topic_names: self.subscribed_topic_names.clone(),
            subscribed_topic_regex: self.subscribed_topic_regex.clone(),
            rebalance_timeout_ms: self.rebalance_timeout_ms,
            server_assignor: self.server_assignor.clone(),
        }
    }

    fn current_value(&self) -> ConsumerCurrentValue {
        ConsumerCurrentValue {
            member_epoch: self.epoch,
            previous_member_epoch: self.previous_epoch,
            state: self.state.code(),
            assigned: to_value(&self.assigned),
            pending_revocation: to_value(&self.pending_revocation),
        }
    }

    fn same_assignment_state(&self, other: &Member) -> bool {
        self.epoch == other.epoch
            && self.previous_epoch == other.previous_epoch
            && self.state == other.state
            && self.assigned == other.assigned
            && self.pending_revocation == other.pending_revocation
    }

    fn is_reconciled_to(&self, epoch: i32) -> bool {
        self.state == MemberState::Stable && self.epoch == epoch
    }

    fn regex(&self) -> Option<&str> {
        self.subscribed_topic_regex.as_deref().filter(|r| !r.is_empty())
    }
}

/// Partitions by topic id as a record value.
pub fn to_value(a: &Assignment) -> Vec<(TopicUuid, Vec<i32>)> {
    a.iter().filter(|(_, ps)| !ps.is_empty()).map(|(t, ps)| (*t, ps.iter().copied().collect())).collect()
}

/// A record value as partitions by topic id.
pub fn from_value(v: &[(TopicUuid, Vec<i32>)]) -> Assignment {
    let mut a = Assignment::new();
    for (t, ps) in v {
        if !ps.is_empty() {
            a.entry(*t).or_default().extend(ps.iter().copied());
        }
    }
    a
}

/// Compiles a subscription regex the way it is matched: against the whole
/// topic name. `Err` carries the reason it is not a valid expression.
pub fn compile_regex(pattern: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(&format!("^(?:{pattern})$")).map_err(|e| e.to_string())
}

/// Checks a request before any group is looked up, by Kafka's rules.
/// `version` is the ConsumerGroupHeartbeat version.
pub fn validate_request(
    group_id: &str,
    req: &HeartbeatRequest,
    version: i16,
    config: &ConsumerConfig,
) -> Result<(), Failure> {
    use ConsumerError::InvalidRequest;
    if group_id.is_empty() {
        return fail(InvalidRequest, "GroupId can't be empty.");
    }
    if req.instance_id.as_deref().is_some_and(|s| s.trim().is_empty()) {
        return fail(InvalidRequest, "InstanceId can't be empty.");
    }
    if req.rack_id.as_deref().is_some_and(|s| s.trim().is_empty()) {
        return fail(InvalidRequest, "RackId can't be empty.");
    }
    if (version >= 1 || req.member_epoch != 0) && req.member_id.trim().is_empty() {
        return fail(InvalidRequest, "MemberId can't be empty.");
    }
    match req.member_epoch {
        0 => {
            if req.rebalance_timeout_ms == -1 {
                return fail(InvalidRequest, "RebalanceTimeoutMs must be provided in first request.");
            }
            if req.owned.as_ref().is_none_or(|o| !o.is_empty()) {
                return fail(InvalidRequest, "TopicPartitions must be empty when (re-)joining.");
            }
            if req.subscribed_topic_names.is_none() && req.subscribed_topic_regex.is_none() {
                return fail(
                    InvalidRequest,
                    "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining.",
                );
            }
        }
        STATIC_LEAVE_EPOCH if req.instance_id.is_none() => {
            return fail(InvalidRequest, "InstanceId can't be null.");
        }
        e if e < STATIC_LEAVE_EPOCH => return fail(InvalidRequest, "MemberEpoch is invalid."),
        _ => {}
    }
    if let Some(name) = &req.server_assignor
        && config.assignor(name).is_none()
    {
        let names: Vec<&str> = config.assignors.iter().map(|k| k.name()).collect();
        return fail(
            ConsumerError::UnsupportedAssignor,
            format!("ServerAssignor {name} is not supported. Supported assignors: {}.", names.join(", ")),
        );
    }
    if let Some(pattern) = req.subscribed_topic_regex.as_deref().filter(|r| !r.is_empty())
        && let Err(why) = compile_regex(pattern)
    {
        return fail(
            ConsumerError::InvalidRegularExpression,
            format!("SubscribedTopicRegex `{pattern}` is not a valid regular expression: {why}."),
        );
    }
    Ok(())
}

/// What ConsumerGroupDescribe reports about a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    /// The member as the group holds it.
    pub member: Member,
    /// Its target assignment.
    pub target: Assignment,
}

/// What ConsumerGroupDescribe reports about a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// State.
    pub state: ConsumerGroupState,
    /// Group epoch.
    pub epoch: i32,
    /// Target assignment epoch.
    pub assignment_epoch: i32,
    /// The assignor the group uses.
    pub assignor: &'static str,
    /// Members by id.
    pub members: Vec<MemberDescription>,
}

/// One consumer group.
#[derive(Debug, Clone)]
pub struct ConsumerGroup {
    id: String,
    epoch: i32,
    metadata_hash: i64,
    assignment_epoch: i32,
    targets: BTreeMap<String, Assignment>,
    members: BTreeMap<String, Member>,
    static_members: BTreeMap<String, String>,
    regexes: HashMap<String, Option<regex::Regex>>,
}

impl ConsumerGroup {
    /// A new, empty group.
    pub fn new(id: &str) -> ConsumerGroup {
        ConsumerGroup {
            id: id.to_string(),
            epoch: 0,
            metadata_hash: 0,
            assignment_epoch: 0,
            targets: BTreeMap::new(),
            members: BTreeMap::new(),
            static_members: BTreeMap::new(),
            regexes: HashMap::new(),
        }
    }

    /// The group id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The group epoch.
    pub fn epoch(&self) -> i32 {
        self.epoch
    }

    /// The target assignment epoch.
    pub fn assignment_epoch(&self) -> i32 {
        self.assignment_epoch
    }

    /// Number of members.
    pub fn member_count(&self) -> usize {
        self.members.len()
    }

    /// A member by id.
    pub fn member(&self, id: &str) -> Option<&Member> {
        self.members.get(id)
    }

    /// Members by id.
    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    /// A member's target assignment.
    pub fn target(&self, member: &str) -> Option<&Assignment> {
        self.targets.get(member)
    }

    /// The group state.
    pub fn state(&self) -> ConsumerGroupState {
        if self.members.is_empty() {
            ConsumerGroupState::Empty
        } else if self.epoch > self.assignment_epoch {
            ConsumerGroupState::Assigning
        } else if self.members.values().any(|m| !m.is_reconciled_to(self.assignment_epoch)) {
            ConsumerGroupState::Reconciling
        } else {
            ConsumerGroupState::Stable
        }
    }

    /// The assignor the members prefer (most asked for; ties and none: config order).
    pub fn preferred_assignor(&self, config: &ConsumerConfig) -> AssignorKind {
        let mut votes: BTreeMap<usize, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some(kind) = m.server_assignor.as_deref().and_then(|n| config.assignor(n))
                && let Some(rank) = config.assignors.iter().position(|k| *k == kind)
            {
                *votes.entry(rank).or_default() += 1;
            }
        }
        let best = votes.iter().max_by_key(|(rank, count)| (**count, std::cmp::Reverse(**rank))).map(|(r, _)| *r);
        best.and_then(|r| config.assignors.get(r).copied()).unwrap_or_else(|| config.default_assignor())
    }

    /// For ConsumerGroupDescribe.
    pub fn describe(&self, config: &ConsumerConfig) -> GroupDescription {
        GroupDescription {
            state: self.state(),
            epoch: self.epoch,
            assignment_epoch: self.assignment_epoch,
            assignor: self.preferred_assignor(config).name(),
            members: self
                .members
                .values()
                .map(|m| MemberDescription {
                    member: m.clone(),
                    target: self.targets.get(&m.id).cloned().unwrap_or_default(),
                })
                .collect(),
        }
    }

    /// Topic names the members subscribe to, by name or by regex (internal
    /// topics never match a regex), among the topics that exist.
    pub fn subscribed_topics(&mut self, topics: &TopicsView) -> BTreeSet<String> {
        let members: Vec<Member> = self.members.values().cloned().collect();
        let mut out = BTreeSet::new();
        for m in &members {
            out.extend(self.member_topics(m, topics));
        }
        out
    }

    fn compiled(&mut self, pattern: &str) -> Option<&regex::Regex> {
        // Members change regexes rarely; the cache only has to bound what they leave behind.
        if self.regexes.len() >= REGEX_CACHE_MAX && !self.regexes.contains_key(pattern) {
            self.regexes.clear();
        }
        self.regexes.entry(pattern.to_string()).or_insert_with(|| compile_regex(pattern).ok()).as_ref()
    }

    fn member_topics(&mut self, m: &Member, topics: &TopicsView) -> BTreeSet<String> {
        let mut out: BTreeSet<String> =
            m.subscribed_topic_names.iter().filter(|n| topics.get(n).is_some()).cloned().collect();
        if let Some(pattern) = m.regex()
            && let Some(re) = self.compiled(pattern)
        {
            out.extend(topics.by_name.iter().filter(|(n, t)| !t.internal && re.is_match(n)).map(|(n, _)| n.clone()));
        }
        out
    }

    fn hash_of(topics: &TopicsView, names: &BTreeSet<String>) -> i64 {
        // FNV-1a over (name, id, partition count) of every subscribed topic, in name order.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |bytes: &[u8]| {
            for b in bytes {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        };
        for name in names {
            if let Some(t) = topics.get(name) {
                eat(name.as_bytes());
                eat(&[0]);
                eat(&t.id);
                eat(&t.partitions.to_be_bytes());
            }
        }
        if names.is_empty() { 0 } else { h as i64 }
    }

    fn group_record(&self) -> GroupRecord {
        GroupRecord {
            key: OffsetsKey::ConsumerGroup { group: self.id.clone() },
            value: Some(ConsumerValue::Group(ConsumerGroupValue {
                epoch: self.epoch,
                metadata_hash: self.metadata_hash,
            })),
        }
    }

    fn member_record(&self, m: &Member) -> GroupRecord {
        GroupRecord {
            key: OffsetsKey::ConsumerMember { group: self.id.clone(), member: m.id.clone() },
            value: Some(ConsumerValue::Member(m.metadata_value())),
        }
    }

    fn current_record(&self, m: &Member) -> GroupRecord {
        GroupRecord {
            key: OffsetsKey::ConsumerCurrentAssignment { group: self.id.clone(), member: m.id.clone() },
            value: Some(ConsumerValue::Current(m.current_value())),
        }
    }

    /// Handles a heartbeat. On error nothing has changed. Records of every
    /// change come back either way (none on error).
    pub fn heartbeat(
        &mut self,
        req: &HeartbeatRequest,
        topics: &TopicsView,
        now_ms: u64,
        config: &ConsumerConfig,
    ) -> (Result<HeartbeatResponse, Failure>, Vec<GroupRecord>) {
        let mut records = Vec::new();
        let result = if req.member_epoch == LEAVE_EPOCH || req.member_epoch == STATIC_LEAVE_EPOCH {
            self.leave(req, &mut records)
        } else {
            self.regular_heartbeat(req, topics, now_ms, config, &mut records)
        };
        if result.is_err() {
            records.clear();
        }
        (result, records)
    }

    fn check_epoch(m: &Member, req: &HeartbeatRequest) -> Result<(), Failure> {
        let received = req.member_epoch;
        let subset = || {
            req.owned.as_ref().is_some_and(|owned| {
                owned
                    .iter()
                    .all(|(t, ps)| ps.is_empty() || m.assigned.get(t).is_some_and(|a| ps.iter().all(|p| a.contains(p))))
            })
        };
        if received > m.epoch || (received < m.epoch && (received != m.previous_epoch || !subset())) {
            return fail(
                ConsumerError::FencedMemberEpoch,
                format!(
                    "The consumer group member has epoch {received} but the group coordinator expects {}. \
                     The member must abandon all its partitions and rejoin.",
                    m.epoch
                ),
            );
        }
        Ok(())
    }

    /// Finds the member a regular heartbeat is about, or how it is new.
    /// Changes nothing.
    fn resolve(&self, req: &HeartbeatRequest, config: &ConsumerConfig) -> Result<Resolved, Failure> {
        let joining = req.member_epoch == 0;
        let full = |this: &ConsumerGroup| {
            if this.members.len() >= config.max_size {
                fail(
                    ConsumerError::GroupMaxSizeReached,
                    format!("The consumer group has reached its maximum capacity of {} members.", config.max_size),
                )
            } else {
                Ok(())
            }
        };
        let unknown = || {
            fail(
                ConsumerError::UnknownMemberId,
                format!("Member {} is not a member of group {}.", req.member_id, self.id),
            )
        };
        match &req.instance_id {
            None => match self.members.get(&req.member_id) {
                Some(_) if joining => Ok(Resolved::Rejoin),
                Some(m) => Self::check_epoch(m, req).map(|()| Resolved::Existing),
                None if joining => full(self).map(|()| Resolved::New),
                None => unknown(),
            },
            Some(instance) => {
                let holder = self.static_members.get(instance).and_then(|id| self.members.get(id));
                match holder {
                    None if joining => {
                        if self.members.contains_key(&req.member_id) {
                            Ok(Resolved::Rejoin)
                        } else {
                            full(self).map(|()| Resolved::New)
                        }
                    }
                    None => fail(ConsumerError::UnknownMemberId, format!("Instance id {instance} is unknown.")),
                    Some(m) if joining && m.id == req.member_id => Ok(Resolved::Rejoin),
                    Some(m) if joining => {
                        if m.epoch != STATIC_LEAVE_EPOCH {
                            return fail(
                                ConsumerError::UnreleasedInstanceId,
                                format!(
                                    "Static member {} with instance id {instance} cannot join the group because \
                                     the instance id is owned by member {}.",
                                    req.member_id, m.id
                                ),
                            );
                        }
                        Ok(Resolved::ReplaceStatic(m.id.clone()))
                    }
                    Some(m) if m.id != req.member_id => fail(
                        ConsumerError::FencedInstanceId,
                        format!(
                            "Static member {} with instance id {instance} was fenced by member {}.",
                            req.member_id, m.id
                        ),
                    ),
                    Some(m) => Self::check_epoch(m, req).map(|()| Resolved::Existing),
                }
            }
        }
    }

    fn regular_heartbeat(
        &mut self,
        req: &HeartbeatRequest,
        topics: &TopicsView,
        now_ms: u64,
        config: &ConsumerConfig,
        records: &mut Vec<GroupRecord>,
    ) -> Result<HeartbeatResponse, Failure> {
        let resolved = self.resolve(req, config)?;
        // From here on nothing fails.
        let (old, is_new) = match resolved {
            Resolved::Existing => {
                (self.members.get(&req.member_id).cloned().unwrap_or_else(|| Member::new(&req.member_id)), false)
            }
            Resolved::New => (Member::new(&req.member_id), true),
            Resolved::Rejoin => {
                // The client dropped everything it owned and starts over with
                // the same id: it keeps its subscription and target, and gets
                // its partitions again through reconciliation.
                let mut m = self.members.get(&req.member_id).cloned().unwrap_or_else(|| Member::new(&req.member_id));
                m.epoch = 0;
                m.previous_epoch = 0;
                m.state = MemberState::Stable;
                m.assigned.clear();
                m.pending_revocation.clear();
                m.rebalance_deadline_ms = None;
                self.members.insert(m.id.clone(), m.clone());
                records.push(self.current_record(&m));
                (m, false)
            }
            Resolved::ReplaceStatic(previous_id) => {
                // The instance comes back under a new member id: it takes over
                // the previous incarnation's assignment.
                let mut m = self.members.get(&previous_id).cloned().unwrap_or_else(|| Member::new(&req.member_id));
                let target = self.targets.get(&previous_id).cloned();
                self.remove_member(&previous_id, records);
                m.id = req.member_id.clone();
                m.epoch = 0;
                m.previous_epoch = 0;
                m.state = MemberState::Stable;
                m.pending_revocation.clear();
                m.rebalance_deadline_ms = None;
                self.members.insert(m.id.clone(), m.clone());
                if let Some(instance) = &m.instance_id {
                    self.static_members.insert(instance.clone(), m.id.clone());
                }
                records.push(self.member_record(&m));
                if let Some(target) = target {
                    records.push(GroupRecord {
                        key: OffsetsKey::ConsumerTargetMember { group: self.id.clone(), member: m.id.clone() },
                        value: Some(ConsumerValue::Target(to_value(&target))),
                    });
                    self.targets.insert(m.id.clone(), target);
                }
                records.push(self.current_record(&m));
                (m, false)
            }
        };

        // 1. The member with what this heartbeat changed.
        let mut updated = old.clone();
        if let Some(v) = &req.instance_id {
            updated.instance_id = Some(v.clone());
        }
        if let Some(v) = &req.rack_id {
            updated.rack_id = Some(v.clone());
        }
        if req.rebalance_timeout_ms != -1 {
            updated.rebalance_timeout_ms = req.rebalance_timeout_ms;
        }
        if let Some(v) = &req.server_assignor {
            updated.server_assignor = Some(v.clone());
        }
        if let Some(v) = &req.subscribed_topic_names {
            updated.subscribed_topic_names = v.clone();
        }
        if let Some(v) = &req.subscribed_topic_regex {
            updated.subscribed_topic_regex = (!v.is_empty()).then(|| v.clone());
        }
        updated.client_id = req.client_id.clone();
        updated.client_host = req.client_host.clone();
        let subscription_changed = is_new
            || updated.subscribed_topic_names != old.subscribed_topic_names
            || updated.subscribed_topic_regex != old.subscribed_topic_regex;
        if is_new || updated.metadata_value() != old.metadata_value() {
            records.push(self.member_record(&updated));
        }
        if let Some(instance) = &updated.instance_id {
            self.static_members.insert(instance.clone(), updated.id.clone());
        }
        self.members.insert(updated.id.clone(), updated.clone());

        // 2. A new group epoch when the subscriptions or their topics changed.
        let subscribed = self.subscribed_topics(topics);
        let hash = Self::hash_of(topics, &subscribed);
        if subscription_changed || hash != self.metadata_hash {
            self.epoch += 1;
            self.metadata_hash = hash;
            records.push(self.group_record());
        }

        // 3. A new target assignment when the group epoch moved past it.
        if self.epoch > self.assignment_epoch {
            self.compute_target(topics, config, records);
        }

        // 4. Reconcile the member towards its target.
        let mut member = self.members.get(&updated.id).cloned().unwrap_or(updated);
        if !member.is_reconciled_to(self.assignment_epoch) {
            let next = self.reconcile(&member, req.owned.as_deref());
            if !next.same_assignment_state(&member) {
                records.push(self.current_record(&next));
            }
            let entered_revocation = next.state == MemberState::UnrevokedPartitions
                && (member.state != MemberState::UnrevokedPartitions || member.epoch != next.epoch);
            member = Member {
                rebalance_deadline_ms: match next.state {
                    MemberState::UnrevokedPartitions if entered_revocation => {
                        Some(now_ms + next.rebalance_timeout_ms.max(0) as u64)
                    }
                    MemberState::UnrevokedPartitions => member.rebalance_deadline_ms,
                    _ => None,
                },
                ..next
            };
        }
        member.session_deadline_ms = now_ms + config.session_timeout_ms.max(0) as u64;
        let assignment_changed = member.assigned != old.assigned || is_new;
        self.members.insert(member.id.clone(), member.clone());

        let full_request = req.member_epoch == 0
            || (req.rebalance_timeout_ms != -1 && req.subscribed_topic_names.is_some() && req.owned.is_some());
        Ok(HeartbeatResponse {
            member_id: member.id.clone(),
            member_epoch: member.epoch,
            heartbeat_interval_ms: config.heartbeat_interval_ms,
            assignment: (full_request || assignment_changed).then(|| member.assigned.clone()),
        })
    }

    fn compute_target(&mut self, topics: &TopicsView, config: &ConsumerConfig, records: &mut Vec<GroupRecord>) {
        let kind = self.preferred_assignor(config);
        let members: Vec<Member> = self.members.values().cloned().collect();
        let mut subscriptions: BTreeMap<String, BTreeSet<TopicUuid>> = BTreeMap::new();
        let mut partitions = BTreeMap::new();
        for m in &members {
            let ids = self
                .member_topics(m, topics)
                .iter()
                .filter_map(|n| topics.get(n))
                .map(|t| {
                    partitions.insert(t.id, t.partitions);
                    t.id
                })
                .collect();
            subscriptions.insert(m.id.clone(), ids);
        }
        let input = AssignmentInput {
            subscriptions: subscriptions.iter().map(|(m, s)| (m.as_str(), s.clone())).collect(),
            partitions,
            previous: self.targets.iter().map(|(m, a)| (m.as_str(), a)).collect(),
        };
        let next = assign(kind, &input);
        for (member, target) in &next {
            if self.targets.get(member) != Some(target) {
                records.push(GroupRecord {
                    key: OffsetsKey::ConsumerTargetMember { group: self.id.clone(), member: member.clone() },
                    value: Some(ConsumerValue::Target(to_value(target))),
                });
            }
        }
        self.targets = next;
        self.assignment_epoch = self.epoch;
        records.push(GroupRecord {
            key: OffsetsKey::ConsumerTargetAssignment { group: self.id.clone() },
            value: Some(ConsumerValue::TargetEpoch(self.assignment_epoch)),
        });
    }

    /// Epoch of the member owning a partition (assigned or pending revocation).
    fn owner_epochs(&self) -> HashMap<(TopicUuid, i32), i32> {
        let mut out = HashMap::new();
        for m in self.members.values() {
            for a in [&m.assigned, &m.pending_revocation] {
                for (t, ps) in a {
                    for p in ps {
                        out.insert((*t, *p), m.epoch);
                    }
                }
            }
        }
        out
    }

    /// The next reconciliation step of `member` (Kafka's state machine).
    fn reconcile(&self, member: &Member, owned: Option<&[(TopicUuid, Vec<i32>)]>) -> Member {
        let owns_any = |pending: &Assignment| match owned {
            None => true,
            Some(owned) => {
                owned.iter().any(|(t, ps)| pending.get(t).is_some_and(|set| ps.iter().any(|p| set.contains(p))))
            }
        };
        match member.state {
            MemberState::Stable if member.epoch == self.assignment_epoch => member.clone(),
            MemberState::Stable | MemberState::UnreleasedPartitions => {
                self.next_assignment(member, member.epoch, &member.assigned, owns_any)
            }
            MemberState::UnrevokedPartitions => {
                if owns_any(&member.pending_revocation) {
                    member.clone()
                } else {
                    self.next_assignment(member, member.epoch + 1, &member.assigned, owns_any)
                }
            }
            MemberState::Unknown => self.next_assignment(member, self.assignment_epoch, &member.assigned, owns_any),
        }
    }

    fn next_assignment(
        &self,
        member: &Member,
        epoch: i32,
        assigned_now: &Assignment,
        owns_any: impl Fn(&Assignment) -> bool,
    ) -> Member {
        let empty = Assignment::new();
        let target = self.targets.get(&member.id).unwrap_or(&empty);
        let owners = self.owner_epochs();
        let mut assigned = Assignment::new();
        let mut revoke = Assignment::new();
        let mut to_assign = Assignment::new();
        let mut unreleased = false;
        let topics: BTreeSet<&TopicUuid> = target.keys().chain(assigned_now.keys()).collect();
        for t in topics {
            let want = target.get(t).cloned().unwrap_or_default();
            let have = assigned_now.get(t).cloned().unwrap_or_default();
            let keep: BTreeSet<i32> = have.intersection(&want).copied().collect();
            let drop: BTreeSet<i32> = have.difference(&keep).copied().collect();
            let mut add: BTreeSet<i32> = want.difference(&keep).copied().collect();
            let before = add.len();
            add.retain(|p| !owners.contains_key(&(*t, *p)));
            unreleased |= add.len() != before;
            if !keep.is_empty() {
                assigned.insert(*t, keep);
            }
            if !drop.is_empty() {
                revoke.insert(*t, drop);
            }
            if !add.is_empty() {
                to_assign.insert(*t, add);
            }
        }
        let mut next = member.clone();
        if !revoke.is_empty() && owns_any(&revoke) {
            next.state = MemberState::UnrevokedPartitions;
            next.set_epoch(epoch);
            next.assigned = assigned;
            next.pending_revocation = revoke;
            return next;
        }
        for (t, ps) in to_assign {
            assigned.entry(t).or_default().extend(ps);
        }
        next.state = if unreleased { MemberState::UnreleasedPartitions } else { MemberState::Stable };
        next.set_epoch(self.assignment_epoch);
        next.assigned = assigned;
        next.pending_revocation = Assignment::new();
        next
    }

    fn leave(&mut self, req: &HeartbeatRequest, records: &mut Vec<GroupRecord>) -> Result<HeartbeatResponse, Failure> {
        let member_id = match &req.instance_id {
            None => {
                if !self.members.contains_key(&req.member_id) {
                    return fail(
                        ConsumerError::UnknownMemberId,
                        format!("Member {} is not a member of group {}.", req.member_id, self.id),
                    );
                }
                req.member_id.clone()
            }
            Some(instance) => {
                let Some(m) = self.static_members.get(instance).and_then(|id| self.members.get(id)) else {
                    return fail(ConsumerError::UnknownMemberId, format!("Instance id {instance} is unknown."));
                };
                if m.id != req.member_id {
                    return fail(
                        ConsumerError::FencedInstanceId,
                        format!(
                            "Static member {} with instance id {instance} was fenced by member {}.",
                            req.member_id, m.id
                        ),
                    );
                }
                m.id.clone()
            }
        };
        if req.member_epoch == STATIC_LEAVE_EPOCH {
            // The static member keeps its partitions until it comes back or its session expires.
            if let Some(m) = self.members.get_mut(&member_id) {
                m.epoch = STATIC_LEAVE_EPOCH;
                m.pending_revocation.clear();
                m.rebalance_deadline_ms = None;
            }
            if let Some(m) = self.members.get(&member_id) {
                records.push(self.current_record(m));
            }
        } else {
            self.fence(&member_id, records);
        }
        Ok(HeartbeatResponse { member_id, member_epoch: req.member_epoch, heartbeat_interval_ms: 0, assignment: None })
    }

    /// Removes a member and its target, as tombstones.
    fn remove_member(&mut self, member_id: &str, records: &mut Vec<GroupRecord>) {
        let (g, m) = (self.id.clone(), member_id.to_string());
        records.push(GroupRecord {
            key: OffsetsKey::ConsumerCurrentAssignment { group: g.clone(), member: m.clone() },
            value: None,
        });
        records.push(GroupRecord {
            key: OffsetsKey::ConsumerTargetMember { group: g.clone(), member: m.clone() },
            value: None,
        });
        records.push(GroupRecord { key: OffsetsKey::ConsumerMember { group: g, member: m }, value: None });
        if let Some(member) = self.members.remove(member_id)
            && let Some(instance) = member.instance_id
            && self.static_members.get(&instance).is_some_and(|id| id == member_id)
        {
            self.static_members.remove(&instance);
        }
        self.targets.remove(member_id);
    }

    /// Removes a member for good (leave, expiry) and starts a new group epoch.
    fn fence(&mut self, member_id: &str, records: &mut Vec<GroupRecord>) {
        self.remove_member(member_id, records);
        self.epoch += 1;
        records.push(self.group_record());
    }

    /// Fences members whose session expired or who did not revoke partitions
    /// within their rebalance timeout. Returns the records and the ids fenced.
    pub fn tick(&mut self, now_ms: u64) -> (Vec<GroupRecord>, Vec<String>) {
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                m.session_deadline_ms <= now_ms
                    || (m.state == MemberState::UnrevokedPartitions
                        && m.rebalance_deadline_ms.is_some_and(|d| d <= now_ms))
            })
            .map(|m| m.id.clone())
            .collect();
        let mut records = Vec::new();
        for id in &expired {
            self.fence(id, &mut records);
        }
        (records, expired)
    }

    /// The earliest time [`ConsumerGroup::tick`] has something to do.
    pub fn next_deadline(&self) -> Option<u64> {
        self.members
            .values()
            .flat_map(|m| {
                let revocation = m.rebalance_deadline_ms.filter(|_| m.state == MemberState::UnrevokedPartitions);
                std::iter::once(m.session_deadline_ms).chain(revocation)
            })
            .min()
    }

    /// Gives every member a fresh session (after a coordinator load) and a
    /// fresh revocation deadline to those revoking.
    pub fn restart_timers(&mut self, now_ms: u64, config: &ConsumerConfig) {
        for m in self.members.values_mut() {
            m.session_deadline_ms = now_ms + config.session_timeout_ms.max(0) as u64;
            m.rebalance_deadline_ms =
                (m.state == MemberState::UnrevokedPartitions).then(|| now_ms + m.rebalance_timeout_ms.max(0) as u64);
        }
    }

    /// Applies one record read back from `__consumer_offsets`. Returns
    /// `false` when the record deletes the group.
    pub fn replay(&mut self, key: &OffsetsKey, value: Option<&ConsumerValue>) -> bool {
        match (key, value) {
            (OffsetsKey::ConsumerGroup { .. }, Some(ConsumerValue::Group(v))) => {
                self.epoch = v.epoch;
                self.metadata_hash = v.metadata_hash;
            }
            (OffsetsKey::ConsumerGroup { .. }, None) => return false,
            (OffsetsKey::ConsumerMember { member, .. }, Some(ConsumerValue::Member(v))) => {
                let m = self.members.entry(member.clone()).or_insert_with(|| Member::new(member));
                m.instance_id = v.instance_id.clone();
                m.rack_id = v.rack_id.clone();
                m.client_id = v.client_id.clone();
                m.client_host = v.client_host.clone();
                m.subscribed_topic_names = v.subscribed_topic_names.clone();
                m.subscribed_topic_regex = v.subscribed_topic_regex.clone();
                m.rebalance_timeout_ms = v.rebalance_timeout_ms;
                m.server_assignor = v.server_assignor.clone();
                if let Some(instance) = &v.instance_id {
                    self.static_members.insert(instance.clone(), member.clone());
                }
            }
            (OffsetsKey::ConsumerMember { member, .. }, None) => {
                if let Some(m) = self.members.remove(member)
                    && let Some(instance) = m.instance_id
                    && self.static_members.get(&instance) == Some(member)
                {
                    self.static_members.remove(&instance);
                }
            }
            (OffsetsKey::ConsumerTargetAssignment { .. }, Some(ConsumerValue::TargetEpoch(epoch))) => {
                self.assignment_epoch = *epoch;
            }
            (OffsetsKey::ConsumerTargetMember { member, .. }, Some(ConsumerValue::Target(v))) => {
                self.targets.insert(member.clone(), from_value(v));
            }
            (OffsetsKey::ConsumerTargetMember { member, .. }, None) => {
                self.targets.remove(member);
            }
            (OffsetsKey::ConsumerCurrentAssignment { member, .. }, Some(ConsumerValue::Current(v))) => {
                let m = self.members.entry(member.clone()).or_insert_with(|| Member::new(member));
                m.epoch = v.member_epoch;
                m.previous_epoch = v.previous_member_epoch;
                m.state = MemberState::from_code(v.state);
                m.assigned = from_value(&v.assigned);
                m.pending_revocation = from_value(&v.pending_revocation);
            }
            (OffsetsKey::ConsumerCurrentAssignment { member, .. }, None) => {
                if let Some(m) = self.members.get_mut(member) {
                    m.epoch = 0;
                    m.previous_epoch = 0;
                    m.state = MemberState::Stable;
                    m.assigned.clear();
                    m.pending_revocation.clear();
                }
            }
            _ => {}
        }
        true
    }

    /// Tombstones for every record of the group (DeleteGroups, conversion to
    /// a classic group). The group must have no members.
    pub fn tombstones(&self) -> Vec<GroupRecord> {
        let mut records = Vec::new();
        let mut copy = self.clone();
        let ids: Vec<String> = copy.members.keys().cloned().collect();
        for id in ids {
            copy.remove_member(&id, &mut records);
        }
        for key in [
            OffsetsKey::ConsumerTargetAssignment { group: self.id.clone() },
            OffsetsKey::ConsumerPartitionMetadata { group: self.id.clone() },
            OffsetsKey::ConsumerGroup { group: self.id.clone() },
        ] {
            records.push(GroupRecord { key, value: None });
        }
        records
    }

    /// OffsetCommit v9+ by a member: `member_epoch` must be its current epoch.
    /// Commits with a negative epoch are allowed only while the group is empty.
    pub fn validate_offset_commit(&self, member_id: &str, member_epoch: i32) -> Result<(), Failure> {
        if member_epoch < 0 && self.members.is_empty() {
            return Ok(());
        }
        self.validate_member_epoch(member_id, member_epoch)
    }

    /// OffsetFetch v9+: a member id and epoch, when given, must be current.
    pub fn validate_offset_fetch(&self, member_id: Option<&str>, member_epoch: i32) -> Result<(), Failure> {
        match member_id {
            None if member_epoch < 0 => Ok(()),
            id => self.validate_member_epoch(id.unwrap_or_default(), member_epoch),
        }
    }

    fn validate_member_epoch(&self, member_id: &str, member_epoch: i32) -> Result<(), Failure> {
        let Some(m) = self.members.get(member_id) else {
            return fail(
                ConsumerError::UnknownMemberId,
                format!("Member {member_id} is not a member of group {}.", self.id),
            );
        };
        if m.epoch != member_epoch {
            return fail(
                ConsumerError::StaleMemberEpoch,
                format!("The member epoch {member_epoch} is not the current one ({}).", m.epoch),
            );
        }
        Ok(())
    }
}

impl Member {
    fn set_epoch(&mut self, epoch: i32) {
        self.previous_epoch = self.epoch;
        self.epoch = epoch;
    }
}

enum Resolved {
    Existing,
    New,
    Rejoin,
    ReplaceStatic(String),
}

#[cfg(test)]
mod tests;
