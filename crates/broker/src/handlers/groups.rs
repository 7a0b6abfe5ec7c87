//! Group APIs: FindCoordinator (10), JoinGroup (11), SyncGroup (14),
//! Heartbeat (12), LeaveGroup (13), OffsetCommit (8), OffsetFetch (9),
//! DescribeGroups (15), ListGroups (16), DeleteGroups (42), OffsetDelete (47).
//!
//! Joins and syncs that must wait are parked in the coordinator and answered
//! from a deferred reply; effects (answers for other members, metadata to
//! persist) are carried out by a spawned task so they complete even if this
//! connection goes away.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use tributary_group::classic::{GroupError, GroupState, JoinRequest, JoinResult, SyncResult};
use tributary_group::consumer::{ConsumerGroup, Failure};
use tributary_group::offsets::CommittedOffset;
use tributary_group::records::OffsetsKey;
use tributary_protocol::{ErrorCode, RequestHeader};
use tributary_record::builder::RecordSpec;
use tributary_types::now_ms;

use super::{ConnectionInfo, Reply, encode_later, respond, str_bytes};
use crate::cluster::Cluster;
use crate::error::ApiError;
use crate::groups::{Selection, api_error, observe, spawn_dispatch};

const TRANSACTION_KEY: i8 = 1;

fn group_code(e: GroupError) -> i16 {
    e.code()
}

pub(super) fn find_coordinator(
    cluster: &Arc<Cluster>,
    conn: &ConnectionInfo,
    header: &RequestHeader,
    request: FindCoordinatorRequest,
) -> Reply {
    let v = header.api_version;
    let answer = |key: &str| -> (i16, Option<String>, i32, String, i32) {
        if request.key_type == TRANSACTION_KEY {
            return (
                ErrorCode::InvalidRequest.code(),
                Some("transactions are not supported by this broker yet".to_string()),
                -1,
                String::new(),
                -1,
            );
        }
        match cluster.coordinator_for(key, &conn.listener) {
            // The coordinator here must have loaded its groups first.
            Ok(b) if b.id == cluster.node_id => match cluster.group_not_ready(key) {
                Some(e) => (e.code(), Some(e.message), -1, String::new(), -1),
                None => (0, None, b.id, b.host, i32::from(b.port)),
            },
            Ok(b) => (0, None, b.id, b.host, i32::from(b.port)),
            Err(e) => (e.code(), Some(e.message), -1, String::new(), -1),
        }
    };
    let body = if v >= 4 {
        let coordinators = request
            .coordinator_keys
            .iter()
            .map(|key| {
                let (code, message, node, host, port) = answer(key.as_str());
                Coordinator::default()
                    .with_key(key.clone())
                    .with_node_id(BrokerId(node))
                    .with_host(str_bytes(&host))
                    .with_port(port)
                    .with_error_code(code)
                    .with_error_message(message.as_deref().map(str_bytes))
            })
            .collect();
        FindCoordinatorResponse::default().with_coordinators(coordinators)
    } else {
        let (code, message, node, host, port) = answer(request.key.as_str());
        let mut body = FindCoordinatorResponse::default()
            .with_error_code(code)
            .with_node_id(BrokerId(node))
            .with_host(str_bytes(&host))
            .with_port(port);
        if v >= 1 {
            body = body.with_error_message(message.as_deref().map(str_bytes));
        }
        body
    };
    respond(ApiKey::FindCoordinator, header, &body)
}

fn join_response(v: i16, result: &JoinResult) -> JoinGroupResponse {
    let members = result
        .members
        .iter()
        .map(|m| {
            JoinGroupResponseMember::default()
                .with_member_id(str_bytes(&m.member_id))
                .with_group_instance_id(if v >= 5 { m.group_instance_id.as_deref().map(str_bytes) } else { None })
                .with_metadata(Bytes::from(m.metadata.clone()))
        })
        .collect();
    let mut body = JoinGroupResponse::default()
        .with_error_code(result.error.map_or(0, group_code))
        .with_generation_id(result.generation)
        .with_leader(str_bytes(&result.leader))
        .with_member_id(str_bytes(&result.member_id))
        .with_members(members);
    body = if v >= 7 {
        body.with_protocol_type(result.protocol_type.as_deref().map(str_bytes))
            .with_protocol_name(result.protocol_name.as_deref().map(str_bytes))
    } else {
        body.with_protocol_name(Some(str_bytes(result.protocol_name.as_deref().unwrap_or_default())))
    };
    body
}

fn immediate_join_error(header: &RequestHeader, error: &ApiError, member_id: &str) -> Reply {
    let body = JoinGroupResponse::default()
        .with_error_code(error.code())
        .with_generation_id(-1)
        .with_member_id(str_bytes(member_id))
        .with_protocol_name(if header.api_version >= 7 { None } else { Some(StrBytes::default()) });
    respond(ApiKey::JoinGroup, header, &body)
}

pub(super) fn join_group(
    cluster: &Arc<Cluster>,
    conn: &ConnectionInfo,
    header: &RequestHeader,
    request: JoinGroupRequest,
) -> Reply {
    let v = header.api_version;
    if request.group_id.0.is_empty() {
        return immediate_join_error(header, &api_error(GroupError::InvalidGroupId), &request.member_id);
    }
    if let Some(e) = cluster.group_not_ready(&request.group_id.0) {
        return immediate_join_error(header, &e, &request.member_id);
    }
    if let Err(e) = leave_consumer_protocol(cluster, &request.group_id.0) {
        return immediate_join_error(header, &e, &request.member_id);
    }
    let join = JoinRequest {
        group_id: request.group_id.0.to_string(),
        member_id: request.member_id.to_string(),
        group_instance_id: if v >= 5 { request.group_instance_id.as_deref().map(str::to_string) } else { None },
        client_id: header.client_id.clone().unwrap_or_default(),
        client_host: format!("/{}", conn.peer.ip()),
        session_timeout_ms: request.session_timeout_ms,
        rebalance_timeout_ms: if v >= 1 { request.rebalance_timeout_ms } else { request.session_timeout_ms },
        protocol_type: request.protocol_type.to_string(),
        protocols: request.protocols.iter().map(|p| (p.name.to_string(), p.metadata.to_vec())).collect(),
        require_known_member_id: v >= 4,
    };
    let (answer, staged) = cluster.groups.join(cluster, join);
    spawn_dispatch(cluster, staged);
    let header = header.clone();
    Reply::Later(Box::pin(async move {
        let result = answer.await.unwrap_or_else(|_| JoinResult {
            error: Some(GroupError::CoordinatorNotAvailable),
            generation: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id: String::new(),
            members: Vec::new(),
        });
        encode_later(ApiKey::JoinGroup, &header, &join_response(header.api_version, &result))
    }))
}

/// A JoinGroup for a consumer protocol group: refused while it has members
/// (the protocols cannot mix); an empty one is deleted so a classic group
/// can take the id. Its committed offsets stay.
fn leave_consumer_protocol(cluster: &Arc<Cluster>, group_id: &str) -> Result<(), ApiError> {
    let mut state = cluster.groups.state();
    let Some(group) = state.consumer_groups.get(group_id) else { return Ok(()) };
    if group.member_count() > 0 {
        return Err(ApiError::new(
            ErrorCode::InconsistentGroupProtocol,
            format!("Group {group_id} uses the consumer protocol (group.protocol=consumer)."),
        ));
    }
    let records = crate::groups::encode_records(&group.tombstones());
    state.consumer_groups.remove(group_id);
    tracing::info!(group = %group_id, "empty consumer group converted to a classic group");
    let pending = cluster.groups.append_now(cluster, group_id, records)?;
    drop(state);
    tokio::spawn(async move {
        if let Err(e) = crate::groups::wait_pending(pending).await {
            tracing::warn!(error = %e.message, "consumer group tombstones not durable");
        }
    });
    Ok(())
}

fn sync_response(v: i16, result: &SyncResult) -> SyncGroupResponse {
    let mut body = SyncGroupResponse::default()
        .with_error_code(result.error.map_or(0, group_code))
        .with_assignment(Bytes::from(result.assignment.clone()));
    if v >= 5 {
        body = body
            .with_protocol_type(result.protocol_type.as_deref().map(str_bytes))
            .with_protocol_name(result.protocol_name.as_deref().map(str_bytes));
    }
    body
}

pub(super) fn sync_group(cluster: &Arc<Cluster>, header: &RequestHeader, request: SyncGroupRequest) -> Reply {
    let v = header.api_version;
    let immediate =
        |e: ApiError| respond(ApiKey::SyncGroup, header, &SyncGroupResponse::default().with_error_code(e.code()));
    if request.group_id.0.is_empty() {
        return immediate(api_error(GroupError::InvalidGroupId));
    }
    if let Some(e) = cluster.group_not_ready(&request.group_id.0) {
        return immediate(e);
    }
    let assignments = request.assignments.iter().map(|a| (a.member_id.to_string(), a.assignment.to_vec())).collect();
    let (answer, staged) = cluster.groups.sync(
        cluster,
        &request.group_id.0,
        request.generation_id,
        &request.member_id,
        if v >= 3 { request.group_instance_id.as_deref() } else { None },
        if v >= 5 { request.protocol_type.as_deref() } else { None },
        if v >= 5 { request.protocol_name.as_deref() } else { None },
        assignments,
    );
    spawn_dispatch(cluster, staged);
    let header = header.clone();
    Reply::Later(Box::pin(async move {
        let result = answer.await.unwrap_or(SyncResult {
            error: Some(GroupError::CoordinatorNotAvailable),
            protocol_type: None,
            protocol_name: None,
            assignment: Vec::new(),
        });
        encode_later(ApiKey::SyncGroup, &header, &sync_response(header.api_version, &result))
    }))
}

pub(super) fn heartbeat(cluster: &Arc<Cluster>, header: &RequestHeader, request: HeartbeatRequest) -> Reply {
    let v = header.api_version;
    let code = if let Some(e) = cluster.group_not_ready(&request.group_id.0) {
        e.code()
    } else {
        let now = cluster.groups.now();
        let mut state = cluster.groups.state();
        match state.groups.get_mut(request.group_id.0.as_str()) {
            None => GroupError::UnknownMemberId.code(),
            Some(group) => {
                let instance = if v >= 3 { request.group_instance_id.as_deref() } else { None };
                group.heartbeat(request.generation_id, &request.member_id, instance, now).err().map_or(0, group_code)
            }
        }
    };
    respond(ApiKey::Heartbeat, header, &HeartbeatResponse::default().with_error_code(code))
}

pub(super) fn leave_group(cluster: &Arc<Cluster>, header: &RequestHeader, request: LeaveGroupRequest) -> Reply {
    let v = header.api_version;
    let leaving: Vec<(String, Option<String>)> = if v >= 3 {
        request
            .members
            .iter()
            .map(|m| (m.member_id.to_string(), m.group_instance_id.as_deref().map(str::to_string)))
            .collect()
    } else {
        vec![(request.member_id.to_string(), None)]
    };
    let (results, staged) = if let Some(e) = cluster.group_not_ready(&request.group_id.0) {
        (leaving.into_iter().map(|(m, i)| (m, i, e.code())).collect(), Vec::new())
    } else {
        let now = cluster.groups.now();
        let config = cluster.groups.settings.group;
        let mut state = cluster.groups.state();
        let mut effects = Vec::new();
        let results: Vec<(String, Option<String>, i16)> = match state.groups.get_mut(request.group_id.0.as_str()) {
            None => leaving.into_iter().map(|(m, i)| (m, i, GroupError::UnknownMemberId.code())).collect(),
            Some(group) => leaving
                .into_iter()
                .map(|(member, instance)| {
                    let (outcome, more) = group.leave(&member, instance.as_deref(), now, now_ms(), &config);
                    effects.extend(more);
                    (member, instance, outcome.err().map_or(0, group_code))
                })
                .collect(),
        };
        // Staged while the lock is held, so records land in the order of the changes.
        (results, cluster.groups.stage(cluster, effects))
    };
    spawn_dispatch(cluster, staged);
    let body = if v >= 3 {
        LeaveGroupResponse::default().with_error_code(0).with_members(
            results
                .iter()
                .map(|(m, i, code)| {
                    MemberResponse::default()
                        .with_member_id(str_bytes(m))
                        .with_group_instance_id(i.as_deref().map(str_bytes))
                        .with_error_code(*code)
                })
                .collect(),
        )
    } else {
        LeaveGroupResponse::default().with_error_code(results.first().map_or(0, |r| r.2))
    };
    respond(ApiKey::LeaveGroup, header, &body)
}

/// A consumer group error as an API error.
fn consumer_error(f: Failure) -> ApiError {
    ApiError::new(ErrorCode::try_from_code(f.error.code()).unwrap_or(ErrorCode::UnknownServerError), f.message)
}

/// Checks an OffsetCommit's group membership by Kafka's rules; creates an
/// empty group for a standalone consumer (generation -1). In a consumer
/// group the epoch must be the member's current one (OffsetCommit v9+).
fn commit_allowed(
    cluster: &Cluster,
    version: i16,
    group_id: &str,
    generation: i32,
    member_id: &str,
    instance_id: Option<&str>,
) -> Result<(), ApiError> {
    let now = cluster.groups.now();
    let mut state = cluster.groups.state();
    if let Some(group) = state.consumer_groups.get(group_id) {
        if version < 9 && generation >= 0 {
            return Err(ApiError::new(
                ErrorCode::UnsupportedVersion,
                "members of a consumer protocol group commit with OffsetCommit v9 or later",
            ));
        }
        return group.validate_offset_commit(member_id, generation).map_err(consumer_error);
    }
    let Some(group) = state.groups.get_mut(group_id) else {
        if generation < 0 {
            state.groups.insert(group_id.to_string(), tributary_group::classic::ClassicGroup::new(group_id));
            return Ok(());
        }
        return Err(api_error(GroupError::IllegalGeneration));
    };
    match group.state() {
        GroupState::Dead => Err(api_error(GroupError::CoordinatorNotAvailable)),
        GroupState::Empty if generation < 0 => Ok(()),
        GroupState::CompletingRebalance => Err(api_error(GroupError::RebalanceInProgress)),
        _ => {
            // A commit from a member counts as a heartbeat; its errors are the commit's.
            match group.heartbeat(generation, member_id, instance_id, now) {
                Ok(()) | Err(GroupError::RebalanceInProgress) => Ok(()),
                Err(e) => Err(api_error(e)),
            }
        }
    }
}

/// A partition of an OffsetCommit: its index and the offset to record, or an error code.
type CommitOutcome = (i32, Result<CommittedOffset, i16>);

pub(super) fn offset_commit(cluster: &Arc<Cluster>, header: &RequestHeader, request: OffsetCommitRequest) -> Reply {
    let v = header.api_version;
    let group_id = request.group_id.0.to_string();
    let registry = cluster.registry();
    let group_error = if group_id.is_empty() {
        Some(api_error(GroupError::InvalidGroupId))
    } else if let Some(e) = cluster.group_not_ready(&group_id) {
        Some(e)
    } else {
        let instance = if v >= 7 { request.group_instance_id.as_deref() } else { None };
        commit_allowed(cluster, v, &group_id, request.generation_id_or_member_epoch, &request.member_id, instance).err()
    };
    let now = now_ms();
    let expire =
        if v <= 4 && request.retention_time_ms >= 0 { now.saturating_add(request.retention_time_ms) } else { -1 };
    // Per partition: an error, or the record to write.
    let mut plan: Vec<(TopicName, Vec<CommitOutcome>)> = Vec::new();
    let mut records = Vec::new();
    let mut keys = Vec::new();
    for topic in &request.topics {
        let mut partitions = Vec::new();
        for p in &topic.partitions {
            let metadata = p.committed_metadata.as_deref().unwrap_or_default().to_string();
            let outcome = if let Some(e) = &group_error {
                Err(e.code())
            } else if !registry
                .topics
                .get(topic.name.as_str())
                .is_some_and(|t| (0..t.partition_count() as i32).contains(&p.partition_index))
            {
                Err(ErrorCode::UnknownTopicOrPartition.code())
            } else if metadata.len() > cluster.groups.settings.metadata_max_bytes {
                Err(ErrorCode::OffsetMetadataTooLarge.code())
            } else {
                let offset = CommittedOffset {
                    offset: p.committed_offset,
                    leader_epoch: if v >= 6 { p.committed_leader_epoch } else { -1 },
                    metadata,
                    commit_timestamp_ms: now,
                    expire_timestamp_ms: expire,
                    log_offset: -1,
                };
                let key = OffsetsKey::Offset {
                    group: group_id.clone(),
                    topic: topic.name.0.to_string(),
                    partition: p.partition_index,
                };
                records.push(RecordSpec::new(Some(&key.encode()), Some(&offset.to_value().encode()), now));
                keys.push((topic.name.0.to_string(), p.partition_index));
                Ok(offset)
            };
            partitions.push((p.partition_index, outcome));
        }
        plan.push((topic.name.clone(), partitions));
    }
    let build = |plan: Vec<(TopicName, Vec<CommitOutcome>)>, failure: Option<i16>| {
        OffsetCommitResponse::default().with_topics(
            plan.into_iter()
                .map(|(name, parts)| {
                    OffsetCommitResponseTopic::default().with_name(name).with_partitions(
                        parts
                            .into_iter()
                            .map(|(i, outcome)| {
                                let code = match (outcome, failure) {
                                    (Err(code), _) => code,
                                    (Ok(_), Some(code)) => code,
                                    (Ok(_), None) => 0,
                                };
                                OffsetCommitResponsePartition::default().with_partition_index(i).with_error_code(code)
                            })
                            .collect(),
                    )
                })
                .collect(),
        )
    };
    if records.is_empty() {
        return respond(ApiKey::OffsetCommit, header, &build(plan, None));
    }
    let partition = cluster.groups.partition_for(&group_id);
    let appended = cluster
        .append_internal(crate::groups::OFFSETS_TOPIC, partition, records)
        .map_err(crate::groups::coordinator_error);
    let cluster = cluster.clone();
    let header = header.clone();
    Reply::Later(Box::pin(async move {
        let failure = match appended {
            Err(e) => Some(e.code()),
            Ok(appended) => {
                let base = appended.base;
                match appended.committed().await.map_err(crate::groups::coordinator_error) {
                    Err(e) => Some(e.code()),
                    Ok(()) => {
                        let mut state = cluster.groups.state();
                        if cluster.quorum().is_some() && !cluster.groups.is_loaded(partition) {
                            // Unloaded while the commit replicated: the new coordinator reads it from the log.
                            Some(ErrorCode::NotCoordinator.code())
                        } else {
                            // Records were appended in plan order: the n-th committed partition is at base + n.
                            let committed =
                                plan.iter().flat_map(|(_, parts)| parts.iter()).filter_map(|(_, o)| o.as_ref().ok());
                            for (log_offset, ((topic, partition), offset)) in (base..).zip(keys.iter().zip(committed)) {
                                state.offsets.put(
                                    &group_id,
                                    topic,
                                    *partition,
                                    CommittedOffset { log_offset, ..offset.clone() },
                                );
                            }
                            None
                        }
                    }
                }
            }
        };
        encode_later(ApiKey::OffsetCommit, &header, &build(plan, failure))
    }))
}

/// A partition index and its committed offset, if any.
type FetchedOffset = (i32, Option<CommittedOffset>);

/// Committed offsets of `group` for the requested partitions (None = all).
fn fetch_offsets(
    cluster: &Cluster,
    group: &str,
    requested: Option<Vec<(String, Vec<i32>)>>,
) -> Vec<(String, Vec<FetchedOffset>)> {
    let state = cluster.groups.state();
    match requested {
        Some(topics) => topics
            .into_iter()
            .map(|(topic, partitions)| {
                let found = partitions.into_iter().map(|p| (p, state.offsets.get(group, &topic, p).cloned())).collect();
                (topic, found)
            })
            .collect(),
        None => {
            let mut by_topic: BTreeMap<String, Vec<FetchedOffset>> = BTreeMap::new();
            for ((topic, partition), offset) in state.offsets.all(group) {
                by_topic.entry(topic.clone()).or_default().push((*partition, Some(offset.clone())));
            }
            by_topic.into_iter().collect()
        }
    }
}

pub(super) fn offset_fetch(cluster: &Arc<Cluster>, header: &RequestHeader, request: OffsetFetchRequest) -> Reply {
    let v = header.api_version;
    let epoch = |o: &Option<CommittedOffset>| if v >= 5 { o.as_ref().map_or(-1, |o| o.leader_epoch) } else { -1 };
    if v >= 8 {
        let groups = request
            .groups
            .iter()
            .map(|g| {
                // Another broker coordinates it, or its partition still loads here.
                let not_ready = cluster.group_not_ready(&g.group_id.0);
                let group_code = not_ready.as_ref().map_or(0, ApiError::code);
                let requested = g
                    .topics
                    .as_ref()
                    .map(|t| t.iter().map(|t| (t.name.0.to_string(), t.partition_indexes.clone())).collect());
                let member_error = if v >= 9 && not_ready.is_none() {
                    let state = cluster.groups.state();
                    state
                        .consumer_groups
                        .get(g.group_id.0.as_str())
                        .and_then(|cg| cg.validate_offset_fetch(g.member_id.as_deref(), g.member_epoch).err())
                        .map(|f| f.error.code())
                } else {
                    None
                };
                let found = if not_ready.is_some() || member_error.is_some() {
                    Vec::new()
                } else {
                    fetch_offsets(cluster, &g.group_id.0, requested)
                };
                OffsetFetchResponseGroup::default()
                    .with_group_id(g.group_id.clone())
                    .with_error_code(member_error.unwrap_or(group_code))
                    .with_topics(
                        found
                            .into_iter()
                            .map(|(topic, parts)| {
                                OffsetFetchResponseTopics::default()
                                    .with_name(TopicName(str_bytes(&topic)))
                                    .with_partitions(
                                        parts
                                            .into_iter()
                                            .map(|(i, o)| {
                                                OffsetFetchResponsePartitions::default()
                                                    .with_partition_index(i)
                                                    .with_committed_offset(o.as_ref().map_or(-1, |o| o.offset))
                                                    .with_committed_leader_epoch(epoch(&o))
                                                    .with_metadata(Some(str_bytes(
                                                        o.as_ref().map_or("", |o| o.metadata.as_str()),
                                                    )))
                                                    .with_error_code(0)
                                            })
                                            .collect(),
                                    )
                            })
                            .collect(),
                    )
            })
            .collect();
        return respond(ApiKey::OffsetFetch, header, &OffsetFetchResponse::default().with_groups(groups));
    }
    let not_ready = cluster.group_not_ready(&request.group_id.0);
    let group_code = not_ready.as_ref().map_or(0, ApiError::code);
    let requested = request
        .topics
        .as_ref()
        .map(|t| t.iter().map(|t| (t.name.0.to_string(), t.partition_indexes.clone())).collect());
    let requested_copy: Option<Vec<(String, Vec<i32>)>> = requested.clone();
    let found = match &not_ready {
        // v0-1 have no group-level error: report it on every requested partition.
        Some(_) => requested_copy
            .unwrap_or_default()
            .into_iter()
            .map(|(t, ps)| (t, ps.into_iter().map(|p| (p, None)).collect()))
            .collect(),
        None => fetch_offsets(cluster, &request.group_id.0, requested),
    };
    let partition_code = if v < 2 { group_code } else { 0 };
    let topics = found
        .into_iter()
        .map(|(topic, parts)| {
            OffsetFetchResponseTopic::default().with_name(TopicName(str_bytes(&topic))).with_partitions(
                parts
                    .into_iter()
                    .map(|(i, o)| {
                        OffsetFetchResponsePartition::default()
                            .with_partition_index(i)
                            .with_committed_offset(o.as_ref().map_or(-1, |o| o.offset))
                            .with_committed_leader_epoch(epoch(&o))
                            .with_metadata(Some(str_bytes(o.as_ref().map_or("", |o| o.metadata.as_str()))))
                            .with_error_code(partition_code)
                    })
                    .collect(),
            )
        })
        .collect();
    let mut body = OffsetFetchResponse::default().with_topics(topics);
    if v >= 2 {
        body = body.with_error_code(group_code);
    }
    respond(ApiKey::OffsetFetch, header, &body)
}

/// Operations a broker without an authorizer grants on a group: READ, DELETE, DESCRIBE.
pub(super) fn group_operations() -> i32 {
    [3, 6, 8].iter().fold(0, |acc, op| acc | (1 << op))
}

/// A consumer group as DescribeGroups shows it: protocol type "consumer",
/// its state, the assignor as the protocol, and each member's assignment
/// in the classic consumer protocol's encoding, so older tools can read it.
fn describe_consumer_group(
    base: DescribedGroup,
    v: i16,
    group: &ConsumerGroup,
    config: &tributary_group::consumer::ConsumerConfig,
    topics: &tributary_group::consumer::TopicsView,
) -> DescribedGroup {
    let d = group.describe(config);
    let members = d
        .members
        .iter()
        .map(|m| {
            let assigned = m
                .member
                .assigned
                .iter()
                .filter_map(|(t, ps)| {
                    topics.name_of(t).map(|name| {
                        kafka_protocol::messages::consumer_protocol_assignment::TopicPartition::default()
                            .with_topic(TopicName(str_bytes(name)))
                            .with_partitions(ps.iter().copied().collect())
                    })
                })
                .collect();
            let assignment = ConsumerProtocolAssignment::default().with_assigned_partitions(assigned);
            let mut bytes = bytes::BytesMut::new();
            bytes::BufMut::put_i16(&mut bytes, 0);
            if let Err(e) = kafka_protocol::protocol::Encodable::encode(&assignment, &mut bytes, 0) {
                tracing::warn!(error = %e, "cannot encode a consumer assignment");
                bytes.clear();
            }
            DescribedGroupMember::default()
                .with_member_id(str_bytes(&m.member.id))
                .with_group_instance_id(if v >= 4 { m.member.instance_id.as_deref().map(str_bytes) } else { None })
                .with_client_id(str_bytes(&m.member.client_id))
                .with_client_host(str_bytes(&m.member.client_host))
                .with_member_assignment(bytes.freeze())
        })
        .collect();
    base.with_error_code(0)
        .with_group_state(str_bytes(d.state.name()))
        .with_protocol_type(str_bytes("consumer"))
        .with_protocol_data(str_bytes(d.assignor))
        .with_members(members)
}

pub(super) fn describe_groups(cluster: &Arc<Cluster>, header: &RequestHeader, request: DescribeGroupsRequest) -> Reply {
    let v = header.api_version;
    let named: Vec<&str> = request.groups.iter().map(|g| g.0.as_str()).collect();
    let not_ready = observe(cluster, Selection::Named(&named));
    // Per group: another broker coordinates it, or its partition still loads here.
    let elsewhere: Vec<Option<ApiError>> =
        named.iter().map(|g| not_ready.clone().or_else(|| cluster.group_not_ready(g))).collect();
    let registry = cluster.registry();
    let mut state = cluster.groups.state();
    let topics = state.topics_view(&registry);
    let groups = request
        .groups
        .iter()
        .zip(&elsewhere)
        .map(|(id, not_ready)| {
            let ops = if v >= 3 && request.include_authorized_operations { group_operations() } else { i32::MIN };
            let base = DescribedGroup::default().with_group_id(id.clone()).with_authorized_operations(ops);
            if let Some(e) = not_ready {
                return base.with_error_code(e.code());
            }
            if let Some(group) = state.consumer_groups.get(id.0.as_str()) {
                return describe_consumer_group(base, v, group, &cluster.groups.settings.consumer, &topics);
            }
            match state.groups.get(id.0.as_str()) {
                Some(group) => {
                    let d = group.describe();
                    base.with_error_code(0)
                        .with_group_state(str_bytes(d.state.name()))
                        .with_protocol_type(str_bytes(&d.protocol_type))
                        .with_protocol_data(str_bytes(&d.protocol))
                        .with_members(
                            d.members
                                .into_iter()
                                .map(|m| {
                                    DescribedGroupMember::default()
                                        .with_member_id(str_bytes(&m.member_id))
                                        .with_group_instance_id(if v >= 4 {
                                            m.group_instance_id.as_deref().map(str_bytes)
                                        } else {
                                            None
                                        })
                                        .with_client_id(str_bytes(&m.client_id))
                                        .with_client_host(str_bytes(&m.client_host))
                                        .with_member_metadata(Bytes::from(m.metadata))
                                        .with_member_assignment(Bytes::from(m.assignment))
                                })
                                .collect(),
                        )
                }
                None if state.offsets.has_group(&id.0) => {
                    base.with_error_code(0).with_group_state(str_bytes(GroupState::Empty.name()))
                }
                None => base.with_error_code(0).with_group_state(str_bytes(GroupState::Dead.name())),
            }
        })
        .collect();
    drop(state);
    respond(ApiKey::DescribeGroups, header, &DescribeGroupsResponse::default().with_groups(groups))
}

pub(super) fn list_groups(cluster: &Arc<Cluster>, header: &RequestHeader, request: ListGroupsRequest) -> Reply {
    let v = header.api_version;
    if let Some(e) = observe(cluster, Selection::All) {
        return respond(ApiKey::ListGroups, header, &ListGroupsResponse::default().with_error_code(e.code()));
    }
    let states: HashSet<String> = request.states_filter.iter().map(|s| s.to_ascii_lowercase()).collect();
    let types: HashSet<String> = request.types_filter.iter().map(|s| s.to_ascii_lowercase()).collect();
    let state = cluster.groups.state();
    // Group id -> (protocol type, state, group type).
    let mut listed: BTreeMap<String, (String, &'static str, &'static str)> = BTreeMap::new();
    for (id, group) in &state.groups {
        listed.insert(
            id.clone(),
            (group.protocol_type().unwrap_or_default().to_string(), group.state().name(), "classic"),
        );
    }
    for (id, group) in &state.consumer_groups {
        listed.insert(id.clone(), ("consumer".to_string(), group.state().name(), "consumer"));
    }
    for id in state.offsets.groups() {
        listed.entry(id.to_string()).or_insert((String::new(), GroupState::Empty.name(), "classic"));
    }
    drop(state);
    let groups = listed
        .into_iter()
        .filter(|(_, (_, s, _))| *s != GroupState::Dead.name())
        .filter(|(_, (_, s, _))| v < 4 || states.is_empty() || states.contains(&s.to_ascii_lowercase()))
        .filter(|(_, (_, _, t))| v < 5 || types.is_empty() || types.contains(*t))
        .map(|(id, (protocol_type, s, group_type))| {
            let mut g = ListedGroup::default()
                .with_group_id(GroupId(str_bytes(&id)))
                .with_protocol_type(str_bytes(&protocol_type));
            if v >= 4 {
                g = g.with_group_state(str_bytes(s));
            }
            if v >= 5 {
                g = g.with_group_type(str_bytes(group_type));
            }
            g
        })
        .collect();
    respond(ApiKey::ListGroups, header, &ListGroupsResponse::default().with_error_code(0).with_groups(groups))
}

/// Removes a group and its offsets from memory, returning the tombstones to write.
fn tombstones_for_group(cluster: &Cluster, group: &str) -> Result<Vec<RecordSpec>, i16> {
    let mut state = cluster.groups.state();
    let mut consumer_tombstones = Vec::new();
    if let Some(g) = state.consumer_groups.get(group) {
        if g.member_count() > 0 {
            return Err(ErrorCode::NonEmptyGroup.code());
        }
        consumer_tombstones = crate::groups::encode_records(&g.tombstones());
        state.consumer_groups.remove(group);
        if !state.groups.contains_key(group) && !state.offsets.has_group(group) {
            return Ok(consumer_tombstones);
        }
    }
    let has_group = state.groups.get(group);
    let has_offsets = state.offsets.has_group(group);
    match has_group {
        None if !has_offsets && consumer_tombstones.is_empty() => return Err(ErrorCode::GroupIdNotFound.code()),
        Some(g) if g.member_count() > 0 => return Err(ErrorCode::NonEmptyGroup.code()),
        _ => {}
    }
    let now = now_ms();
    state.groups.remove(group);
    let mut records: Vec<RecordSpec> = state
        .offsets
        .remove_group(group)
        .into_iter()
        .map(|(topic, partition)| {
            RecordSpec::new(
                Some(&OffsetsKey::Offset { group: group.to_string(), topic, partition }.encode()),
                None,
                now,
            )
        })
        .collect();
    records.push(RecordSpec::new(Some(&OffsetsKey::Group { group: group.to_string() }.encode()), None, now));
    records.extend(consumer_tombstones);
    Ok(records)
}

pub(super) fn delete_groups(cluster: &Arc<Cluster>, header: &RequestHeader, request: DeleteGroupsRequest) -> Reply {
    let named: Vec<&str> = request.groups_names.iter().map(|g| g.0.as_str()).collect();
    let not_ready = observe(cluster, Selection::Named(&named));
    let planned: Vec<(GroupId, Result<Vec<RecordSpec>, i16>)> = request
        .groups_names
        .iter()
        .map(|g| {
            let outcome = match not_ready.clone().or_else(|| cluster.group_not_ready(&g.0)) {
                Some(e) => Err(e.code()),
                None => tombstones_for_group(cluster, &g.0),
            };
            (g.clone(), outcome)
        })
        .collect();
    let cluster = cluster.clone();
    let header = header.clone();
    Reply::Later(Box::pin(async move {
        let mut results = Vec::new();
        for (group, outcome) in planned {
            let code = match outcome {
                Err(code) => code,
                Ok(records) => match cluster.groups.persist(&cluster, &group.0, records).await {
                    Ok(_) => 0,
                    Err(e) => e.code(),
                },
            };
            results.push(
                kafka_protocol::messages::delete_groups_response::DeletableGroupResult::default()
                    .with_group_id(group)
                    .with_error_code(code),
            );
        }
        encode_later(ApiKey::DeleteGroups, &header, &DeleteGroupsResponse::default().with_results(results))
    }))
}

/// Topics the group's consumer members subscribe to.
fn subscribed_topics(cluster: &Cluster, group: &str) -> HashSet<String> {
    let registry = cluster.registry();
    let mut state = cluster.groups.state();
    let topics = state.topics_view(&registry);
    if let Some(g) = state.consumer_groups.get_mut(group) {
        return g.subscribed_topics(&topics).into_iter().collect();
    }
    let Some(g) = state.groups.get(group) else { return HashSet::new() };
    if g.protocol_type() != Some("consumer") {
        return HashSet::new();
    }
    let mut topics = HashSet::new();
    for m in g.describe().members {
        // Member metadata is client-written: the bounded decoder checks its counts first.
        if let Ok(sub) = tributary_protocol::consumer_protocol::decode_subscription(&m.metadata) {
            topics.extend(sub.topics);
        }
    }
    topics
}

pub(super) fn offset_delete(cluster: &Arc<Cluster>, header: &RequestHeader, request: OffsetDeleteRequest) -> Reply {
    let group = request.group_id.0.to_string();
    let fail =
        |code: i16| respond(ApiKey::OffsetDelete, header, &OffsetDeleteResponse::default().with_error_code(code));
    if let Some(e) = observe(cluster, Selection::Named(&[group.as_str()])).or_else(|| cluster.group_not_ready(&group)) {
        return fail(e.code());
    }
    {
        let state = cluster.groups.state();
        if !state.groups.contains_key(&group)
            && !state.consumer_groups.contains_key(&group)
            && !state.offsets.has_group(&group)
        {
            return fail(ErrorCode::GroupIdNotFound.code());
        }
    }
    let subscribed = subscribed_topics(cluster, &group);
    let now = now_ms();
    let mut records = Vec::new();
    let mut topics = Vec::new();
    {
        let mut state = cluster.groups.state();
        for t in &request.topics {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let code = if subscribed.contains(t.name.0.as_str()) {
                        ErrorCode::GroupSubscribedToTopic.code()
                    } else {
                        if state.offsets.remove(&group, &t.name.0, p.partition_index).is_some() {
                            let key = OffsetsKey::Offset {
                                group: group.clone(),
                                topic: t.name.0.to_string(),
                                partition: p.partition_index,
                            };
                            records.push(RecordSpec::new(Some(&key.encode()), None, now));
                        }
                        0
                    };
                    OffsetDeleteResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                })
                .collect();
            topics.push(OffsetDeleteResponseTopic::default().with_name(t.name.clone()).with_partitions(partitions));
        }
    }
    let cluster = cluster.clone();
    let header = header.clone();
    Reply::Later(Box::pin(async move {
        let mut code = 0;
        if !records.is_empty()
            && let Err(e) = cluster.groups.persist(&cluster, &group, records).await
        {
            code = e.code();
        }
        encode_later(
            ApiKey::OffsetDelete,
            &header,
            &OffsetDeleteResponse::default().with_error_code(code).with_topics(topics),
        )
    }))
}
