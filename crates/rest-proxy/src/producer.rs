//! The proxy's producer: records from every produce request go through one
//! task that batches what is waiting, picks partitions the way Kafka's Java
//! producer does, and sends one acks=all batch per partition.
//!
//! ```text
//! request ──send(Job)──▶ channel ──▶ task: take what is waiting (up to a
//!    ▲                                limit), partition each record,
//!    └── oneshot: partition + offset  group by partition, Produce each group
//! ```
//!
//! Partitioning: an explicit partition is kept; a keyed record goes to
//! `murmur2(key) % partitions`, as Java's and librdkafka's `murmur2_random`
//! partitioners do, so keyed records land where a Kafka client would put
//! them; records without a key stick to one partition per batch (Kafka's
//! sticky partitioner), moving on with the next batch.

use std::collections::HashMap;

use tokio::sync::{mpsc, oneshot};
use tributary_client::admin::TopicPartition;
use tributary_client::{Client, ClientConfig, ClientError, RecordSpec};

use crate::error::RestError;
use crate::kafka::topic_in;

/// Most records taken into one round of batching.
const MAX_RECORDS_PER_ROUND: usize = 10_000;
/// Most payload bytes in one Produce batch, under Kafka's default
/// `message.max.bytes` (1 MiB) with room for the batch framing.
const MAX_BATCH_BYTES: usize = 900 * 1024;
/// Records waiting for the producer before senders wait.
const QUEUE: usize = 20_000;

/// Where a record went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
}

/// The answer to one record.
pub type Delivery = oneshot::Receiver<Result<Delivered, RestError>>;

struct Job {
    topic: String,
    partition: Option<i32>,
    record: RecordSpec,
    done: oneshot::Sender<Result<Delivered, RestError>>,
}

/// A handle to the producer task; cheap to clone.
#[derive(Debug, Clone)]
pub struct Producer {
    jobs: mpsc::Sender<Job>,
}

impl Producer {
    /// Starts the task; it connects on its first record.
    pub fn spawn(config: ClientConfig) -> Producer {
        let (jobs, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(config, rx));
        Producer { jobs }
    }

    /// Queues `record` for `topic` (and `partition`, if chosen) and returns
    /// where its answer will come. Waits while the queue is full.
    pub async fn send(&self, topic: &str, partition: Option<i32>, record: RecordSpec) -> Delivery {
        let (done, delivery) = oneshot::channel();
        let job = Job { topic: topic.to_string(), partition, record, done };
        if let Err(mpsc::error::SendError(job)) = self.jobs.send(job).await {
            let _ = job.done.send(Err(RestError::status(500, "the producer has stopped")));
        }
        delivery
    }
}

/// The time a record gets when its request names none (ms since the epoch).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
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
    config: ClientConfig,
    client: Option<Client>,
    /// Partition counts of topics seen, refreshed after an unknown-partition error.
    partitions: HashMap<String, i32>,
    /// The partition records without a key go to in this round, per topic.
    sticky: HashMap<String, i32>,
}

impl State {
    async fn client(&mut self) -> Result<&mut Client, ClientError> {
        if self.client.is_none() {
            self.client = Some(Client::connect(self.config.clone()).await?);
        }
        match self.client.as_mut() {
            Some(c) => Ok(c),
            None => Err(ClientError::Refused("no connection to the Kafka cluster".to_string())),
        }
    }

    /// The partition count of `topic`, or the error its records get.
    async fn partition_count(&mut self, topic: &str) -> Result<i32, RestError> {
        if let Some(n) = self.partitions.get(topic) {
            return Ok(*n);
        }
        let names = [topic.to_string()];
        let metadata = match self.client().await {
            Ok(c) => c.metadata(Some(&names)).await,
            Err(e) => Err(e),
        };
        let metadata = metadata.map_err(|e| self.failed(e))?;
        let n = topic_in(&metadata, topic)?.partitions.len() as i32;
        if n == 0 {
            return Err(RestError::topic_not_found(topic));
        }
        self.partitions.insert(topic.to_string(), n);
        Ok(n)
    }

    /// Turns a client failure into the records' error; a broken connection is dropped.
    fn failed(&mut self, e: ClientError) -> RestError {
        if e.kafka().is_none() {
            self.client = None;
        }
        RestError::from(e)
    }
}

async fn run(config: ClientConfig, mut rx: mpsc::Receiver<Job>) {
    let mut state = State { config, client: None, partitions: HashMap::new(), sticky: HashMap::new() };
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

/// Partitions, groups and sends one round of records; answers every job.
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
                let message = format!("This server does not host this topic-partition: {}-{p}.", job.topic);
                let _ = job.done.send(Err(RestError { status: 404, error_code: 40402, message }));
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
    for (tp, jobs) in groups {
        let mut rest = jobs;
        while !rest.is_empty() {
            let mut bytes = 0;
            let split = rest
                .iter()
                .position(|j| {
                    bytes += record_size(&j.record);
                    bytes > MAX_BATCH_BYTES
                })
                .map_or(rest.len(), |i| i.max(1));
            let tail = rest.split_off(split);
            send_batch(state, &tp, rest).await;
            rest = tail;
        }
    }
}

fn record_size(r: &RecordSpec) -> usize {
    r.key.as_ref().map_or(0, Vec::len)
        + r.value.as_ref().map_or(0, Vec::len)
        + r.headers.iter().map(|(k, v)| k.len() + v.as_ref().map_or(0, Vec::len)).sum::<usize>()
        + 32
}

async fn send_batch(state: &mut State, tp: &TopicPartition, jobs: Vec<Job>) {
    let records: Vec<RecordSpec> = jobs.iter().map(|j| j.record.clone()).collect();
    let result = match state.client().await {
        Ok(c) => c.produce(tp, &records).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(base) => {
            for (i, job) in jobs.into_iter().enumerate() {
                let _ = job.done.send(Ok(Delivered { partition: tp.partition, offset: base + i as i64 }));
            }
        }
        Err(e) => {
            if e.kafka().is_some_and(|k| k.code == 3) {
                state.partitions.remove(&tp.topic);
            }
            let error = state.failed(e);
            for job in jobs {
                let _ = job.done.send(Err(error.clone()));
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
}
