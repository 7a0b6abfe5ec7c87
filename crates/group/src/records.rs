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
//!
//! Older value versions (OffsetCommitValue 0-2, GroupMetadataValue 0-2) are
//! read too; flexible versions (4) are read when they carry no tagged fields.

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
        }
        out
    }

    /// Decodes a key. `Ok(None)` for record types this coordinator does not
    /// own (KIP-848 and share-group records), which are skipped.
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
            3..=i16::MAX => return Ok(None),
            other => {
                return Err(RecordError::Unknown { what: "key type", version: other });
            }
        }))
    }

    /// The group this key belongs to.
    pub fn group(&self) -> &str {
        match self {
            OffsetsKey::Offset { group, .. } | OffsetsKey::Group { group } => group,
        }
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

    #[test]
    fn keys_round_trip_and_unknown_types_are_skipped() {
        for key in [
            OffsetsKey::Offset { group: "g".into(), topic: "t".into(), partition: 4 },
            OffsetsKey::Group { group: "g2".into() },
        ] {
            assert_eq!(OffsetsKey::decode(&key.encode()), Ok(Some(key.clone())));
        }
        assert_eq!(OffsetsKey::decode(&[0, 5, 0, 0]), Ok(None));
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
        }
    }
}
