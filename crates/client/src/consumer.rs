//! A consumer: partitions assigned by hand, or by membership in a classic
//! group (protocol type `consumer`, the range assignor, so it shares a group
//! with Java's and librdkafka's consumers); positions, fetching, commits.
//! Used by the REST proxy's v2 consumer instances and by `tributary topic
//! consume`.
//!
//! ```text
//! subscribe ──▶ (next poll) JoinGroup/SyncGroup; the leader assigns ranges ──▶ assigned partitions
//! assign ─────▶ partitions chosen by the caller, no group membership
//! poll ───────▶ heartbeat if due ──▶ join if due ──▶ positions for new partitions:
//!               seek > committed offset (group) > the start offset ──▶ one Fetch per leader
//! heartbeat ──▶ a rebalance: commit (auto-commit), join again; positions re-read from
//!               committed offsets
//! commit ─────▶ OffsetCommit as the member of its generation
//! close ──────▶ commit (auto-commit), LeaveGroup: the others take over at once
//! ```
//!
//! A poll returns at most the records asked for and moves the positions to
//! just after the last record returned, so committed positions never pass
//! a record the caller did not get. The caller drives everything: the
//! consumer has no task of its own, so poll (or [`Consumer::heartbeat`])
//! at least every heartbeat interval to stay in the group.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use tributary_protocol::consumer_protocol::{
    Assignment, Subscription, TopicPartitions, decode_assignment, decode_subscription, encode_assignment,
    encode_subscription,
};

use crate::admin::{OffsetSpec, TopicPartition};
use crate::client::Client;
use crate::connection::ClientConfig;
use crate::error::{ClientError, KafkaError};
use crate::membership::{GroupMembership, Heartbeat, JoinedMember};
use crate::records::FetchedRecord;

/// Where a partition without a committed offset starts (rpk's `--offset` syntax).
///
/// | text | start |
/// |---|---|
/// | `start`, `beginning`, `earliest`, `oldest` | the log start offset |
/// | `end`, `latest`, `newest` | the log end offset: only records produced from now on |
/// | `<N>` | offset N, clamped into the log |
/// | `+<N>` | N records after the log start |
/// | `-<N>` | N records before the log end |
/// | `@<ms>`, `@<RFC 3339>` | the first record at or after that time; the end if none |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartOffset {
    /// The log start offset.
    Earliest,
    /// The log end offset.
    #[default]
    Latest,
    /// This offset.
    Offset(i64),
    /// This many records after the log start.
    AfterStart(i64),
    /// This many records before the log end.
    BeforeEnd(i64),
    /// The first record at or after this time (ms since the epoch).
    Timestamp(i64),
}

impl fmt::Display for StartOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartOffset::Earliest => f.write_str("start"),
            StartOffset::Latest => f.write_str("end"),
            StartOffset::Offset(n) => write!(f, "{n}"),
            StartOffset::AfterStart(n) => write!(f, "+{n}"),
            StartOffset::BeforeEnd(n) => write!(f, "-{n}"),
            StartOffset::Timestamp(ms) => write!(f, "@{ms}"),
        }
    }
}

impl FromStr for StartOffset {
    type Err = String;

    fn from_str(s: &str) -> Result<StartOffset, String> {
        let s = s.trim();
        let bad = || {
            format!(
                "\"{s}\" is not an offset: use start, end, an offset (42), +N (N after the start), -N (N before \
                 the end) or @TIME (@1700000000000 in ms, or @2024-05-01T12:00:00Z)"
            )
        };
        let count = |digits: &str| digits.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(bad);
        match s.to_ascii_lowercase().as_str() {
            "start" | "beginning" | "earliest" | "oldest" => return Ok(StartOffset::Earliest),
            "end" | "latest" | "newest" => return Ok(StartOffset::Latest),
            _ => {}
        }
        if let Some(rest) = s.strip_prefix('@') {
            return crate::seek::parse_timestamp_ms(rest)
                .map(StartOffset::Timestamp)
                .map_err(|e| format!("{}: {e}", bad()));
        }
        if let Some(rest) = s.strip_prefix('+') {
            return count(rest).map(StartOffset::AfterStart);
        }
        if let Some(rest) = s.strip_prefix('-') {
            return count(rest).map(StartOffset::BeforeEnd);
        }
        count(s).map(StartOffset::Offset)
    }
}

/// Which topics a group member subscribes to.
#[derive(Clone)]
pub enum Topics {
    /// These topics.
    Names(Vec<String>),
    /// Every non-internal topic whose name the function accepts (a regex, for the REST proxy).
    Matching(Arc<dyn Fn(&str) -> bool + Send + Sync>),
}

impl fmt::Debug for Topics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Topics::Names(names) => f.debug_tuple("Names").field(names).finish(),
            Topics::Matching(_) => f.write_str("Matching(..)"),
        }
    }
}

/// How the consumer behaves in its group.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// Where partitions without a committed offset (or without a group) start.
    pub start: StartOffset,
    /// Commit positions this often (and before a rebalance and on close); `None` = only when asked.
    pub auto_commit: Option<Duration>,
    /// How long the coordinator waits for a heartbeat before dropping the member.
    pub session_timeout: Duration,
    /// How long a rebalance waits for members to rejoin.
    pub rebalance_timeout: Duration,
    /// How often to heartbeat (Kafka's clients: 3 s).
    pub heartbeat_interval: Duration,
}

impl Default for ConsumerConfig {
    fn default() -> ConsumerConfig {
        ConsumerConfig {
            start: StartOffset::Latest,
            auto_commit: Some(Duration::from_secs(5)),
            session_timeout: Duration::from_secs(45),
            rebalance_timeout: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(3),
        }
    }
}

/// Limits on one poll.
#[derive(Debug, Clone, Copy)]
pub struct PollLimits {
    /// About this many key and value bytes at most (at least one record).
    pub max_bytes: usize,
    /// At most this many records.
    pub max_records: usize,
}

impl Default for PollLimits {
    fn default() -> PollLimits {
        PollLimits { max_bytes: 50 * 1024 * 1024, max_records: usize::MAX }
    }
}

#[derive(Debug)]
enum Mode {
    Idle,
    Subscribed { topics: Topics, joined_topics: Vec<String>, membership: Option<GroupMembership> },
    Assigned,
}

/// A consumer of one group (or of none, with partitions assigned by hand).
#[derive(Debug)]
pub struct Consumer {
    group: Option<String>,
    config: ConsumerConfig,
    client_config: ClientConfig,
    client: Option<Client>,
    mode: Mode,
    /// A rebalance is due: join again before the next fetch.
    rejoin: bool,
    assigned: Vec<TopicPartition>,
    positions: BTreeMap<TopicPartition, i64>,
    /// Each partition's high watermark from its latest fetch.
    high_watermarks: BTreeMap<TopicPartition, i64>,
    last_commit: Instant,
    last_heartbeat: Instant,
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

/// Codes after which a commit means this member must join again:
/// ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, REBALANCE_IN_PROGRESS.
fn must_rejoin(e: &ClientError) -> bool {
    e.kafka().is_some_and(|k| matches!(k.code, 22 | 25 | 27))
}

impl Consumer {
    /// A consumer of `group` (`None`: partitions are assigned by hand and
    /// nothing is committed unless asked). It connects on first use.
    pub fn new(client_config: ClientConfig, group: Option<&str>, config: ConsumerConfig) -> Consumer {
        Consumer {
            group: group.map(str::to_string),
            config,
            client_config,
            client: None,
            mode: Mode::Idle,
            rejoin: false,
            assigned: Vec::new(),
            positions: BTreeMap::new(),
            high_watermarks: BTreeMap::new(),
            last_commit: Instant::now(),
            last_heartbeat: Instant::now(),
        }
    }

    /// The group, if any.
    pub fn group(&self) -> Option<&str> {
        self.group.as_deref()
    }

    /// The connected client (connecting if needed).
    pub async fn client(&mut self) -> Result<&mut Client, ClientError> {
        if self.client.is_none() {
            self.client = Some(Client::connect(self.client_config.clone()).await?);
        }
        self.client.as_mut().ok_or_else(|| ClientError::Refused("no connection to the Kafka cluster".to_string()))
    }

    /// Passes `result` on; a failure that is not a Kafka error drops the
    /// connection, so the next call starts afresh.
    fn checked<T>(&mut self, result: Result<T, ClientError>) -> Result<T, ClientError> {
        if result.as_ref().is_err_and(|e| e.kafka().is_none()) {
            self.client = None;
        }
        result
    }

    /// Subscribes to `topics` as a member of the group; the group is joined on the next poll.
    pub async fn subscribe(&mut self, topics: Topics) -> Result<(), ClientError> {
        if self.group.is_none() {
            return Err(ClientError::Refused("subscribing needs a group id".to_string()));
        }
        if matches!(self.mode, Mode::Subscribed { .. }) {
            self.unsubscribe().await;
        }
        self.mode = Mode::Subscribed { topics, joined_topics: Vec::new(), membership: None };
        self.assigned.clear();
        self.positions.clear();
        self.rejoin = true;
        Ok(())
    }

    /// Whether this consumer is subscribed (a group member) rather than assigned.
    pub fn is_subscribed(&self) -> bool {
        matches!(self.mode, Mode::Subscribed { .. })
    }

    /// Whether partitions were assigned by hand.
    pub fn is_assigned(&self) -> bool {
        matches!(self.mode, Mode::Assigned)
    }

    /// The subscribed topics (for a pattern, those it matched at the last join).
    pub fn subscription(&self) -> Vec<String> {
        match &self.mode {
            Mode::Subscribed { topics: Topics::Names(names), .. } => names.clone(),
            Mode::Subscribed { joined_topics, .. } => joined_topics.clone(),
            _ => Vec::new(),
        }
    }

    /// Leaves the group (committing first with auto-commit) and forgets the subscription.
    pub async fn unsubscribe(&mut self) {
        if let Mode::Subscribed { membership: Some(_), .. } = &self.mode {
            if self.config.auto_commit.is_some() {
                let _ = self.commit(None).await;
            }
            self.leave().await;
        }
        if matches!(self.mode, Mode::Subscribed { .. }) {
            self.mode = Mode::Idle;
            self.assigned.clear();
            self.positions.clear();
        }
    }

    async fn leave(&mut self) {
        let membership = match &mut self.mode {
            Mode::Subscribed { membership, .. } => membership.take(),
            _ => None,
        };
        let Some(mut m) = membership else { return };
        if let Ok(client) = self.client().await {
            let _ = m.leave(client).await;
        }
    }

    /// Assigns partitions by hand (no group membership); positions of
    /// partitions kept are kept.
    pub fn assign(&mut self, partitions: Vec<TopicPartition>) {
        self.positions.retain(|tp, _| partitions.contains(tp));
        self.assigned = partitions;
        self.mode = Mode::Assigned;
    }

    /// The partitions assigned now.
    pub fn assignment(&self) -> &[TopicPartition] {
        &self.assigned
    }

    /// The position (next offset to read) of each partition that has one.
    pub fn positions(&self) -> &BTreeMap<TopicPartition, i64> {
        &self.positions
    }

    /// Moves positions of partitions to offsets (the caller checks they are assigned).
    pub fn seek(&mut self, offsets: impl IntoIterator<Item = (TopicPartition, i64)>) {
        self.positions.extend(offsets);
    }

    /// Moves positions of `partitions` to `start` (their beginning, end, a time, ...).
    pub async fn seek_to(&mut self, partitions: &[TopicPartition], start: StartOffset) -> Result<(), ClientError> {
        let offsets = self.resolve(partitions, start).await?;
        self.positions.extend(offsets);
        Ok(())
    }

    /// The offsets `start` means for `partitions`, clamped into each log.
    pub async fn resolve(
        &mut self,
        partitions: &[TopicPartition],
        start: StartOffset,
    ) -> Result<Vec<(TopicPartition, i64)>, ClientError> {
        if partitions.is_empty() {
            return Ok(Vec::new());
        }
        let need_earliest = !matches!(start, StartOffset::Latest);
        let earliest =
            if need_earliest { Some(self.list_offsets(partitions, OffsetSpec::Earliest).await?) } else { None };
        let latest = self.list_offsets(partitions, OffsetSpec::Latest).await?;
        let by_time = match start {
            StartOffset::Timestamp(ms) => Some(self.list_offsets(partitions, OffsetSpec::Timestamp(ms)).await?),
            _ => None,
        };
        let mut out = Vec::new();
        for tp in partitions {
            let end = latest.get(tp).copied().unwrap_or(0);
            let begin = earliest.as_ref().and_then(|e| e.get(tp)).copied().unwrap_or(0);
            let offset = match start {
                StartOffset::Earliest => begin,
                StartOffset::Latest => end,
                StartOffset::Offset(n) => n.clamp(begin, end.max(begin)),
                StartOffset::AfterStart(n) => begin.saturating_add(n).min(end.max(begin)),
                StartOffset::BeforeEnd(n) => end.saturating_sub(n).max(begin),
                StartOffset::Timestamp(_) => {
                    let found = by_time.as_ref().and_then(|t| t.get(tp)).copied().unwrap_or(-1);
                    if found < 0 { end } else { found.clamp(begin, end.max(begin)) }
                }
            };
            out.push((tp.clone(), offset));
        }
        Ok(out)
    }

    async fn list_offsets(
        &mut self,
        partitions: &[TopicPartition],
        spec: OffsetSpec,
    ) -> Result<BTreeMap<TopicPartition, i64>, ClientError> {
        let result = self.client().await?.list_offsets(partitions, spec).await;
        let found = self.checked(result)?;
        let mut out = BTreeMap::new();
        for (tp, r) in found {
            out.insert(tp, r.map_err(ClientError::Kafka)?.offset);
        }
        Ok(out)
    }

    /// Joins (or rejoins) the group when subscribed and a join is due.
    async fn ensure_joined(&mut self) -> Result<(), ClientError> {
        if !self.rejoin {
            return Ok(());
        }
        let (Mode::Subscribed { topics, .. }, Some(group)) = (&self.mode, self.group.clone()) else {
            self.rejoin = false;
            return Ok(());
        };
        let topics = topics.clone();
        let result = self.client().await?.metadata(None).await;
        let metadata = self.checked(result)?;
        let partitions: BTreeMap<String, i32> =
            metadata.topics.iter().map(|(name, t)| (name.clone(), t.partitions.len() as i32)).collect();
        let mine: Vec<String> = match &topics {
            Topics::Names(names) => names.clone(),
            Topics::Matching(accepts) => metadata
                .topics
                .iter()
                .filter(|(name, t)| !t.is_internal && accepts(name))
                .map(|(name, _)| name.clone())
                .collect(),
        };
        let subscription = Subscription { version: 0, topics: mine, ..Subscription::default() };
        let metadata_bytes = encode_subscription(&subscription)
            .map_err(|e| ClientError::Refused(format!("cannot encode the subscription: {e}")))?;
        let mut membership = match std::mem::replace(&mut self.mode, Mode::Idle) {
            Mode::Subscribed { membership: Some(m), .. } => m,
            _ => GroupMembership::new(
                &group,
                "consumer",
                Vec::new(),
                self.config.session_timeout,
                self.config.rebalance_timeout,
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
            Err(e) => Err(e),
        };
        self.mode =
            Mode::Subscribed { topics, joined_topics: subscription.topics.clone(), membership: Some(membership) };
        let joined = self.checked(joined)?;
        self.last_heartbeat = Instant::now();
        let assignment = decode_assignment(&joined.assignment)
            .map_err(|e| ClientError::Refused(format!("the group leader's assignment cannot be read: {e}")))?;
        self.assigned = assignment
            .partitions
            .iter()
            .flat_map(|tp| tp.partitions.iter().map(|p| TopicPartition::new(&tp.topic, *p)))
            .collect();
        // Another member may have consumed these since: start from what the group committed.
        self.positions.clear();
        self.high_watermarks.clear();
        self.rejoin = false;
        Ok(())
    }

    /// Positions for assigned partitions that have none: committed (in a
    /// group), else the configured start.
    async fn init_positions(&mut self) -> Result<(), ClientError> {
        let missing: Vec<TopicPartition> =
            self.assigned.iter().filter(|tp| !self.positions.contains_key(tp)).cloned().collect();
        if missing.is_empty() {
            return Ok(());
        }
        let mut reset = Vec::new();
        if let Some(group) = self.group.clone() {
            let result = self.client().await?.committed_offsets(&group, Some(&missing)).await;
            let committed = self.checked(result)?;
            for tp in missing {
                match committed.get(&tp) {
                    Some(c) if c.offset >= 0 => {
                        self.positions.insert(tp, c.offset);
                    }
                    _ => reset.push(tp),
                }
            }
        } else {
            reset = missing;
        }
        let start = self.config.start;
        self.seek_to(&reset, start).await
    }

    /// Records from the positions on: waits up to `max_wait` for the first,
    /// returns at most `limits`. Heartbeats and joins first when due.
    pub async fn poll(
        &mut self,
        max_wait: Duration,
        limits: PollLimits,
    ) -> Result<Vec<(TopicPartition, FetchedRecord)>, ClientError> {
        self.heartbeat_if_due().await?;
        self.ensure_joined().await?;
        self.init_positions().await?;
        let mut out = Vec::new();
        let wanted: Vec<(TopicPartition, i64)> =
            self.assigned.iter().filter_map(|tp| Some((tp.clone(), *self.positions.get(tp)?))).collect();
        if wanted.is_empty() {
            tokio::time::sleep(max_wait.min(Duration::from_millis(500))).await;
            return Ok(out);
        }
        let partition_max = i32::try_from(limits.max_bytes.min(8 * 1024 * 1024)).unwrap_or(i32::MAX).max(1024);
        let result = self.client().await?.fetch_many(&wanted, max_wait, partition_max).await;
        let fetched = self.checked(result)?;
        let mut bytes = 0usize;
        let mut reset = Vec::new();
        for (tp, answer) in fetched {
            let position = self.positions.get(&tp).copied().unwrap_or(0);
            let fetched = match answer {
                Ok(f) => f,
                // OFFSET_OUT_OF_RANGE: start over from the configured start.
                Err(e) if e.code == 1 => {
                    reset.push(tp);
                    continue;
                }
                Err(e) if e.is_retriable() || e.code == 3 => continue,
                Err(e) => return Err(e.into()),
            };
            self.high_watermarks.insert(tp.clone(), fetched.high_watermark);
            let mut next = fetched.next_offset.max(position);
            for r in fetched.records {
                if out.len() >= limits.max_records || (bytes >= limits.max_bytes && !out.is_empty()) {
                    next = r.offset;
                    break;
                }
                bytes += r.key.as_ref().map_or(0, Bytes::len) + r.value.as_ref().map_or(0, Bytes::len);
                next = r.offset + 1;
                out.push((tp.clone(), r));
            }
            self.positions.insert(tp, next);
        }
        if !reset.is_empty() {
            for tp in &reset {
                self.positions.remove(tp);
            }
            self.init_positions().await?;
        }
        if let Some(every) = self.config.auto_commit
            && self.last_commit.elapsed() >= every
        {
            let _ = self.commit(None).await;
        }
        Ok(out)
    }

    /// Whether every assigned partition has been read to the high watermark
    /// its latest fetch reported (false before the first fetch of each).
    pub fn at_end(&self) -> bool {
        !self.rejoin
            && self.assigned.iter().all(|tp| match (self.positions.get(tp), self.high_watermarks.get(tp)) {
                (Some(p), Some(hw)) => p >= hw,
                _ => false,
            })
    }

    /// Records left to read in assigned partitions, by their latest fetches.
    pub fn lag(&self) -> i64 {
        self.assigned
            .iter()
            .filter_map(|tp| Some((self.high_watermarks.get(tp)? - self.positions.get(tp)?).max(0)))
            .sum()
    }

    /// Commits `offsets` (offsets of the last records processed; the group
    /// resumes after them), or every position when `None`. Returns what was
    /// committed (as positions, offset + 1).
    pub async fn commit(
        &mut self,
        offsets: Option<Vec<(TopicPartition, i64)>>,
    ) -> Result<Vec<(TopicPartition, i64)>, ClientError> {
        let Some(group) = self.group.clone() else {
            return Err(ClientError::Refused("committing offsets needs a group id".to_string()));
        };
        let to_commit: BTreeMap<TopicPartition, i64> = match offsets {
            Some(list) => list.into_iter().map(|(tp, o)| (tp, o + 1)).collect(),
            None => self.positions.clone(),
        };
        let (generation, member) = match &self.mode {
            Mode::Subscribed { membership: Some(m), .. } => (m.generation(), m.member_id().to_string()),
            _ => (-1, String::new()),
        };
        let result = self.client().await?.commit_offsets(&group, generation, &member, &to_commit).await;
        if let Err(e) = &result
            && must_rejoin(e)
        {
            self.rejoin = true;
        }
        self.checked(result)?;
        self.last_commit = Instant::now();
        Ok(to_commit.into_iter().collect())
    }

    /// The group's committed offsets for `partitions`, with their metadata.
    pub async fn committed(
        &mut self,
        partitions: &[TopicPartition],
    ) -> Result<Vec<(TopicPartition, i64, String)>, ClientError> {
        let Some(group) = self.group.clone() else {
            return Err(ClientError::Refused("committed offsets need a group id".to_string()));
        };
        let result = self.client().await?.committed_offsets(&group, Some(partitions)).await;
        let found = self.checked(result)?;
        Ok(partitions
            .iter()
            .filter_map(|tp| found.get(tp).map(|c| (tp.clone(), c.offset, c.metadata.clone())))
            .collect())
    }

    /// Heartbeats when the interval has passed (see [`Consumer::heartbeat`]).
    pub async fn heartbeat_if_due(&mut self) -> Result<(), ClientError> {
        if self.last_heartbeat.elapsed() >= self.config.heartbeat_interval {
            self.heartbeat().await?;
        }
        Ok(())
    }

    /// Keeps the membership alive; on a rebalance, commits (auto-commit) and
    /// joins again. A failed rejoin is returned and tried again on the next poll.
    pub async fn heartbeat(&mut self) -> Result<(), ClientError> {
        self.last_heartbeat = Instant::now();
        let beat = match &mut self.mode {
            Mode::Subscribed { membership: Some(m), .. } => match self.client.as_mut() {
                Some(client) => m.heartbeat(client).await,
                None => Ok(Heartbeat::Rejoin),
            },
            _ => return Ok(()),
        };
        let due = match self.checked(beat) {
            Ok(Heartbeat::Ok) => false,
            Ok(Heartbeat::Rejoin) => true,
            Err(e) if e.kafka().is_some_and(KafkaError::is_retriable) || e.kafka().is_none() => true,
            Err(e) => return Err(e),
        };
        if due {
            if self.config.auto_commit.is_some() {
                let _ = self.commit(None).await;
            }
            self.rejoin = true;
            self.ensure_joined().await?;
        }
        Ok(())
    }

    /// Commits (with auto-commit) and leaves the group, so the other members
    /// take over its partitions at once.
    pub async fn close(&mut self) {
        self.unsubscribe().await;
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

    #[test]
    fn start_offsets_in_rpk_syntax() {
        let ok = |s: &str| s.parse::<StartOffset>().expect(s);
        assert_eq!(ok("start"), StartOffset::Earliest);
        assert_eq!(ok("beginning"), StartOffset::Earliest);
        assert_eq!(ok("END"), StartOffset::Latest);
        assert_eq!(ok("42"), StartOffset::Offset(42));
        assert_eq!(ok("+5"), StartOffset::AfterStart(5));
        assert_eq!(ok("-3"), StartOffset::BeforeEnd(3));
        assert_eq!(ok("@1700000000000"), StartOffset::Timestamp(1_700_000_000_000));
        assert_eq!(ok("@2024-05-01T12:00:00Z"), StartOffset::Timestamp(1_714_564_800_000));
        for bad in ["", "soon", "+", "-x", "@yesterday", "1.5", "+-1"] {
            assert!(bad.parse::<StartOffset>().is_err(), "{bad}");
        }
        for s in ["start", "end", "42", "+5", "-3", "@17"] {
            assert_eq!(ok(s).to_string(), s);
        }
    }
}
