//! Client errors. Every error says where it happened and what to do next; a
//! Kafka error code also carries Kafka's name for it (`GROUP_ID_NOT_FOUND`),
//! which is what users search for.

use std::time::Duration;

use tributary_protocol::ErrorCode;

/// A Kafka error code returned by a broker, with context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaError {
    /// The numeric code.
    pub code: i16,
    /// Kafka's name for the code, e.g. `NON_EMPTY_GROUP`.
    pub name: String,
    /// The broker's own message, if it sent one.
    pub message: Option<String>,
    /// What was being done, e.g. `delete group "orders"`.
    pub context: String,
}

impl KafkaError {
    /// A Kafka error for `code` while doing `context`.
    pub fn new(code: i16, context: impl Into<String>) -> KafkaError {
        KafkaError { code, name: code_name(code), message: None, context: context.into() }
    }

    /// Adds the broker's message (ignored when empty).
    pub fn with_message(mut self, message: Option<&str>) -> KafkaError {
        self.message = message.filter(|m| !m.is_empty()).map(str::to_string);
        self
    }

    /// Whether Kafka marks the code retriable.
    pub fn is_retriable(&self) -> bool {
        ErrorCode::try_from_code(self.code).is_some_and(|e| e.is_retriable())
    }

    /// A sentence saying what to do about this code.
    pub fn hint(&self) -> &'static str {
        hint(self.code)
    }
}

impl std::fmt::Display for KafkaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} ({})", self.context, self.name, self.code)?;
        if let Some(m) = &self.message {
            write!(f, " \"{m}\"")?;
        }
        write!(f, ". {}", self.hint())
    }
}

impl std::error::Error for KafkaError {}

/// Errors of the client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// None of the bootstrap addresses gave a working connection.
    #[error(
        "no broker reachable at {bootstrap} ({details}). Check the bootstrap address and that the broker is running"
    )]
    NoBroker {
        /// The addresses tried.
        bootstrap: String,
        /// Why each failed.
        details: String,
    },
    /// A TCP connection could not be opened.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The address.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
    /// An address advertised by the cluster could not be reached.
    #[error(
        "cannot connect to broker {node_id} at {addr}, the address the cluster advertises ({source}). \
         Check the broker's advertised.listeners: it must be reachable from this machine"
    )]
    Advertised {
        /// The broker.
        node_id: i32,
        /// Its advertised address.
        addr: String,
        /// The cause.
        source: Box<ClientError>,
    },
    /// A request got no answer in time.
    #[error(
        "{addr}: no answer to {api} within {} ms. The broker may be overloaded or unreachable; \
         retry, or raise --timeout", .timeout.as_millis()
    )]
    Timeout {
        /// The broker.
        addr: String,
        /// The request.
        api: String,
        /// The time waited.
        timeout: Duration,
    },
    /// The connection failed mid-request.
    #[error("{addr}: connection lost during {api}: {source}. Check that the broker is still running")]
    Io {
        /// The broker.
        addr: String,
        /// The request.
        api: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A response frame larger than the client accepts.
    #[error(
        "{addr}: {api} response of {size} bytes exceeds this client's limit of {max} bytes. \
         Is this address a Kafka listener? If so, narrow the request"
    )]
    FrameTooLarge {
        /// The broker.
        addr: String,
        /// The request.
        api: String,
        /// The size the broker announced.
        size: i64,
        /// The limit.
        max: usize,
    },
    /// A response that does not follow the Kafka protocol.
    #[error(
        "{addr}: malformed {api} response ({detail}). Check that the address is a Kafka listener \
         (not TLS or another protocol)"
    )]
    Malformed {
        /// The broker.
        addr: String,
        /// The request.
        api: String,
        /// What was wrong.
        detail: String,
    },
    /// The broker lacks an API, or no version is supported by both sides.
    #[error("{addr}: {detail}. Use a broker version that supports it, or a matching version of this tool")]
    Unsupported {
        /// The broker.
        addr: String,
        /// Which API and which versions.
        detail: String,
    },
    /// A Kafka error code.
    #[error("{0}")]
    Kafka(#[from] KafkaError),
    /// Refused before anything was sent, or by a rule of the operation.
    #[error("{0}")]
    Refused(String),
}

impl ClientError {
    /// The Kafka error code, if this is a Kafka error.
    pub fn kafka(&self) -> Option<&KafkaError> {
        match self {
            ClientError::Kafka(e) => Some(e),
            ClientError::Advertised { source, .. } => source.kafka(),
            _ => None,
        }
    }
}

/// Kafka's name for an error code (`GROUP_ID_NOT_FOUND`), `UNKNOWN_CODE_<n>` if unknown.
pub fn code_name(code: i16) -> String {
    match ErrorCode::try_from_code(code) {
        None => "NONE".to_string(),
        Some(ErrorCode::Unknown(n)) => format!("UNKNOWN_CODE_{n}"),
        Some(e) => screaming_snake(&format!("{e:?}")),
    }
}

/// `GroupIdNotFound` → `GROUP_ID_NOT_FOUND`.
fn screaming_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// What to do about an error code.
pub fn hint(code: i16) -> &'static str {
    match code {
        -1 => "The broker hit an unexpected error; its log has the details",
        3 => "Check the topic name and partition numbers; the topic may have been deleted",
        5 | 6 => "Partition leadership is moving; retry in a moment",
        7 => "The broker did not finish in time; retry, or raise --timeout",
        12 => "The offset metadata is longer than offset.metadata.max.bytes allows",
        14 => "The group coordinator is still loading committed offsets; retry in a few seconds",
        15 => "The group coordinator is not available yet (it may be starting); retry in a few seconds",
        16 => "The group moved to another coordinator; retry",
        22 | 25 => {
            "The group has active members that own its offsets; stop its consumers (or wait for their session \
             timeout) and retry"
        }
        24 => "Group ids must not be empty",
        27 => "The group is rebalancing because consumers are running; stop them and retry",
        29 => "Ask an administrator for DESCRIBE/READ access to the topic",
        30 => "Ask an administrator for access to the group",
        31 => "Ask an administrator for cluster access",
        35 => "The broker and this tool share no version of this request; use matching versions",
        39 => {
            "The replica list is empty, names a broker twice, or names a broker that is not registered; list the \
             brokers with `tributary cluster info` and fix the plan"
        }
        85 => "No reassignment of this partition is in progress; nothing to cancel",
        68 => "The group still has active members; stop its consumers (or wait for their session timeout) and retry",
        69 => "No group has this id; list the groups to check the name",
        80 => {
            "The preferred replica is not alive or not in sync; start its broker, wait until it is back in the ISR \
             (tributary topic describe), then retry"
        }
        83 => "No replica of the partition is alive; start one of its brokers",
        84 => "Nothing to do: the partition already has the leader asked for",
        86 => "Active members still subscribe to this topic; stop them or change their subscription first",
        88 => "A transaction with pending offsets is open for this group; retry when it has completed",
        _ => "The broker log may have more details",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_kafka() {
        assert_eq!(code_name(69), "GROUP_ID_NOT_FOUND");
        assert_eq!(code_name(68), "NON_EMPTY_GROUP");
        assert_eq!(code_name(6), "NOT_LEADER_OR_FOLLOWER");
        assert_eq!(code_name(-1), "UNKNOWN_SERVER_ERROR");
        assert_eq!(code_name(0), "NONE");
        assert_eq!(code_name(9999), "UNKNOWN_CODE_9999");
    }

    #[test]
    fn display_has_name_code_and_next_step() {
        let e = KafkaError::new(68, "delete group \"g\"").with_message(Some("The group is not empty."));
        let text = e.to_string();
        assert!(text.starts_with("delete group \"g\": NON_EMPTY_GROUP (68) \"The group is not empty.\". "), "{text}");
        assert!(text.contains("stop its consumers"), "{text}");
        assert!(!KafkaError::new(68, "x").is_retriable());
        assert!(KafkaError::new(15, "x").is_retriable());
    }
}
