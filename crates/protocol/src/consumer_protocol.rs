//! Kafka's consumer protocol: what a member of a group with protocol type
//! `consumer` puts in its JoinGroup metadata (a *subscription*) and what the
//! leader hands each member through SyncGroup (an *assignment*). The broker
//! stores both as opaque bytes; DescribeGroups returns them to admin tools,
//! which decode them to show who reads which partitions.
//!
//! ```text
//! subscription: [i16 version][topics: [string]][user_data: bytes]
//!               v1+ [owned_partitions: [topic, [i32]]]  v2+ [generation_id: i32]  v3+ [rack_id: string]
//! assignment:   [i16 version][assigned_partitions: [topic, [i32]]][user_data: bytes]
//! ```
//!
//! Versions 0–3 are known. A newer version only appends fields, so it is read
//! as version 3 and the rest ignored (Kafka's clients do the same); a negative
//! version is refused. The bytes are written by arbitrary clients, so every
//! count is checked against the bytes present before anything is allocated.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ConsumerProtocolAssignment, ConsumerProtocolSubscription, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::shape::{Embedded, ShapeError, check_embedded};

/// The protocol type of groups whose members speak this format.
pub const CONSUMER_PROTOCOL_TYPE: &str = "consumer";
/// Highest version this module knows field by field.
pub const VERSION_MAX: i16 = 3;
/// Most array elements (topics plus partitions) one subscription or assignment may hold.
pub const ELEMENTS_MAX: usize = 1_000_000;

/// Partitions of one topic.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TopicPartitions {
    /// Topic name.
    pub topic: String,
    /// Partition indexes, in the order the member sent them.
    pub partitions: Vec<i32>,
}

/// A member's subscription (JoinGroup metadata).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subscription {
    /// The version the member wrote.
    pub version: i16,
    /// Subscribed topics.
    pub topics: Vec<String>,
    /// Assignor-specific bytes.
    pub user_data: Option<Bytes>,
    /// Partitions the member owned before this rebalance (v1+; cooperative assignors).
    pub owned_partitions: Vec<TopicPartitions>,
    /// Generation the owned partitions belong to (v2+; -1 if unknown).
    pub generation_id: i32,
    /// The member's rack (v3+).
    pub rack_id: Option<String>,
}

/// A member's assignment (SyncGroup).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Assignment {
    /// The version the leader wrote.
    pub version: i16,
    /// Assigned partitions per topic.
    pub partitions: Vec<TopicPartitions>,
    /// Assignor-specific bytes.
    pub user_data: Option<Bytes>,
}

/// Why consumer protocol bytes could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsumerProtocolError {
    /// No bytes at all (a member between rebalances has no assignment yet).
    #[error("no bytes")]
    Empty,
    /// Fewer than the two bytes of the version.
    #[error("{0} byte(s) is too short for the version")]
    TooShort(usize),
    /// A negative version.
    #[error("version {0} is invalid")]
    BadVersion(i16),
    /// A length or count the bytes do not back.
    #[error("{0}")]
    Shape(ShapeError),
    /// The checked bytes still did not decode.
    #[error("{0}")]
    Decode(String),
}

/// Splits off the version and checks the body's shape at the version it is read at.
fn checked(bytes: &[u8], kind: Embedded) -> Result<(i16, i16, Bytes), ConsumerProtocolError> {
    match bytes.len() {
        0 => return Err(ConsumerProtocolError::Empty),
        1 => return Err(ConsumerProtocolError::TooShort(1)),
        _ => {}
    }
    let version = i16::from_be_bytes([bytes[0], bytes[1]]);
    if version < 0 {
        return Err(ConsumerProtocolError::BadVersion(version));
    }
    let read_as = version.min(VERSION_MAX);
    let body = &bytes[2..];
    check_embedded(kind, read_as, body, ELEMENTS_MAX).map_err(ConsumerProtocolError::Shape)?;
    Ok((version, read_as, Bytes::copy_from_slice(body)))
}

fn topic_partitions(topic: &TopicName, partitions: &[i32]) -> TopicPartitions {
    TopicPartitions { topic: topic.0.to_string(), partitions: partitions.to_vec() }
}

/// Reads a subscription (JoinGroup member metadata of a `consumer` group).
pub fn decode_subscription(bytes: &[u8]) -> Result<Subscription, ConsumerProtocolError> {
    let (version, read_as, mut body) = checked(bytes, Embedded::ConsumerSubscription)?;
    let s = ConsumerProtocolSubscription::decode(&mut body, read_as)
        .map_err(|e| ConsumerProtocolError::Decode(e.to_string()))?;
    Ok(Subscription {
        version,
        topics: s.topics.iter().map(|t| t.to_string()).collect(),
        user_data: s.user_data,
        owned_partitions: s.owned_partitions.iter().map(|p| topic_partitions(&p.topic, &p.partitions)).collect(),
        generation_id: s.generation_id,
        rack_id: s.rack_id.map(|r| r.to_string()),
    })
}

/// Reads an assignment (SyncGroup / DescribeGroups member assignment of a `consumer` group).
pub fn decode_assignment(bytes: &[u8]) -> Result<Assignment, ConsumerProtocolError> {
    let (version, read_as, mut body) = checked(bytes, Embedded::ConsumerAssignment)?;
    let a = ConsumerProtocolAssignment::decode(&mut body, read_as)
        .map_err(|e| ConsumerProtocolError::Decode(e.to_string()))?;
    Ok(Assignment {
        version,
        partitions: a.assigned_partitions.iter().map(|p| topic_partitions(&p.topic, &p.partitions)).collect(),
        user_data: a.user_data,
    })
}

fn name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_string()))
}

/// Writes a subscription at `subscription.version` (0–3), version prefix included.
pub fn encode_subscription(subscription: &Subscription) -> Result<Bytes, ConsumerProtocolError> {
    use kafka_protocol::messages::consumer_protocol_subscription::TopicPartition;
    let v = subscription.version;
    if !(0..=VERSION_MAX).contains(&v) {
        return Err(ConsumerProtocolError::BadVersion(v));
    }
    let mut body = ConsumerProtocolSubscription::default()
        .with_topics(subscription.topics.iter().map(|t| StrBytes::from_string(t.clone())).collect())
        .with_user_data(subscription.user_data.clone());
    if v >= 1 {
        body = body.with_owned_partitions(
            subscription
                .owned_partitions
                .iter()
                .map(|p| TopicPartition::default().with_topic(name(&p.topic)).with_partitions(p.partitions.clone()))
                .collect(),
        );
    }
    if v >= 2 {
        body = body.with_generation_id(subscription.generation_id);
    }
    if v >= 3 {
        body = body.with_rack_id(subscription.rack_id.as_deref().map(|r| StrBytes::from_string(r.to_string())));
    }
    let mut out = BytesMut::new();
    out.extend_from_slice(&v.to_be_bytes());
    body.encode(&mut out, v).map_err(|e| ConsumerProtocolError::Decode(e.to_string()))?;
    Ok(out.freeze())
}

/// Writes an assignment at `assignment.version` (0–3), version prefix included.
pub fn encode_assignment(assignment: &Assignment) -> Result<Bytes, ConsumerProtocolError> {
    use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
    let v = assignment.version;
    if !(0..=VERSION_MAX).contains(&v) {
        return Err(ConsumerProtocolError::BadVersion(v));
    }
    let body = ConsumerProtocolAssignment::default()
        .with_assigned_partitions(
            assignment
                .partitions
                .iter()
                .map(|p| TopicPartition::default().with_topic(name(&p.topic)).with_partitions(p.partitions.clone()))
                .collect(),
        )
        .with_user_data(assignment.user_data.clone());
    let mut out = BytesMut::new();
    out.extend_from_slice(&v.to_be_bytes());
    body.encode(&mut out, v).map_err(|e| ConsumerProtocolError::Decode(e.to_string()))?;
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(topic: &str, partitions: &[i32]) -> TopicPartitions {
        TopicPartitions { topic: topic.to_string(), partitions: partitions.to_vec() }
    }

    fn subscription(version: i16) -> Subscription {
        Subscription {
            version,
            topics: vec!["orders".into(), "payments".into()],
            user_data: Some(Bytes::from_static(b"ud")),
            owned_partitions: if version >= 1 { vec![tp("orders", &[0, 2])] } else { vec![] },
            generation_id: if version >= 2 { 7 } else { -1 },
            rack_id: if version >= 3 { Some("rack-a".into()) } else { None },
        }
    }

    #[test]
    fn subscriptions_round_trip_at_every_version() {
        for v in 0..=VERSION_MAX {
            let s = subscription(v);
            let bytes = encode_subscription(&s).expect("encodes");
            assert_eq!(decode_subscription(&bytes).expect("decodes"), s, "v{v}");
        }
    }

    #[test]
    fn assignments_round_trip_at_every_version() {
        for v in 0..=VERSION_MAX {
            let a = Assignment {
                version: v,
                partitions: vec![tp("orders", &[0, 1, 5]), tp("payments", &[])],
                user_data: if v % 2 == 0 { None } else { Some(Bytes::from_static(b"x")) },
            };
            let bytes = encode_assignment(&a).expect("encodes");
            assert_eq!(decode_assignment(&bytes).expect("decodes"), a, "v{v}");
        }
    }

    /// Bytes as Kafka's Java client writes them for a v0 assignment of orders-0, orders-1.
    #[test]
    fn reads_hand_written_bytes() {
        let mut b = vec![0, 0]; // version 0
        b.extend_from_slice(&1i32.to_be_bytes()); // one topic
        b.extend_from_slice(&6i16.to_be_bytes());
        b.extend_from_slice(b"orders");
        b.extend_from_slice(&2i32.to_be_bytes());
        b.extend_from_slice(&0i32.to_be_bytes());
        b.extend_from_slice(&1i32.to_be_bytes());
        b.extend_from_slice(&(-1i32).to_be_bytes()); // null user data
        let a = decode_assignment(&b).expect("decodes");
        assert_eq!(a, Assignment { version: 0, partitions: vec![tp("orders", &[0, 1])], user_data: None });
    }

    #[test]
    fn newer_versions_are_read_as_the_highest_known() {
        let mut bytes = encode_subscription(&subscription(3)).expect("encodes").to_vec();
        bytes[1] = 9; // version 9, with a field we do not know appended
        bytes.extend_from_slice(&[1, 2, 3, 4]);
        let s = decode_subscription(&bytes).expect("decodes");
        assert_eq!(s.version, 9);
        assert_eq!(s.rack_id.as_deref(), Some("rack-a"));
        assert_eq!(s.topics, vec!["orders", "payments"]);
    }

    #[test]
    fn bad_input_is_refused_without_allocating() {
        assert_eq!(decode_assignment(&[]), Err(ConsumerProtocolError::Empty));
        assert_eq!(decode_assignment(&[0]), Err(ConsumerProtocolError::TooShort(1)));
        assert_eq!(decode_subscription(&[0xff, 0xfe, 0, 0, 0, 0]), Err(ConsumerProtocolError::BadVersion(-2)));
        // A topic count of 2^31-1 in six bytes.
        let huge = [0, 0, 0x7f, 0xff, 0xff, 0xff];
        assert!(matches!(decode_subscription(&huge), Err(ConsumerProtocolError::Shape(_))));
        assert!(matches!(decode_assignment(&huge), Err(ConsumerProtocolError::Shape(_))));
        // Every truncation of a valid body is an error, never a panic.
        let bytes = encode_subscription(&subscription(3)).expect("encodes");
        for cut in 0..bytes.len() {
            assert!(decode_subscription(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }
}
