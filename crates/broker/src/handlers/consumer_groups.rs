//! Consumer group protocol APIs (KIP-848): ConsumerGroupHeartbeat (68) and
//! ConsumerGroupDescribe (69).
//!
//! A heartbeat runs the group's state machine under the coordinator lock and
//! appends the records it produced there; the answer goes out once they are
//! durable. Heartbeats that change nothing are answered at once.

use std::sync::Arc;

use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment as DescribedAssignment, DescribedGroup, Member as DescribedMember,
    TopicPartitions as DescribedTopicPartitions,
};
use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::*;
use tributary_group::consumer::{
    self, ConsumerError, ConsumerGroup, Failure, HeartbeatRequest, HeartbeatResponse, TopicsView,
};
use tributary_group::records::OffsetsKey;
use tributary_protocol::{ErrorCode, RequestHeader};
use tributary_record::builder::RecordSpec;
use tributary_types::{base64_url_no_pad, now_ms};
use uuid::Uuid;

use super::{ConnectionInfo, Reply, encode_later, respond, str_bytes};
use crate::cluster::Cluster;
use crate::error::ApiError;
use crate::groups::{Pending, Selection, encode_records, observe, wait_pending};

/// A heartbeat's answer and the appended records to wait for before sending it.
type Outcome = (Result<HeartbeatResponse, Failure>, Pending);

/// The member type ConsumerGroupDescribe v1 reports for consumer protocol members.
const CONSUMER_MEMBER_TYPE: i8 = 1;

fn heartbeat_request(
    header: &RequestHeader,
    conn: &ConnectionInfo,
    request: &ConsumerGroupHeartbeatRequest,
) -> HeartbeatRequest {
    HeartbeatRequest {
        member_id: request.member_id.to_string(),
        member_epoch: request.member_epoch,
        instance_id: request.instance_id.as_deref().map(str::to_string),
        rack_id: request.rack_id.as_deref().map(str::to_string),
        rebalance_timeout_ms: request.rebalance_timeout_ms,
        subscribed_topic_names: request
            .subscribed_topic_names
            .as_ref()
            .map(|names| names.iter().map(|n| n.0.to_string()).collect()),
        subscribed_topic_regex: request.subscribed_topic_regex.as_deref().map(str::to_string),
        server_assignor: request.server_assignor.as_deref().map(str::to_string),
        owned: request
            .topic_partitions
            .as_ref()
            .map(|tps| tps.iter().map(|tp| (*tp.topic_id.as_bytes(), tp.partitions.clone())).collect()),
        client_id: header.client_id.clone().unwrap_or_default(),
        client_host: format!("/{}", conn.peer.ip()),
    }
}

fn error_response(code: i16, message: impl Into<String>) -> ConsumerGroupHeartbeatResponse {
    ConsumerGroupHeartbeatResponse::default()
        .with_error_code(code)
        .with_error_message(Some(str_bytes(&message.into())))
        .with_member_id(None)
}

fn failure_response(f: &Failure) -> ConsumerGroupHeartbeatResponse {
    error_response(f.error.code(), f.message.clone())
}

fn ok_response(r: &HeartbeatResponse) -> ConsumerGroupHeartbeatResponse {
    let assignment = r.assignment.as_ref().map(|a| {
        Assignment::default().with_topic_partitions(
            a.iter()
                .filter(|(_, ps)| !ps.is_empty())
                .map(|(t, ps)| {
                    TopicPartitions::default()
                        .with_topic_id(Uuid::from_bytes(*t))
                        .with_partitions(ps.iter().copied().collect())
                })
                .collect(),
        )
    });
    ConsumerGroupHeartbeatResponse::default()
        .with_member_id(Some(str_bytes(&r.member_id)))
        .with_member_epoch(r.member_epoch)
        .with_heartbeat_interval_ms(r.heartbeat_interval_ms)
        .with_assignment(assignment)
}

/// Runs a heartbeat against the group it names: finds or creates the
/// consumer group (converting an empty classic group), runs the machine and
/// appends its records. Returns the answer and what to wait for first, or
/// the error of an append that failed.
fn run_heartbeat(cluster: &Cluster, group_id: &str, mut req: HeartbeatRequest) -> Result<Outcome, ApiError> {
    let service = &cluster.groups;
    let config = service.settings.consumer.clone();
    let registry = cluster.registry();
    let now = service.now();
    let mut state = service.state();
    let topics: Arc<TopicsView> = state.topics_view(&registry);
    let joining = req.member_epoch == 0;
    let mut extra: Vec<RecordSpec> = Vec::new();
    if let Some(classic) = state.groups.get(group_id) {
        if !(joining && classic.member_count() == 0) {
            let f = Failure {
                error: ConsumerError::GroupIdNotFound,
                message: format!("Group {group_id} is not a consumer group."),
            };
            return Ok((Err(f), None));
        }
        // An empty classic group becomes a consumer group; its offsets stay.
        state.groups.remove(group_id);
        tracing::info!(group = %group_id, "empty classic group converted to a consumer group");
        extra.push(RecordSpec::new(Some(&OffsetsKey::Group { group: group_id.to_string() }.encode()), None, now_ms()));
    }
    let created = !state.consumer_groups.contains_key(group_id);
    if created && !joining {
        let f =
            Failure { error: ConsumerError::GroupIdNotFound, message: format!("Consumer group {group_id} not found.") };
        return Ok((Err(f), None));
    }
    if req.member_id.is_empty() {
        // Heartbeat v0: the coordinator chooses the member id.
        req.member_id = base64_url_no_pad(Uuid::new_v4().as_bytes());
    }
    let group = state.consumer_groups.entry(group_id.to_string()).or_insert_with(|| ConsumerGroup::new(group_id));
    let (result, records) = group.heartbeat(&req, &topics, now, &config);
    log_heartbeat(group_id, &req, &result, group);
    if created && result.is_err() {
        state.consumer_groups.remove(group_id);
    }
    extra.extend(encode_records(&records));
    // The machine already changed; a failed append leaves memory ahead of the
    // log, as for classic groups, and the client is told to retry.
    let pending = service.append_now(cluster, group_id, extra)?;
    drop(state);
    Ok((result, pending))
}

/// `topic-id-prefix:[partitions]` pairs, short enough for a log line.
fn brief(a: &[(consumer::TopicUuid, Vec<i32>)]) -> String {
    let parts: Vec<String> = a.iter().map(|(t, ps)| format!("{:02x}{:02x}:{ps:?}", t[0], t[1])).collect();
    format!("[{}]", parts.join(" "))
}

/// One debug line per heartbeat: what the member said and what it was told,
/// with its state in the group afterwards (RUST_LOG=tributary_broker=debug).
fn log_heartbeat(
    group_id: &str,
    req: &HeartbeatRequest,
    result: &Result<HeartbeatResponse, Failure>,
    group: &ConsumerGroup,
) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    let owned = req.owned.as_deref().map_or_else(|| "null".to_string(), brief);
    let member = group.member(&req.member_id);
    let state = member.map(|m| format!("{:?}", m.state)).unwrap_or_else(|| "gone".to_string());
    let assigned = member.map(|m| brief(&consumer::to_value(&m.assigned))).unwrap_or_default();
    let pending = member.map(|m| brief(&consumer::to_value(&m.pending_revocation))).unwrap_or_default();
    match result {
        Ok(r) => tracing::debug!(
            group = %group_id,
            member = %req.member_id,
            epoch = req.member_epoch,
            owned = %owned,
            answer_epoch = r.member_epoch,
            assignment = %r.assignment.as_ref().map_or_else(|| "null".to_string(), |a| brief(&consumer::to_value(a))),
            %state,
            %assigned,
            %pending,
            group_epoch = group.epoch(),
            assignment_epoch = group.assignment_epoch(),
            "consumer group heartbeat"
        ),
        Err(f) => tracing::debug!(
            group = %group_id,
            member = %req.member_id,
            epoch = req.member_epoch,
            owned = %owned,
            error = ?f.error,
            message = %f.message,
            "consumer group heartbeat refused"
        ),
    }
}

pub(super) fn heartbeat(
    cluster: &Arc<Cluster>,
    conn: &ConnectionInfo,
    header: &RequestHeader,
    request: ConsumerGroupHeartbeatRequest,
) -> Reply {
    let group_id = request.group_id.0.to_string();
    let req = heartbeat_request(header, conn, &request);
    if let Err(f) = consumer::validate_request(&group_id, &req, header.api_version, &cluster.groups.settings.consumer) {
        return respond(ApiKey::ConsumerGroupHeartbeat, header, &failure_response(&f));
    }
    if let Some(e) = cluster.group_not_ready(&group_id) {
        return respond(ApiKey::ConsumerGroupHeartbeat, header, &error_response(e.code(), e.message));
    }
    let (body, pending) = match run_heartbeat(cluster, &group_id, req) {
        Ok((Ok(r), pending)) => (ok_response(&r), pending),
        Ok((Err(f), pending)) => (failure_response(&f), pending),
        Err(e) => {
            tracing::warn!(group = %group_id, error = %e.message, "cannot persist consumer group records");
            (error_response(ErrorCode::CoordinatorNotAvailable.code(), e.message), None)
        }
    };
    if pending.is_none() {
        return respond(ApiKey::ConsumerGroupHeartbeat, header, &body);
    }
    let header = header.clone();
    Reply::Later(Box::pin(async move {
        let body = match wait_pending(pending).await {
            Ok(()) => body,
            Err(e) => error_response(e.code(), e.message),
        };
        encode_later(ApiKey::ConsumerGroupHeartbeat, &header, &body)
    }))
}

fn described_assignment(topics: &TopicsView, a: &consumer::Assignment) -> DescribedAssignment {
    DescribedAssignment::default().with_topic_partitions(
        a.iter()
            .filter(|(_, ps)| !ps.is_empty())
            .map(|(t, ps)| {
                DescribedTopicPartitions::default()
                    .with_topic_id(Uuid::from_bytes(*t))
                    .with_topic_name(TopicName(str_bytes(topics.name_of(t).unwrap_or_default())))
                    .with_partitions(ps.iter().copied().collect())
            })
            .collect(),
    )
}

pub(super) fn describe(cluster: &Arc<Cluster>, header: &RequestHeader, request: ConsumerGroupDescribeRequest) -> Reply {
    let v = header.api_version;
    let named: Vec<&str> = request.group_ids.iter().map(|g| g.0.as_str()).collect();
    let not_ready = observe(cluster, Selection::Named(&named));
    // Per group: another broker coordinates it, or its partition still loads here.
    let elsewhere: Vec<Option<ApiError>> =
        named.iter().map(|g| not_ready.clone().or_else(|| cluster.group_not_ready(g))).collect();
    let registry = cluster.registry();
    let config = cluster.groups.settings.consumer.clone();
    let mut state = cluster.groups.state();
    let topics = state.topics_view(&registry);
    let ops = if request.include_authorized_operations { super::groups::group_operations() } else { i32::MIN };
    let groups = request
        .group_ids
        .iter()
        .zip(&elsewhere)
        .map(|(id, not_ready)| {
            let base = DescribedGroup::default().with_group_id(id.clone()).with_authorized_operations(ops);
            if let Some(e) = not_ready {
                return base.with_error_code(e.code()).with_error_message(Some(str_bytes(&e.message)));
            }
            let Some(group) = state.consumer_groups.get(id.0.as_str()) else {
                let message = if state.groups.contains_key(id.0.as_str()) {
                    format!("Group {} is not a consumer group.", id.0)
                } else {
                    format!("Group {} not found.", id.0)
                };
                return base
                    .with_error_code(ErrorCode::GroupIdNotFound.code())
                    .with_error_message(Some(str_bytes(&message)));
            };
            let d = group.describe(&config);
            let members = d
                .members
                .iter()
                .map(|m| {
                    let member = &m.member;
                    let mut out = DescribedMember::default()
                        .with_member_id(str_bytes(&member.id))
                        .with_instance_id(member.instance_id.as_deref().map(str_bytes))
                        .with_rack_id(member.rack_id.as_deref().map(str_bytes))
                        .with_member_epoch(member.epoch)
                        .with_client_id(str_bytes(&member.client_id))
                        .with_client_host(str_bytes(&member.client_host))
                        .with_subscribed_topic_names(
                            member.subscribed_topic_names.iter().map(|n| TopicName(str_bytes(n))).collect(),
                        )
                        .with_subscribed_topic_regex(member.subscribed_topic_regex.as_deref().map(str_bytes))
                        .with_assignment(described_assignment(&topics, &member.assigned))
                        .with_target_assignment(described_assignment(&topics, &m.target));
                    if v >= 1 {
                        out = out.with_member_type(CONSUMER_MEMBER_TYPE);
                    }
                    out
                })
                .collect();
            base.with_error_code(0)
                .with_group_state(str_bytes(d.state.name()))
                .with_group_epoch(d.epoch)
                .with_assignment_epoch(d.assignment_epoch)
                .with_assignor_name(str_bytes(d.assignor))
                .with_members(members)
        })
        .collect();
    drop(state);
    respond(ApiKey::ConsumerGroupDescribe, header, &ConsumerGroupDescribeResponse::default().with_groups(groups))
}
