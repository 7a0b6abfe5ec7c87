//! DescribeLogDirs (key 35, v0-v4): this node's log directory (its data
//! directory; one per node) with the partitions it hosts, as Kafka's
//! `ReplicaManager.describeLogDirs` answers:
//!
//! - per partition: the log's size in bytes, the offset lag, `is_future`
//!   false (no replica moves between directories here);
//! - offset lag as Kafka computes it: how far the log end is behind the high
//!   watermark this replica knows, never negative, so 0 on a leader and the
//!   catching-up distance on a follower;
//! - requested topics filter the answer (partitions this node does not host
//!   are left out); null topics means every hosted partition;
//! - v4: the directory's file system's total and usable bytes (statvfs);
//!   if it cannot be read the directory is answered KAFKA_STORAGE_ERROR.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{ApiKey, DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use tributary_protocol::{ErrorCode, RequestHeader};

use super::{Reply, respond, str_bytes};
use crate::cluster::Cluster;
use crate::partition::PartitionRef;

/// Total and usable bytes of the file system holding `path`.
fn space(path: &std::path::Path) -> std::io::Result<(i64, i64)> {
    let st = rustix::fs::statvfs(path)?;
    let unit = st.f_frsize.max(1);
    let bytes = |blocks: u64| i64::try_from(blocks.saturating_mul(unit)).unwrap_or(i64::MAX);
    Ok((bytes(st.f_blocks), bytes(st.f_bavail)))
}

fn describe_partition(partition: &PartitionRef) -> DescribeLogDirsPartition {
    let log = partition.log();
    let size = i64::try_from(log.size_bytes()).unwrap_or(i64::MAX);
    let lag = (log.high_watermark() - log.log_end_offset()).max(0);
    DescribeLogDirsPartition::default()
        .with_partition_index(partition.index)
        .with_partition_size(size)
        .with_offset_lag(lag)
        .with_is_future_key(false)
}

pub(super) fn handle(cluster: &Arc<Cluster>, header: &RequestHeader, request: DescribeLogDirsRequest) -> Reply {
    let registry = cluster.registry();
    // topic -> partitions asked for (None: all of the topic's hosted ones).
    let wanted: Option<BTreeMap<String, Vec<i32>>> = request.topics.as_ref().map(|topics| {
        let mut m: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for t in topics {
            m.entry(t.topic.0.to_string()).or_default().extend(t.partitions.iter().copied());
        }
        m
    });
    let mut topics = Vec::new();
    for (name, topic) in &registry.topics {
        let asked = match &wanted {
            None => None,
            Some(w) => match w.get(name) {
                Some(partitions) => Some(partitions),
                None => continue,
            },
        };
        let partitions: Vec<DescribeLogDirsPartition> = topic
            .partitions
            .iter()
            .filter(|p| asked.is_none_or(|a| a.contains(&p.index)))
            .map(describe_partition)
            .collect();
        if !partitions.is_empty() {
            topics.push(
                DescribeLogDirsTopic::default().with_name(TopicName(str_bytes(name))).with_partitions(partitions),
            );
        }
    }
    let dir = cluster.data_dir();
    let path = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut result = DescribeLogDirsResult::default().with_log_dir(str_bytes(&path.to_string_lossy()));
    let mut error = 0;
    if header.api_version >= 4 {
        match space(&path) {
            Ok((total, usable)) => result = result.with_total_bytes(total).with_usable_bytes(usable),
            Err(e) => {
                tracing::warn!(dir = %path.display(), error = %e, "cannot read the log directory's file system size");
                error = ErrorCode::KafkaStorageError.code();
                result = result.with_total_bytes(-1).with_usable_bytes(-1);
            }
        }
    }
    let result = if error == 0 { result.with_topics(topics) } else { result.with_error_code(error) };
    respond(ApiKey::DescribeLogDirs, header, &DescribeLogDirsResponse::default().with_results(vec![result]))
}
