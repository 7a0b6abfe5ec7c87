//! Response layouts for the APIs the internal client calls, and the consumer
//! protocol's embedded formats. A client checks a response with
//! [`check_response`] before `kafka-protocol` decodes it, exactly as the
//! broker checks requests: the generated decoders reserve memory for the
//! element count they read, so a count that the bytes do not back must be
//! refused first.

use kafka_protocol::messages::ApiKey;

use super::Ty::*;
use super::{F, MAX, ShapeError, check_layout, f, tagged};

// ---- ApiVersions (18), flexible from 3; known tagged fields 0-3 in v3+
const API_VERSION: &[F] = &[f(I16, 0, MAX), f(I16, 0, MAX), f(I16, 0, MAX)];
const SUPPORTED_FEATURE: &[F] = &[f(Str, 3, MAX), f(I16, 3, MAX), f(I16, 3, MAX)];
const FINALIZED_FEATURE: &[F] = &[f(Str, 3, MAX), f(I16, 3, MAX), f(I16, 3, MAX)];
const API_VERSIONS: &[F] = &[
    f(I16, 0, MAX),
    f(Arr(API_VERSION), 0, MAX),
    f(I32, 1, MAX),
    tagged(0, Arr(SUPPORTED_FEATURE), 3, MAX),
    tagged(1, I64, 3, MAX),
    tagged(2, Arr(FINALIZED_FEATURE), 3, MAX),
    tagged(3, Bool, 3, MAX),
];

// ---- Metadata (3), flexible from 9
const METADATA_BROKER: &[F] = &[f(I32, 0, MAX), f(Str, 0, MAX), f(I32, 0, MAX), f(Str, 1, MAX)];
const METADATA_PARTITION: &[F] = &[
    f(I16, 0, MAX),
    f(I32, 0, MAX),
    f(I32, 0, MAX),
    f(I32, 7, MAX),
    f(PrimArr(&I32), 0, MAX),
    f(PrimArr(&I32), 0, MAX),
    f(PrimArr(&I32), 5, MAX),
];
const METADATA_TOPIC: &[F] = &[
    f(I16, 0, MAX),
    f(Str, 0, MAX),
    f(Uuid, 10, MAX),
    f(Bool, 1, MAX),
    f(Arr(METADATA_PARTITION), 0, MAX),
    f(I32, 8, MAX),
];
const METADATA: &[F] = &[
    f(I32, 3, MAX),
    f(Arr(METADATA_BROKER), 0, MAX),
    f(Str, 2, MAX),
    f(I32, 1, MAX),
    f(Arr(METADATA_TOPIC), 0, MAX),
    f(I32, 8, 10),
    f(I16, 13, MAX),
];

// ---- FindCoordinator (10), flexible from 3; batched from 4
const COORDINATOR: &[F] =
    &[f(Str, 4, MAX), f(I32, 4, MAX), f(Str, 4, MAX), f(I32, 4, MAX), f(I16, 4, MAX), f(Str, 4, MAX)];
const FIND_COORDINATOR: &[F] = &[
    f(I32, 1, MAX),
    f(I16, 0, 3),
    f(Str, 1, 3),
    f(I32, 0, 3),
    f(Str, 0, 3),
    f(I32, 0, 3),
    f(Arr(COORDINATOR), 4, MAX),
];

// ---- ListGroups (16), flexible from 3
const LISTED_GROUP: &[F] = &[f(Str, 0, MAX), f(Str, 0, MAX), f(Str, 4, MAX), f(Str, 5, MAX)];
const LIST_GROUPS: &[F] = &[f(I32, 1, MAX), f(I16, 0, MAX), f(Arr(LISTED_GROUP), 0, MAX)];

// ---- DescribeGroups (15), flexible from 5
const DESCRIBED_MEMBER: &[F] =
    &[f(Str, 0, MAX), f(Str, 4, MAX), f(Str, 0, MAX), f(Str, 0, MAX), f(Bytes, 0, MAX), f(Bytes, 0, MAX)];
const DESCRIBED_GROUP: &[F] = &[
    f(I16, 0, MAX),
    f(Str, 6, MAX),
    f(Str, 0, MAX),
    f(Str, 0, MAX),
    f(Str, 0, MAX),
    f(Str, 0, MAX),
    f(Arr(DESCRIBED_MEMBER), 0, MAX),
    f(I32, 3, MAX),
];
const DESCRIBE_GROUPS: &[F] = &[f(I32, 1, MAX), f(Arr(DESCRIBED_GROUP), 0, MAX)];

// ---- OffsetFetch (9), flexible from 6; one group up to v7, batched from v8
const OFFSET_FETCH_PARTITION: &[F] = &[f(I32, 0, 7), f(I64, 0, 7), f(I32, 5, 7), f(Str, 0, 7), f(I16, 0, 7)];
const OFFSET_FETCH_TOPIC: &[F] = &[f(Str, 0, 7), f(Arr(OFFSET_FETCH_PARTITION), 0, 7)];
const OFFSET_FETCH_GROUP_PARTITION: &[F] =
    &[f(I32, 8, MAX), f(I64, 8, MAX), f(I32, 8, MAX), f(Str, 8, MAX), f(I16, 8, MAX)];
const OFFSET_FETCH_GROUP_TOPIC: &[F] = &[f(Str, 8, 9), f(Uuid, 10, MAX), f(Arr(OFFSET_FETCH_GROUP_PARTITION), 8, MAX)];
const OFFSET_FETCH_GROUP: &[F] = &[f(Str, 8, MAX), f(Arr(OFFSET_FETCH_GROUP_TOPIC), 8, MAX), f(I16, 8, MAX)];
const OFFSET_FETCH: &[F] =
    &[f(I32, 3, MAX), f(Arr(OFFSET_FETCH_TOPIC), 0, 7), f(I16, 2, 7), f(Arr(OFFSET_FETCH_GROUP), 8, MAX)];

// ---- ListOffsets (2), flexible from 6
const LIST_OFFSETS_PARTITION: &[F] = &[f(I32, 0, MAX), f(I16, 0, MAX), f(I64, 0, MAX), f(I64, 0, MAX), f(I32, 4, MAX)];
const LIST_OFFSETS_TOPIC: &[F] = &[f(Str, 0, MAX), f(Arr(LIST_OFFSETS_PARTITION), 0, MAX)];
const LIST_OFFSETS: &[F] = &[f(I32, 2, MAX), f(Arr(LIST_OFFSETS_TOPIC), 0, MAX)];

// ---- OffsetForLeaderEpoch (23), flexible from 4
const EPOCH_END_OFFSET: &[F] = &[f(I16, 0, MAX), f(I32, 0, MAX), f(I32, 1, MAX), f(I64, 0, MAX)];
const OFFSET_FOR_LEADER_TOPIC: &[F] = &[f(Str, 0, MAX), f(Arr(EPOCH_END_OFFSET), 0, MAX)];
const OFFSET_FOR_LEADER_EPOCH: &[F] = &[f(I32, 2, MAX), f(Arr(OFFSET_FOR_LEADER_TOPIC), 0, MAX)];

// ---- OffsetCommit (8), flexible from 8; topic ids from 10
const OFFSET_COMMIT_PARTITION: &[F] = &[f(I32, 0, MAX), f(I16, 0, MAX)];
const OFFSET_COMMIT_TOPIC: &[F] = &[f(Str, 0, 9), f(Uuid, 10, MAX), f(Arr(OFFSET_COMMIT_PARTITION), 0, MAX)];
const OFFSET_COMMIT: &[F] = &[f(I32, 3, MAX), f(Arr(OFFSET_COMMIT_TOPIC), 0, MAX)];

// ---- DeleteGroups (42), flexible from 2
const DELETABLE_GROUP: &[F] = &[f(Str, 0, MAX), f(I16, 0, MAX)];
const DELETE_GROUPS: &[F] = &[f(I32, 0, MAX), f(Arr(DELETABLE_GROUP), 0, MAX)];

// ---- OffsetDelete (47), never flexible
const OFFSET_DELETE_PARTITION: &[F] = &[f(I32, 0, MAX), f(I16, 0, MAX)];
const OFFSET_DELETE_TOPIC: &[F] = &[f(Str, 0, MAX), f(Arr(OFFSET_DELETE_PARTITION), 0, MAX)];
const OFFSET_DELETE: &[F] = &[f(I16, 0, MAX), f(I32, 0, MAX), f(Arr(OFFSET_DELETE_TOPIC), 0, MAX)];

// ---- Produce (0), flexible from 9; topic ids from 13
const PRODUCE_RECORD_ERROR: &[F] = &[f(I32, 8, MAX), f(Str, 8, MAX)];
const PRODUCE_LEADER: &[F] = &[f(I32, 10, MAX), f(I32, 10, MAX)];
const PRODUCE_NODE_ENDPOINT: &[F] = &[f(I32, 10, MAX), f(Str, 10, MAX), f(I32, 10, MAX), f(Str, 10, MAX)];
const PRODUCE_PARTITION: &[F] = &[
    f(I32, 0, MAX),
    f(I16, 0, MAX),
    f(I64, 0, MAX),
    f(I64, 2, MAX),
    f(I64, 5, MAX),
    f(Arr(PRODUCE_RECORD_ERROR), 8, MAX),
    f(Str, 8, MAX),
    tagged(0, Struct(PRODUCE_LEADER), 10, MAX),
];
const PRODUCE_TOPIC: &[F] = &[f(Str, 0, 12), f(Uuid, 13, MAX), f(Arr(PRODUCE_PARTITION), 0, MAX)];
const PRODUCE: &[F] = &[f(Arr(PRODUCE_TOPIC), 0, MAX), f(I32, 1, MAX), tagged(0, Arr(PRODUCE_NODE_ENDPOINT), 10, MAX)];

// ---- Fetch (1), flexible from 12; topic ids from 13
const FETCH_ABORTED: &[F] = &[f(I64, 4, MAX), f(I64, 4, MAX)];
const FETCH_EPOCH_END: &[F] = &[f(I32, 12, MAX), f(I64, 12, MAX)];
const FETCH_LEADER: &[F] = &[f(I32, 12, MAX), f(I32, 12, MAX)];
const FETCH_SNAPSHOT: &[F] = &[f(I64, 0, MAX), f(I32, 0, MAX)];
const FETCH_NODE_ENDPOINT: &[F] = &[f(I32, 16, MAX), f(Str, 16, MAX), f(I32, 16, MAX), f(Str, 16, MAX)];
const FETCH_PARTITION: &[F] = &[
    f(I32, 0, MAX),
    f(I16, 0, MAX),
    f(I64, 0, MAX),
    f(I64, 4, MAX),
    f(I64, 5, MAX),
    f(Arr(FETCH_ABORTED), 4, MAX),
    f(I32, 11, MAX),
    f(Bytes, 0, MAX),
    tagged(0, Struct(FETCH_EPOCH_END), 12, MAX),
    tagged(1, Struct(FETCH_LEADER), 12, MAX),
    tagged(2, Struct(FETCH_SNAPSHOT), 12, MAX),
];
const FETCH_TOPIC: &[F] = &[f(Str, 0, 12), f(Uuid, 13, MAX), f(Arr(FETCH_PARTITION), 0, MAX)];
const FETCH: &[F] = &[
    f(I32, 1, MAX),
    f(I16, 7, MAX),
    f(I32, 7, MAX),
    f(Arr(FETCH_TOPIC), 0, MAX),
    tagged(0, Arr(FETCH_NODE_ENDPOINT), 16, MAX),
];

// ---- CreateTopics (19), flexible from 5
const CREATED_TOPIC_CONFIG: &[F] = &[f(Str, 5, MAX), f(Str, 5, MAX), f(Bool, 5, MAX), f(I8, 5, MAX), f(Bool, 5, MAX)];
const CREATED_TOPIC: &[F] = &[
    f(Str, 0, MAX),
    f(Uuid, 7, MAX),
    f(I16, 0, MAX),
    f(Str, 1, MAX),
    f(I32, 5, MAX),
    f(I16, 5, MAX),
    f(Arr(CREATED_TOPIC_CONFIG), 5, MAX),
    tagged(0, I16, 5, MAX),
];
const CREATE_TOPICS: &[F] = &[f(I32, 2, MAX), f(Arr(CREATED_TOPIC), 0, MAX)];

// ---- DeleteTopics (20), flexible from 4
const DELETABLE_TOPIC_RESULT: &[F] = &[f(Str, 0, MAX), f(Uuid, 6, MAX), f(I16, 0, MAX), f(Str, 5, MAX)];
const DELETE_TOPICS: &[F] = &[f(I32, 1, MAX), f(Arr(DELETABLE_TOPIC_RESULT), 0, MAX)];

// ---- DescribeConfigs (32), flexible from 4; synonyms from v1, type and documentation from v3
const DESCRIBE_CONFIGS_SYNONYM: &[F] = &[f(Str, 1, MAX), f(Str, 1, MAX), f(I8, 1, MAX)];
const DESCRIBE_CONFIGS_ENTRY: &[F] = &[
    f(Str, 0, MAX),
    f(Str, 0, MAX),
    f(Bool, 0, MAX),
    f(I8, 1, MAX),
    f(Bool, 0, MAX),
    f(Arr(DESCRIBE_CONFIGS_SYNONYM), 1, MAX),
    f(I8, 3, MAX),
    f(Str, 3, MAX),
];
const DESCRIBE_CONFIGS_RESULT: &[F] =
    &[f(I16, 0, MAX), f(Str, 0, MAX), f(I8, 0, MAX), f(Str, 0, MAX), f(Arr(DESCRIBE_CONFIGS_ENTRY), 0, MAX)];
const DESCRIBE_CONFIGS: &[F] = &[f(I32, 0, MAX), f(Arr(DESCRIBE_CONFIGS_RESULT), 0, MAX)];

// ---- IncrementalAlterConfigs (44), flexible from 1
const ALTER_CONFIGS_RESOURCE_RESPONSE: &[F] = &[f(I16, 0, MAX), f(Str, 0, MAX), f(I8, 0, MAX), f(Str, 0, MAX)];
const INCREMENTAL_ALTER_CONFIGS: &[F] = &[f(I32, 0, MAX), f(Arr(ALTER_CONFIGS_RESOURCE_RESPONSE), 0, MAX)];

// ---- CreatePartitions (37), flexible from 2
const CREATE_PARTITIONS_RESULT: &[F] = &[f(Str, 0, MAX), f(I16, 0, MAX), f(Str, 0, MAX)];
const CREATE_PARTITIONS: &[F] = &[f(I32, 0, MAX), f(Arr(CREATE_PARTITIONS_RESULT), 0, MAX)];

// ---- JoinGroup (11), flexible from 6
const JOIN_GROUP_MEMBER: &[F] = &[f(Str, 0, MAX), f(Str, 5, MAX), f(Bytes, 0, MAX)];
const JOIN_GROUP: &[F] = &[
    f(I32, 2, MAX),
    f(I16, 0, MAX),
    f(I32, 0, MAX),
    f(Str, 7, MAX),
    f(Str, 0, MAX),
    f(Str, 0, MAX),
    f(Bool, 9, MAX),
    f(Str, 0, MAX),
    f(Arr(JOIN_GROUP_MEMBER), 0, MAX),
];

// ---- SyncGroup (14), flexible from 4
const SYNC_GROUP: &[F] = &[f(I32, 1, MAX), f(I16, 0, MAX), f(Str, 5, MAX), f(Str, 5, MAX), f(Bytes, 0, MAX)];

// ---- Heartbeat (12), flexible from 4
const HEARTBEAT: &[F] = &[f(I32, 1, MAX), f(I16, 0, MAX)];

// ---- LeaveGroup (13), flexible from 4
const LEAVE_GROUP_MEMBER: &[F] = &[f(Str, 3, MAX), f(Str, 3, MAX), f(I16, 3, MAX)];
const LEAVE_GROUP: &[F] = &[f(I32, 1, MAX), f(I16, 0, MAX), f(Arr(LEAVE_GROUP_MEMBER), 3, MAX)];

// ---- DescribeCluster (60), flexible from 0; endpoint type from v1, fenced brokers from v2
const DESCRIBE_CLUSTER_BROKER: &[F] =
    &[f(I32, 0, MAX), f(Str, 0, MAX), f(I32, 0, MAX), f(Str, 0, MAX), f(Bool, 2, MAX)];
const DESCRIBE_CLUSTER: &[F] = &[
    f(I32, 0, MAX),
    f(I16, 0, MAX),
    f(Str, 0, MAX),
    f(I8, 1, MAX),
    f(Str, 0, MAX),
    f(I32, 0, MAX),
    f(Arr(DESCRIBE_CLUSTER_BROKER), 0, MAX),
    f(I32, 0, MAX),
];

// ---- DescribeQuorum (55), flexible from 0; timestamps from v1, directory ids, messages and nodes from v2
const DESCRIBE_QUORUM_REPLICA: &[F] =
    &[f(I32, 0, MAX), f(Uuid, 2, MAX), f(I64, 0, MAX), f(I64, 1, MAX), f(I64, 1, MAX)];
const DESCRIBE_QUORUM_PARTITION: &[F] = &[
    f(I32, 0, MAX),
    f(I16, 0, MAX),
    f(Str, 2, MAX),
    f(I32, 0, MAX),
    f(I32, 0, MAX),
    f(I64, 0, MAX),
    f(Arr(DESCRIBE_QUORUM_REPLICA), 0, MAX),
    f(Arr(DESCRIBE_QUORUM_REPLICA), 0, MAX),
];
const DESCRIBE_QUORUM_TOPIC: &[F] = &[f(Str, 0, MAX), f(Arr(DESCRIBE_QUORUM_PARTITION), 0, MAX)];
const DESCRIBE_QUORUM_LISTENER: &[F] = &[f(Str, 2, MAX), f(Str, 2, MAX), f(I16, 2, MAX)];
const DESCRIBE_QUORUM_NODE: &[F] = &[f(I32, 2, MAX), f(Arr(DESCRIBE_QUORUM_LISTENER), 2, MAX)];
const DESCRIBE_QUORUM: &[F] =
    &[f(I16, 0, MAX), f(Str, 2, MAX), f(Arr(DESCRIBE_QUORUM_TOPIC), 0, MAX), f(Arr(DESCRIBE_QUORUM_NODE), 2, MAX)];

// ---- Consumer protocol (embedded in JoinGroup metadata and SyncGroup assignments), never flexible
const CONSUMER_TOPIC_PARTITION: &[F] = &[f(Str, 0, MAX), f(PrimArr(&I32), 0, MAX)];
const CONSUMER_SUBSCRIPTION: &[F] = &[
    f(PrimArr(&Str), 0, MAX),
    f(Bytes, 0, MAX),
    f(Arr(CONSUMER_TOPIC_PARTITION), 1, MAX),
    f(I32, 2, MAX),
    f(Str, 3, MAX),
];
const CONSUMER_ASSIGNMENT: &[F] = &[f(Arr(CONSUMER_TOPIC_PARTITION), 0, MAX), f(Bytes, 0, MAX)];

/// The layout of a response body and the first flexible version of its API.
pub(super) fn response_layout(api_key: ApiKey) -> Option<(&'static [F], i16)> {
    Some(match api_key {
        ApiKey::ApiVersions => (API_VERSIONS, 3),
        ApiKey::Metadata => (METADATA, 9),
        ApiKey::FindCoordinator => (FIND_COORDINATOR, 3),
        ApiKey::ListGroups => (LIST_GROUPS, 3),
        ApiKey::DescribeGroups => (DESCRIBE_GROUPS, 5),
        ApiKey::OffsetFetch => (OFFSET_FETCH, 6),
        ApiKey::ListOffsets => (LIST_OFFSETS, 6),
        ApiKey::OffsetForLeaderEpoch => (OFFSET_FOR_LEADER_EPOCH, 4),
        ApiKey::OffsetCommit => (OFFSET_COMMIT, 8),
        ApiKey::DeleteGroups => (DELETE_GROUPS, 2),
        ApiKey::OffsetDelete => (OFFSET_DELETE, i16::MAX),
        ApiKey::Produce => (PRODUCE, 9),
        ApiKey::Fetch => (FETCH, 12),
        ApiKey::CreateTopics => (CREATE_TOPICS, 5),
        ApiKey::DeleteTopics => (DELETE_TOPICS, 4),
        ApiKey::DescribeConfigs => (DESCRIBE_CONFIGS, 4),
        ApiKey::IncrementalAlterConfigs => (INCREMENTAL_ALTER_CONFIGS, 1),
        ApiKey::CreatePartitions => (CREATE_PARTITIONS, 2),
        ApiKey::JoinGroup => (JOIN_GROUP, 6),
        ApiKey::SyncGroup => (SYNC_GROUP, 4),
        ApiKey::Heartbeat => (HEARTBEAT, 4),
        ApiKey::LeaveGroup => (LEAVE_GROUP, 4),
        ApiKey::DescribeCluster => (DESCRIBE_CLUSTER, 0),
        ApiKey::DescribeQuorum => (DESCRIBE_QUORUM, 0),
        _ => return None,
    })
}

/// Walks a response body of `api_key` at `version`, checking every length
/// and count against the bytes present, with at most `elements_max` array
/// elements in total. Only the APIs the internal client calls have a layout;
/// any other gives [`ShapeError::UnknownApi`].
pub fn check_response(api_key: ApiKey, version: i16, body: &[u8], elements_max: usize) -> Result<(), ShapeError> {
    let (fields, flexible_from) = response_layout(api_key).ok_or(ShapeError::UnknownApi(api_key as i16))?;
    check_layout(fields, version >= flexible_from, version, body, elements_max)
}

/// Formats carried inside other messages as opaque bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Embedded {
    /// Kafka's `ConsumerProtocolSubscription` (JoinGroup member metadata), after its int16 version.
    ConsumerSubscription,
    /// Kafka's `ConsumerProtocolAssignment` (SyncGroup assignment), after its int16 version.
    ConsumerAssignment,
}

/// Walks an embedded body (without its leading int16 version) at `version`.
/// Bytes after the known fields are allowed: newer versions append fields.
pub fn check_embedded(kind: Embedded, version: i16, body: &[u8], elements_max: usize) -> Result<(), ShapeError> {
    let fields = match kind {
        Embedded::ConsumerSubscription => CONSUMER_SUBSCRIPTION,
        Embedded::ConsumerAssignment => CONSUMER_ASSIGNMENT,
    };
    check_layout(fields, false, version, body, elements_max)
}
