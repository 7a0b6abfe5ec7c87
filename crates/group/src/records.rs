//! The records of `__consumer_offsets`, in Kafka's formats, so tools that
//! read that topic keep working.
//!
//! Key = `int16 type` + fields; value = `int16 version` + fields (null value
//! = tombstone):
//!
//! | type | key | value written |
//! |---|---|---|
//! | 0, 1 | OffsetCommitKey: group string, topic string, partition int32 | OffsetCommitValue v3: offset int64, leader_epoch int32, metadata string, commit_timestamp int64 |
//! | 2 | GroupMetadataKey: group string | GroupMetadataValue v3: protocol_type string, generation int32, protocol nullable string, leader nullable string, current_state_timestamp int64, members [member_id, group_instance_id (nullable), client_id, client_host, rebalance_timeout int32, session_timeout int32, subscription bytes, assignment bytes] |
//! | 3 | ConsumerGroupMetadataKey: group | ConsumerGroupMetadataValue v0 (flexible): epoch int32, tag 0 metadata_hash int64 |
//! | 4 | ConsumerGroupPartitionMetadataKey: group | read and ignored (older brokers' subscription metadata) |
//! | 5 | ConsumerGroupMemberMetadataKey: group, member | ConsumerGroupMemberMetadataValue v0: instance_id?, rack_id?, client_id, client_host, subscribed_topic_names [string], subscribed_topic_regex?, rebalance_timeout_ms int32, server_assignor? |
//! | 6 | ConsumerGroupTargetAssignmentMetadataKey: group | ConsumerGroupTargetAssignmentMetadataValue v0: assignment_epoch int32 |
//! | 7 | ConsumerGroupTargetAssignmentMemberKey: group, member | ConsumerGroupTargetAssignmentMemberValue v0: topic_partitions [topic_id uuid, partitions [int32]] |
//! | 8 | ConsumerGroupCurrentMemberAssignmentKey: group, member | ConsumerGroupCurrentMemberAssignmentValue v0: member_epoch, previous_member_epoch int32, state int8, assigned_partitions, partitions_pending_revocation (as in 7) |
//!
//! Keys are never flexible. Values of types 3-8 are version 0 in the flexible
//! encoding (compact strings and arrays, tagged fields after every struct);
//! unknown tagged fields are skipped. Older value versions (OffsetCommitValue
//! 0-2, GroupMetadataValue 0-2) are read too; flexible versions (4) are read
//! when they carry no tagged fields.

/// Why a record could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The bytes end early.
    #[error("record ends inside {0}")]
    Truncated(&'static str),
    /// A type or version this code does not know.
    #[error("unknown {what} {version}")]
    Unknown {
        /// Key type or value version.
        what: &'static str,
        /// The number found.
        version: i16,
    },
    /// A string is not UTF-8.
    #[error("{0} is not UTF-8")]
    NotUtf8(&'static str),
}

/// A key of `__consumer_offsets`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum OffsetsKey {
    /// The committed offset of one partition for a group.
    Offset {
        /// Group id.
        group: String,
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
    },
    /// A group's membership and generation.
    Group {
        /// Group id.
        group: String,
    },
    /// A consumer group's epoch (type 3).
    ConsumerGroup {
        /// Group id.
        group: String,
    },
    /// A consumer group's subscription metadata (type 4; read and ignored).
    ConsumerPartitionMetadata {
        /// Group id.
        group: String,
    },
    /// A consumer group member's subscription and client details (type 5).
    ConsumerMember {
        /// Group id.
        group: String,
        /// Member id.
        member: String,
    },
    /// The epoch of a consumer group's target assignment (type 6).
    ConsumerTargetAssignment {
        /// Group id.
        group: String,
    },
    /// One member's target assignment (type 7).
    ConsumerTargetMember {
        /// Group id.
        group: String,
        /// Member id.
        member: String,
    },
    /// One member's current assignment and epochs (type 8).
    ConsumerCurrentAssignment {
        /// Group id.
        group: String,
        /// Member id.
        member: String,
    },
}

/// A committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetValue {
    /// The next offset to consume.
    pub offset: i64,
    /// Leader epoch of the record before it, or -1.
    pub leader_epoch: i32,
    /// Client metadata.
    pub metadata: String,
    /// When it was committed (ms).
    pub commit_timestamp: i64,
    /// Explicit expiry (value v1 only), or -1.
    pub expire_timestamp: i64,
}

/// A member as stored in group metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberValue {
    /// Member id.
    pub member_id: String,
    /// Static membership id.
    pub group_instance_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client host.
    pub client_host: String,
    /// Rebalance timeout (ms).
    pub rebalance_timeout_ms: i32,
    /// Session timeout (ms).
    pub session_timeout_ms: i32,
    /// Subscription (protocol metadata of the chosen protocol).
    pub subscription: Vec<u8>,
    /// Assignment given to the member.
    pub assignment: Vec<u8>,
}

/// A group's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupValue {
    /// Protocol type ("consumer", "connect", ...).
    pub protocol_type: String,
    /// Generation.
    pub generation: i32,
    /// Chosen protocol.
    pub protocol: Option<String>,
    /// Leader member id.
    pub leader: Option<String>,
    /// When the state last changed (ms), or -1.
    pub current_state_timestamp: i64,
    /// Members.
    pub members: Vec<MemberValue>,
}

const OFFSET_VALUE_VERSION: i16 = 3;
const GROUP_VALUE_VERSION: i16 = 3;

fn put_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as i16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_nullable_string(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => put_string(out, s),
        None => out.extend_from_slice(&(-1i16).to_be_bytes()),
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as i32).to_be_bytes());
    out.extend_from_slice(b);
}

impl OffsetsKey {
    /// Encodes the key (offset keys as type 1, group keys as type 2).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            OffsetsKey::Offset { group, topic, partition } => {
                out.extend_from_slice(&1i16.to_be_bytes());
                put_string(&mut out, group);
                put_string(&mut out, topic);
                out.extend_from_slice(&partition.to_be_bytes());
            }
            OffsetsKey::Group { group } => {
                out.extend_from_slice(&2i16.to_be_bytes());
                put_string(&mut out, group);
            }
            OffsetsKey::ConsumerGroup { group }
            | OffsetsKey::ConsumerPartitionMetadata { group }
            | OffsetsKey::ConsumerTargetAssignment { group } => {
                out.extend_from_slice(&self.kind().to_be_bytes());
                put_string(&mut out, group);
            }
            OffsetsKey::ConsumerMember { group, member }
            | OffsetsKey::ConsumerTargetMember { group, member }
            | OffsetsKey::ConsumerCurrentAssignment { group, member } => {
                out.extend_from_slice(&self.kind().to_be_bytes());
                put_string(&mut out, group);
                put_string(&mut out, member);
            }
        }
        out
    }

    /// The key type (Kafka's key "version").
    pub fn kind(&self) -> i16 {
        match self {
            OffsetsKey::Offset { .. } => 1,
            OffsetsKey::Group { .. } => 2,
            OffsetsKey::ConsumerGroup { .. } => 3,
            OffsetsKey::ConsumerPartitionMetadata { .. } => 4,
            OffsetsKey::ConsumerMember { .. } => 5,
            OffsetsKey::ConsumerTargetAssignment { .. } => 6,
            OffsetsKey::ConsumerTargetMember { .. } => 7,
            OffsetsKey::ConsumerCurrentAssignment { .. } => 8,
        }
    }

    /// Decodes a key. `Ok(None)` for record types this coordinator does not
    /// own (share and streams group records, types 9 and up), which are skipped.
    pub fn decode(bytes: &[u8]) -> Result<Option<OffsetsKey>, RecordError> {
        let mut r = Reader(bytes);
        let kind = r.i16("key type")?;
        Ok(Some(match kind {
            0 | 1 => OffsetsKey::Offset {
                group: r.string("group")?,
                topic: r.string("topic")?,
                partition: r.i32("partition")?,
            },
            2 => OffsetsKey::Group { group: r.string("group")? },
            3 => OffsetsKey::ConsumerGroup { group: r.string("group")? },
            4 => OffsetsKey::ConsumerPartitionMetadata { group: r.string("group")? },
            5 => OffsetsKey::ConsumerMember { group: r.string("group")?, member: r.string("member")? },
            6 => OffsetsKey::ConsumerTargetAssignment { group: r.string("group")? },
            7 => OffsetsKey::ConsumerTargetMember { group: r.string("group")?, member: r.string("member")? },
            8 => OffsetsKey::ConsumerCurrentAssignment { group: r.string("group")?, member: r.string("member")? },
            9..=i16::MAX => return Ok(None),
            other => {
                return Err(RecordError::Unknown { what: "key type", version: other });
            }
        }))
    }

    /// The group this key belongs to.
    pub fn group(&self) -> &str {
        match self {
            OffsetsKey::Offset { group, .. }
            | OffsetsKey::Group { group }
            | OffsetsKey::ConsumerGroup { group }
            | OffsetsKey::ConsumerPartitionMetadata { group }
            | OffsetsKey::ConsumerMember { group, .. }
            | OffsetsKey::ConsumerTargetAssignment { group }
            | OffsetsKey::ConsumerTargetMember { group, .. }
            | OffsetsKey::ConsumerCurrentAssignment { group, .. } => group,
        }
    }

    /// Whether the key holds consumer group (KIP-848) state.
    pub fn is_consumer_group(&self) -> bool {
        (3..=8).contains(&self.kind())
    }
}

impl OffsetValue {
    /// Encodes the value as version 3.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&OFFSET_VALUE_VERSION.to_be_bytes());
        out.extend_from_slice(&self.offset.to_be_bytes());
        out.extend_from_slice(&self.leader_epoch.to_be_bytes());
        put_string(&mut out, &self.metadata);
        out.extend_from_slice(&self.commit_timestamp.to_be_bytes());
        out
    }

    /// Decodes versions 0-4.
    pub fn decode(bytes: &[u8]) -> Result<OffsetValue, RecordError> {
        let mut r = Reader(bytes);
        let version = r.i16("value version")?;
        if !(0..=4).contains(&version) {
            return Err(RecordError::Unknown { what: "offset value version", version });
        }
        let flexible = version >= 4;
        let offset = r.i64("offset")?;
        let leader_epoch = if version >= 3 { r.i32("leader epoch")? } else { -1 };
        let metadata = r.string_v("metadata", flexible)?;
        let commit_timestamp = r.i64("commit timestamp")?;
        let expire_timestamp = if version == 1 { r.i64("expire timestamp")? } else { -1 };
        Ok(OffsetValue { offset, leader_epoch, metadata, commit_timestamp, expire_timestamp })
    }
}

impl GroupValue {
    /// Encodes the value as version 3.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&GROUP_VALUE_VERSION.to_be_bytes());
        put_string(&mut out, &self.protocol_type);
        out.extend_from_slice(&self.generation.to_be_bytes());
        put_nullable_string(&mut out, self.protocol.as_deref());
        put_nullable_string(&mut out, self.leader.as_deref());
        out.extend_from_slice(&self.current_state_timestamp.to_be_bytes());
        out.extend_from_slice(&(self.members.len() as i32).to_be_bytes());
        for m in &self.members {
            put_string(&mut out, &m.member_id);
            put_nullable_string(&mut out, m.group_instance_id.as_deref());
            put_string(&mut out, &m.client_id);
            put_string(&mut out, &m.client_host);
            out.extend_from_slice(&m.rebalance_timeout_ms.to_be_bytes());
            out.extend_from_slice(&m.session_timeout_ms.to_be_bytes());
            put_bytes(&mut out, &m.subscription);
            put_bytes(&mut out, &m.assignment);
        }
        out
    }

    /// Decodes versions 0-3 (and 4 without tagged fields).
    pub fn decode(bytes: &[u8]) -> Result<GroupValue, RecordError> {
        let mut r = Reader(bytes);
        let version = r.i16("value version")?;
        if !(0..=4).contains(&version) {
            return Err(RecordError::Unknown { what: "group value version", version });
        }
        let flexible = version >= 4;
        let protocol_type = r.string_v("protocol type", flexible)?;
        let generation = r.i32("generation")?;
        let protocol = r.nullable_string_v("protocol", flexible)?;
        let leader = r.nullable_string_v("leader", flexible)?;
        let current_state_timestamp = if version >= 2 { r.i64("current state timestamp")? } else { -1 };
        let count = r.count("members", flexible)?;
        let mut members = Vec::new();
        for _ in 0..count {
            let member_id = r.string_v("member id", flexible)?;
            let group_instance_id =
                if version >= 3 { r.nullable_string_v("group instance id", flexible)? } else { None };
            let client_id = r.string_v("client id", flexible)?;
            let client_host = r.string_v("client host", flexible)?;
            let rebalance_timeout_ms = if version >= 1 { r.i32("rebalance timeout")? } else { -1 };
            let session_timeout_ms = r.i32("session timeout")?;
            let subscription = r.bytes_v("subscription", flexible)?;
            let assignment = r.bytes_v("assignment", flexible)?;
            if flexible {
                r.skip_tags()?;
            }
            members.push(MemberValue {
                member_id,
                group_instance_id,
                client_id,
                client_host,
                rebalance_timeout_ms,
                session_timeout_ms,
                subscription,
                assignment,
            });
        }
        Ok(GroupValue { protocol_type, generation, protocol, leader, current_state_timestamp, members })
    }
}

/// Partitions by topic id, as the consumer group records hold them.
pub type TopicPartitionsValue = Vec<([u8; 16], Vec<i32>)>;

/// A consumer group's epoch (type 3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupValue {
    /// The group epoch.
    pub epoch: i32,
    /// Hash of the subscribed topics' metadata (tag 0); 0 when absent.
    pub metadata_hash: i64,
}

/// A consumer group member's subscription and client details (type 5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerMemberValue {
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
    /// Server-side assignor the member asked for.
    pub server_assignor: Option<String>,
}

/// A member's current assignment and epochs (type 8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerCurrentValue {
    /// The epoch the member must heartbeat with.
    pub member_epoch: i32,
    /// The epoch before the last bump (accepted if that response was lost).
    pub previous_member_epoch: i32,
    /// Reconciliation state: 0 stable, 1 unrevoked partitions, 2 unreleased partitions.
    pub state: i8,
    /// Partitions the member owns.
    pub assigned: TopicPartitionsValue,
    /// Partitions the member must give up.
    pub pending_revocation: TopicPartitionsValue,
}

/// The value of a consumer group record (types 3, 5, 6, 7, 8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumerValue {
    /// Type 3.
    Group(ConsumerGroupValue),
    /// Type 5.
    Member(ConsumerMemberValue),
    /// Type 6: the target assignment epoch.
    TargetEpoch(i32),
    /// Type 7: one member's target assignment.
    Target(TopicPartitionsValue),
    /// Type 8.
    Current(ConsumerCurrentValue),
}

fn put_uvarint(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_compact_string(out: &mut Vec<u8>, s: &str) {
    put_uvarint(out, s.len() as u32 + 1);
    out.extend_from_slice(s.as_bytes());
}

fn put_compact_nullable_string(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => put_compact_string(out, s),
        None => out.push(0),
    }
}

fn put_topic_partitions(out: &mut Vec<u8>, tps: &TopicPartitionsValue) {
    put_uvarint(out, tps.len() as u32 + 1);
    for (id, partitions) in tps {
        out.extend_from_slice(id);
        put_uvarint(out, partitions.len() as u32 + 1);
        for p in partitions {
            out.extend_from_slice(&p.to_be_bytes());
        }
        out.push(0); // no tagged fields
    }
}

fn read_topic_partitions(r: &mut Reader<'_>) -> Result<TopicPartitionsValue, RecordError> {
    let count = r.count("topic partitions", true)?;
    let mut out = Vec::new();
    for _ in 0..count {
        let id = r.uuid("topic id")?;
        let n = r.count("partitions", true)?;
        let mut partitions = Vec::new();
        for _ in 0..n {
            partitions.push(r.i32("partition")?);
        }
        r.skip_tags()?;
        out.push((id, partitions));
    }
    Ok(out)
}

impl ConsumerValue {
    /// Encodes the value as version 0 (flexible).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = 0i16.to_be_bytes().to_vec();
        match self {
            ConsumerValue::Group(v) => {
                out.extend_from_slice(&v.epoch.to_be_bytes());
                if v.metadata_hash != 0 {
                    out.extend_from_slice(&[1, 0, 8]);
                    out.extend_from_slice(&v.metadata_hash.to_be_bytes());
                    return out;
                }
            }
            ConsumerValue::Member(m) => {
                put_compact_nullable_string(&mut out, m.instance_id.as_deref());
                put_compact_nullable_string(&mut out, m.rack_id.as_deref());
                put_compact_string(&mut out, &m.client_id);
                put_compact_string(&mut out, &m.client_host);
                put_uvarint(&mut out, m.subscribed_topic_names.len() as u32 + 1);
                for t in &m.subscribed_topic_names {
                    put_compact_string(&mut out, t);
                }
                put_compact_nullable_string(&mut out, m.subscribed_topic_regex.as_deref());
                out.extend_from_slice(&m.rebalance_timeout_ms.to_be_bytes());
                put_compact_nullable_string(&mut out, m.server_assignor.as_deref());
            }
            ConsumerValue::TargetEpoch(epoch) => out.extend_from_slice(&epoch.to_be_bytes()),
            ConsumerValue::Target(tps) => put_topic_partitions(&mut out, tps),
            ConsumerValue::Current(c) => {
                out.extend_from_slice(&c.member_epoch.to_be_bytes());
                out.extend_from_slice(&c.previous_member_epoch.to_be_bytes());
                out.push(c.state as u8);
                put_topic_partitions(&mut out, &c.assigned);
                put_topic_partitions(&mut out, &c.pending_revocation);
            }
        }
        out.push(0); // no tagged fields
        out
    }

    /// Decodes the value of a record with `key`. `Ok(None)` for keys that are
    /// not consumer group records, and for type 4 (not used here).
    pub fn decode(key: &OffsetsKey, bytes: &[u8]) -> Result<Option<ConsumerValue>, RecordError> {
        let mut r = Reader(bytes);
        let version = r.i16("value version")?;
        if version != 0 {
            return Err(RecordError::Unknown { what: "consumer group value version", version });
        }
        let value = match key {
            OffsetsKey::ConsumerGroup { .. } => {
                let epoch = r.i32("group epoch")?;
                let mut metadata_hash = 0;
                let tags = r.uvarint("tag count")?;
                for _ in 0..tags {
                    let tag = r.uvarint("tag")?;
                    let size = r.uvarint("tag size")? as usize;
                    if tag == 0 && size == 8 {
                        metadata_hash = r.i64("metadata hash")?;
                    } else {
                        r.take(size, "tagged field")?;
                    }
                }
                return Ok(Some(ConsumerValue::Group(ConsumerGroupValue { epoch, metadata_hash })));
            }
            OffsetsKey::ConsumerMember { .. } => {
                let instance_id = r.nullable_string_v("instance id", true)?;
                let rack_id = r.nullable_string_v("rack id", true)?;
                let client_id = r.string_v("client id", true)?;
                let client_host = r.string_v("client host", true)?;
                let n = r.count("subscribed topic names", true)?;
                let mut subscribed_topic_names = Vec::new();
                for _ in 0..n {
                    subscribed_topic_names.push(r.string_v("subscribed topic name", true)?);
                }
                let subscribed_topic_regex = r.nullable_string_v("subscribed topic regex", true)?;
                let rebalance_timeout_ms = r.i32("rebalance timeout")?;
                let server_assignor = r.nullable_string_v("server assignor", true)?;
                ConsumerValue::Member(ConsumerMemberValue {
                    instance_id,
                    rack_id,
                    client_id,
                    client_host,
                    subscribed_topic_names,
                    subscribed_topic_regex,
                    rebalance_timeout_ms,
                    server_assignor,
                })
            }
            OffsetsKey::ConsumerTargetAssignment { .. } => ConsumerValue::TargetEpoch(r.i32("assignment epoch")?),
            OffsetsKey::ConsumerTargetMember { .. } => ConsumerValue::Target(read_topic_partitions(&mut r)?),
            OffsetsKey::ConsumerCurrentAssignment { .. } => {
                let member_epoch = r.i32("member epoch")?;
                let previous_member_epoch = r.i32("previous member epoch")?;
                let state = r.take(1, "member state")?[0] as i8;
                let assigned = read_topic_partitions(&mut r)?;
                let pending_revocation = read_topic_partitions(&mut r)?;
                ConsumerValue::Current(ConsumerCurrentValue {
                    member_epoch,
                    previous_member_epoch,
                    state,
                    assigned,
                    pending_revocation,
                })
            }
            _ => return Ok(None),
        };
        r.skip_tags()?;
        Ok(Some(value))
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&[u8], RecordError> {
        if self.0.len() < n {
            return Err(RecordError::Truncated(what));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn uuid(&mut self, what: &'static str) -> Result<[u8; 16], RecordError> {
        let mut id = [0u8; 16];
        id.copy_from_slice(self.take(16, what)?);
        Ok(id)
    }
    fn i16(&mut self, what: &'static str) -> Result<i16, RecordError> {
        let b = self.take(2, what)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }
    fn i32(&mut self, what: &'static str) -> Result<i32, RecordError> {
        let b = self.take(4, what)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn i64(&mut self, what: &'static str) -> Result<i64, RecordError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }
    fn uvarint(&mut self, what: &'static str) -> Result<u32, RecordError> {
        let mut v = 0u32;
        for i in 0..5 {
            let b = self.take(1, what)?[0];
            v |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(RecordError::Truncated(what))
    }
    /// A length: -1 (or compact 0) for null.
    fn length(&mut self, what: &'static str, flexible: bool, wide: bool) -> Result<Option<usize>, RecordError> {
        let n: i64 = if flexible {
            i64::from(self.uvarint(what)?) - 1
        } else if wide {
            i64::from(self.i32(what)?)
        } else {
            i64::from(self.i16(what)?)
        };
        if n < 0 {
            return Ok(None);
        }
        if n as usize > self.0.len() {
            return Err(RecordError::Truncated(what));
        }
        Ok(Some(n as usize))
    }
    fn nullable_string_v(&mut self, what: &'static str, flexible: bool) -> Result<Option<String>, RecordError> {
        match self.length(what, flexible, false)? {
            None => Ok(None),
            Some(n) => {
                let raw = self.take(n, what)?;
                String::from_utf8(raw.to_vec()).map(Some).map_err(|_| RecordError::NotUtf8(what))
            }
        }
    }
    fn string_v(&mut self, what: &'static str, flexible: bool) -> Result<String, RecordError> {
        Ok(self.nullable_string_v(what, flexible)?.unwrap_or_default())
    }
    fn string(&mut self, what: &'static str) -> Result<String, RecordError> {
        self.string_v(what, false)
    }
    fn bytes_v(&mut self, what: &'static str, flexible: bool) -> Result<Vec<u8>, RecordError> {
        match self.length(what, flexible, true)? {
            None => Ok(Vec::new()),
            Some(n) => Ok(self.take(n, what)?.to_vec()),
        }
    }
    fn count(&mut self, what: &'static str, flexible: bool) -> Result<usize, RecordError> {
        Ok(self.length(what, flexible, true)?.unwrap_or(0))
    }
    fn skip_tags(&mut self) -> Result<(), RecordError> {
        let n = self.uvarint("tag count")?;
        for _ in 0..n {
            self.uvarint("tag")?;
            let size = self.uvarint("tag size")? as usize;
            self.take(size, "tagged field")?;
        }
        Ok(())
    }
}

/// Kafka's `String.hashCode()` over the group id's UTF-16 code units.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// The `__consumer_offsets` partition that holds a group (Kafka's
/// `Utils.abs(groupId.hashCode) % offsets.topic.num.partitions`).
pub fn offsets_partition_for(group: &str, partitions: i32) -> i32 {
    let h = java_string_hash(group);
    // Kafka's Utils.abs maps i32::MIN to 0 (it masks the sign bit).
    (h & 0x7fff_ffff) % partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn java_hash_matches_known_values() {
        // Values from Java's "...".hashCode().
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("a"), 97);
        assert_eq!(java_string_hash("hello"), 99_162_322);
        assert_eq!(
            java_string_hash("console-consumer-12345"),
            "console-consumer-12345".encode_utf16().fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32))
        );
        assert!((0..50).contains(&offsets_partition_for("my-group", 50)));
    }

    #[test]
    fn offset_value_layout() {
        let v = OffsetValue {
            offset: 42,
            leader_epoch: 3,
            metadata: "m".into(),
            commit_timestamp: 7,
            expire_timestamp: -1,
        };
        let bytes = v.encode();
        assert_eq!(&bytes[..2], &3i16.to_be_bytes());
        assert_eq!(bytes.len(), 2 + 8 + 4 + 2 + 1 + 8);
        assert_eq!(OffsetValue::decode(&bytes), Ok(v));
        // Version 1 with an expire timestamp.
        let mut v1 = Vec::new();
        v1.extend_from_slice(&1i16.to_be_bytes());
        v1.extend_from_slice(&9i64.to_be_bytes());
        v1.extend_from_slice(&0i16.to_be_bytes());
        v1.extend_from_slice(&5i64.to_be_bytes());
        v1.extend_from_slice(&99i64.to_be_bytes());
        let d = OffsetValue::decode(&v1).expect("v1");
        assert_eq!((d.offset, d.leader_epoch, d.expire_timestamp), (9, -1, 99));
    }

    fn consumer_keys() -> Vec<OffsetsKey> {
        let (g, m) = ("g".to_string(), "m".to_string());
        vec![
            OffsetsKey::ConsumerGroup { group: g.clone() },
            OffsetsKey::ConsumerMember { group: g.clone(), member: m.clone() },
            OffsetsKey::ConsumerTargetAssignment { group: g.clone() },
            OffsetsKey::ConsumerTargetMember { group: g.clone(), member: m.clone() },
            OffsetsKey::ConsumerCurrentAssignment { group: g, member: m },
        ]
    }

    #[test]
    fn consumer_group_value_layout() {
        // Epoch 7 with a metadata hash in tag 0, exactly as the flexible encoding lays it out.
        let v = ConsumerValue::Group(ConsumerGroupValue { epoch: 7, metadata_hash: 1 });
        assert_eq!(v.encode(), vec![0, 0, 0, 0, 0, 7, 1, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1]);
        let plain = ConsumerValue::Group(ConsumerGroupValue { epoch: 7, metadata_hash: 0 });
        assert_eq!(plain.encode(), vec![0, 0, 0, 0, 0, 7, 0]);
        // A target assignment member: one topic with partitions 0 and 2.
        let t = ConsumerValue::Target(vec![([9; 16], vec![0, 2])]);
        let mut expected = vec![0, 0, 2];
        expected.extend_from_slice(&[9; 16]);
        expected.extend_from_slice(&[3, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0]);
        assert_eq!(t.encode(), expected);
        // Keys: type 5 with group and member as int16-length strings.
        let key = OffsetsKey::ConsumerMember { group: "g".into(), member: "m".into() };
        assert_eq!(key.encode(), vec![0, 5, 0, 1, b'g', 0, 1, b'm']);
        // Unknown tagged fields are skipped.
        let tagged = [0, 0, 0, 0, 0, 3, 2, 1, 1, 0xaa, 0, 8, 0, 0, 0, 0, 0, 0, 0, 5];
        assert_eq!(
            ConsumerValue::decode(&OffsetsKey::ConsumerGroup { group: "g".into() }, &tagged),
            Ok(Some(ConsumerValue::Group(ConsumerGroupValue { epoch: 3, metadata_hash: 5 })))
        );
    }

    #[test]
    fn keys_round_trip_and_unknown_types_are_skipped() {
        for key in [
            OffsetsKey::Offset { group: "g".into(), topic: "t".into(), partition: 4 },
            OffsetsKey::Group { group: "g2".into() },
        ] {
            assert_eq!(OffsetsKey::decode(&key.encode()), Ok(Some(key.clone())));
        }
        for key in consumer_keys() {
            assert_eq!(OffsetsKey::decode(&key.encode()), Ok(Some(key.clone())));
        }
        assert_eq!(OffsetsKey::decode(&[0, 9, 0, 0]), Ok(None));
        assert!(OffsetsKey::decode(&[0, 1, 0]).is_err());
    }

    proptest! {
        #[test]
        fn group_values_round_trip(
            generation in any::<i32>(),
            members in proptest::collection::vec(("[a-z]{0,8}", proptest::option::of("[a-z]{1,4}"), proptest::collection::vec(any::<u8>(), 0..20)), 0..5),
        ) {
            let value = GroupValue {
                protocol_type: "consumer".into(),
                generation,
                protocol: Some("range".into()),
                leader: members.first().map(|m| m.0.clone()),
                current_state_timestamp: 1,
                members: members.iter().map(|(id, instance, bytes)| MemberValue {
                    member_id: id.clone(),
                    group_instance_id: instance.clone(),
                    client_id: "c".into(),
                    client_host: "/127.0.0.1".into(),
                    rebalance_timeout_ms: 300_000,
                    session_timeout_ms: 45_000,
                    subscription: bytes.clone(),
                    assignment: bytes.clone(),
                }).collect(),
            };
            prop_assert_eq!(GroupValue::decode(&value.encode()), Ok(value));
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = OffsetsKey::decode(&bytes);
            let _ = OffsetValue::decode(&bytes);
            let _ = GroupValue::decode(&bytes);
            for key in consumer_keys() {
                let _ = ConsumerValue::decode(&key, &bytes);
            }
        }

        #[test]
        fn consumer_values_round_trip(
            epoch in any::<i32>(),
            hash in any::<i64>(),
            names in proptest::collection::vec("[a-z.]{0,12}", 0..4),
            regex in proptest::option::of("[a-z^.*]{0,8}"),
            tps in proptest::collection::vec((any::<[u8; 16]>(), proptest::collection::vec(any::<i32>(), 0..5)), 0..4),
            state in 0i8..3,
        ) {
            let values = [
                (OffsetsKey::ConsumerGroup { group: "g".into() }, ConsumerValue::Group(ConsumerGroupValue { epoch, metadata_hash: hash })),
                (OffsetsKey::ConsumerMember { group: "g".into(), member: "m".into() }, ConsumerValue::Member(ConsumerMemberValue {
                    instance_id: regex.clone(),
                    rack_id: None,
                    client_id: "rdkafka".into(),
                    client_host: "/127.0.0.1".into(),
                    subscribed_topic_names: names.clone(),
                    subscribed_topic_regex: regex.clone(),
                    rebalance_timeout_ms: epoch,
                    server_assignor: Some("uniform".into()),
                })),
                (OffsetsKey::ConsumerTargetAssignment { group: "g".into() }, ConsumerValue::TargetEpoch(epoch)),
                (OffsetsKey::ConsumerTargetMember { group: "g".into(), member: "m".into() }, ConsumerValue::Target(tps.clone())),
                (OffsetsKey::ConsumerCurrentAssignment { group: "g".into(), member: "m".into() }, ConsumerValue::Current(ConsumerCurrentValue {
                    member_epoch: epoch,
                    previous_member_epoch: epoch.wrapping_sub(1),
                    state,
                    assigned: tps.clone(),
                    pending_revocation: tps.iter().rev().cloned().collect(),
                })),
            ];
            for (key, value) in values {
                prop_assert_eq!(OffsetsKey::decode(&key.encode()), Ok(Some(key.clone())));
                prop_assert_eq!(ConsumerValue::decode(&key, &value.encode()), Ok(Some(value)));
            }
        }
    }
}
