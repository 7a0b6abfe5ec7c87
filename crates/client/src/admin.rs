//! Consumer-group administration: list, describe (members with their decoded
//! subscriptions and assignments), committed offsets, log offsets, lag,
//! seeking (an admin commit, accepted only while the group is empty), and
//! deleting groups and offsets.
//!
//! ```text
//! list_groups ─────▶ ListGroups on every broker
//! describe_group ──▶ FindCoordinator ─▶ DescribeGroups ─▶ consumer_protocol::decode_*
//! group_lag ───────▶ OffsetFetch (coordinator) + ListOffsets latest (leaders) ─▶ end − committed
//! plan_seek ───────▶ describe (must be empty) + OffsetFetch + ListOffsets ─▶ seek::plan
//! execute_seek ────▶ OffsetCommit, generation -1, member id ""
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use kafka_protocol::messages::delete_groups_request::DeleteGroupsRequest;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_delete_request::{OffsetDeleteRequestPartition, OffsetDeleteRequestTopic};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, DescribeGroupsRequest, GroupId, ListGroupsRequest, ListOffsetsRequest, OffsetCommitRequest,
    OffsetDeleteRequest, OffsetFetchRequest,
};
use tributary_protocol::consumer_protocol::{
    Assignment, CONSUMER_PROTOCOL_TYPE, ConsumerProtocolError, Subscription, decode_assignment, decode_subscription,
};

use crate::client::{Client, Node, Retry, coordinator_retriable, str_bytes, topic_name};
use crate::error::{ClientError, KafkaError};
use crate::seek::{self, PartitionOffsets, SeekPartition, SeekTarget, TopicSelection};

/// A topic and partition.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
}

impl TopicPartition {
    /// `topic`, `partition`.
    pub fn new(topic: &str, partition: i32) -> TopicPartition {
        TopicPartition { topic: topic.to_string(), partition }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.topic, self.partition)
    }
}

/// Group states Kafka reports, by their canonical names.
pub const GROUP_STATES: [&str; 5] = ["Stable", "Empty", "PreparingRebalance", "CompletingRebalance", "Dead"];

/// The canonical spelling of a group state typed in any case (`stable` → `Stable`).
pub fn canonical_group_state(state: &str) -> Option<&'static str> {
    GROUP_STATES.iter().copied().find(|s| s.eq_ignore_ascii_case(state.trim()))
}

/// One group in ListGroups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// Group id.
    pub group_id: String,
    /// `consumer`, `connect`, ... (empty for a group that only has committed offsets).
    pub protocol_type: String,
    /// State (ListGroups v4+).
    pub state: Option<String>,
    /// `classic` or `consumer` (ListGroups v5+).
    pub group_type: Option<String>,
}

/// One member of a described group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    /// Member id the coordinator gave it.
    pub member_id: String,
    /// Static membership id, if any.
    pub group_instance_id: Option<String>,
    /// The consumer's `client.id`.
    pub client_id: String,
    /// Where it connects from, as the broker saw it.
    pub client_host: String,
    /// Its subscription, for `consumer` groups.
    pub subscription: Option<Subscription>,
    /// Its assignment, for `consumer` groups after a completed rebalance.
    pub assignment: Option<Assignment>,
    /// Why the consumer-protocol bytes could not be read, if they could not.
    pub decode_error: Option<String>,
}

impl MemberDescription {
    /// Assigned partitions, flattened.
    pub fn assigned(&self) -> Vec<TopicPartition> {
        self.assignment
            .iter()
            .flat_map(|a| &a.partitions)
            .flat_map(|t| t.partitions.iter().map(|p| TopicPartition::new(&t.topic, *p)))
            .collect()
    }
}

/// A described group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// Group id.
    pub group_id: String,
    /// The broker coordinating it.
    pub coordinator: Node,
    /// `Stable`, `Empty`, ... `Dead` for a group the coordinator does not know.
    pub state: String,
    /// `consumer` for Kafka consumers.
    pub protocol_type: String,
    /// The chosen protocol; for consumers, the assignor (`range`, `cooperative-sticky`, ...).
    pub protocol: String,
    /// Current members.
    pub members: Vec<MemberDescription>,
}

/// A committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// The offset the group resumes from.
    pub offset: i64,
    /// Leader epoch of the committed record, if known.
    pub leader_epoch: Option<i32>,
    /// Metadata the committer attached.
    pub metadata: String,
}

/// Which offset ListOffsets looks up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// Log start offset.
    Earliest,
    /// Log end offset (high watermark, read-uncommitted).
    Latest,
    /// First offset whose timestamp is at or after this (ms).
    Timestamp(i64),
}

impl OffsetSpec {
    fn wire(self) -> i64 {
        match self {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
            OffsetSpec::Timestamp(ms) => ms,
        }
    }
}

/// A ListOffsets answer for one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedOffset {
    /// The offset; -1 when no record matches a timestamp.
    pub offset: i64,
    /// Timestamp of that record (-1 for earliest/latest).
    pub timestamp: i64,
    /// Leader epoch, if the broker reports one.
    pub leader_epoch: Option<i32>,
}

/// Committed offset, log end and lag of one partition of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    /// The partition.
    pub topic_partition: TopicPartition,
    /// What the group committed, if anything.
    pub committed: Option<CommittedOffset>,
    /// Log end offset, if it could be read.
    pub log_end_offset: Option<i64>,
    /// `log end − committed` when both are known.
    pub lag: Option<i64>,
    /// Index into the description's members of the member assigned this partition.
    pub member: Option<usize>,
    /// Why the log end offset is missing (a deleted topic, a partition without leader).
    pub error: Option<KafkaError>,
}

/// What `seek` would commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeekPlan {
    /// The group.
    pub group_id: String,
    /// The target.
    pub target: SeekTarget,
    /// New offset per partition, in partition order; empty if there was nothing to move.
    pub partitions: Vec<SeekPartition>,
}

fn by_topic(partitions: &[TopicPartition]) -> BTreeMap<&str, Vec<i32>> {
    let mut out: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in partitions {
        out.entry(tp.topic.as_str()).or_default().push(tp.partition);
    }
    out
}

fn decode_member_bytes<T>(
    what: &str,
    bytes: &[u8],
    decode: fn(&[u8]) -> Result<T, ConsumerProtocolError>,
    errors: &mut Vec<String>,
) -> Option<T> {
    match decode(bytes) {
        Ok(v) => Some(v),
        Err(ConsumerProtocolError::Empty) => None,
        Err(e) => {
            errors.push(format!("{what}: {e}"));
            None
        }
    }
}

/// Lists partitions that failed, for an error message.
fn failed_list(failed: &[(TopicPartition, i16)]) -> String {
    const SHOWN: usize = 5;
    let mut text = failed.iter().take(SHOWN).map(|(tp, _)| tp.to_string()).collect::<Vec<_>>().join(", ");
    if failed.len() > SHOWN {
        text.push_str(&format!(" and {} more", failed.len() - SHOWN));
    }
    text
}

impl Client {
    /// Groups on every broker, optionally only those in `states` (any case;
    /// needs ListGroups v4). Sorted by group id.
    pub async fn list_groups(&mut self, states: &[String]) -> Result<Vec<GroupListing>, ClientError> {
        let mut filter = Vec::with_capacity(states.len());
        for s in states {
            let canonical = canonical_group_state(s).ok_or_else(|| {
                ClientError::Refused(format!("\"{s}\" is not a group state; use one of {}", GROUP_STATES.join(", ")))
            })?;
            filter.push(str_bytes(canonical));
        }
        let metadata = self.metadata(Some(&[])).await?;
        let mut groups = BTreeMap::new();
        for node in metadata.brokers.values() {
            let conn = self.connection_to(node).await?;
            let v = conn.version(ApiKey::ListGroups)?;
            if !filter.is_empty() && v < 4 {
                return Err(ClientError::Unsupported {
                    addr: conn.addr().to_string(),
                    detail: format!("filtering groups by state needs ListGroups v4; the broker serves up to v{v}"),
                });
            }
            let mut request = ListGroupsRequest::default();
            if v >= 4 {
                request = request.with_states_filter(filter.clone());
            }
            let response = conn.call(&request, v).await?;
            if response.error_code != 0 {
                return Err(
                    KafkaError::new(response.error_code, format!("list groups on broker {}", node.node_id)).into()
                );
            }
            for g in response.groups {
                let listing = GroupListing {
                    group_id: g.group_id.0.to_string(),
                    protocol_type: g.protocol_type.to_string(),
                    state: (v >= 4).then(|| g.group_state.to_string()),
                    group_type: (v >= 5).then(|| g.group_type.to_string()),
                };
                groups.insert(listing.group_id.clone(), listing);
            }
        }
        Ok(groups.into_values().collect())
    }

    /// Describes one group. A group the coordinator does not know comes back
    /// in state `Dead` with no members, as Kafka reports it.
    pub async fn describe_group(&mut self, group: &str) -> Result<GroupDescription, ClientError> {
        let mut retry = Retry::new(self.config().timeout);
        loop {
            let coordinator = self.group_coordinator(group).await?;
            let conn = self.connection_to(&coordinator).await?;
            let v = conn.version(ApiKey::DescribeGroups)?;
            let request = DescribeGroupsRequest::default().with_groups(vec![GroupId(str_bytes(group))]);
            let response = conn.call(&request, v).await?;
            let addr = conn.addr().to_string();
            let Some(g) = response.groups.into_iter().find(|g| g.group_id.0.as_str() == group) else {
                return Err(ClientError::Malformed {
                    addr,
                    api: "DescribeGroups".to_string(),
                    detail: format!("no entry for group \"{group}\""),
                });
            };
            if g.error_code != 0 {
                if coordinator_retriable(g.error_code) && retry.again().await {
                    self.forget_coordinator(group);
                    continue;
                }
                return Err(KafkaError::new(g.error_code, format!("describe group \"{group}\""))
                    .with_message(g.error_message.as_deref())
                    .into());
            }
            let consumer = g.protocol_type.as_str() == CONSUMER_PROTOCOL_TYPE;
            let members = g
                .members
                .iter()
                .map(|m| {
                    let mut errors = Vec::new();
                    let (subscription, assignment) = if consumer {
                        (
                            decode_member_bytes("subscription", &m.member_metadata, decode_subscription, &mut errors),
                            decode_member_bytes("assignment", &m.member_assignment, decode_assignment, &mut errors),
                        )
                    } else {
                        (None, None)
                    };
                    MemberDescription {
                        member_id: m.member_id.to_string(),
                        group_instance_id: m.group_instance_id.as_deref().map(str::to_string),
                        client_id: m.client_id.to_string(),
                        client_host: m.client_host.to_string(),
                        subscription,
                        assignment,
                        decode_error: (!errors.is_empty()).then(|| errors.join("; ")),
                    }
                })
                .collect();
            return Ok(GroupDescription {
                group_id: group.to_string(),
                coordinator,
                state: g.group_state.to_string(),
                protocol_type: g.protocol_type.to_string(),
                protocol: g.protocol_data.to_string(),
                members,
            });
        }
    }

    /// The group's committed offsets: for `partitions`, or every partition it
    /// committed when `None`. Partitions without a committed offset are left out.
    pub async fn committed_offsets(
        &mut self,
        group: &str,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<BTreeMap<TopicPartition, CommittedOffset>, ClientError> {
        let context = || format!("fetch the committed offsets of group \"{group}\"");
        let mut retry = Retry::new(self.config().timeout);
        'attempt: loop {
            let conn = self.coordinator_connection(group).await?;
            let v = conn.version(ApiKey::OffsetFetch)?;
            let wanted = partitions.map(by_topic);
            let mut out = BTreeMap::new();
            // (topic, partition, offset, leader epoch, metadata, error code)
            let mut rows: Vec<(String, i32, i64, i32, String, i16)> = Vec::new();
            let group_code;
            if v >= 8 {
                let topics = wanted.map(|w| {
                    w.into_iter()
                        .map(|(t, ps)| {
                            OffsetFetchRequestTopics::default().with_name(topic_name(t)).with_partition_indexes(ps)
                        })
                        .collect()
                });
                let request = OffsetFetchRequest::default().with_groups(vec![
                    OffsetFetchRequestGroup::default().with_group_id(GroupId(str_bytes(group))).with_topics(topics),
                ]);
                let response = conn.call(&request, v).await?;
                let Some(g) = response.groups.into_iter().find(|g| g.group_id.0.as_str() == group) else {
                    return Err(ClientError::Malformed {
                        addr: conn.addr().to_string(),
                        api: "OffsetFetch".to_string(),
                        detail: format!("no entry for group \"{group}\""),
                    });
                };
                group_code = g.error_code;
                for t in g.topics {
                    for p in t.partitions {
                        rows.push((
                            t.name.0.to_string(),
                            p.partition_index,
                            p.committed_offset,
                            p.committed_leader_epoch,
                            p.metadata.as_deref().unwrap_or_default().to_string(),
                            p.error_code,
                        ));
                    }
                }
            } else {
                let topics = wanted.map(|w| {
                    w.into_iter()
                        .map(|(t, ps)| {
                            OffsetFetchRequestTopic::default().with_name(topic_name(t)).with_partition_indexes(ps)
                        })
                        .collect()
                });
                let request =
                    OffsetFetchRequest::default().with_group_id(GroupId(str_bytes(group))).with_topics(topics);
                let response = conn.call(&request, v).await?;
                group_code = response.error_code;
                for t in response.topics {
                    for p in t.partitions {
                        rows.push((
                            t.name.0.to_string(),
                            p.partition_index,
                            p.committed_offset,
                            p.committed_leader_epoch,
                            p.metadata.as_deref().unwrap_or_default().to_string(),
                            p.error_code,
                        ));
                    }
                }
            }
            let first_partition_code = rows.iter().map(|r| r.5).find(|c| *c != 0);
            if let Some(code) = Some(group_code).filter(|c| *c != 0).or(first_partition_code) {
                if coordinator_retriable(code) && retry.again().await {
                    self.forget_coordinator(group);
                    continue 'attempt;
                }
                return Err(KafkaError::new(code, context()).into());
            }
            for (topic, partition, offset, epoch, metadata, _) in rows {
                if offset >= 0 {
                    let committed = CommittedOffset { offset, leader_epoch: (epoch >= 0).then_some(epoch), metadata };
                    out.insert(TopicPartition { topic, partition }, committed);
                }
            }
            return Ok(out);
        }
    }

    /// Looks up `spec` for each partition on its leader. A partition that
    /// cannot be answered (no such topic, no leader) gets its own error.
    pub async fn list_offsets(
        &mut self,
        partitions: &[TopicPartition],
        spec: OffsetSpec,
    ) -> Result<BTreeMap<TopicPartition, Result<ListedOffset, KafkaError>>, ClientError> {
        let context = |tp: &TopicPartition| format!("look up offsets of {tp}");
        let mut results = BTreeMap::new();
        let mut pending: Vec<TopicPartition> = partitions.to_vec();
        pending.sort();
        pending.dedup();
        let mut retry = Retry::new(self.config().timeout);
        let timeout_ms = i32::try_from(self.config().timeout.as_millis()).unwrap_or(i32::MAX);
        while !pending.is_empty() {
            let topics: Vec<String> =
                pending.iter().map(|tp| tp.topic.clone()).collect::<BTreeSet<_>>().into_iter().collect();
            let metadata = self.metadata(Some(&topics)).await?;
            let mut by_leader: BTreeMap<i32, Vec<TopicPartition>> = BTreeMap::new();
            for tp in pending.drain(..) {
                let code = match metadata.topics.get(&tp.topic) {
                    None => 3,
                    Some(t) if t.error_code != 0 => t.error_code,
                    Some(t) => match t.partitions.get(&tp.partition) {
                        None => 3,
                        Some(p) if p.leader < 0 => 5,
                        Some(p) if !metadata.brokers.contains_key(&p.leader) => 5,
                        Some(p) => {
                            by_leader.entry(p.leader).or_default().push(tp);
                            continue;
                        }
                    },
                };
                results.insert(tp.clone(), Err(KafkaError::new(code, context(&tp))));
            }
            let mut again = Vec::new();
            for (leader, tps) in by_leader {
                let Some(node) = metadata.brokers.get(&leader) else { continue };
                let conn = self.connection_to(node).await?;
                let v = conn.version(ApiKey::ListOffsets)?;
                let topics = by_topic(&tps)
                    .into_iter()
                    .map(|(t, ps)| {
                        ListOffsetsTopic::default().with_name(topic_name(t)).with_partitions(
                            ps.into_iter()
                                .map(|p| {
                                    ListOffsetsPartition::default().with_partition_index(p).with_timestamp(spec.wire())
                                })
                                .collect(),
                        )
                    })
                    .collect();
                let mut request = ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(topics);
                if v >= 10 {
                    // How long the broker may spend on a lookup in remote (tiered) storage.
                    request = request.with_timeout_ms(timeout_ms);
                }
                let response = conn.call(&request, v).await?;
                let mut answered = BTreeSet::new();
                for t in response.topics {
                    for p in t.partitions {
                        let tp = TopicPartition::new(t.name.0.as_str(), p.partition_index);
                        if !tps.contains(&tp) {
                            continue;
                        }
                        answered.insert(tp.clone());
                        if p.error_code == 0 {
                            let listed = ListedOffset {
                                offset: p.offset,
                                timestamp: p.timestamp,
                                leader_epoch: (p.leader_epoch >= 0).then_some(p.leader_epoch),
                            };
                            results.insert(tp, Ok(listed));
                        } else {
                            let err = KafkaError::new(p.error_code, context(&tp));
                            if err.is_retriable() {
                                again.push(tp.clone());
                            }
                            results.insert(tp, Err(err));
                        }
                    }
                }
                for tp in tps.into_iter().filter(|tp| !answered.contains(tp)) {
                    let err = KafkaError::new(-1, context(&tp)).with_message(Some("the leader did not answer for it"));
                    results.insert(tp, Err(err));
                }
            }
            // Leadership moved or an offset is not available yet: ask again with fresh metadata.
            if !again.is_empty() && retry.again().await {
                pending = again;
            }
        }
        Ok(results)
    }

    /// Committed offsets, log end offsets and lag of every partition the
    /// group committed or has assigned, in partition order.
    pub async fn group_lag(&mut self, description: &GroupDescription) -> Result<Vec<PartitionLag>, ClientError> {
        let committed = self.committed_offsets(&description.group_id, None).await?;
        let mut owner: BTreeMap<TopicPartition, usize> = BTreeMap::new();
        for (i, m) in description.members.iter().enumerate() {
            for tp in m.assigned() {
                owner.insert(tp, i);
            }
        }
        let partitions: Vec<TopicPartition> =
            committed.keys().chain(owner.keys()).cloned().collect::<BTreeSet<_>>().into_iter().collect();
        let mut ends = if partitions.is_empty() {
            BTreeMap::new()
        } else {
            self.list_offsets(&partitions, OffsetSpec::Latest).await?
        };
        Ok(partitions
            .into_iter()
            .map(|tp| {
                let committed = committed.get(&tp).cloned();
                let (log_end_offset, error) = match ends.remove(&tp) {
                    Some(Ok(o)) => (Some(o.offset), None),
                    Some(Err(e)) => (None, Some(e)),
                    None => (None, None),
                };
                let lag = match (&committed, log_end_offset) {
                    (Some(c), Some(end)) => Some(end - c.offset),
                    _ => None,
                };
                PartitionLag {
                    member: owner.get(&tp).copied(),
                    topic_partition: tp,
                    committed,
                    log_end_offset,
                    lag,
                    error,
                }
            })
            .collect())
    }

    /// Computes where `target` moves the group's offsets, without changing
    /// anything. Refused while the group has members: their own commits
    /// would overwrite the new offsets, and the coordinator only accepts an
    /// admin commit for an empty group. With an empty `selection`, every
    /// partition the group has committed is moved.
    pub async fn plan_seek(
        &mut self,
        group: &str,
        target: SeekTarget,
        selection: &[TopicSelection],
    ) -> Result<SeekPlan, ClientError> {
        let description = self.describe_group(group).await?;
        if !description.members.is_empty() {
            return Err(ClientError::Refused(format!(
                "group \"{group}\" has {} active member(s) (state {}): offsets can only be moved while the group is \
                 empty. Stop its consumers (or wait for their session timeout) and run the command again",
                description.members.len(),
                description.state
            )));
        }
        let committed = self.committed_offsets(group, None).await?;
        let partitions: Vec<TopicPartition> = if selection.is_empty() {
            committed.keys().cloned().collect()
        } else {
            self.resolve_selection(selection).await?
        };
        let mut plan = SeekPlan { group_id: group.to_string(), target, partitions: Vec::new() };
        if partitions.is_empty() {
            return Ok(plan);
        }
        let starts = self.list_offsets(&partitions, OffsetSpec::Earliest).await?;
        let ends = self.list_offsets(&partitions, OffsetSpec::Latest).await?;
        let at = match target {
            SeekTarget::Timestamp(ms) => Some(self.list_offsets(&partitions, OffsetSpec::Timestamp(ms)).await?),
            _ => None,
        };
        let mut offsets = BTreeMap::new();
        for tp in partitions {
            let found = |m: &BTreeMap<TopicPartition, Result<ListedOffset, KafkaError>>| match m.get(&tp) {
                Some(Ok(o)) => Ok(o.offset),
                Some(Err(e)) => Err(ClientError::Kafka(e.clone())),
                None => Err(KafkaError::new(-1, format!("look up offsets of {tp}")).into()),
            };
            let log_start = found(&starts)?;
            let log_end = found(&ends)?;
            let at_timestamp = match &at {
                Some(m) => Some(found(m)?),
                None => None,
            };
            let committed = committed.get(&tp).map(|c| c.offset);
            offsets.insert(tp, PartitionOffsets { committed, log_start, log_end, at_timestamp });
        }
        plan.partitions = seek::plan(target, &offsets).map_err(|e| ClientError::Refused(e.to_string()))?;
        Ok(plan)
    }

    /// Every partition named by `selection`, checked against Metadata.
    async fn resolve_selection(&mut self, selection: &[TopicSelection]) -> Result<Vec<TopicPartition>, ClientError> {
        let topics: Vec<String> = selection.iter().map(|s| s.topic.clone()).collect();
        let metadata = self.metadata(Some(&topics)).await?;
        let mut out = Vec::new();
        for s in selection {
            let known = metadata.topics.get(&s.topic).filter(|t| t.error_code == 0).ok_or_else(|| {
                ClientError::Refused(format!("topic \"{}\" does not exist; check the name in the topic list", s.topic))
            })?;
            match &s.partitions {
                None => out.extend(known.partitions.keys().map(|p| TopicPartition::new(&s.topic, *p))),
                Some(ps) => {
                    for p in ps {
                        if !known.partitions.contains_key(p) {
                            return Err(ClientError::Refused(format!(
                                "topic \"{}\" has no partition {p} (it has {})",
                                s.topic,
                                known.partitions.len()
                            )));
                        }
                        out.push(TopicPartition::new(&s.topic, *p));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Commits a plan's offsets.
    pub async fn execute_seek(&mut self, plan: &SeekPlan) -> Result<(), ClientError> {
        let offsets: BTreeMap<TopicPartition, i64> =
            plan.partitions.iter().map(|p| (p.topic_partition.clone(), p.new_offset)).collect();
        self.commit_offsets_as_admin(&plan.group_id, &offsets).await
    }

    /// Commits offsets for a group as an administrator (generation -1, no
    /// member id), as Kafka's offset reset tool does. The coordinator accepts
    /// this only while the group has no members.
    pub async fn commit_offsets_as_admin(
        &mut self,
        group: &str,
        offsets: &BTreeMap<TopicPartition, i64>,
    ) -> Result<(), ClientError> {
        self.commit_offsets(group, -1, "", offsets).await
    }

    /// Commits offsets for a group as its member `member_id` of `generation`
    /// (a classic group), or as a standalone consumer with -1 and "".
    pub async fn commit_offsets(
        &mut self,
        group: &str,
        generation: i32,
        member_id: &str,
        offsets: &BTreeMap<TopicPartition, i64>,
    ) -> Result<(), ClientError> {
        if offsets.is_empty() {
            return Ok(());
        }
        let mut retry = Retry::new(self.config().timeout);
        loop {
            let conn = self.coordinator_connection(group).await?;
            let v = conn.version(ApiKey::OffsetCommit)?;
            let mut topics: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
            for (tp, offset) in offsets {
                topics.entry(tp.topic.as_str()).or_default().push(
                    OffsetCommitRequestPartition::default()
                        .with_partition_index(tp.partition)
                        .with_committed_offset(*offset)
                        .with_committed_metadata(Some(str_bytes(""))),
                );
            }
            let request = OffsetCommitRequest::default()
                .with_group_id(GroupId(str_bytes(group)))
                .with_generation_id_or_member_epoch(generation)
                .with_member_id(str_bytes(member_id))
                .with_topics(
                    topics
                        .into_iter()
                        .map(|(t, ps)| OffsetCommitRequestTopic::default().with_name(topic_name(t)).with_partitions(ps))
                        .collect(),
                );
            let response = conn.call(&request, v).await?;
            let failed: Vec<(TopicPartition, i16)> = response
                .topics
                .iter()
                .flat_map(|t| {
                    t.partitions
                        .iter()
                        .filter(|p| p.error_code != 0)
                        .map(|p| (TopicPartition::new(t.name.0.as_str(), p.partition_index), p.error_code))
                })
                .collect();
            let Some((_, code)) = failed.first() else { return Ok(()) };
            if failed.iter().all(|(_, c)| coordinator_retriable(*c)) && retry.again().await {
                self.forget_coordinator(group);
                continue;
            }
            let context = format!(
                "commit offsets of group \"{group}\" ({} of {} partitions failed: {})",
                failed.len(),
                offsets.len(),
                failed_list(&failed)
            );
            return Err(KafkaError::new(*code, context).into());
        }
    }

    /// Deletes groups with their committed offsets; one result per group, in order.
    /// A group with members is refused (NON_EMPTY_GROUP).
    pub async fn delete_groups(&mut self, groups: &[String]) -> Vec<(String, Result<(), ClientError>)> {
        let mut out = Vec::with_capacity(groups.len());
        for group in groups {
            let result = self.delete_group(group).await;
            out.push((group.clone(), result));
        }
        out
    }

    async fn delete_group(&mut self, group: &str) -> Result<(), ClientError> {
        let mut retry = Retry::new(self.config().timeout);
        loop {
            let conn = self.coordinator_connection(group).await?;
            let v = conn.version(ApiKey::DeleteGroups)?;
            let request = DeleteGroupsRequest::default().with_groups_names(vec![GroupId(str_bytes(group))]);
            let response = conn.call(&request, v).await?;
            let code = response.results.iter().find(|r| r.group_id.0.as_str() == group).map(|r| r.error_code);
            match code {
                Some(0) => return Ok(()),
                Some(code) if coordinator_retriable(code) && retry.again().await => {
                    self.forget_coordinator(group);
                }
                Some(code) => return Err(KafkaError::new(code, format!("delete group \"{group}\"")).into()),
                None => {
                    return Err(ClientError::Malformed {
                        addr: conn.addr().to_string(),
                        api: "DeleteGroups".to_string(),
                        detail: format!("no result for group \"{group}\""),
                    });
                }
            }
        }
    }

    /// Deletes the group's committed offsets for `partitions`. Refused for
    /// topics that members of the group still subscribe to.
    pub async fn delete_offsets(&mut self, group: &str, partitions: &[TopicPartition]) -> Result<(), ClientError> {
        if partitions.is_empty() {
            return Ok(());
        }
        let mut retry = Retry::new(self.config().timeout);
        loop {
            let conn = self.coordinator_connection(group).await?;
            let v = conn.version(ApiKey::OffsetDelete)?;
            let topics = by_topic(partitions)
                .into_iter()
                .map(|(t, ps)| {
                    OffsetDeleteRequestTopic::default().with_name(topic_name(t)).with_partitions(
                        ps.into_iter()
                            .map(|p| OffsetDeleteRequestPartition::default().with_partition_index(p))
                            .collect(),
                    )
                })
                .collect();
            let request = OffsetDeleteRequest::default().with_group_id(GroupId(str_bytes(group))).with_topics(topics);
            let response = conn.call(&request, v).await?;
            if response.error_code != 0 {
                if coordinator_retriable(response.error_code) && retry.again().await {
                    self.forget_coordinator(group);
                    continue;
                }
                return Err(KafkaError::new(response.error_code, format!("delete offsets of group \"{group}\"")).into());
            }
            let failed: Vec<(TopicPartition, i16)> = response
                .topics
                .iter()
                .flat_map(|t| {
                    t.partitions
                        .iter()
                        .filter(|p| p.error_code != 0)
                        .map(|p| (TopicPartition::new(t.name.0.as_str(), p.partition_index), p.error_code))
                })
                .collect();
            return match failed.first() {
                None => Ok(()),
                Some((_, code)) => Err(KafkaError::new(
                    *code,
                    format!(
                        "delete offsets of group \"{group}\" ({} of {} partitions failed: {})",
                        failed.len(),
                        partitions.len(),
                        failed_list(&failed)
                    ),
                )
                .into()),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_states_are_canonical() {
        assert_eq!(canonical_group_state("stable"), Some("Stable"));
        assert_eq!(canonical_group_state(" PreparingRebalance "), Some("PreparingRebalance"));
        assert_eq!(canonical_group_state("running"), None);
    }

    #[test]
    fn failure_lists_are_short() {
        let failed: Vec<(TopicPartition, i16)> = (0..8).map(|p| (TopicPartition::new("t", p), 25)).collect();
        assert_eq!(failed_list(&failed), "t:0, t:1, t:2, t:3, t:4 and 3 more");
    }
}
