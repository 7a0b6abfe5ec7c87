//! The proxy's producer is `tributary_client::Producer`: one task batches the
//! records of every produce request, partitions them as Kafka's Java
//! producer does (murmur2 for keys, sticky for null keys) and writes them
//! with acks=all. This module says what its errors mean in kafka-rest's codes.

use tributary_client::ProduceError;
pub use tributary_client::producer::{Delivery, Producer};

use crate::error::RestError;

/// The time a record gets when its request names none (ms since the epoch).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A record's failure as kafka-rest reports it: 40403 for an unknown topic,
/// 40402 for an unknown partition, else the Kafka error's code.
pub fn delivery_error(e: &ProduceError) -> RestError {
    match e {
        ProduceError::UnknownTopic(topic) => RestError::topic_not_found(topic),
        ProduceError::UnknownPartition { topic, partition, .. } => RestError {
            status: 404,
            error_code: 40402,
            message: format!("This server does not host this topic-partition: {topic}-{partition}."),
        },
        ProduceError::Failed(e) => RestError::from_client(e),
        ProduceError::Stopped => RestError::status(500, "the producer stopped before answering"),
    }
}
