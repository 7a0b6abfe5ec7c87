//! The store: the `_schemas` topic read into an [`Index`], and writes to it.
//!
//! ```text
//! start ── CreateTopics _schemas (1 partition, cleanup.policy=compact, kafkastore.topic.replication.factor
//!           replicas capped by the live brokers), check it has 1 partition
//!   └── reader task: Fetch from offset 0 ─▶ Key::decode + Index::apply ─▶ applied offset (watch)
//! write(records) ── Produce acks=all ─▶ wait until the reader applied that offset (read-your-writes)
//! catch_up ── ListOffsets latest ─▶ wait until the reader got there (the leader does this
//!             before it allocates an id, so it has seen every id written before it)
//! ```

use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::Duration;

use tokio::sync::watch;
use tributary_client::{Client, ClientConfig, ClientError, NewTopic, OffsetSpec, RecordSpec, TopicPartition};

use crate::format::Key;
use crate::index::Index;

/// Largest fetch answer the reader asks for.
const FETCH_BYTES_MAX: i32 = 8 * 1024 * 1024;
/// How long a fetch waits at the end of the log.
const FETCH_WAIT: Duration = Duration::from_millis(500);

/// Store errors, each with what to check.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The Kafka cluster refused or did not answer.
    #[error("the schema store topic \"{topic}\" is not reachable: {source}")]
    Kafka {
        /// The topic.
        topic: String,
        /// The cause.
        source: ClientError,
    },
    /// The topic exists with more than one partition.
    #[error(
        "the schema store topic \"{topic}\" has {partitions} partitions; it must have exactly 1 so that every \
         instance reads the writes in one order. Delete it or point kafkastore.topic at another topic"
    )]
    Partitions {
        /// The topic.
        topic: String,
        /// Its partition count.
        partitions: usize,
    },
    /// The reader did not reach an offset in time.
    #[error("the schema store reader did not reach offset {offset} within {} ms", .timeout.as_millis())]
    Timeout {
        /// The offset waited for.
        offset: i64,
        /// The time waited.
        timeout: Duration,
    },
}

/// Store settings.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Kafka bootstrap addresses.
    pub bootstrap: String,
    /// The topic (`kafkastore.topic`).
    pub topic: String,
    /// Replication factor for a new topic; -1 = the broker's default.
    pub replication_factor: i16,
    /// Timeout of one Kafka operation, and of waiting for the reader (`kafkastore.timeout.ms`).
    pub timeout: Duration,
}

/// The shared store: the index and the writer's connection.
#[derive(Debug)]
pub struct Store {
    config: StoreConfig,
    tp: TopicPartition,
    index: Arc<RwLock<Index>>,
    /// The next offset the reader will apply.
    applied: watch::Receiver<i64>,
    /// The writer's client: one request at a time.
    writer: tokio::sync::Mutex<Client>,
}

fn client_config(config: &StoreConfig, client_id: &str) -> ClientConfig {
    let mut c = ClientConfig::new(&config.bootstrap);
    c.client_id = client_id.to_string();
    c.timeout = config.timeout;
    c.response_bytes_max = FETCH_BYTES_MAX as usize + 1024 * 1024;
    c
}

impl Store {
    /// Creates the topic if needed, starts the reader and waits until it has
    /// read everything written before this call.
    pub async fn open(config: StoreConfig, shutdown: watch::Receiver<bool>) -> Result<Arc<Store>, StoreError> {
        let kafka = |source| StoreError::Kafka { topic: config.topic.clone(), source };
        let mut writer = Client::connect(client_config(&config, "schema-registry-writer")).await.map_err(kafka)?;
        let existing = writer.metadata(Some(std::slice::from_ref(&config.topic))).await.map_err(kafka)?;
        if existing.topics.get(&config.topic).is_none_or(|t| t.error_code != 0) {
            let mut topic = NewTopic::new(&config.topic, 1).with_config("cleanup.policy", "compact");
            topic.replication_factor = store_replication_factor(&config, existing.brokers.len());
            writer.create_topic(&topic).await.map_err(kafka)?;
        }
        let metadata = writer.metadata(Some(std::slice::from_ref(&config.topic))).await.map_err(kafka)?;
        let described = metadata.topics.get(&config.topic);
        let partitions = described.map_or(0, |t| t.partitions.len());
        if partitions != 1 {
            return Err(StoreError::Partitions { topic: config.topic.clone(), partitions });
        }
        let replicas = described.and_then(|t| t.partitions.get(&0)).map_or(0, |p| p.replicas.len());
        if config.replication_factor > 0 && replicas < usize::try_from(config.replication_factor).unwrap_or(0) {
            tracing::warn!(
                topic = %config.topic,
                replicas,
                wanted = config.replication_factor,
                "the schema store topic has fewer replicas than kafkastore.topic.replication.factor; in production, \
                 add brokers and raise its replication factor"
            );
        }
        let reader = Client::connect(client_config(&config, "schema-registry-reader")).await.map_err(kafka)?;
        let tp = TopicPartition::new(&config.topic, 0);
        let index = Arc::new(RwLock::new(Index::default()));
        let (applied_tx, applied) = watch::channel(0i64);
        tokio::spawn(read_loop(reader, tp.clone(), index.clone(), applied_tx, shutdown));
        let store = Arc::new(Store { config, tp, index, applied, writer: tokio::sync::Mutex::new(writer) });
        store.catch_up().await?;
        Ok(store)
    }

    /// The topic name.
    pub fn topic(&self) -> &str {
        &self.config.topic
    }

    /// A read view of the index.
    pub fn index(&self) -> RwLockReadGuard<'_, Index> {
        // A panic while holding the lock cannot leave the index half-updated
        // in a way readers care about more than an outage; keep serving.
        self.index.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits until the reader has applied every record before `offset`.
    pub async fn wait_for(&self, offset: i64) -> Result<(), StoreError> {
        let mut applied = self.applied.clone();
        let timeout = self.config.timeout;
        match tokio::time::timeout(timeout, applied.wait_for(|a| *a >= offset)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) | Err(_) => Err(StoreError::Timeout { offset, timeout }),
        }
    }

    /// Waits until the reader has read everything in the topic now.
    pub async fn catch_up(&self) -> Result<(), StoreError> {
        let end = {
            let mut writer = self.writer.lock().await;
            let tps = [self.tp.clone()];
            let answer = writer
                .list_offsets(&tps, OffsetSpec::Latest)
                .await
                .map_err(|source| StoreError::Kafka { topic: self.config.topic.clone(), source })?;
            match answer.into_values().next() {
                Some(Ok(listed)) => listed.offset,
                Some(Err(e)) => {
                    return Err(StoreError::Kafka { topic: self.config.topic.clone(), source: e.into() });
                }
                None => 0,
            }
        };
        self.wait_for(end).await
    }

    /// Appends records (key, value; `None` = tombstone) and waits until the
    /// reader has applied them.
    pub async fn write(&self, records: &[(Key, Option<Vec<u8>>)]) -> Result<(), StoreError> {
        let now = now_ms();
        let specs: Vec<RecordSpec> =
            records.iter().map(|(k, v)| RecordSpec::new(Some(&k.encode()), v.as_deref(), now)).collect();
        let base = {
            let mut writer = self.writer.lock().await;
            writer
                .produce(&self.tp, &specs)
                .await
                .map_err(|source| StoreError::Kafka { topic: self.config.topic.clone(), source })?
        };
        self.wait_for(base + specs.len() as i64).await
    }
}

/// The replication factor to create the store topic with: the configured
/// one, capped by the `live` brokers (as Confluent's registry does, with a
/// warning); -1 leaves it to the broker's `default.replication.factor`.
fn store_replication_factor(config: &StoreConfig, live: usize) -> i16 {
    let wanted = config.replication_factor;
    if wanted <= 0 || live == 0 {
        return wanted;
    }
    let capped = wanted.min(i16::try_from(live).unwrap_or(i16::MAX));
    if capped < wanted {
        tracing::warn!(
            topic = %config.topic,
            replication_factor = capped,
            wanted,
            "creating the schema store topic with a replication factor of {capped}, less than \
             kafkastore.topic.replication.factor={wanted}: only {live} broker(s) are live; in production, add \
             brokers and raise its replication factor"
        );
    }
    capped
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Tails the topic into the index until shutdown.
async fn read_loop(
    mut client: Client,
    tp: TopicPartition,
    index: Arc<RwLock<Index>>,
    applied: watch::Sender<i64>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut offset = 0i64;
    let mut pause = Duration::from_millis(100);
    loop {
        if *shutdown.borrow() {
            return;
        }
        let fetched = tokio::select! {
            r = client.fetch(&tp, offset, FETCH_WAIT, FETCH_BYTES_MAX) => r,
            _ = shutdown.changed() => return,
        };
        let fetched = match fetched {
            Ok(f) => f,
            Err(e) => {
                // OFFSET_OUT_OF_RANGE: compaction or retention moved the start; read from there.
                if e.kafka().is_some_and(|k| k.code == 1) {
                    let tps = [tp.clone()];
                    if let Ok(answer) = client.list_offsets(&tps, OffsetSpec::Earliest).await
                        && let Some(Ok(start)) = answer.into_values().next()
                        && start.offset > offset
                    {
                        tracing::warn!(from = offset, to = start.offset, "schema store reader skips to the log start");
                        offset = start.offset;
                        continue;
                    }
                }
                tracing::warn!(error = %e, offset, "schema store reader cannot fetch; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        pause = Duration::from_millis(100);
        {
            let mut index = index.write().unwrap_or_else(std::sync::PoisonError::into_inner);
            for record in &fetched.records {
                let Some(key_bytes) = record.key.as_deref() else {
                    index.skipped += 1;
                    continue;
                };
                match Key::decode(key_bytes) {
                    Ok(Some(key)) => {
                        if let Err(reason) = index.apply(&key, record.value.as_deref()) {
                            index.skipped += 1;
                            tracing::warn!(offset = record.offset, %reason, "schema store record skipped");
                        }
                    }
                    Ok(None) => {}
                    Err(reason) => {
                        index.skipped += 1;
                        tracing::warn!(offset = record.offset, %reason, "schema store record skipped");
                    }
                }
            }
        }
        // An answer without batches below the high watermark means compaction
        // removed everything up to it: continue from there.
        let mut next = fetched.next_offset.max(offset);
        if next == offset && fetched.high_watermark > offset {
            next = fetched.high_watermark;
        }
        offset = next;
        applied.send_replace(offset);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(replication_factor: i16) -> StoreConfig {
        StoreConfig {
            bootstrap: String::new(),
            topic: "_schemas".to_string(),
            replication_factor,
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn the_store_topic_takes_at_most_the_live_brokers() {
        assert_eq!(store_replication_factor(&config(3), 3), 3);
        assert_eq!(store_replication_factor(&config(3), 1), 1);
        assert_eq!(store_replication_factor(&config(2), 5), 2);
        assert_eq!(store_replication_factor(&config(-1), 1), -1, "-1 leaves it to the broker");
    }
}
