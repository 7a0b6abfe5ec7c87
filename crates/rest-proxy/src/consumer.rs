//! v2 consumer instances: a Kafka consumer kept in the proxy between HTTP
//! requests, as kafka-rest's are. The consumer itself (group membership with
//! the range assignor, positions, fetching, commits) is
//! `tributary_client::Consumer`; an instance adds kafka-rest's rules (409s
//! for mixing subscriptions and assignments, seeks of unassigned partitions),
//! its settings, and its idle clock.
//!
//! ```text
//! subscribe ──▶ (first poll) JoinGroup/SyncGroup as a "consumer" protocol member ──▶ partitions
//! assign ─────▶ partitions chosen by the caller, no group membership
//! poll ───────▶ positions: seek > committed offset > auto.offset.reset; Fetch from them
//! heartbeat ──▶ (background, every 3 s) a rebalance: commit if auto-commit, join again
//! commit ─────▶ OffsetCommit as the member of its generation
//! ```
//!
//! An explicit commit names the offset of the last record processed, and the
//! group resumes after it (committed = offset + 1), as kafka-rest does; an
//! empty commit commits every position.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use regex::Regex;
use tokio::time::Instant;
use tributary_client::admin::{OffsetSpec, TopicPartition};
use tributary_client::{ClientConfig, Consumer, ConsumerConfig, FetchedRecord, PollLimits, StartOffset, Topics};

use crate::error::RestError;

/// How long a member may go without heartbeats before the coordinator drops it.
const SESSION_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a rebalance waits for members to rejoin.
const REBALANCE_TIMEOUT: Duration = Duration::from_secs(30);
/// How often positions are committed with auto-commit on.
const AUTO_COMMIT_INTERVAL: Duration = Duration::from_secs(5);

pub use tributary_client::consumer::range_assign;

/// The embedded format records are returned in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Binary,
    Json,
    Avro,
    JsonSchema,
    Protobuf,
}

impl Format {
    /// `binary`, `json`, `avro`, `jsonschema`, `protobuf`.
    pub fn parse(name: &str) -> Option<Format> {
        Some(match name {
            "binary" => Format::Binary,
            "json" => Format::Json,
            "avro" => Format::Avro,
            "jsonschema" => Format::JsonSchema,
            "protobuf" => Format::Protobuf,
            _ => return None,
        })
    }

    /// Its name in content types.
    pub fn name(self) -> &'static str {
        match self {
            Format::Binary => "binary",
            Format::Json => "json",
            Format::Avro => "avro",
            Format::JsonSchema => "jsonschema",
            Format::Protobuf => "protobuf",
        }
    }
}

/// What an instance was created with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub format: Format,
    /// `auto.offset.reset`: earliest (true) or latest (false).
    pub from_earliest: bool,
    /// `auto.commit.enable`.
    pub auto_commit: bool,
    /// `consumer.request.timeout.ms`: the longest a poll waits for records.
    pub request_timeout: Duration,
}

/// One consumer instance.
#[derive(Debug)]
pub struct Instance {
    pub group: String,
    pub name: String,
    pub settings: Settings,
    consumer: Consumer,
    /// When a request last used it (idle instances expire).
    pub last_used: Instant,
}

fn conflict(message: &str) -> RestError {
    RestError { status: 409, error_code: 40903, message: message.to_string() }
}

fn exclusive() -> RestError {
    conflict("Subscription to topics, partitions and pattern are mutually exclusive.")
}

impl Instance {
    /// A new, idle instance; it connects on first use.
    pub fn new(group: &str, name: &str, settings: Settings, config: ClientConfig) -> Instance {
        let consumer_config = ConsumerConfig {
            start: if settings.from_earliest { StartOffset::Earliest } else { StartOffset::Latest },
            auto_commit: settings.auto_commit.then_some(AUTO_COMMIT_INTERVAL),
            session_timeout: SESSION_TIMEOUT,
            rebalance_timeout: REBALANCE_TIMEOUT,
            heartbeat_interval: SESSION_TIMEOUT / 10,
        };
        Instance {
            group: group.to_string(),
            name: name.to_string(),
            settings,
            consumer: Consumer::new(config, Some(group), consumer_config),
            last_used: Instant::now(),
        }
    }

    /// Subscribes to `topics` or to the topics matching `pattern`; the group is joined on the next poll.
    pub async fn subscribe(&mut self, topics: Vec<String>, pattern: Option<Regex>) -> Result<(), RestError> {
        if self.consumer.is_assigned() {
            return Err(exclusive());
        }
        let topics = match pattern {
            Some(re) => Topics::Matching(Arc::new(move |name: &str| re.is_match(name))),
            None => Topics::Names(topics),
        };
        Ok(self.consumer.subscribe(topics).await?)
    }

    /// The subscribed topics (for a pattern, those it matched at the last join).
    pub fn subscription(&self) -> Vec<String> {
        self.consumer.subscription()
    }

    /// Leaves the group (committing first with auto-commit) and forgets the subscription.
    pub async fn unsubscribe(&mut self) -> Result<(), RestError> {
        self.consumer.unsubscribe().await;
        Ok(())
    }

    /// Assigns partitions by hand (no group membership).
    pub fn assign(&mut self, partitions: Vec<TopicPartition>) -> Result<(), RestError> {
        if self.consumer.is_subscribed() {
            return Err(exclusive());
        }
        self.consumer.assign(partitions);
        Ok(())
    }

    /// The partitions assigned now.
    pub fn assignment(&self) -> &[TopicPartition] {
        self.consumer.assignment()
    }

    /// Moves positions of assigned partitions to offsets.
    pub fn seek(&mut self, offsets: Vec<(TopicPartition, i64)>) -> Result<(), RestError> {
        for (tp, _) in &offsets {
            if !self.consumer.assignment().contains(tp) {
                return Err(conflict(&format!("No current assignment for partition {tp}")));
            }
        }
        self.consumer.seek(offsets);
        Ok(())
    }

    /// Moves positions of assigned partitions to their beginning or end.
    pub async fn seek_to(&mut self, partitions: Vec<TopicPartition>, spec: OffsetSpec) -> Result<(), RestError> {
        let start = match spec {
            OffsetSpec::Earliest => StartOffset::Earliest,
            OffsetSpec::Timestamp(ms) => StartOffset::Timestamp(ms),
            _ => StartOffset::Latest,
        };
        let offsets = self.consumer.resolve(&partitions, start).await?;
        self.seek(offsets)
    }

    /// Records from the positions on: waits up to `timeout` for the first,
    /// returns about `max_bytes` at most.
    pub async fn poll(
        &mut self,
        timeout: Duration,
        max_bytes: usize,
    ) -> Result<Vec<(TopicPartition, FetchedRecord)>, RestError> {
        let deadline = Instant::now() + timeout;
        let limits = PollLimits { max_bytes, max_records: usize::MAX };
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            let records = self.consumer.poll(wait, limits).await?;
            if !records.is_empty() || Instant::now() >= deadline {
                return Ok(records);
            }
            tokio::time::sleep(Duration::from_millis(50).min(deadline.saturating_duration_since(Instant::now()))).await;
        }
    }

    /// Commits `offsets` (offsets of last processed records), or every position when `None`.
    pub async fn commit(
        &mut self,
        offsets: Option<Vec<(TopicPartition, i64)>>,
    ) -> Result<Vec<(TopicPartition, i64)>, RestError> {
        Ok(self.consumer.commit(offsets).await?)
    }

    /// The group's committed offsets for `partitions`.
    pub async fn committed(
        &mut self,
        partitions: Vec<TopicPartition>,
    ) -> Result<Vec<(TopicPartition, i64, String)>, RestError> {
        Ok(self.consumer.committed(&partitions).await?)
    }

    /// Keeps the membership alive; on a rebalance, commits (auto-commit) and rejoins.
    pub async fn heartbeat(&mut self) {
        if let Err(e) = self.consumer.heartbeat().await {
            tracing::warn!(group = %self.group, instance = %self.name, error = %e, "rejoin failed; trying again on the next poll");
        }
    }

    /// Leaves the group, committing first with auto-commit on.
    pub async fn close(&mut self) {
        self.consumer.close().await;
    }
}

/// Every consumer instance of the proxy, by (group, name).
#[derive(Debug, Default)]
pub struct Instances {
    by_name: std::sync::Mutex<BTreeMap<(String, String), SharedInstance>>,
}

/// A shared handle to one instance.
pub type SharedInstance = std::sync::Arc<tokio::sync::Mutex<Instance>>;

impl Instances {
    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), SharedInstance>> {
        self.by_name.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds `instance`; `false` if one with its group and name exists.
    pub fn add(&self, instance: Instance) -> bool {
        let key = (instance.group.clone(), instance.name.clone());
        let mut map = self.map();
        if map.contains_key(&key) {
            return false;
        }
        map.insert(key, std::sync::Arc::new(tokio::sync::Mutex::new(instance)));
        true
    }

    /// The instance, or 404 (40403).
    pub fn get(&self, group: &str, name: &str) -> Result<SharedInstance, RestError> {
        self.map().get(&(group.to_string(), name.to_string())).cloned().ok_or_else(|| RestError {
            status: 404,
            error_code: 40403,
            message: format!(
                "Consumer instance {name} of group {group} not found; it may have expired, create it again"
            ),
        })
    }

    /// Removes the instance (the caller closes it).
    pub fn remove(&self, group: &str, name: &str) -> Option<SharedInstance> {
        self.map().remove(&(group.to_string(), name.to_string()))
    }

    fn all(&self) -> Vec<SharedInstance> {
        self.map().values().cloned().collect()
    }

    /// Closes and removes every instance (at shutdown).
    pub async fn close_all(&self) {
        let all: Vec<SharedInstance> = std::mem::take(&mut *self.map()).into_values().collect();
        for shared in all {
            shared.lock().await.close().await;
        }
    }

    /// Every `tick`: heartbeats for instances that are not busy, and closes
    /// the ones idle for longer than `idle_timeout` (`consumer.instance.timeout.ms`).
    pub async fn maintain(self: std::sync::Arc<Instances>, idle_timeout: Duration) {
        let tick = Duration::from_secs(1);
        let mut last_beat: BTreeMap<(String, String), Instant> = BTreeMap::new();
        loop {
            tokio::time::sleep(tick).await;
            for shared in self.all() {
                let Ok(mut instance) = shared.try_lock() else { continue };
                let key = (instance.group.clone(), instance.name.clone());
                if instance.last_used.elapsed() > idle_timeout {
                    tracing::info!(group = %key.0, instance = %key.1, "consumer instance expired after being idle");
                    instance.close().await;
                    drop(instance);
                    self.remove(&key.0, &key.1);
                    last_beat.remove(&key);
                    continue;
                }
                let due = last_beat.get(&key).is_none_or(|at| at.elapsed() >= SESSION_TIMEOUT / 10);
                if due {
                    instance.heartbeat().await;
                    last_beat.insert(key, Instant::now());
                }
            }
        }
    }
}
