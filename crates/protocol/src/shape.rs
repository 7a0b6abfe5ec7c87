//! Structural check of request bodies before they are decoded.
//!
//! The generated decoders of `kafka-protocol` size each `Vec` by the element
//! count read off the wire, before decoding a single element. A few bytes
//! claiming two billion elements would abort the process. So every request
//! body first goes through [`check_request`], which walks the same layout the
//! decoder will (field by field, per version, compact forms and tagged fields
//! in flexible versions), checks each length and count against the bytes
//! actually present, and caps the total number of array elements. Only a body
//! that passes is handed to the decoder, whose allocations are then bounded by
//! bytes that really arrived.
//!
//! The same walk guards the client side: [`check_response`] runs over every
//! response body the internal client receives (a broker's counts are no more
//! trusted than a client's), and [`check_embedded`] over the consumer
//! protocol's subscription and assignment bytes, which group members write
//! and DescribeGroups hands to anyone who asks.
//!
//! The layouts below mirror Apache Kafka's message specs; `tests` cross-check
//! each one against the `kafka-protocol` encoder at every supported version.

use kafka_protocol::messages::ApiKey;

/// Why a message body was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShapeError {
    /// The body ends before a field does.
    Truncated(&'static str),
    /// A length or count is negative (other than -1 null) or larger than the bytes left.
    BadLength(&'static str, i64),
    /// The body holds more array elements than the caller accepts.
    TooManyElements(usize),
    /// A tagged field's declared size disagrees with its content.
    TaggedFieldSize(u32),
    /// No layout is known for this API.
    UnknownApi(i16),
}

impl std::fmt::Display for ShapeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShapeError::Truncated(what) => write!(f, "message ends inside {what}"),
            ShapeError::BadLength(what, n) => {
                write!(f, "{what} length {n} is invalid for the bytes present")
            }
            ShapeError::TooManyElements(max) => {
                write!(f, "message holds more than {max} array elements")
            }
            ShapeError::TaggedFieldSize(tag) => {
                write!(f, "tagged field {tag} does not match its declared size")
            }
            ShapeError::UnknownApi(key) => write!(f, "no message layout for api key {key}"),
        }
    }
}

impl std::error::Error for ShapeError {}

/// Field types of the Kafka message grammar. Strings and bytes accept null
/// (-1) everywhere: the decoder enforces nullability, this walk enforces sizes.
#[derive(Debug, Clone, Copy)]
enum Ty {
    Bool,
    I8,
    I16,
    I32,
    I64,
    Uuid,
    Str,
    Bytes,
    /// Array of structs.
    Arr(&'static [F]),
    /// Array of a primitive type.
    PrimArr(&'static Ty),
    /// A struct held directly (not in an array).
    Struct(&'static [F]),
    /// A nullable struct: an int8 marker (1 present, anything else null,
    /// as the decoder reads it), then the struct when present.
    NullableStruct(&'static [F]),
}

/// A field present in versions `min..=max`, or a tagged field when `tag >= 0`.
#[derive(Debug, Clone, Copy)]
struct F {
    ty: Ty,
    min: i16,
    max: i16,
    tag: i32,
}

const MAX: i16 = i16::MAX;

const fn f(ty: Ty, min: i16, max: i16) -> F {
    F { ty, min, max, tag: -1 }
}

const fn tagged(tag: i32, ty: Ty, min: i16, max: i16) -> F {
    F { ty, min, max, tag }
}

impl F {
    fn present(&self, version: i16) -> bool {
        self.min <= version && version <= self.max
    }
}

use Ty::*;

// ---- ApiVersions (18), flexible from 3
const API_VERSIONS: &[F] = &[f(Str, 3, MAX), f(Str, 3, MAX)];

// ---- Metadata (3), flexible from 9
const METADATA_TOPIC: &[F] = &[f(Uuid, 10, MAX), f(Str, 0, MAX)];
const METADATA: &[F] = &[f(Arr(METADATA_TOPIC), 0, MAX), f(Bool, 4, MAX), f(Bool, 8, 10), f(Bool, 8, MAX)];

// ---- Produce (0), flexible from 9
const PRODUCE_PARTITION: &[F] = &[f(I32, 0, MAX), f(Bytes, 0, MAX)];
const PRODUCE_TOPIC: &[F] = &[f(Str, 0, 12), f(Uuid, 13, MAX), f(Arr(PRODUCE_PARTITION), 0, MAX)];
const PRODUCE: &[F] = &[f(Str, 3, MAX), f(I16, 0, MAX), f(I32, 0, MAX), f(Arr(PRODUCE_TOPIC), 0, MAX)];

// ---- Fetch (1), flexible from 12
const FETCH_PARTITION: &[F] = &[
    f(I32, 0, MAX),
    f(I32, 9, MAX),
    f(I64, 0, MAX),
    f(I32, 12, MAX),
    f(I64, 5, MAX),
    f(I32, 0, MAX),
    tagged(0, Uuid, 17, MAX),
    tagged(1, I64, 18, MAX),
];
const FETCH_TOPIC: &[F] = &[f(Str, 0, 12), f(Uuid, 13, MAX), f(Arr(FETCH_PARTITION), 0, MAX)];
const FETCH_FORGOTTEN: &[F] = &[f(Str, 7, 12), f(Uuid, 13, MAX), f(PrimArr(&I32), 7, MAX)];
const FETCH_REPLICA_STATE: &[F] = &[f(I32, 15, MAX), f(I64, 15, MAX)];
const FETCH: &[F] = &[
    tagged(0, Str, 12, MAX),
    f(I32, 0, 14),
    tagged(1, Struct(FETCH_REPLICA_STATE), 15, MAX),
    f(I32, 0, MAX),
    f(I32, 0, MAX),
    f(I32, 3, MAX),
    f(I8, 4, MAX),
    f(I32, 7, MAX),
    f(I32, 7, MAX),
    f(Arr(FETCH_TOPIC), 0, MAX),
    f(Arr(FETCH_FORGOTTEN), 7, MAX),
    f(Str, 11, MAX),
];

// ---- ListOffsets (2), flexible from 6
const LIST_OFFSETS_PARTITION: &[F] = &[f(I32, 0, MAX), f(I32, 4, MAX), f(I64, 0, MAX), f(I32, 0, 0)];
const LIST_OFFSETS_TOPIC: &[F] = &[f(Str, 0, MAX), f(Arr(LIST_OFFSETS_PARTITION), 0, MAX)];
const LIST_OFFSETS: &[F] = &[f(I32, 0, MAX), f(I8, 2, MAX), f(Arr(LIST_OFFSETS_TOPIC), 0, MAX), f(I32, 10, MAX)];

// ---- InitProducerId (22), flexible from 2
const INIT_PRODUCER_ID: &[F] = &[f(Str, 0, MAX), f(I32, 0, MAX), f(I64, 3, MAX), f(I16, 3, MAX)];

// ---- OffsetForLeaderEpoch (23), flexible from 4
const OFFSET_FOR_LEADER_EPOCH_PARTITION: &[F] = &[f(I32, 0, MAX), f(I32, 2, MAX), f(I32, 0, MAX)];
const OFFSET_FOR_LEADER_EPOCH_TOPIC: &[F] = &[f(Str, 0, MAX), f(Arr(OFFSET_FOR_LEADER_EPOCH_PARTITION), 0, MAX)];
const OFFSET_FOR_LEADER_EPOCH: &[F] = &[f(I32, 3, MAX), f(Arr(OFFSET_FOR_LEADER_EPOCH_TOPIC), 0, MAX)];

// ---- CreateTopics (19), flexible from 5
const CREATABLE_ASSIGNMENT: &[F] = &[f(I32, 0, MAX), f(PrimArr(&I32), 0, MAX)];
const CREATABLE_CONFIG: &[F] = &[f(Str, 0, MAX), f(Str, 0, MAX)];
const CREATABLE_TOPIC: &[F] = &[
    f(Str, 0, MAX),
    f(I32, 0, MAX),
    f(I16, 0, MAX),
    f(Arr(CREATABLE_ASSIGNMENT), 0, MAX),
    f(Arr(CREATABLE_CONFIG), 0, MAX),
];
const CREATE_TOPICS: &[F] = &[f(Arr(CREATABLE_TOPIC), 0, MAX), f(I32, 0, MAX), f(Bool, 1, MAX)];

// ---- DeleteTopics (20), flexible from 4
const DELETE_TOPIC_STATE: &[F] = &[f(Str, 6, MAX), f(Uuid, 6, MAX)];
const DELETE_TOPICS: &[F] = &[f(Arr(DELETE_TOPIC_STATE), 6, MAX), f(PrimArr(&Str), 0, 5), f(I32, 0, MAX)];

// ---- CreatePartitions (37), flexible from 2
const CREATE_PARTITIONS_ASSIGNMENT: &[F] = &[f(PrimArr(&I32), 0, MAX)];
const CREATE_PARTITIONS_TOPIC: &[F] = &[f(Str, 0, MAX), f(I32, 0, MAX), f(Arr(CREATE_PARTITIONS_ASSIGNMENT), 0, MAX)];
const CREATE_PARTITIONS: &[F] = &[f(Arr(CREATE_PARTITIONS_TOPIC), 0, MAX), f(I32, 0, MAX), f(Bool, 0, MAX)];

// ---- DeleteRecords (21), flexible from 2
const DELETE_RECORDS_PARTITION: &[F] = &[f(I32, 0, MAX), f(I64, 0, MAX)];
const DELETE_RECORDS_TOPIC: &[F] = &[f(Str, 0, MAX), f(Arr(DELETE_RECORDS_PARTITION), 0, MAX)];
const DELETE_RECORDS: &[F] = &[f(Arr(DELETE_RECORDS_TOPIC), 0, MAX), f(I32, 0, MAX)];

// ---- DescribeConfigs (32), flexible from 4
const DESCRIBE_CONFIGS_RESOURCE: &[F] = &[f(I8, 0, MAX), f(Str, 0, MAX), f(PrimArr(&Str), 0, MAX)];
const DESCRIBE_CONFIGS: &[F] = &[f(Arr(DESCRIBE_CONFIGS_RESOURCE), 0, MAX), f(Bool, 1, MAX), f(Bool, 3, MAX)];

// ---- AlterConfigs (33), flexible from 2
const ALTERABLE_CONFIG: &[F] = &[f(Str, 0, MAX), f(Str, 0, MAX)];
const ALTER_CONFIGS_RESOURCE: &[F] = &[f(I8, 0, MAX), f(Str, 0, MAX), f(Arr(ALTERABLE_CONFIG), 0, MAX)];
const ALTER_CONFIGS: &[F] = &[f(Arr(ALTER_CONFIGS_RESOURCE), 0, MAX), f(Bool, 0, MAX)];

// ---- IncrementalAlterConfigs (44), flexible from 1
const INCREMENTAL_CONFIG: &[F] = &[f(Str, 0, MAX), f(I8, 0, MAX), f(Str, 0, MAX)];
const INCREMENTAL_RESOURCE: &[F] = &[f(I8, 0, MAX), f(Str, 0, MAX), f(Arr(INCREMENTAL_CONFIG), 0, MAX)];
const INCREMENTAL_ALTER_CONFIGS: &[F] = &[f(Arr(INCREMENTAL_RESOURCE), 0, MAX), f(Bool, 0, MAX)];

// ---- DescribeCluster (60), flexible from 0
const DESCRIBE_CLUSTER: &[F] = &[f(Bool, 0, MAX), f(I8, 1, MAX), f(Bool, 2, MAX)];

// ---- DescribeQuorum (55), flexible from 0
const DESCRIBE_QUORUM_PARTITION: &[F] = &[f(I32, 0, MAX)];
const DESCRIBE_QUORUM_TOPIC: &[F] = &[f(Str, 0, MAX), f(Arr(DESCRIBE_QUORUM_PARTITION), 0, MAX)];
const DESCRIBE_QUORUM: &[F] = &[f(Arr(DESCRIBE_QUORUM_TOPIC), 0, MAX)];

// ---- ElectLeaders (43), flexible from 2; election type from v1
const ELECT_LEADERS_TOPIC: &[F] = &[f(Str, 0, MAX), f(PrimArr(&I32), 0, MAX)];
const ELECT_LEADERS: &[F] = &[f(I8, 1, MAX), f(Arr(ELECT_LEADERS_TOPIC), 0, MAX), f(I32, 0, MAX)];

// ---- DescribeLogDirs (35), flexible from 2
const DESCRIBE_LOG_DIRS_TOPIC: &[F] = &[f(Str, 0, MAX), f(PrimArr(&I32), 0, MAX)];
const DESCRIBE_LOG_DIRS: &[F] = &[f(Arr(DESCRIBE_LOG_DIRS_TOPIC), 0, MAX)];

// ---- FindCoordinator (10), flexible from 3
const FIND_COORDINATOR: &[F] = &[f(Str, 0, 3), f(I8, 1, MAX), f(PrimArr(&Str), 4, MAX)];

// ---- JoinGroup (11), flexible from 6
const JOIN_GROUP_PROTOCOL: &[F] = &[f(Str, 0, MAX), f(Bytes, 0, MAX)];
const JOIN_GROUP: &[F] = &[
    f(Str, 0, MAX),
    f(I32, 0, MAX),
    f(I32, 1, MAX),
    f(Str, 0, MAX),
    f(Str, 5, MAX),
    f(Str, 0, MAX),
    f(Arr(JOIN_GROUP_PROTOCOL), 0, MAX),
    f(Str, 8, MAX),
];

// ---- Heartbeat (12), flexible from 4
const HEARTBEAT: &[F] = &[f(Str, 0, MAX), f(I32, 0, MAX), f(Str, 0, MAX), f(Str, 3, MAX)];

// ---- LeaveGroup (13), flexible from 4
const LEAVE_GROUP_MEMBER: &[F] = &[f(Str, 3, MAX), f(Str, 3, MAX), f(Str, 5, MAX)];
const LEAVE_GROUP: &[F] = &[f(Str, 0, MAX), f(Str, 0, 2), f(Arr(LEAVE_GROUP_MEMBER), 3, MAX)];

// ---- SyncGroup (14), flexible from 4
const SYNC_GROUP_ASSIGNMENT: &[F] = &[f(Str, 0, MAX), f(Bytes, 0, MAX)];
const SYNC_GROUP: &[F] = &[
    f(Str, 0, MAX),
    f(I32, 0, MAX),
    f(Str, 0, MAX),
    f(Str, 3, MAX),
    f(Str, 5, MAX),
    f(Str, 5, MAX),
    f(Arr(SYNC_GROUP_ASSIGNMENT), 0, MAX),
];

// ---- OffsetCommit (8), flexible from 8
const OFFSET_COMMIT_PARTITION: &[F] = &[f(I32, 0, MAX), f(I64, 0, MAX), f(I32, 6, MAX), f(Str, 0, MAX)];
const OFFSET_COMMIT_TOPIC: &[F] = &[f(Str, 0, MAX), f(Arr(OFFSET_COMMIT_PARTITION), 0, MAX)];
const OFFSET_COMMIT: &[F] = &[
    f(Str, 0, MAX),
    f(I32, 1, MAX),
    f(Str, 1, MAX),
    f(Str, 7, MAX),
    f(I64, 2, 4),
    f(Arr(OFFSET_COMMIT_TOPIC), 0, MAX),
];

// ---- OffsetFetch (9), flexible from 6
const OFFSET_FETCH_TOPIC: &[F] = &[f(Str, 0, 7), f(PrimArr(&I32), 0, 7)];
const OFFSET_FETCH_GROUP_TOPIC: &[F] = &[f(Str, 8, MAX), f(PrimArr(&I32), 8, MAX)];
const OFFSET_FETCH_GROUP: &[F] =
    &[f(Str, 8, MAX), f(Str, 9, MAX), f(I32, 9, MAX), f(Arr(OFFSET_FETCH_GROUP_TOPIC), 8, MAX)];
const OFFSET_FETCH: &[F] =
    &[f(Str, 0, 7), f(Arr(OFFSET_FETCH_TOPIC), 0, 7), f(Arr(OFFSET_FETCH_GROUP), 8, MAX), f(Bool, 7, MAX)];

// ---- DescribeGroups (15), flexible from 5
const DESCRIBE_GROUPS: &[F] = &[f(PrimArr(&Str), 0, MAX), f(Bool, 3, MAX)];

// ---- ListGroups (16), flexible from 3
const LIST_GROUPS: &[F] = &[f(PrimArr(&Str), 4, MAX), f(PrimArr(&Str), 5, MAX)];

// ---- DeleteGroups (42), flexible from 2
const DELETE_GROUPS: &[F] = &[f(PrimArr(&Str), 0, MAX)];

// ---- OffsetDelete (47), never flexible
const OFFSET_DELETE_PARTITION: &[F] = &[f(I32, 0, MAX)];
const OFFSET_DELETE_TOPIC: &[F] = &[f(Str, 0, MAX), f(Arr(OFFSET_DELETE_PARTITION), 0, MAX)];
const OFFSET_DELETE: &[F] = &[f(Str, 0, MAX), f(Arr(OFFSET_DELETE_TOPIC), 0, MAX)];

// ---- ConsumerGroupHeartbeat (68), flexible from 0
const CONSUMER_GROUP_HEARTBEAT_TOPIC: &[F] = &[f(Uuid, 0, MAX), f(PrimArr(&I32), 0, MAX)];
const CONSUMER_GROUP_HEARTBEAT: &[F] = &[
    f(Str, 0, MAX),
    f(Str, 0, MAX),
    f(I32, 0, MAX),
    f(Str, 0, MAX),
    f(Str, 0, MAX),
    f(I32, 0, MAX),
    f(PrimArr(&Str), 0, MAX),
    f(Str, 1, MAX),
    f(Str, 0, MAX),
    f(Arr(CONSUMER_GROUP_HEARTBEAT_TOPIC), 0, MAX),
];

// ---- ConsumerGroupDescribe (69), flexible from 0
const CONSUMER_GROUP_DESCRIBE: &[F] = &[f(PrimArr(&Str), 0, MAX), f(Bool, 0, MAX)];

// ---- ListConfigResources (74), flexible from 0; v0 has no fields
const LIST_CONFIG_RESOURCES: &[F] = &[f(PrimArr(&I8), 1, MAX)];

// ---- DescribeTopicPartitions (75), flexible from 0
const DESCRIBE_TOPIC_PARTITIONS_TOPIC: &[F] = &[f(Str, 0, MAX)];
const DESCRIBE_TOPIC_PARTITIONS_CURSOR: &[F] = &[f(Str, 0, MAX), f(I32, 0, MAX)];
const DESCRIBE_TOPIC_PARTITIONS: &[F] = &[
    f(Arr(DESCRIBE_TOPIC_PARTITIONS_TOPIC), 0, MAX),
    f(I32, 0, MAX),
    f(NullableStruct(DESCRIBE_TOPIC_PARTITIONS_CURSOR), 0, MAX),
];

// ---- AddRaftVoter (80), flexible from 0 (KIP-853); Port is a uint16
const RAFT_VOTER_LISTENER: &[F] = &[f(Str, 0, MAX), f(Str, 0, MAX), f(I16, 0, MAX)];
const ADD_RAFT_VOTER: &[F] = &[
    f(Str, 0, MAX),
    f(I32, 0, MAX),
    f(I32, 0, MAX),
    f(Uuid, 0, MAX),
    f(Arr(RAFT_VOTER_LISTENER), 0, MAX),
    f(Bool, 1, MAX),
];

// ---- RemoveRaftVoter (81), flexible from 0 (KIP-853)
const REMOVE_RAFT_VOTER: &[F] = &[f(Str, 0, MAX), f(I32, 0, MAX), f(Uuid, 0, MAX)];

// ---- AlterPartitionReassignments (45), flexible from 0; AllowReplicationFactorChange from v1 (KIP-860)
const ALTER_PARTITION_REASSIGNMENTS_PARTITION: &[F] = &[f(I32, 0, MAX), f(PrimArr(&I32), 0, MAX)];
const ALTER_PARTITION_REASSIGNMENTS_TOPIC: &[F] =
    &[f(Str, 0, MAX), f(Arr(ALTER_PARTITION_REASSIGNMENTS_PARTITION), 0, MAX)];
const ALTER_PARTITION_REASSIGNMENTS: &[F] =
    &[f(I32, 0, MAX), f(Bool, 1, MAX), f(Arr(ALTER_PARTITION_REASSIGNMENTS_TOPIC), 0, MAX)];

// ---- ListPartitionReassignments (46), flexible from 0; Topics nullable
const LIST_PARTITION_REASSIGNMENTS_TOPIC: &[F] = &[f(Str, 0, MAX), f(PrimArr(&I32), 0, MAX)];
const LIST_PARTITION_REASSIGNMENTS: &[F] = &[f(I32, 0, MAX), f(Arr(LIST_PARTITION_REASSIGNMENTS_TOPIC), 0, MAX)];

/// The layout of a request body and the first flexible version of its API.
fn layout(api_key: ApiKey) -> Option<(&'static [F], i16)> {
    Some(match api_key {
        ApiKey::Produce => (PRODUCE, 9),
        ApiKey::Fetch => (FETCH, 12),
        ApiKey::ListOffsets => (LIST_OFFSETS, 6),
        ApiKey::Metadata => (METADATA, 9),
        ApiKey::ApiVersions => (API_VERSIONS, 3),
        ApiKey::CreateTopics => (CREATE_TOPICS, 5),
        ApiKey::DeleteTopics => (DELETE_TOPICS, 4),
        ApiKey::DeleteRecords => (DELETE_RECORDS, 2),
        ApiKey::InitProducerId => (INIT_PRODUCER_ID, 2),
        ApiKey::OffsetForLeaderEpoch => (OFFSET_FOR_LEADER_EPOCH, 4),
        ApiKey::DescribeConfigs => (DESCRIBE_CONFIGS, 4),
        ApiKey::AlterConfigs => (ALTER_CONFIGS, 2),
        ApiKey::CreatePartitions => (CREATE_PARTITIONS, 2),
        ApiKey::IncrementalAlterConfigs => (INCREMENTAL_ALTER_CONFIGS, 1),
        ApiKey::DescribeCluster => (DESCRIBE_CLUSTER, 0),
        ApiKey::DescribeQuorum => (DESCRIBE_QUORUM, 0),
        ApiKey::ElectLeaders => (ELECT_LEADERS, 2),
        ApiKey::DescribeLogDirs => (DESCRIBE_LOG_DIRS, 2),
        ApiKey::FindCoordinator => (FIND_COORDINATOR, 3),
        ApiKey::JoinGroup => (JOIN_GROUP, 6),
        ApiKey::Heartbeat => (HEARTBEAT, 4),
        ApiKey::LeaveGroup => (LEAVE_GROUP, 4),
        ApiKey::SyncGroup => (SYNC_GROUP, 4),
        ApiKey::OffsetCommit => (OFFSET_COMMIT, 8),
        ApiKey::OffsetFetch => (OFFSET_FETCH, 6),
        ApiKey::DescribeGroups => (DESCRIBE_GROUPS, 5),
        ApiKey::ListGroups => (LIST_GROUPS, 3),
        ApiKey::DeleteGroups => (DELETE_GROUPS, 2),
        ApiKey::OffsetDelete => (OFFSET_DELETE, i16::MAX),
        ApiKey::ConsumerGroupHeartbeat => (CONSUMER_GROUP_HEARTBEAT, 0),
        ApiKey::ConsumerGroupDescribe => (CONSUMER_GROUP_DESCRIBE, 0),
        ApiKey::ListConfigResources => (LIST_CONFIG_RESOURCES, 0),
        ApiKey::DescribeTopicPartitions => (DESCRIBE_TOPIC_PARTITIONS, 0),
        ApiKey::AddRaftVoter => (ADD_RAFT_VOTER, 0),
        ApiKey::RemoveRaftVoter => (REMOVE_RAFT_VOTER, 0),
        ApiKey::AlterPartitionReassignments => (ALTER_PARTITION_REASSIGNMENTS, 0),
        ApiKey::ListPartitionReassignments => (LIST_PARTITION_REASSIGNMENTS, 0),
        _ => return None,
    })
}

/// Whether `version` of `api_key` uses the flexible encoding (request header
/// v2, compact strings and arrays, tagged fields). `None` for APIs without a layout here.
pub fn is_flexible(api_key: ApiKey, version: i16) -> Option<bool> {
    layout(api_key).map(|(_, flexible_from)| version >= flexible_from)
}

/// Walks a request body of `api_key` at `version`, checking every length and
/// count against the bytes present, with at most `elements_max` array
/// elements in total. Bytes after the body are allowed (some clients send them).
pub fn check_request(api_key: ApiKey, version: i16, body: &[u8], elements_max: usize) -> Result<(), ShapeError> {
    let (fields, flexible_from) = layout(api_key).ok_or(ShapeError::UnknownApi(api_key as i16))?;
    let mut walker = Walker { buf: body, version, flexible: version >= flexible_from, elements: 0, elements_max };
    walker.walk_struct(fields)
}

/// Walks `body` as the struct `fields`, flexible or not, at `version`.
fn check_layout(
    fields: &[F],
    flexible: bool,
    version: i16,
    body: &[u8],
    elements_max: usize,
) -> Result<(), ShapeError> {
    let mut walker = Walker { buf: body, version, flexible, elements: 0, elements_max };
    walker.walk_struct(fields)
}

struct Walker<'a> {
    buf: &'a [u8],
    version: i16,
    flexible: bool,
    elements: usize,
    elements_max: usize,
}

impl Walker<'_> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<(), ShapeError> {
        if self.buf.len() < n {
            return Err(ShapeError::Truncated(what));
        }
        self.buf = &self.buf[n..];
        Ok(())
    }

    fn int(&mut self, n: usize, what: &'static str) -> Result<i64, ShapeError> {
        if self.buf.len() < n {
            return Err(ShapeError::Truncated(what));
        }
        let mut v: i64 = 0;
        for &b in &self.buf[..n] {
            v = (v << 8) | i64::from(b);
        }
        // sign-extend
        let shift = 64 - 8 * n as u32;
        self.buf = &self.buf[n..];
        Ok((v << shift) >> shift)
    }

    fn uvarint(&mut self, what: &'static str) -> Result<u32, ShapeError> {
        let mut value: u32 = 0;
        for i in 0..5 {
            let (&b, rest) = self.buf.split_first().ok_or(ShapeError::Truncated(what))?;
            self.buf = rest;
            value |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ShapeError::BadLength(what, -1))
    }

    /// Reads a length prefix: `None` for null, else the length (checked against what is left
    /// when `bytes_per_unit` is 1; for arrays, checked against one byte per element).
    fn length(&mut self, what: &'static str, wide: bool) -> Result<Option<usize>, ShapeError> {
        let n: i64 = if self.flexible {
            i64::from(self.uvarint(what)?) - 1
        } else if wide {
            self.int(4, what)?
        } else {
            self.int(2, what)?
        };
        if n == -1 {
            return Ok(None);
        }
        if n < 0 || n as usize > self.buf.len() {
            return Err(ShapeError::BadLength(what, n));
        }
        Ok(Some(n as usize))
    }

    fn walk(&mut self, ty: &Ty) -> Result<(), ShapeError> {
        match ty {
            Bool | I8 => self.take(1, "an int8"),
            I16 => self.take(2, "an int16"),
            I32 => self.take(4, "an int32"),
            I64 => self.take(8, "an int64"),
            Uuid => self.take(16, "a uuid"),
            Str => match self.length("a string", false)? {
                Some(n) => self.take(n, "a string"),
                None => Ok(()),
            },
            Bytes => match self.length("bytes", true)? {
                Some(n) => self.take(n, "bytes"),
                None => Ok(()),
            },
            Arr(fields) => self.array(|w| w.walk_struct(fields)),
            PrimArr(inner) => self.array(|w| w.walk(inner)),
            Struct(fields) => self.walk_struct(fields),
            NullableStruct(fields) => {
                let present = self.int(1, "a nullable struct marker")?;
                if present == 1 { self.walk_struct(fields) } else { Ok(()) }
            }
        }
    }

    fn array(&mut self, mut each: impl FnMut(&mut Self) -> Result<(), ShapeError>) -> Result<(), ShapeError> {
        let Some(count) = self.length("an array", true)? else {
            return Ok(());
        };
        self.elements += count;
        if self.elements > self.elements_max {
            return Err(ShapeError::TooManyElements(self.elements_max));
        }
        for _ in 0..count {
            each(self)?;
        }
        Ok(())
    }

    fn walk_struct(&mut self, fields: &[F]) -> Result<(), ShapeError> {
        let version = self.version;
        for field in fields.iter().filter(|f| f.tag < 0 && f.present(version)) {
            self.walk(&field.ty)?;
        }
        if !self.flexible {
            return Ok(());
        }
        let count = self.uvarint("the tagged field count")?;
        for _ in 0..count {
            let tag = self.uvarint("a tag")?;
            let size = self.uvarint("a tagged field size")? as usize;
            if size > self.buf.len() {
                return Err(ShapeError::BadLength("a tagged field", size as i64));
            }
            let known = fields.iter().find(|f| f.tag >= 0 && f.tag as u32 == tag && f.present(self.version));
            match known {
                Some(field) => {
                    let before = self.buf.len();
                    self.walk(&field.ty)?;
                    if before - self.buf.len() != size {
                        return Err(ShapeError::TaggedFieldSize(tag));
                    }
                }
                None => self.take(size, "a tagged field")?,
            }
        }
        Ok(())
    }
}

mod responses;
pub use responses::{Embedded, check_embedded, check_response};

#[cfg(test)]
mod tests;
