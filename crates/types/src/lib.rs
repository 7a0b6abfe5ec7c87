//! Identifiers and small value types shared by every Tributary crate.
//!
//! Nothing here does IO or knows the wire protocol. The types exist so that a
//! partition index is never confused with a node id, and so that topic names
//! are validated once, at the edge, by the same rules Kafka uses.

use std::fmt;

/// A topic's 16-byte UUID (Kafka's `Uuid`), as carried in Metadata v10+ and Fetch v13+.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TopicId(pub [u8; 16]);

impl TopicId {
    /// The all-zero id, which Kafka uses for "no topic id".
    pub const ZERO: TopicId = TopicId([0; 16]);

    /// Whether this is the all-zero id.
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 16]
    }

    /// Kafka prints topic ids as URL-safe base64 without padding (22 chars).
    pub fn to_base64(&self) -> String {
        base64_url_no_pad(&self.0)
    }
}

impl fmt::Debug for TopicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TopicId({})", self.to_base64())
    }
}

impl fmt::Display for TopicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

/// URL-safe base64 without padding, as Kafka formats cluster and topic ids.
pub fn base64_url_no_pad(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// A node (broker) id, Kafka's `node.id`.
pub type NodeId = i32;

/// A partition index within a topic.
pub type PartitionIndex = i32;

/// A topic name and partition index.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct TopicPartition {
    /// The topic name.
    pub topic: String,
    /// The partition index.
    pub partition: PartitionIndex,
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// The longest topic name Kafka accepts.
pub const TOPIC_NAME_LENGTH_MAX: usize = 249;

/// Why a topic name is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicNameError {
    /// The name is empty.
    Empty,
    /// The name is `.` or `..`.
    Dots,
    /// The name is longer than [`TOPIC_NAME_LENGTH_MAX`].
    TooLong(usize),
    /// The name holds a character outside `[a-zA-Z0-9._-]`.
    IllegalCharacter(char),
}

impl fmt::Display for TopicNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TopicNameError::Empty => f.write_str("Topic name is illegal, it can't be empty"),
            TopicNameError::Dots => f.write_str("Topic name cannot be \".\" or \"..\""),
            TopicNameError::TooLong(n) => write!(
                f,
                "Topic name is illegal, it can't be longer than {TOPIC_NAME_LENGTH_MAX} characters (it has {n})"
            ),
            TopicNameError::IllegalCharacter(c) => write!(
                f,
                "Topic name is illegal, it contains {c:?}: only ASCII alphanumerics, '.', '_' and '-' are allowed"
            ),
        }
    }
}

impl std::error::Error for TopicNameError {}

/// Checks a topic name by Kafka's rules (`Topic.validate`).
pub fn validate_topic_name(name: &str) -> Result<(), TopicNameError> {
    if name.is_empty() {
        return Err(TopicNameError::Empty);
    }
    if name == "." || name == ".." {
        return Err(TopicNameError::Dots);
    }
    if name.len() > TOPIC_NAME_LENGTH_MAX {
        return Err(TopicNameError::TooLong(name.len()));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return Err(TopicNameError::IllegalCharacter(c));
    }
    Ok(())
}

/// Topics whose names start with `__` are internal (`__consumer_offsets`, ...).
pub fn is_internal_topic(name: &str) -> bool {
    name.starts_with("__")
}

/// Milliseconds since the Unix epoch, as Kafka timestamps are.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(validate_topic_name("orders.v1_x-y").is_ok());
        assert_eq!(validate_topic_name(""), Err(TopicNameError::Empty));
        assert_eq!(validate_topic_name(".."), Err(TopicNameError::Dots));
        assert_eq!(validate_topic_name("a b"), Err(TopicNameError::IllegalCharacter(' ')));
        assert!(validate_topic_name(&"a".repeat(249)).is_ok());
        assert_eq!(validate_topic_name(&"a".repeat(250)), Err(TopicNameError::TooLong(250)));
        assert_eq!(validate_topic_name("é"), Err(TopicNameError::IllegalCharacter('é')));
    }

    #[test]
    fn base64_matches_kafka_uuid_format() {
        // Kafka prints Uuid(0x0123..., ...) with Base64.getUrlEncoder().withoutPadding().
        assert_eq!(base64_url_no_pad(&[0u8; 16]), "AAAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(base64_url_no_pad(&[0xfb, 0xff]), "-_8");
        assert_eq!(base64_url_no_pad(b"Man"), "TWFu");
    }
}
