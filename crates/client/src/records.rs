//! Producing and fetching records, one partition at a time: what a service
//! that keeps its state in a topic (the schema registry's `_schemas`) needs.
//!
//! ```text
//! produce ──▶ Metadata (leader, cached) ──▶ Produce acks=all, one RecordBatch v2
//!             NOT_LEADER / LEADER_NOT_AVAILABLE / UNKNOWN_TOPIC ──▶ refresh leader, retry
//! fetch ────▶ Metadata (leader, cached) ──▶ Fetch (max_wait, max_bytes)
//!             batches: header, CRC-32C, bounded decompression, records from the
//!             requested offset on; a partial batch at the end is left for the next fetch
//! ```
//!
//! Produce is not idempotent: a retry after a lost answer may append the
//! records twice, so callers write records whose repetition is harmless
//! (a compacted topic keyed by what it stores).

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, FetchRequest, ProduceRequest};
use tributary_record::batch::crc_matches;
use tributary_record::builder::{BatchBuilder, RecordSpec};
use tributary_record::records::RecordIter;
use tributary_record::{BatchError, BatchIter, Compression};

use crate::admin::TopicPartition;
use crate::client::{Client, Node, Retry, topic_name};
use crate::error::{ClientError, KafkaError};

/// Bytes of a batch header before its records.
const BATCH_HEADER_LEN: usize = tributary_record::batch::BATCH_HEADER_LEN;

/// One record read from a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedRecord {
    /// Its offset.
    pub offset: i64,
    /// Its timestamp (ms).
    pub timestamp: i64,
    /// Key, `None` for null.
    pub key: Option<Bytes>,
    /// Value, `None` for null (a tombstone).
    pub value: Option<Bytes>,
    /// Headers in record order: key (UTF-8, as Kafka's clients read it) and value (`None` for null).
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// What one fetch returned for a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedRecords {
    /// Records at or after the requested offset, in offset order.
    pub records: Vec<FetchedRecord>,
    /// Where the next fetch starts: after the last whole batch returned (or
    /// the requested offset if none was).
    pub next_offset: i64,
    /// The partition's high watermark.
    pub high_watermark: i64,
    /// The partition's log start offset (-1 if the broker did not say).
    pub log_start_offset: i64,
}

/// Codes after which the partition leader is looked up again.
fn leader_moved(code: i16) -> bool {
    // UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE, NOT_LEADER_OR_FOLLOWER,
    // FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH
    matches!(code, 3 | 5 | 6 | 74 | 76)
}

impl Client {
    /// The leader of `tp`, from the cache or from fresh Metadata.
    pub async fn partition_leader(&mut self, tp: &TopicPartition) -> Result<Node, ClientError> {
        if let Some(node) = self.leaders.get(tp) {
            return Ok(node.clone());
        }
        let metadata = self.metadata(Some(std::slice::from_ref(&tp.topic))).await?;
        let context = || format!("find the leader of {tp}");
        let topic = metadata.topics.get(&tp.topic).ok_or_else(|| KafkaError::new(3, context()))?;
        if topic.error_code != 0 {
            return Err(KafkaError::new(topic.error_code, context()).into());
        }
        let partition = topic.partitions.get(&tp.partition).ok_or_else(|| KafkaError::new(3, context()))?;
        if partition.error_code != 0 && partition.leader < 0 {
            return Err(KafkaError::new(partition.error_code, context()).into());
        }
        let node = metadata.brokers.get(&partition.leader).cloned().ok_or_else(|| KafkaError::new(5, context()))?;
        self.leaders.insert(tp.clone(), node.clone());
        Ok(node)
    }

    /// Appends `records` to `tp` as one batch with acks=all (every in-sync
    /// replica has it, and on Tributary it is fsynced) and returns the offset
    /// of the first record.
    pub async fn produce(&mut self, tp: &TopicPartition, records: &[RecordSpec]) -> Result<i64, ClientError> {
        if records.is_empty() {
            return Err(ClientError::Refused(format!("nothing to produce to {tp}")));
        }
        let mut builder = BatchBuilder::new(Compression::None);
        for r in records {
            builder.push(r.clone());
        }
        let batch = Bytes::from(builder.build());
        let timeout_ms = i32::try_from(self.config().timeout.as_millis()).unwrap_or(i32::MAX);
        let context = || format!("produce {} record(s) to {tp}", records.len());
        let mut retry = Retry::new(self.config().timeout);
        loop {
            let code = match self.produce_once(tp, &batch, timeout_ms).await {
                Ok(offset) => return Ok(offset),
                Err(ProduceFailure::Code(code, message)) => (code, message),
                Err(ProduceFailure::Client(e)) => {
                    self.leaders.remove(tp);
                    // The connection broke or timed out: the batch may or may not be in; try again.
                    if matches!(e, ClientError::Io { .. } | ClientError::Timeout { .. }) && retry.again().await {
                        continue;
                    }
                    return Err(e);
                }
            };
            let err = KafkaError::new(code.0, context()).with_message(code.1.as_deref());
            if leader_moved(code.0) {
                self.leaders.remove(tp);
            }
            if (err.is_retriable() || leader_moved(code.0)) && retry.again().await {
                continue;
            }
            return Err(err.into());
        }
    }

    async fn produce_once(
        &mut self,
        tp: &TopicPartition,
        batch: &Bytes,
        timeout_ms: i32,
    ) -> Result<i64, ProduceFailure> {
        let leader = self.partition_leader(tp).await.map_err(ProduceFailure::Client)?;
        let conn = self.connection_to(&leader).await.map_err(ProduceFailure::Client)?;
        let v = conn.version(ApiKey::Produce).map_err(ProduceFailure::Client)?;
        let request = ProduceRequest::default().with_acks(-1).with_timeout_ms(timeout_ms).with_topic_data(vec![
            TopicProduceData::default().with_name(topic_name(&tp.topic)).with_partition_data(vec![
                PartitionProduceData::default().with_index(tp.partition).with_records(Some(batch.clone())),
            ]),
        ]);
        // The broker answers within timeout_ms; leave room for the network.
        let wait = Duration::from_millis(timeout_ms as u64).saturating_add(Duration::from_secs(5));
        let response = conn.call_within(&request, v, wait).await.map_err(ProduceFailure::Client)?;
        let answer = response
            .responses
            .iter()
            .filter(|t| t.name.0.as_str() == tp.topic)
            .flat_map(|t| t.partition_responses.iter())
            .find(|p| p.index == tp.partition);
        let Some(p) = answer else {
            return Err(ProduceFailure::Client(ClientError::Malformed {
                addr: conn.addr().to_string(),
                api: "Produce".to_string(),
                detail: format!("no answer for {tp}"),
            }));
        };
        if p.error_code != 0 {
            return Err(ProduceFailure::Code(p.error_code, p.error_message.as_deref().map(str::to_string)));
        }
        Ok(p.base_offset)
    }

    /// Reads records of `tp` from `offset`: waits up to `max_wait` for at
    /// least one byte, returns at most about `max_bytes` (the first batch
    /// whole even if larger, as Kafka does). OFFSET_OUT_OF_RANGE comes back
    /// as a Kafka error (code 1) for the caller to handle.
    pub async fn fetch(
        &mut self,
        tp: &TopicPartition,
        offset: i64,
        max_wait: Duration,
        max_bytes: i32,
    ) -> Result<FetchedRecords, ClientError> {
        let context = || format!("fetch {tp} from offset {offset}");
        let mut retry = Retry::new(self.config().timeout);
        loop {
            let leader = match self.partition_leader(tp).await {
                Ok(l) => l,
                Err(e) if e.kafka().is_some_and(|k| leader_moved(k.code)) && retry.again().await => continue,
                Err(e) => return Err(e),
            };
            let response_max = self.config().response_bytes_max;
            let wait = max_wait.saturating_add(self.config().timeout);
            let wait_ms = i32::try_from(max_wait.as_millis()).unwrap_or(i32::MAX);
            let conn = match self.connection_to(&leader).await {
                Ok(conn) => conn,
                Err(e) => {
                    // The leader's broker is gone: look the leader up again next time.
                    self.leaders.remove(tp);
                    return Err(e);
                }
            };
            let v = conn.version(ApiKey::Fetch)?;
            let request = FetchRequest::default()
                .with_max_wait_ms(wait_ms)
                .with_min_bytes(1)
                .with_max_bytes(max_bytes)
                .with_isolation_level(0)
                .with_session_id(0)
                .with_session_epoch(-1)
                .with_topics(vec![FetchTopic::default().with_topic(topic_name(&tp.topic)).with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(tp.partition)
                        .with_fetch_offset(offset)
                        .with_partition_max_bytes(max_bytes),
                ])]);
            let addr = conn.addr().to_string();
            let response = match conn.call_within(&request, v, wait).await {
                Ok(response) => response,
                Err(e) => {
                    self.leaders.remove(tp);
                    return Err(e);
                }
            };
            if response.error_code != 0 {
                return Err(KafkaError::new(response.error_code, context()).into());
            }
            let answer = response
                .responses
                .into_iter()
                .filter(|t| t.topic.0.as_str() == tp.topic)
                .flat_map(|t| t.partitions.into_iter())
                .find(|p| p.partition_index == tp.partition);
            let Some(p) = answer else {
                return Err(ClientError::Malformed {
                    addr,
                    api: "Fetch".to_string(),
                    detail: format!("no answer for {tp}"),
                });
            };
            if p.error_code != 0 {
                if leader_moved(p.error_code) {
                    self.leaders.remove(tp);
                }
                let err = KafkaError::new(p.error_code, context());
                if (err.is_retriable() || leader_moved(p.error_code)) && retry.again().await {
                    continue;
                }
                return Err(err.into());
            }
            let bytes = p.records.unwrap_or_default();
            let (records, next_offset) = decode_batches(&bytes, offset, response_max)
                .map_err(|detail| ClientError::Malformed { addr, api: "Fetch".to_string(), detail })?;
            return Ok(FetchedRecords {
                records,
                next_offset,
                high_watermark: p.high_watermark,
                log_start_offset: p.log_start_offset,
            });
        }
    }
}

/// The answer for one partition of [`Client::fetch_many`]: its records, or
/// the Kafka error it got (OFFSET_OUT_OF_RANGE is code 1).
pub type PartitionFetch = Result<FetchedRecords, KafkaError>;

impl Client {
    /// Reads several partitions at once, each from its own offset: one Fetch
    /// per partition leader. With one leader the broker holds the request up
    /// to `max_wait` until some partition has data; with several, each is
    /// asked without waiting (so one quiet broker does not delay the others)
    /// and the caller polls again. Each partition returns about
    /// `partition_max_bytes` at most. A partition whose leader moved or is
    /// unknown answers its Kafka error; its leader is looked up afresh next time.
    pub async fn fetch_many(
        &mut self,
        positions: &[(TopicPartition, i64)],
        max_wait: Duration,
        partition_max_bytes: i32,
    ) -> Result<BTreeMap<TopicPartition, PartitionFetch>, ClientError> {
        let mut out = BTreeMap::new();
        let mut by_leader: BTreeMap<i32, (Node, Vec<(TopicPartition, i64)>)> = BTreeMap::new();
        for (tp, offset) in positions {
            match self.partition_leader(tp).await {
                Ok(node) => {
                    by_leader.entry(node.node_id).or_insert_with(|| (node, Vec::new())).1.push((tp.clone(), *offset))
                }
                Err(ClientError::Kafka(e)) => {
                    out.insert(tp.clone(), Err(e));
                }
                Err(e) => return Err(e),
            }
        }
        let wait = if by_leader.len() == 1 { max_wait } else { Duration::ZERO };
        let wait_ms = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX);
        let response_max = self.config().response_bytes_max;
        let max_bytes = i32::try_from(response_max).unwrap_or(i32::MAX);
        for (node, wanted) in by_leader.into_values() {
            let timeout = wait.saturating_add(self.config().timeout);
            let conn = match self.connection_to(&node).await {
                Ok(conn) => conn,
                Err(e) => {
                    // The leader's broker is gone: look the leaders up again next time.
                    for (tp, _) in &wanted {
                        self.leaders.remove(tp);
                    }
                    return Err(e);
                }
            };
            let v = conn.version(ApiKey::Fetch)?;
            let mut topics: BTreeMap<&str, Vec<FetchPartition>> = BTreeMap::new();
            for (tp, offset) in &wanted {
                topics.entry(tp.topic.as_str()).or_default().push(
                    FetchPartition::default()
                        .with_partition(tp.partition)
                        .with_fetch_offset(*offset)
                        .with_partition_max_bytes(partition_max_bytes),
                );
            }
            let request = FetchRequest::default()
                .with_max_wait_ms(wait_ms)
                .with_min_bytes(1)
                .with_max_bytes(max_bytes)
                .with_isolation_level(0)
                .with_session_id(0)
                .with_session_epoch(-1)
                .with_topics(
                    topics
                        .into_iter()
                        .map(|(t, ps)| FetchTopic::default().with_topic(topic_name(t)).with_partitions(ps))
                        .collect(),
                );
            let addr = conn.addr().to_string();
            let response = match conn.call_within(&request, v, timeout).await {
                Ok(response) => response,
                Err(e) => {
                    for (tp, _) in &wanted {
                        self.leaders.remove(tp);
                    }
                    return Err(e);
                }
            };
            if response.error_code != 0 {
                return Err(KafkaError::new(response.error_code, format!("fetch from broker {}", node.node_id)).into());
            }
            let mut answers: BTreeMap<TopicPartition, _> = BTreeMap::new();
            for t in response.responses {
                for p in t.partitions {
                    answers.insert(TopicPartition::new(t.topic.0.as_str(), p.partition_index), p);
                }
            }
            for (tp, offset) in wanted {
                let Some(p) = answers.remove(&tp) else {
                    return Err(ClientError::Malformed {
                        addr,
                        api: "Fetch".to_string(),
                        detail: format!("no answer for {tp}"),
                    });
                };
                if p.error_code != 0 {
                    if leader_moved(p.error_code) {
                        self.leaders.remove(&tp);
                    }
                    let context = format!("fetch {tp} from offset {offset}");
                    out.insert(tp, Err(KafkaError::new(p.error_code, context)));
                    continue;
                }
                let bytes = p.records.unwrap_or_default();
                let (records, next_offset) = decode_batches(&bytes, offset, response_max).map_err(|detail| {
                    ClientError::Malformed { addr: addr.clone(), api: "Fetch".to_string(), detail }
                })?;
                let fetched = FetchedRecords {
                    records,
                    next_offset,
                    high_watermark: p.high_watermark,
                    log_start_offset: p.log_start_offset,
                };
                out.insert(tp, Ok(fetched));
            }
        }
        Ok(out)
    }

    /// Appends ready-made batches (one per partition, built with
    /// [`BatchBuilder`]) with `acks` (0, 1 or -1): one Produce per partition
    /// leader. Retriable errors and moved leaders are retried within the
    /// client timeout; a lost connection retries the whole request (so a
    /// batch may be appended twice, as with any producer that is not
    /// idempotent). Returns each partition's base offset (-1 with acks=0, which
    /// the broker never answers) or its Kafka error, in the order given.
    pub async fn produce_batches(
        &mut self,
        batches: &[(TopicPartition, Bytes)],
        acks: i16,
    ) -> Result<Vec<Result<i64, KafkaError>>, ClientError> {
        let timeout_ms = i32::try_from(self.config().timeout.as_millis()).unwrap_or(i32::MAX);
        let mut results: Vec<Option<Result<i64, KafkaError>>> = vec![None; batches.len()];
        let mut pending: Vec<usize> = (0..batches.len()).collect();
        let mut retry = Retry::new(self.config().timeout);
        while !pending.is_empty() {
            let mut again: Vec<(usize, KafkaError)> = Vec::new();
            let mut by_leader: BTreeMap<i32, (Node, Vec<usize>)> = BTreeMap::new();
            for i in pending.drain(..) {
                let tp = &batches[i].0;
                match self.partition_leader(tp).await {
                    Ok(node) => by_leader.entry(node.node_id).or_insert_with(|| (node, Vec::new())).1.push(i),
                    Err(ClientError::Kafka(e)) if e.is_retriable() || leader_moved(e.code) => again.push((i, e)),
                    Err(ClientError::Kafka(e)) => results[i] = Some(Err(e)),
                    Err(e) => return Err(e),
                }
            }
            for (node, indexes) in by_leader.into_values() {
                let mut topics: BTreeMap<&str, Vec<PartitionProduceData>> = BTreeMap::new();
                for &i in &indexes {
                    let (tp, batch) = &batches[i];
                    topics.entry(tp.topic.as_str()).or_default().push(
                        PartitionProduceData::default().with_index(tp.partition).with_records(Some(batch.clone())),
                    );
                }
                let request = ProduceRequest::default().with_acks(acks).with_timeout_ms(timeout_ms).with_topic_data(
                    topics
                        .into_iter()
                        .map(|(t, ps)| TopicProduceData::default().with_name(topic_name(t)).with_partition_data(ps))
                        .collect(),
                );
                let conn = match self.connection_to(&node).await {
                    Ok(c) => c,
                    Err(e) => {
                        for &i in &indexes {
                            self.leaders.remove(&batches[i].0);
                        }
                        return Err(e);
                    }
                };
                let v = conn.version(ApiKey::Produce)?;
                if acks == 0 {
                    conn.send_only(&request, v).await?;
                    for &i in &indexes {
                        results[i] = Some(Ok(-1));
                    }
                    continue;
                }
                let wait = Duration::from_millis(timeout_ms as u64).saturating_add(Duration::from_secs(5));
                let response = match conn.call_within(&request, v, wait).await {
                    Ok(r) => r,
                    Err(e @ (ClientError::Io { .. } | ClientError::Timeout { .. })) => {
                        for &i in &indexes {
                            self.leaders.remove(&batches[i].0);
                            let context = format!("produce to {}", batches[i].0);
                            // REQUEST_TIMED_OUT stands for the lost answer if the retries run out.
                            again.push((i, KafkaError::new(7, context).with_message(Some(&e.to_string()))));
                        }
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                let mut answers: BTreeMap<(String, i32), (i16, Option<String>, i64)> = BTreeMap::new();
                for t in &response.responses {
                    for p in &t.partition_responses {
                        let message = p.error_message.as_deref().map(str::to_string);
                        answers.insert((t.name.0.to_string(), p.index), (p.error_code, message, p.base_offset));
                    }
                }
                for &i in &indexes {
                    let tp = &batches[i].0;
                    let context = || format!("produce to {tp}");
                    match answers.remove(&(tp.topic.clone(), tp.partition)) {
                        Some((0, _, base)) => results[i] = Some(Ok(base)),
                        Some((code, message, _)) => {
                            let err = KafkaError::new(code, context()).with_message(message.as_deref());
                            if leader_moved(code) {
                                self.leaders.remove(tp);
                            }
                            if err.is_retriable() || leader_moved(code) {
                                again.push((i, err));
                            } else {
                                results[i] = Some(Err(err));
                            }
                        }
                        None => {
                            return Err(ClientError::Malformed {
                                addr: node.addr(),
                                api: "Produce".to_string(),
                                detail: format!("no answer for {tp}"),
                            });
                        }
                    }
                }
            }
            if again.is_empty() {
                break;
            }
            if !retry.again().await {
                for (i, e) in again {
                    results[i] = Some(Err(e));
                }
                break;
            }
            pending = again.into_iter().map(|(i, _)| i).collect();
        }
        Ok(results.into_iter().map(|r| r.unwrap_or_else(|| Err(KafkaError::new(-1, "produce: no answer")))).collect())
    }
}

enum ProduceFailure {
    Code(i16, Option<String>),
    Client(ClientError),
}

/// Decodes the batches of a fetch answer: records at or after `from`, and the
/// offset after the last whole batch. A partial batch at the end (the broker
/// cut the answer at its size limit) is not an error. Decompression stops at
/// `output_max` bytes per batch.
pub fn decode_batches(bytes: &[u8], from: i64, output_max: usize) -> Result<(Vec<FetchedRecord>, i64), String> {
    let mut records = Vec::new();
    let mut next_offset = from;
    for item in BatchIter::new(bytes) {
        let (header, batch) = match item {
            Ok(b) => b,
            Err(BatchError::Truncated) => break,
            Err(e) => return Err(format!("batch after offset {next_offset}: {e}")),
        };
        if !crc_matches(batch) {
            return Err(format!("batch at offset {} fails its CRC-32C check", header.base_offset));
        }
        if header.next_offset() <= from {
            continue;
        }
        next_offset = next_offset.max(header.next_offset());
        if header.is_control() {
            continue;
        }
        let compression = header.compression().map_err(|e| e.to_string())?;
        let payload = &batch[BATCH_HEADER_LEN..];
        let decompressed;
        let data: &[u8] = if compression == Compression::None {
            payload
        } else {
            decompressed = compression.decompress(payload, output_max).map_err(|e| e.to_string())?;
            &decompressed
        };
        for record in RecordIter::new(data) {
            let record = record.map_err(|(index, reason)| {
                format!("record {index} of the batch at offset {}: {reason}", header.base_offset)
            })?;
            let offset = header.base_offset + i64::from(record.offset_delta);
            if offset < from {
                continue;
            }
            let timestamp = if header.is_log_append_time() {
                header.max_timestamp
            } else {
                header.base_timestamp + record.timestamp_delta
            };
            records.push(FetchedRecord {
                offset,
                timestamp,
                key: record.key.map(Bytes::copy_from_slice),
                value: record.value.map(Bytes::copy_from_slice),
                headers: record
                    .headers
                    .iter()
                    .map(|h| (String::from_utf8_lossy(h.key).into_owned(), h.value.map(Bytes::copy_from_slice)))
                    .collect(),
            });
        }
    }
    Ok((records, next_offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(base: i64, values: &[&str]) -> Vec<u8> {
        let mut b = BatchBuilder::new(Compression::None).base_offset(base);
        for v in values {
            b.push(RecordSpec::new(Some(b"k"), Some(v.as_bytes()), 1000));
        }
        b.build()
    }

    #[test]
    fn batches_decode_from_the_requested_offset_and_stop_at_a_partial_tail() {
        let mut bytes = batch(0, &["a", "b"]);
        bytes.extend(batch(2, &["c"]));
        let whole = bytes.len();
        bytes.extend(&batch(3, &["d"])[..30]);
        let (records, next) = decode_batches(&bytes, 1, 1 << 20).expect("decodes");
        assert_eq!(records.iter().map(|r| r.offset).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(records[0].value.as_deref(), Some(&b"b"[..]));
        assert_eq!(next, 3);
        assert!(whole < bytes.len());
    }

    #[test]
    fn corrupt_batches_are_refused() {
        let mut bytes = batch(0, &["a"]);
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        assert!(decode_batches(&bytes, 0, 1 << 20).expect_err("crc").contains("CRC"));
    }

    #[test]
    fn compressed_batches_are_bounded() {
        let mut b = BatchBuilder::new(Compression::Gzip);
        b.push(RecordSpec::new(None, Some(&[0u8; 10_000]), 1));
        let bytes = b.build();
        assert!(decode_batches(&bytes, 0, 1 << 20).is_ok());
        assert!(decode_batches(&bytes, 0, 1000).is_err());
    }
}
