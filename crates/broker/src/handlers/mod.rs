//! Kafka API handlers, one module per API. [`handle_frame`] decodes a request
//! and routes it; each handler turns a typed request into a typed response.
//!
//! A handler's [`Reply`] is either ready, or deferred (a future the
//! connection polls in request order): Produce appends before returning and
//! defers only the wait for durability, so appends happen in request order
//! while responses wait for fsync concurrently.

mod admin_topics;
mod api_versions;
mod configs;
mod consumer_groups;
mod describe_cluster;
mod describe_log_dirs;
mod describe_quorum;
mod describe_topic_partitions;
mod elect_leaders;
mod fetch;
mod groups;
mod init_producer_id;
mod list_config_resources;
mod list_offsets;
mod metadata;
mod offset_for_leader_epoch;
mod produce;
mod raft_voters;
mod reassignments;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::{Encodable, StrBytes};
use tributary_protocol::{Request, RequestHeader, api_versions_fallback, decode_request, encode_response, peek_header};

use crate::cluster::Cluster;
use crate::outgoing::Outgoing;

/// Most array elements a request may hold in total (bounds decode memory).
const REQUEST_ELEMENTS_MAX: usize = 1_000_000;

/// What the connection does with a request.
pub enum Reply {
    /// Send this frame.
    Now(Bytes),
    /// Send the frame this future yields (in request order); `None` sends nothing.
    Later(Pin<Box<dyn Future<Output = Option<Outgoing>> + Send>>),
    /// Send nothing (acks=0 produce).
    Nothing,
    /// Close the connection (undecodable or unsupported request), with why.
    Close(String),
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reply::Now(b) => write!(f, "Now({} bytes)", b.len()),
            Reply::Later(_) => f.write_str("Later"),
            Reply::Nothing => f.write_str("Nothing"),
            Reply::Close(why) => write!(f, "Close({why})"),
        }
    }
}

/// What a handler knows about the connection.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    /// Name of the listener the connection arrived on.
    pub listener: String,
    /// The client's address.
    pub peer: std::net::SocketAddr,
}

/// Encodes a response body for `header`'s API and version.
pub(crate) fn respond<T: Encodable>(key: ApiKey, header: &RequestHeader, body: &T) -> Reply {
    match encode_response(key, header.api_version, header.correlation_id, body) {
        Ok(frame) => Reply::Now(frame),
        Err(e) => {
            tracing::error!(api = ?key, version = header.api_version, error = %e, "response encoding failed");
            Reply::Close(e.to_string())
        }
    }
}

/// Encodes a deferred response body.
pub(crate) fn encode_later<T: Encodable>(key: ApiKey, header: &RequestHeader, body: &T) -> Option<Outgoing> {
    match encode_response(key, header.api_version, header.correlation_id, body) {
        Ok(frame) => Some(Outgoing::Frame(frame)),
        Err(e) => {
            tracing::error!(api = ?key, version = header.api_version, error = %e, "response encoding failed");
            None
        }
    }
}

pub(crate) fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// Runs blocking work (metadata appends, directory creation) off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::error!(error = %e, "blocking admin task failed");
            None
        }
    }
}

/// Decodes and routes one request frame.
pub async fn handle_frame(cluster: &Arc<Cluster>, conn: &ConnectionInfo, frame: Bytes) -> Reply {
    let Some((key, version, correlation_id)) = peek_header(&frame) else {
        return Reply::Close("request is shorter than a request header".to_string());
    };
    if key == ApiKey::ApiVersions as i16 && !(0..=4).contains(&version) {
        return Reply::Now(api_versions_fallback(correlation_id));
    }
    let (header, request) = match decode_request(frame, REQUEST_ELEMENTS_MAX) {
        Ok(decoded) => decoded,
        Err(e) => return Reply::Close(e.to_string()),
    };
    tracing::trace!(api = key, version, correlation_id, client = ?header.client_id, "request");
    match request {
        Request::ApiVersions(r) => api_versions::handle(&header, r),
        Request::Metadata(r) => metadata::handle(cluster, conn, &header, r).await,
        Request::Produce(r) => produce::handle(cluster, conn, &header, r).await,
        Request::Fetch(r) => fetch::handle(cluster, conn, &header, r),
        Request::ListOffsets(r) => list_offsets::handle(cluster, &header, r).await,
        Request::InitProducerId(r) => init_producer_id::handle(cluster, &header, r).await,
        Request::OffsetForLeaderEpoch(r) => offset_for_leader_epoch::handle(cluster, &header, r),
        Request::CreateTopics(r) => admin_topics::create_topics(cluster, &header, r).await,
        Request::DeleteTopics(r) => admin_topics::delete_topics(cluster, &header, r).await,
        Request::CreatePartitions(r) => admin_topics::create_partitions(cluster, &header, r).await,
        Request::DeleteRecords(r) => admin_topics::delete_records(cluster, &header, r),
        Request::DescribeConfigs(r) => configs::describe(cluster, &header, r),
        Request::AlterConfigs(r) => configs::alter(cluster, &header, r).await,
        Request::IncrementalAlterConfigs(r) => configs::incremental_alter(cluster, &header, r).await,
        Request::DescribeCluster(r) => describe_cluster::handle(cluster, conn, &header, r),
        Request::DescribeQuorum(r) => describe_quorum::handle(cluster, &header, r).await,
        Request::ElectLeaders(r) => elect_leaders::handle(cluster, &header, r).await,
        Request::DescribeLogDirs(r) => describe_log_dirs::handle(cluster, &header, r),
        Request::FindCoordinator(r) => groups::find_coordinator(cluster, conn, &header, r),
        Request::JoinGroup(r) => groups::join_group(cluster, conn, &header, r),
        Request::SyncGroup(r) => groups::sync_group(cluster, &header, r),
        Request::Heartbeat(r) => groups::heartbeat(cluster, &header, r),
        Request::LeaveGroup(r) => groups::leave_group(cluster, &header, r),
        Request::OffsetCommit(r) => groups::offset_commit(cluster, &header, r),
        Request::OffsetFetch(r) => groups::offset_fetch(cluster, &header, r),
        Request::DescribeGroups(r) => groups::describe_groups(cluster, &header, r),
        Request::ListGroups(r) => groups::list_groups(cluster, &header, r),
        Request::DeleteGroups(r) => groups::delete_groups(cluster, &header, r),
        Request::OffsetDelete(r) => groups::offset_delete(cluster, &header, r),
        Request::ConsumerGroupHeartbeat(r) => consumer_groups::heartbeat(cluster, conn, &header, r),
        Request::ConsumerGroupDescribe(r) => consumer_groups::describe(cluster, &header, r),
        Request::ListConfigResources(r) => list_config_resources::handle(cluster, &header, r),
        Request::DescribeTopicPartitions(r) => describe_topic_partitions::handle(cluster, &header, r),
        Request::AddRaftVoter(r) => raft_voters::add_raft_voter(cluster, &header, r),
        Request::RemoveRaftVoter(r) => raft_voters::remove_raft_voter(cluster, &header, r),
        Request::AlterPartitionReassignments(r) => reassignments::alter(cluster, &header, r).await,
        Request::ListPartitionReassignments(r) => reassignments::list(cluster, &header, r),
    }
}

/// Kafka's AclOperation codes (0 UNKNOWN, 1 ANY, 2 ALL, then these).
mod acl_operation {
    pub(super) const READ: i32 = 3;
    pub(super) const WRITE: i32 = 4;
    pub(super) const CREATE: i32 = 5;
    pub(super) const DELETE: i32 = 6;
    pub(super) const ALTER: i32 = 7;
    pub(super) const DESCRIBE: i32 = 8;
    pub(super) const CLUSTER_ACTION: i32 = 9;
    pub(super) const DESCRIBE_CONFIGS: i32 = 10;
    pub(super) const ALTER_CONFIGS: i32 = 11;
    pub(super) const IDEMPOTENT_WRITE: i32 = 12;
}

fn operation_bits(ops: &[i32]) -> i32 {
    ops.iter().fold(0, |acc, op| acc | (1 << op))
}

/// The operations a broker without an authorizer grants on the cluster
/// (DescribeCluster / Metadata `cluster_authorized_operations`).
pub(crate) fn cluster_operations() -> i32 {
    use acl_operation::*;
    operation_bits(&[CREATE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE])
}

/// The operations a broker without an authorizer grants on a topic.
pub(crate) fn topic_operations() -> i32 {
    use acl_operation::*;
    operation_bits(&[READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS])
}
