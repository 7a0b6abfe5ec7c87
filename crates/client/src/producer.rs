//! A batching producer: records from any number of callers go through one
//! task that takes whatever is waiting, picks partitions the way Kafka's Java
//! producer does, and sends one batch per partition, all of a broker's
//! partitions in one Produce request. Used by the REST proxy and by
//! `tributary topic produce`.
//!
//! ```text
//! send(topic, partition?, record) ──▶ bounded queue ──▶ task: take what is waiting
//!    ▲                                  (≤ 10,000 records), partition each record,
//!    │                                  cut each partition's records into batches
//!    │                                  (≤ batch_bytes, compressed as configured),
//!    │                                  one Produce per leader (Client::produce_batches)
//!    └── Delivery: partition + offset, or why the record failed
//! ```
//!
//! Pipelining: while a round is on the wire, callers keep queueing (up to
//! the queue's bound), so reading and encoding overlap with sending and the
//! next round is as large as what piled up meanwhile. One request is in
//! flight at a time, so records of one partition keep their order even when
//! a request is retried.
//!
//! Partitioning: an explicit partition is kept (and checked against the
//! topic's partition count); a keyed record goes to `murmur2(key) %
//! partitions`, as Java's and librdkafka's `murmur2_random` partitioners do,
//! so keyed records land where a Kafka client would put them; records
//! without a key stick to one partition per round (Kafka's sticky
//! partitioner), moving on with the next round.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tributary_record::Compression;
use tributary_record::builder::{BatchBuilder, RecordSpec};

use crate::admin::TopicPartition;
use crate::client::Client;
use crate::connection::ClientConfig;
use crate::error::{ClientError, KafkaError};

/// Most records taken into one round of batching.
const MAX_RECORDS_PER_ROUND: usize = 10_000;

/// How many replicas must have a record before the broker answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Acks {
    /// `acks=0`: the broker does not answer; offsets are unknown (-1).
    None,
    /// `acks=1`: the leader has it.
    Leader,
    /// `acks=all` (-1): every in-sync replica has it (and on Tributary it is fsynced).
    #[default]
    All,
}

impl Acks {
    /// The value of the Produce request's `acks` field.
    pub fn wire(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }
}

/// How the producer batches and sends.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// Acknowledgements to wait for.
    pub acks: Acks,
    /// Codec of every batch.
    pub compression: Compression,
    /// Most record bytes in one batch (before compression), under Kafka's
    /// default `message.max.bytes` (1 MiB) with room for the batch framing.
    pub batch_bytes: usize,
    /// Records waiting for the producer before `send` waits.
    pub queue: usize,
}

impl Default for ProducerConfig {
    fn default() -> ProducerConfig {
        ProducerConfig { acks: Acks::All, compression: Compression::None, batch_bytes: 900 * 1024, queue: 20_000 }
    }
}

/// Where a record went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// Its partition.
    pub partition: i32,
    /// Its offset (-1 with acks=0).
    pub offset: i64,
}

/// Why a record was not written.
#[derive(Debug, Clone)]
pub enum ProduceError {
    /// The topic does not exist.
    UnknownTopic(String),
    /// The record named a partition the topic does not have.
    UnknownPartition {
        /// The topic.
        topic: String,
        /// The partition asked for.
        partition: i32,
        /// How many partitions the topic has.
        count: i32,
    },
    /// The broker refused the batch, or could not be reached.
    Failed(Arc<ClientError>),
    /// The producer task stopped before answering.
    Stopped,
}

impl ProduceError {
    /// The Kafka error, when the broker gave one (UNKNOWN_TOPIC_OR_PARTITION for the first two kinds).
    pub fn kafka(&self) -> Option<KafkaError> {
        match self {
            ProduceError::UnknownTopic(t) => Some(KafkaError::new(3, format!("produce to topic \"{t}\""))),
            ProduceError::UnknownPartition { topic, partition, .. } => {
                Some(KafkaError::new(3, format!("produce to {topic}-{partition}")))
            }
            ProduceError::Failed(e) => e.kafka().cloned(),
            ProduceError::Stopped => None,
        }
    }
}

impl std::fmt::Display for ProduceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProduceError::UnknownTopic(t) => {
                write!(f, "topic \"{t}\" does not exist: UNKNOWN_TOPIC_OR_PARTITION (3). Create it first")
            }
            ProduceError::UnknownPartition { topic, partition, count } => write!(
                f,
                "topic \"{topic}\" has no partition {partition}: UNKNOWN_TOPIC_OR_PARTITION (3). It has {count} \
                 (0 to {})",
                count - 1
            ),
            ProduceError::Failed(e) => write!(f, "{e}"),
            ProduceError::Stopped => f.write_str("the producer stopped before answering"),
        }
    }
}

impl std::error::Error for ProduceError {}

/// The answer to one record, once it is written or has failed.
#[derive(Debug)]
pub struct Delivery(oneshot::Receiver<Result<Delivered, ProduceError>>);

impl Delivery {
    /// Waits for the answer.
    pub async fn wait(self) -> Result<Delivered, ProduceError> {
        self.0.await.unwrap_or(Err(ProduceError::Stopped))
    }
}

struct Job {
    topic: String,
    partition: Option<i32>,
    record: RecordSpec,
    done: oneshot::Sender<Result<Delivered, ProduceError>>,
}

/// A handle to the producer task; cheap to clone. The task ends when every
/// handle is dropped and what was queued is sent.
#[derive(Debug, Clone)]
pub struct Producer {
    jobs: mpsc::Sender<Job>,
}

impl Producer {
    /// Starts the task (inside a Tokio runtime); it connects on its first record.
    pub fn spawn(client: ClientConfig, config: ProducerConfig) -> Producer {
        let (jobs, rx) = mpsc::channel(config.queue.max(1));
        let state =
            State { client_config: client, config, client: None, partitions: HashMap::new(), sticky: HashMap::new() };
        tokio::spawn(run(state, rx));
        Producer { jobs }
    }

    /// Queues `record` for `topic` (and `partition`, if chosen) and returns
    /// where its answer will come. Waits while the queue is full.
    pub async fn send(&self, topic: &str, partition: Option<i32>, record: RecordSpec) -> Delivery {
        let (done, delivery) = oneshot::channel();
        let job = Job { topic: topic.to_string(), partition, record, done };
        if let Err(mpsc::error::SendError(job)) = self.jobs.send(job).await {
            let _ = job.done.send(Err(ProduceError::Stopped));
        }
        Delivery(delivery)
    }
}

/// Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`).
pub fn murmur2(data: &[u8]) -> i32 {
    const M: u32 = 0x5bd1_e995;
    let mut h: u32 = 0x9747_b28c ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition Kafka's default partitioner gives a keyed record.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) % partitions.max(1)
}

struct State {
    client_config: ClientConfig,
    config: ProducerConfig,
    client: Option<Client>,
    /// Partition counts of topics seen, forgotten after an unknown-partition error.
    partitions: HashMap<String, i32>,
    /// The partition records without a key go to in this round, per topic.
    sticky: HashMap<String, i32>,
}

impl State {
    async fn client(&mut self) -> Result<&mut Client, ClientError> {
        if self.client.is_none() {
            self.client = Some(Client::connect(self.client_config.clone()).await?);
        }
        match self.client.as_mut() {
            Some(c) => Ok(c),
            None => Err(ClientError::Refused("no connection to the Kafka cluster".to_string())),
        }
    }

    /// The partition count of `topic`, or the error its records get.
    async fn partition_count(&mut self, topic: &str) -> Result<i32, ProduceError> {
        if let Some(n) = self.partitions.get(topic) {
            return Ok(*n);
        }
        let names = [topic.to_string()];
        let metadata = match self.client().await {
            Ok(c) => c.metadata(Some(&names)).await,
            Err(e) => Err(e),
        };
        let metadata = metadata.map_err(|e| self.failed(e))?;
        let n = match metadata.topics.get(topic) {
            Some(t) if t.error_code == 0 => t.partitions.len() as i32,
            Some(t) if t.error_code != 3 => {
                let e = KafkaError::new(t.error_code, format!("look up topic \"{topic}\""));
                return Err(ProduceError::Failed(Arc::new(e.into())));
            }
            _ => 0,
        };
        if n == 0 {
            return Err(ProduceError::UnknownTopic(topic.to_string()));
        }
        self.partitions.insert(topic.to_string(), n);
        Ok(n)
    }

    /// Turns a client failure into the records' error; a broken connection is dropped.
    fn failed(&mut self, e: ClientError) -> ProduceError {
        if e.kafka().is_none() {
            self.client = None;
        }
        ProduceError::Failed(Arc::new(e))
    }
}

async fn run(mut state: State, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut round = vec![first];
        while round.len() < MAX_RECORDS_PER_ROUND {
            match rx.try_recv() {
                Ok(job) => round.push(job),
                Err(_) => break,
            }
        }
        produce_round(&mut state, round).await;
    }
}

/// Partitions, batches and sends one round of records; answers every job.
async fn produce_round(state: &mut State, round: Vec<Job>) {
    // Records per partition, in arrival order.
    let mut groups: Vec<(TopicPartition, Vec<Job>)> = Vec::new();
    let mut index: HashMap<TopicPartition, usize> = HashMap::new();
    for job in round {
        let count = match state.partition_count(&job.topic).await {
            Ok(n) => n,
            Err(e) => {
                let _ = job.done.send(Err(e));
                continue;
            }
        };
        let partition = match (job.partition, job.record.key.as_deref()) {
            (Some(p), _) if p < 0 || p >= count => {
                let e = ProduceError::UnknownPartition { topic: job.topic.clone(), partition: p, count };
                let _ = job.done.send(Err(e));
                continue;
            }
            (Some(p), _) => p,
            (None, Some(key)) => partition_for_key(key, count),
            (None, None) => *state.sticky.entry(job.topic.clone()).or_insert(0) % count,
        };
        let tp = TopicPartition::new(&job.topic, partition);
        let at = *index.entry(tp.clone()).or_insert_with(|| {
            groups.push((tp, Vec::new()));
            groups.len() - 1
        });
        groups[at].1.push(job);
    }
    // The next round's records without a key go to the next partition.
    for (topic, p) in state.sticky.iter_mut() {
        if let Some(n) = state.partitions.get(topic) {
            *p = (*p + 1) % n;
        }
    }
    // Cut each partition's records into batches; a request carries one batch per partition.
    let mut batches: Vec<Vec<(TopicPartition, Vec<Job>)>> = Vec::new();
    for (tp, jobs) in groups {
        let mut rest = jobs;
        let mut nth = 0;
        while !rest.is_empty() {
            let mut bytes = 0;
            let split = rest
                .iter()
                .position(|j| {
                    bytes += record_size(&j.record);
                    bytes > state.config.batch_bytes
                })
                .map_or(rest.len(), |i| i.max(1));
            let tail = rest.split_off(split);
            if batches.len() <= nth {
                batches.push(Vec::new());
            }
            batches[nth].push((tp.clone(), rest));
            rest = tail;
            nth += 1;
        }
    }
    for request in batches {
        send_request(state, request).await;
    }
}

fn record_size(r: &RecordSpec) -> usize {
    r.key.as_ref().map_or(0, Vec::len)
        + r.value.as_ref().map_or(0, Vec::len)
        + r.headers.iter().map(|(k, v)| k.len() + v.as_ref().map_or(0, Vec::len)).sum::<usize>()
        + 32
}

async fn send_request(state: &mut State, request: Vec<(TopicPartition, Vec<Job>)>) {
    let batches: Vec<(TopicPartition, Bytes)> = request
        .iter()
        .map(|(tp, jobs)| {
            let mut builder = BatchBuilder::new(state.config.compression);
            for j in jobs {
                builder.push(j.record.clone());
            }
            (tp.clone(), Bytes::from(builder.build()))
        })
        .collect();
    let acks = state.config.acks.wire();
    let result = match state.client().await {
        Ok(c) => c.produce_batches(&batches, acks).await,
        Err(e) => Err(e),
    };
    let answers = match result {
        Ok(answers) => answers,
        Err(e) => {
            let error = state.failed(e);
            for (_, jobs) in request {
                for job in jobs {
                    let _ = job.done.send(Err(error.clone()));
                }
            }
            return;
        }
    };
    for ((tp, jobs), answer) in request.into_iter().zip(answers) {
        match answer {
            Ok(base) => {
                for (i, job) in jobs.into_iter().enumerate() {
                    let offset = if base < 0 { -1 } else { base + i as i64 };
                    let _ = job.done.send(Ok(Delivered { partition: tp.partition, offset }));
                }
            }
            Err(e) => {
                if e.code == 3 {
                    state.partitions.remove(&tp.topic);
                }
                let error = ProduceError::Failed(Arc::new(ClientError::Kafka(e)));
                for job in jobs {
                    let _ = job.done.send(Err(error.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafka() {
        // Values from Kafka's UtilsTest.testMurmur2.
        let cases: [(&str, i32); 6] = [
            ("21", -973_932_308),
            ("foobar", -790_332_482),
            ("a-little-bit-long-string", -985_981_536),
            ("a-little-bit-longer-string", -1_486_304_829),
            ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58_897_971),
            ("abc", 479_470_107),
        ];
        for (input, expected) in cases {
            assert_eq!(murmur2(input.as_bytes()), expected, "{input}");
        }
    }

    #[test]
    fn keyed_records_spread_over_every_partition() {
        let mut seen = [false; 6];
        for i in 0..200 {
            let p = partition_for_key(format!("key-{i}").as_bytes(), 6);
            seen[p as usize] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }

    #[test]
    fn errors_name_the_kafka_error_and_the_fix() {
        let e = ProduceError::UnknownPartition { topic: "t".to_string(), partition: 7, count: 3 };
        assert!(e.to_string().contains("UNKNOWN_TOPIC_OR_PARTITION (3). It has 3 (0 to 2)"), "{e}");
        assert_eq!(e.kafka().map(|k| k.code), Some(3));
        assert!(ProduceError::Stopped.kafka().is_none());
    }
}
