//! v2 consumer instances: a Kafka consumer kept in the proxy between HTTP
//! requests, as kafka-rest's are.
//!
//! ```text
//! subscribe ──▶ (first poll) JoinGroup/SyncGroup as a "consumer" protocol
//!               member with the range assignor ──▶ assigned partitions
//! assign ─────▶ partitions chosen by the caller, no group membership
//! poll ───────▶ positions: seek > committed offset > auto.offset.reset
//!               Fetch each assigned partition from its position
//! heartbeat ──▶ (background, every 3 s) a rebalance: commit if auto-commit,
//!               join again, positions re-read from committed offsets
//! commit ─────▶ OffsetCommit as the member of its generation
//! ```
//!
//! An explicit commit names the offset of the last record processed, and the
//! group resumes after it (committed = offset + 1), as kafka-rest does; an
//! empty commit commits every position.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use regex::Regex;
use tokio::time::Instant;
use tributary_client::admin::{OffsetSpec, TopicPartition};
use tributary_client::{
    Assignment, Client, ClientConfig, ClientError, FetchedRecord, GroupMembership, Heartbeat, JoinedMember,
    Subscription, TopicPartitions,
};
use tributary_protocol::consumer_protocol::{
    decode_assignment, decode_subscription, encode_assignment, encode_subscription,
};

use crate::error::RestError;

/// How long a member may go without heartbeats before the coordinator drops it.
const SESSION_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a rebalance waits for members to rejoin.
const REBALANCE_TIMEOUT: Duration = Duration::from_secs(30);
/// How often positions are committed with auto-commit on.
const AUTO_COMMIT_INTERVAL: Duration = Duration::from_secs(5);

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

#[derive(Debug)]
enum Mode {
    Idle,
    Subscribed { topics: Vec<String>, pattern: Option<Regex>, membership: Option<GroupMembership> },
    Assigned,
}

/// One consumer instance.
#[derive(Debug)]
pub struct Instance {
    pub group: String,
    pub name: String,
    pub settings: Settings,
    config: ClientConfig,
    client: Option<Client>,
    mode: Mode,
    /// A rebalance is due: join again before the next fetch.
    rejoin: bool,
    assigned: Vec<TopicPartition>,
    positions: BTreeMap<TopicPartition, i64>,
    last_commit: Instant,
    /// When a request last used it (idle instances expire).
    pub last_used: Instant,
}

fn conflict(message: &str) -> RestError {
    RestError { status: 409, error_code: 40903, message: message.to_string() }
}

fn exclusive() -> RestError {
    conflict("Subscription to topics, partitions and pattern are mutually exclusive.")
}

/// The range assignor (Kafka's `RangeAssignor`): per topic, members in
/// member-id order get consecutive ranges, the first ones one extra.
pub fn range_assign(
    members: &[(String, Vec<String>)],
    partitions: &BTreeMap<String, i32>,
) -> BTreeMap<String, Vec<TopicPartitions>> {
    let mut out: BTreeMap<String, Vec<TopicPartitions>> =
        members.iter().map(|(m, _)| (m.clone(), Vec::new())).collect();
    let topics: BTreeSet<&String> = members.iter().flat_map(|(_, t)| t.iter()).collect();
    for topic in topics {
        let Some(&count) = partitions.get(topic) else { continue };
        let mut subscribers: Vec<&String> = members.iter().filter(|(_, t)| t.contains(topic)).map(|(m, _)| m).collect();
        subscribers.sort();
        let n = subscribers.len() as i32;
        if n == 0 {
            continue;
        }
        let (per, extra) = (count / n, count % n);
        for (i, member) in subscribers.into_iter().enumerate() {
            let i = i as i32;
            let start = per * i + i.min(extra);
            let len = per + i32::from(i < extra);
            if len > 0
                && let Some(list) = out.get_mut(member)
            {
                list.push(TopicPartitions { topic: topic.clone(), partitions: (start..start + len).collect() });
            }
        }
    }
    out
}

impl Instance {
    /// A new, idle instance; it connects on first use.
    pub fn new(group: &str, name: &str, settings: Settings, config: ClientConfig) -> Instance {
        Instance {
            group: group.to_string(),
            name: name.to_string(),
            settings,
            config,
            client: None,
            mode: Mode::Idle,
            rejoin: false,
            assigned: Vec::new(),
            positions: BTreeMap::new(),
            last_commit: Instant::now(),
            last_used: Instant::now(),
        }
    }

    async fn client(&mut self) -> Result<&mut Client, RestError> {
        if self.client.is_none() {
            self.client = Some(Client::connect(self.config.clone()).await?);
        }
        self.client.as_mut().ok_or_else(|| RestError::status(500, "no connection to the Kafka cluster"))
    }

    /// Turns a client error into an answer; a broken connection is dropped.
    fn failed(&mut self, e: ClientError) -> RestError {
        if e.kafka().is_none() {
            self.client = None;
        }
        RestError::from(e)
    }

    /// Subscribes to `topics` or to the topics matching `pattern`; the group is joined on the next poll.
    pub async fn subscribe(&mut self, topics: Vec<String>, pattern: Option<Regex>) -> Result<(), RestError> {
        match self.mode {
            Mode::Assigned => return Err(exclusive()),
            Mode::Subscribed { .. } => self.unsubscribe().await?,
            Mode::Idle => {}
        }
        self.mode = Mode::Subscribed { topics, pattern, membership: None };
        self.rejoin = true;
        Ok(())
    }

    /// The subscribed topics (for a pattern, those it matched at the last join).
    pub fn subscription(&self) -> Vec<String> {
        match &self.mode {
            Mode::Subscribed { topics, pattern: None, .. } => topics.clone(),
            Mode::Subscribed { pattern: Some(_), .. } => {
                self.assigned.iter().map(|tp| tp.topic.clone()).collect::<BTreeSet<_>>().into_iter().collect()
            }
            _ => Vec::new(),
        }
    }

    /// Leaves the group (committing first with auto-commit) and forgets the subscription.
    pub async fn unsubscribe(&mut self) -> Result<(), RestError> {
        if let Mode::Subscribed { membership: Some(_), .. } = &self.mode {
            if self.settings.auto_commit {
                let _ = self.commit(None).await;
            }
            self.leave().await;
        }
        if matches!(self.mode, Mode::Subscribed { .. }) {
            self.mode = Mode::Idle;
            self.assigned.clear();
            self.positions.clear();
        }
        Ok(())
    }

    async fn leave(&mut self) {
        let Mode::Subscribed { membership, .. } = &mut self.mode else { return };
        let Some(mut m) = membership.take() else { return };
        if let Ok(client) = self.client().await {
            let _ = m.leave(client).await;
        }
    }

    /// Assigns partitions by hand (no group membership).
    pub fn assign(&mut self, partitions: Vec<TopicPartition>) -> Result<(), RestError> {
        if matches!(self.mode, Mode::Subscribed { .. }) {
            return Err(exclusive());
        }
        self.positions.retain(|tp, _| partitions.contains(tp));
        self.assigned = partitions;
        self.mode = Mode::Assigned;
        Ok(())
    }

    /// The partitions assigned now.
    pub fn assignment(&self) -> &[TopicPartition] {
        &self.assigned
    }

    /// Moves positions of assigned partitions to offsets.
    pub fn seek(&mut self, offsets: Vec<(TopicPartition, i64)>) -> Result<(), RestError> {
        for (tp, _) in &offsets {
            if !self.assigned.contains(tp) {
                return Err(conflict(&format!("No current assignment for partition {tp}")));
            }
        }
        self.positions.extend(offsets);
        Ok(())
    }

    /// Moves positions of assigned partitions to their beginning or end.
    pub async fn seek_to(&mut self, partitions: Vec<TopicPartition>, spec: OffsetSpec) -> Result<(), RestError> {
        let offsets = self.look_up(&partitions, spec).await?;
        self.seek(offsets)
    }

    async fn look_up(
        &mut self,
        partitions: &[TopicPartition],
        spec: OffsetSpec,
    ) -> Result<Vec<(TopicPartition, i64)>, RestError> {
        let found = match self.client().await?.list_offsets(partitions, spec).await {
            Ok(f) => f,
            Err(e) => return Err(self.failed(e)),
        };
        let mut out = Vec::new();
        for (tp, r) in found {
            match r {
                Ok(o) => out.push((tp, o.offset)),
                Err(e) => return Err(RestError::from(ClientError::Kafka(e))),
            }
        }
        Ok(out)
    }

    /// Joins (or rejoins) the group when subscribed and a join is due.
    async fn ensure_joined(&mut self) -> Result<(), RestError> {
        if !self.rejoin {
            return Ok(());
        }
        let Mode::Subscribed { topics, pattern, .. } = &self.mode else {
            self.rejoin = false;
            return Ok(());
        };
        let (topics, pattern) = (topics.clone(), pattern.clone());
        let metadata = match self.client().await?.metadata(None).await {
            Ok(m) => m,
            Err(e) => return Err(self.failed(e)),
        };
        let partitions: BTreeMap<String, i32> =
            metadata.topics.iter().map(|(name, t)| (name.clone(), t.partitions.len() as i32)).collect();
        let mine: Vec<String> = match &pattern {
            Some(re) => metadata
                .topics
                .iter()
                .filter(|(name, t)| !t.is_internal && re.is_match(name))
                .map(|(name, _)| name.clone())
                .collect(),
            None => topics,
        };
        let subscription = Subscription { version: 0, topics: mine, ..Subscription::default() };
        let metadata_bytes = encode_subscription(&subscription)
            .map_err(|e| RestError::status(500, format!("cannot encode the subscription: {e}")))?;
        let mut membership = match std::mem::replace(&mut self.mode, Mode::Idle) {
            Mode::Subscribed { membership: Some(m), .. } => m,
            _ => GroupMembership::new(
                &self.group,
                "consumer",
                vec![("range".to_string(), metadata_bytes.clone())],
                SESSION_TIMEOUT,
                REBALANCE_TIMEOUT,
            ),
        };
        membership.set_protocols(vec![("range".to_string(), metadata_bytes)]);
        let assign = |members: &[JoinedMember]| -> Vec<(String, Bytes)> {
            let wanted: Vec<(String, Vec<String>)> = members
                .iter()
                .map(|m| (m.member_id.clone(), decode_subscription(&m.metadata).map(|s| s.topics).unwrap_or_default()))
                .collect();
            range_assign(&wanted, &partitions)
                .into_iter()
                .map(|(member, parts)| {
                    let a = Assignment { version: 0, partitions: parts, user_data: None };
                    (member, encode_assignment(&a).unwrap_or_default())
                })
                .collect()
        };
        let joined = match self.client().await {
            Ok(client) => membership.join(client, assign).await,
            Err(e) => Err(ClientError::Refused(e.message)),
        };
        self.mode = Mode::Subscribed { topics: subscription.topics.clone(), pattern, membership: Some(membership) };
        let joined = joined.map_err(|e| self.failed(e))?;
        let assignment = decode_assignment(&joined.assignment)
            .map_err(|e| RestError::status(500, format!("the group leader's assignment cannot be read: {e}")))?;
        self.assigned = assignment
            .partitions
            .iter()
            .flat_map(|tp| tp.partitions.iter().map(|p| TopicPartition::new(&tp.topic, *p)))
            .collect();
        // Another member may have consumed these since: start from what the group committed.
        self.positions.clear();
        self.rejoin = false;
        Ok(())
    }

    /// Positions for assigned partitions that have none: committed, else by auto.offset.reset.
    async fn init_positions(&mut self) -> Result<(), RestError> {
        let missing: Vec<TopicPartition> =
            self.assigned.iter().filter(|tp| !self.positions.contains_key(tp)).cloned().collect();
        if missing.is_empty() {
            return Ok(());
        }
        let group = self.group.clone();
        let committed = match self.client().await?.committed_offsets(&group, Some(&missing)).await {
            Ok(c) => c,
            Err(e) => return Err(self.failed(e)),
        };
        let mut reset = Vec::new();
        for tp in missing {
            match committed.get(&tp) {
                Some(c) if c.offset >= 0 => {
                    self.positions.insert(tp, c.offset);
                }
                _ => reset.push(tp),
            }
        }
        if !reset.is_empty() {
            let spec = if self.settings.from_earliest { OffsetSpec::Earliest } else { OffsetSpec::Latest };
            let offsets = self.look_up(&reset, spec).await?;
            self.positions.extend(offsets);
        }
        Ok(())
    }

    /// Records from the positions on: waits up to `timeout` for the first,
    /// returns about `max_bytes` at most.
    pub async fn poll(
        &mut self,
        timeout: Duration,
        max_bytes: usize,
    ) -> Result<Vec<(TopicPartition, FetchedRecord)>, RestError> {
        let deadline = Instant::now() + timeout;
        self.ensure_joined().await?;
        self.init_positions().await?;
        let mut out = Vec::new();
        let mut bytes = 0usize;
        loop {
            for tp in self.assigned.clone() {
                if bytes >= max_bytes {
                    break;
                }
                let Some(&position) = self.positions.get(&tp) else { continue };
                let limit = i32::try_from(max_bytes - bytes).unwrap_or(i32::MAX).max(1024);
                let fetched = match self.client().await?.fetch(&tp, position, Duration::ZERO, limit).await {
                    Ok(f) => f,
                    Err(e) if e.kafka().is_some_and(|k| k.code == 1) => {
                        // OFFSET_OUT_OF_RANGE: start over by auto.offset.reset.
                        self.positions.remove(&tp);
                        self.init_positions().await?;
                        continue;
                    }
                    Err(e) => return Err(self.failed(e)),
                };
                let mut next = fetched.next_offset.max(position);
                for r in fetched.records {
                    if bytes >= max_bytes && !out.is_empty() {
                        next = r.offset;
                        break;
                    }
                    bytes += r.key.as_ref().map_or(0, Bytes::len) + r.value.as_ref().map_or(0, Bytes::len);
                    next = r.offset + 1;
                    out.push((tp.clone(), r));
                }
                self.positions.insert(tp, next);
            }
            if !out.is_empty() || Instant::now() >= deadline || self.rejoin {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50).min(deadline.saturating_duration_since(Instant::now()))).await;
        }
        if self.settings.auto_commit && self.last_commit.elapsed() >= AUTO_COMMIT_INTERVAL {
            let _ = self.commit(None).await;
        }
        Ok(out)
    }

    /// Commits `offsets` (offsets of last processed records), or every position when `None`.
    pub async fn commit(
        &mut self,
        offsets: Option<Vec<(TopicPartition, i64)>>,
    ) -> Result<Vec<(TopicPartition, i64)>, RestError> {
        let to_commit: BTreeMap<TopicPartition, i64> = match offsets {
            Some(list) => list.into_iter().map(|(tp, o)| (tp, o + 1)).collect(),
            None => self.positions.clone(),
        };
        let (generation, member) = match &self.mode {
            Mode::Subscribed { membership: Some(m), .. } => (m.generation(), m.member_id().to_string()),
            _ => (-1, String::new()),
        };
        let group = self.group.clone();
        let result = self.client().await?.commit_offsets(&group, generation, &member, &to_commit).await;
        if let Err(e) = result {
            if e.kafka().is_some_and(|k| matches!(k.code, 22 | 25 | 27)) {
                // ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, REBALANCE_IN_PROGRESS: rejoin.
                self.rejoin = true;
            }
            return Err(self.failed(e));
        }
        self.last_commit = Instant::now();
        Ok(to_commit.into_iter().collect())
    }

    /// The group's committed offsets for `partitions`.
    pub async fn committed(
        &mut self,
        partitions: Vec<TopicPartition>,
    ) -> Result<Vec<(TopicPartition, i64, String)>, RestError> {
        let group = self.group.clone();
        let found = match self.client().await?.committed_offsets(&group, Some(&partitions)).await {
            Ok(f) => f,
            Err(e) => return Err(self.failed(e)),
        };
        Ok(partitions
            .into_iter()
            .filter_map(|tp| found.get(&tp).map(|c| (tp.clone(), c.offset, c.metadata.clone())))
            .collect())
    }

    /// Keeps the membership alive; on a rebalance, commits (auto-commit) and rejoins.
    pub async fn heartbeat(&mut self) {
        let Mode::Subscribed { membership: Some(m), .. } = &mut self.mode else { return };
        let beat = match self.client.as_mut() {
            Some(client) => m.heartbeat(client).await,
            None => Ok(Heartbeat::Rejoin),
        };
        let due = match beat {
            Ok(Heartbeat::Ok) => false,
            Ok(Heartbeat::Rejoin) => true,
            Err(e) => {
                if e.kafka().is_none() {
                    self.client = None;
                }
                true
            }
        };
        if due {
            if self.settings.auto_commit {
                let _ = self.commit(None).await;
            }
            self.rejoin = true;
            if let Err(e) = self.ensure_joined().await {
                tracing::warn!(group = %self.group, instance = %self.name, error = %e.message, "rejoin failed; trying again on the next poll");
                self.rejoin = true;
            }
        }
    }

    /// Leaves the group, committing first with auto-commit on.
    pub async fn close(&mut self) {
        let _ = self.unsubscribe().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_assignment_matches_kafkas() {
        let members =
            vec![("b".to_string(), vec!["t".to_string()]), ("a".to_string(), vec!["t".to_string(), "u".to_string()])];
        let partitions = BTreeMap::from([("t".to_string(), 5), ("u".to_string(), 2)]);
        let out = range_assign(&members, &partitions);
        let parts = |m: &str, t: &str| -> Vec<i32> {
            out[m].iter().filter(|x| x.topic == t).flat_map(|x| x.partitions.clone()).collect()
        };
        assert_eq!(parts("a", "t"), vec![0, 1, 2]);
        assert_eq!(parts("b", "t"), vec![3, 4]);
        assert_eq!(parts("a", "u"), vec![0, 1]);
        assert!(parts("b", "u").is_empty());
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
