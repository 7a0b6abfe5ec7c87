//! Broker-side schema validation: a topic with
//! `confluent.value.schema.validation=true` (or `confluent.key.…`) accepts a
//! batch only if every non-null value (key) is in the Schema Registry wire
//! format — magic byte 0, then a 4-byte big-endian schema id — and that id is
//! registered, not deleted, under the subject the topic's
//! `confluent.{key,value}.subject.name.strategy` names. Otherwise the whole
//! batch is rejected with INVALID_RECORD, each bad record listed in
//! `record_errors`.
//!
//! ```text
//! registry ──produce──▶ storage topic (_schemas, tributary.schema.registry.topic)
//!                          │ high watermark moves (or a 1 s tick)
//!                          ▼
//!                     tail_loop ──spawn_blocking──▶ catch_up: read ≤ 4 MiB of batches from the
//!                          local log, parse records (index::parse_record), apply under the write lock
//!                          ▼
//!                     SchemaIndex: subject → live ids; id → record name
//!                          ▲ read lock, one per batch
//! Produce ──▶ validate_batch ──▶ check (only if the topic validates) ──▶ append
//!                 index behind the storage topic's high watermark? catch up ≤ 1 MiB
//!                 right there first, so a registration or deletion the registry had
//!                 acknowledged is seen
//!                 an id still not found ⇒ settle (at most UNKNOWN_ID_WAIT, off the
//!                 runtime's workers): read the storage topic to its end, and wait for
//!                 records already appended to it but not yet durable, then look again
//!                 still not found ⇒ INVALID_RECORD; the storage topic could not be
//!                 read to its end in time ⇒ REQUEST_TIMED_OUT (retriable)
//! ```
//!
//! The broker reads the registry's storage topic from its own log, so it
//! needs no HTTP client and no registry address; a registry elsewhere
//! (writing to this cluster) works the same. A broker of a cluster that
//! holds no replica of the storage topic follows it from its leader over
//! the network instead (`remote.rs`). Tailing starts once some topic
//! turns validation on. A topic without validation pays one branch on two
//! config fields per batch.

pub mod check;
pub mod index;
pub mod names;
mod remote;

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tributary_config::TopicConfig;
use tributary_protocol::ErrorCode;
use tributary_types::TopicId;

use crate::cluster::{Cluster, Registry};
use crate::error::{ApiError, RecordErrors};
use crate::partition::Progress;
use check::{ProblemKind, Rejection, Rules, check_batch};
use index::SchemaIndex;

/// Bytes of the storage topic one background step reads.
const STEP_BYTES: usize = 4 << 20;
/// Bytes of the storage topic a produce request reads itself, before its
/// check, when the index is behind (on the network runtime, so kept small).
const PRODUCE_CATCH_UP_BYTES: usize = 1 << 20;
/// How long a produce naming an id the index does not hold may spend reading
/// the storage topic to its end (and waiting for writes to it that are not
/// durable yet) before it is answered; past it the client is told to retry.
const UNKNOWN_ID_WAIT: Duration = Duration::from_secs(5);
/// Longest pause between two looks at the storage topic's high watermark
/// while waiting for a write to it to become durable.
const DURABLE_POLL_MAX: Duration = Duration::from_millis(10);
/// How often the tailer looks for the storage topic and for topics that
/// turned validation on, besides waking on the storage topic's progress.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Default)]
struct Cursor {
    /// The storage topic instance being read (a recreated topic starts over).
    topic_id: Option<TopicId>,
    /// Next offset to read.
    next_offset: i64,
}

/// The schema index, where it stands in the storage topic, and counters.
#[derive(Debug)]
pub struct SchemaValidation {
    storage_topic: String,
    index: RwLock<SchemaIndex>,
    cursor: Mutex<Cursor>,
    /// The cursor's next offset, readable without its lock.
    applied: AtomicI64,
    active: AtomicBool,
    /// This broker belongs to a cluster (another broker may hold the storage topic).
    clustered: AtomicBool,
    /// The storage topic is followed over the network (no replica here).
    remote: AtomicBool,
    follow: remote::FollowProgress,
    rejected_batches: AtomicU64,
    rejected_records: AtomicU64,
    skipped_records: AtomicU64,
}

/// Where a catch-up left the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatchUp {
    /// Next offset of the storage topic to read.
    pub next_offset: i64,
    /// The storage topic's high watermark when the step ended.
    pub high_watermark: i64,
}

impl CatchUp {
    /// Whether records below the high watermark remain unread.
    pub fn behind(&self) -> bool {
        self.next_offset < self.high_watermark
    }
}

/// Where [`SchemaValidation::settle`] left the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// Everything the storage topic held when the settling began is applied.
    Complete,
    /// Time ran out first: the index stands at `next_offset`, the storage
    /// topic's records reach `end` (some of them perhaps not durable yet).
    Behind {
        /// Next offset of the storage topic to apply.
        next_offset: i64,
        /// The offset the index had to reach.
        end: i64,
    },
    /// The storage topic could not be read.
    Unreadable(String),
}

impl SchemaValidation {
    /// Validation reading `storage_topic`; idle until a topic turns it on.
    pub fn new(storage_topic: String) -> SchemaValidation {
        SchemaValidation {
            storage_topic,
            index: RwLock::new(SchemaIndex::default()),
            cursor: Mutex::new(Cursor::default()),
            applied: AtomicI64::new(0),
            active: AtomicBool::new(false),
            clustered: AtomicBool::new(false),
            remote: AtomicBool::new(false),
            follow: remote::FollowProgress::default(),
            rejected_batches: AtomicU64::new(0),
            rejected_records: AtomicU64::new(0),
            skipped_records: AtomicU64::new(0),
        }
    }

    /// The registry's storage topic.
    pub fn storage_topic(&self) -> &str {
        &self.storage_topic
    }

    /// Batches rejected so far.
    pub fn rejected_batches(&self) -> u64 {
        self.rejected_batches.load(Ordering::Relaxed)
    }

    /// Records rejected so far.
    pub fn rejected_records(&self) -> u64 {
        self.rejected_records.load(Ordering::Relaxed)
    }

    /// Subject versions in the index (live and soft-deleted).
    pub fn indexed_versions(&self) -> usize {
        self.read_index().version_count()
    }

    /// Storage-topic records that could not be read and were skipped.
    pub fn skipped_records(&self) -> u64 {
        self.skipped_records.load(Ordering::Relaxed)
    }

    fn read_index(&self) -> std::sync::RwLockReadGuard<'_, SchemaIndex> {
        self.recover_if_poisoned();
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Half-changes the index and panics while holding its lock, on a thread
    /// of its own, as a bug in applying a record would: every registered
    /// version is forgotten, then the panic. For fault-injection tests.
    #[doc(hidden)]
    pub fn inject_panic_under_lock(&self) {
        std::thread::scope(|scope| {
            let _ = scope
                .spawn(|| {
                    let mut index = self.index.write().unwrap_or_else(|p| p.into_inner());
                    *index = SchemaIndex::default();
                    panic!("injected: a bug while the schema index is locked");
                })
                .join();
        });
    }

    /// A panic while the index or its cursor was locked may have left them
    /// half-applied: they are never served as is. Both start over from the
    /// beginning of the storage topic; until the index has caught up again,
    /// an id it does not know makes a produce read the topic to its end
    /// before refusing (see [`SchemaValidation::check`]).
    fn recover_if_poisoned(&self) {
        if !self.index.is_poisoned() && !self.cursor.is_poisoned() {
            return;
        }
        let mut cursor = self.cursor.lock().unwrap_or_else(|p| p.into_inner());
        let mut index = self.index.write().unwrap_or_else(|p| p.into_inner());
        *index = SchemaIndex::default();
        *cursor = Cursor { topic_id: None, next_offset: 0 };
        self.applied.store(0, Ordering::Release);
        self.index.clear_poison();
        self.cursor.clear_poison();
        tracing::error!(topic = %self.storage_topic, "a panic left the schema index possibly inconsistent; rebuilding it from the start");
    }

    /// Reads the storage topic from where the index stands towards its high
    /// watermark, about `budget_bytes` of batches, and applies the records.
    pub fn catch_up(&self, registry: &Registry, budget_bytes: usize) -> Result<CatchUp, String> {
        self.recover_if_poisoned();
        let mut cursor = self.cursor.lock().unwrap_or_else(|p| p.into_inner());
        let topic = registry.topics.get(&self.storage_topic);
        let topic_id = topic.map(|t| t.topic_id);
        if cursor.topic_id != topic_id {
            // Created, deleted or recreated: what the index holds is no longer true.
            if cursor.topic_id.is_some() {
                tracing::info!(topic = %self.storage_topic, "schema storage topic changed; rebuilding the schema index");
            }
            *self.index.write().unwrap_or_else(|p| p.into_inner()) = SchemaIndex::default();
            *cursor = Cursor { topic_id, next_offset: 0 };
            self.applied.store(0, Ordering::Release);
        }
        let Some(partition) = topic.and_then(|t| t.partition(0)) else {
            return Ok(CatchUp { next_offset: 0, high_watermark: 0 });
        };
        let high_watermark = partition.high_watermark();
        let mut changes = Vec::new();
        let mut skipped = 0u64;
        let next_offset = crate::internal::read_records(
            partition,
            cursor.next_offset,
            high_watermark,
            budget_bytes,
            |offset, key, value| match index::parse_record(key, value) {
                Ok(Some(change)) => changes.push(change),
                Ok(None) => {}
                Err(e) => {
                    skipped += 1;
                    tracing::debug!(topic = %self.storage_topic, offset, error = %e, "skipping an unreadable schema record");
                }
            },
        )?;
        if !changes.is_empty() {
            let mut index = self.index.write().unwrap_or_else(|p| p.into_inner());
            let mut full = None;
            for change in changes {
                if let Err(e) = index.apply(change) {
                    skipped += 1;
                    full = Some(e);
                }
            }
            if let Some(e) = full {
                tracing::warn!(topic = %self.storage_topic, error = %e, "schema index is full");
            }
        }
        if skipped > 0 {
            self.skipped_records.fetch_add(skipped, Ordering::Relaxed);
            tracing::warn!(
                topic = %self.storage_topic,
                skipped,
                from = cursor.next_offset,
                to = next_offset,
                "skipped schema records that could not be read (RUST_LOG=debug shows each)"
            );
        }
        cursor.next_offset = next_offset;
        self.applied.store(next_offset, Ordering::Release);
        Ok(CatchUp { next_offset, high_watermark })
    }

    /// Checks a produced batch (already through `validate_batch`) against the
    /// topic's validation settings. Call only when the topic validates keys
    /// or values.
    pub fn check(
        &self,
        registry: &Registry,
        topic: &str,
        config: &TopicConfig,
        batch: &[u8],
        produce_version: i16,
        decompressed_bytes_max: usize,
    ) -> Result<(), (ApiError, RecordErrors)> {
        self.active.store(true, Ordering::Relaxed);
        let remote = self.clustered.load(Ordering::Acquire) && !self.hosted(registry);
        // Read your writes: what the registry had acknowledged (a registration,
        // a deletion) before this produce arrived is applied before it is checked.
        if !remote
            && self.lagging(registry)
            && let Err(e) = self.catch_up(registry, PRODUCE_CATCH_UP_BYTES)
        {
            tracing::warn!(topic = %self.storage_topic, error = %e, "cannot read the schema storage topic");
        }
        let rules = Rules { topic, key: config.key_schema_validation, value: config.value_schema_validation };
        let run = || check_batch(batch, &rules, &self.read_index(), decompressed_bytes_max);
        let mut outcome = run();
        if let Err(Ok(rejection)) = &outcome
            && rejection.problems.iter().any(|p| matches!(p.kind, ProblemKind::NotRegistered { .. }))
        {
            // The registry may have written the id a moment ago, and the write
            // may not even be durable yet: read the storage topic to its end,
            // then look again. Only a complete index may call an id unknown.
            let deadline = Instant::now() + UNKNOWN_ID_WAIT;
            let settled = crate::cpu::off_workers(|| {
                if remote { self.settle_remote(deadline) } else { self.settle(registry, deadline) }
            });
            outcome = run();
            if let Err(Ok(_)) = &outcome {
                let retry = match settled {
                    Settled::Complete => None,
                    Settled::Behind { next_offset, end } => Some(format!(
                        "schema validation is still reading {} (offset {next_offset} of {end}); retry shortly",
                        self.storage_topic
                    )),
                    Settled::Unreadable(e) => {
                        tracing::warn!(topic = %self.storage_topic, error = %e, "cannot read the schema storage topic");
                        Some(format!(
                            "schema validation cannot read {} to check the schema id ({e}); retry shortly",
                            self.storage_topic
                        ))
                    }
                };
                if let Some(message) = retry {
                    return Err((ApiError::new(ErrorCode::RequestTimedOut, message), Vec::new()));
                }
            }
        }
        // INVALID_RECORD and per-record errors arrived with Produce v8.
        let code = if produce_version >= 8 { ErrorCode::InvalidRecord } else { ErrorCode::CorruptMessage };
        match outcome {
            Ok(()) => Ok(()),
            Err(Err(e)) => Err((ApiError::new(code, e.to_string()), Vec::new())),
            Err(Ok(rejection)) => {
                let message = self.rejection_message(topic, &rejection);
                self.rejected_batches.fetch_add(1, Ordering::Relaxed);
                self.rejected_records.fetch_add(rejection.rejected as u64, Ordering::Relaxed);
                tracing::debug!(topic, records = rejection.rejected, %message, "schema validation rejected a batch");
                let records = rejection.problems.into_iter().map(|p| (p.index, p.reason)).collect();
                Err((ApiError::new(code, message), records))
            }
        }
    }

    /// Brings the index up to everything the storage topic holds now: reads
    /// it to its high watermark, and waits for records appended to it but not
    /// yet durable (a writer answered before its write reached disk, or a
    /// write in flight) to become durable and reads those too. Gives up at
    /// `deadline`. Blocks: call it off the runtime's workers.
    pub fn settle(&self, registry: &Registry, deadline: Instant) -> Settled {
        let partition = registry.topics.get(&self.storage_topic).and_then(|t| t.partition(0));
        // Appended records past this point arrived after the produce being checked.
        let end = partition.map_or(0, |p| p.log().log_end_offset());
        let mut pause = Duration::from_millis(1);
        loop {
            let position = match self.catch_up(registry, STEP_BYTES) {
                Ok(p) => p,
                Err(e) => return Settled::Unreadable(e),
            };
            if !position.behind() && position.next_offset >= end {
                return Settled::Complete;
            }
            let Some(partition) = partition else { return Settled::Complete };
            if partition.progress().offline {
                return Settled::Unreadable(format!("{}-0 is offline", self.storage_topic));
            }
            if Instant::now() >= deadline {
                return Settled::Behind { next_offset: position.next_offset, end: end.max(position.high_watermark) };
            }
            if !position.behind() {
                // Read to the high watermark; the rest is on its way to disk.
                std::thread::sleep(pause);
                pause = (pause * 2).min(DURABLE_POLL_MAX);
            }
        }
    }

    /// Whether this node holds a replica of the storage topic.
    fn hosted(&self, registry: &Registry) -> bool {
        registry.topics.get(&self.storage_topic).and_then(|t| t.partition(0)).is_some()
    }

    /// Where the network follower reads next in the storage topic instance
    /// `topic_id` (another instance than the one indexed starts over).
    pub(crate) fn remote_position(&self, topic_id: TopicId) -> i64 {
        self.recover_if_poisoned();
        let mut cursor = self.cursor.lock().unwrap_or_else(|p| p.into_inner());
        if cursor.topic_id != Some(topic_id) {
            *self.index.write().unwrap_or_else(|p| p.into_inner()) = SchemaIndex::default();
            *cursor = Cursor { topic_id: Some(topic_id), next_offset: 0 };
            self.applied.store(0, Ordering::Release);
        }
        cursor.next_offset
    }

    /// Applies records fetched from `from` on (offset, key, value) and moves
    /// the cursor to `next`; ignored if the cursor moved meanwhile.
    pub(crate) fn apply_fetched<'a>(
        &self,
        topic_id: TopicId,
        from: i64,
        records: impl Iterator<Item = (i64, &'a [u8], Option<&'a [u8]>)>,
        next: i64,
    ) {
        let mut cursor = self.cursor.lock().unwrap_or_else(|p| p.into_inner());
        if cursor.topic_id != Some(topic_id) || cursor.next_offset != from {
            return;
        }
        let mut skipped = 0u64;
        {
            let mut index = self.index.write().unwrap_or_else(|p| p.into_inner());
            for (offset, key, value) in records.filter(|(offset, _, _)| *offset >= from) {
                match index::parse_record(key, value) {
                    Ok(Some(change)) => {
                        if let Err(e) = index.apply(change) {
                            skipped += 1;
                            tracing::warn!(topic = %self.storage_topic, error = %e, "schema index is full");
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        skipped += 1;
                        tracing::debug!(topic = %self.storage_topic, offset, error = %e, "skipping an unreadable schema record");
                    }
                }
            }
        }
        if skipped > 0 {
            self.skipped_records.fetch_add(skipped, Ordering::Relaxed);
        }
        cursor.next_offset = next;
        self.applied.store(next, Ordering::Release);
    }

    /// Whether the storage topic's high watermark differs from what the
    /// index has applied (a recreated topic differs too).
    fn lagging(&self, registry: &Registry) -> bool {
        let high_watermark =
            registry.topics.get(&self.storage_topic).and_then(|t| t.partition(0)).map_or(0, |p| p.high_watermark());
        high_watermark != self.applied.load(Ordering::Acquire)
    }

    fn rejection_message(&self, topic: &str, rejection: &Rejection) -> String {
        let Some(first) = rejection.problems.first() else {
            return "the batch failed schema validation".to_string();
        };
        let setting = format!("confluent.{}.schema.validation", first.side.name());
        let advice = match &first.kind {
            ProblemKind::NoSchemaId => {
                format!("produce with a Schema Registry serializer, or turn off {setting} on topic {topic}")
            }
            ProblemKind::NotRegistered { subject } => {
                let register = match subject {
                    Some(s) => format!("register the schema under subject {s}"),
                    None => "register the schema".to_string(),
                };
                let strategy = format!("confluent.{}.subject.name.strategy", first.side.name());
                let empty = if self.read_index().version_count() == 0 {
                    format!(" (this broker has found no schemas in {})", self.storage_topic)
                } else {
                    String::new()
                };
                format!(
                    "{register} (the serializer's subject name strategy must match the topic's {strategy}), or turn off {setting} on topic {topic}{empty}"
                )
            }
        };
        if rejection.rejected == 1 {
            format!("{}: {advice}", first.reason)
        } else {
            format!("{} records of the batch failed schema validation. {}: {advice}", rejection.rejected, first.reason)
        }
    }

    fn is_active(&self, registry: &Registry) -> bool {
        if self.active.load(Ordering::Relaxed) {
            return true;
        }
        let wanted = registry
            .topics
            .values()
            .any(|t| t.config.key_schema_validation.is_some() || t.config.value_schema_validation.is_some());
        if wanted {
            self.active.store(true, Ordering::Relaxed);
            tracing::info!(topic = %self.storage_topic, "a topic validates schema ids; indexing the schema storage topic");
        }
        wanted
    }
}

/// Keeps the schema index up to date: wakes when the storage topic's high
/// watermark moves (or every second), and reads what was added in bounded
/// steps on the blocking pool. Idle until some topic validates.
pub(crate) async fn tail_loop(cluster: Arc<Cluster>, mut shutdown: watch::Receiver<bool>, _alive: mpsc::Sender<()>) {
    let mut progress: Option<(TopicId, watch::Receiver<Progress>)> = None;
    let mut follower = remote::Follower::default();
    cluster.schema_validation.clustered.store(cluster.quorum().is_some(), Ordering::Release);
    loop {
        cluster.schema_validation.follow.next_pass();
        // No replica here: follow the storage topic from its leader (each
        // fetch waits at the end of the topic, so this loop is paced by it).
        let followed = remote::followed_remotely(&cluster);
        cluster.schema_validation.remote.store(followed.is_some(), Ordering::Release);
        if let Some(topic_id) = followed
            && cluster.schema_validation.is_active(&cluster.registry())
        {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = remote::follow_step(&cluster, &mut follower, topic_id) => {}
            }
            continue;
        }
        let changed = async {
            match progress.as_mut() {
                Some((_, rx)) => rx.changed().await.is_ok(),
                None => std::future::pending().await,
            }
        };
        let subscribed = tokio::select! {
            _ = shutdown.changed() => return,
            ok = changed => ok,
            _ = tokio::time::sleep(POLL_INTERVAL) => true,
        };
        if !subscribed {
            progress = None;
        }
        let registry = cluster.registry();
        let storage = registry.topics.get(cluster.schema_validation.storage_topic());
        let current = storage.and_then(|t| t.partition(0).map(|p| (t.topic_id, p)));
        if progress.as_ref().map(|(id, _)| *id) != current.map(|(id, _)| id) {
            progress = current.map(|(id, p)| (id, p.subscribe()));
        }
        if !cluster.schema_validation.is_active(&registry) {
            continue;
        }
        drop(registry);
        loop {
            if *shutdown.borrow() {
                return;
            }
            let c = cluster.clone();
            let step = tokio::task::spawn_blocking(move || {
                let registry = c.registry();
                c.schema_validation.catch_up(&registry, STEP_BYTES)
            })
            .await;
            match step {
                Ok(Ok(position)) if position.behind() => continue,
                Ok(Ok(_)) => break,
                Ok(Err(e)) => {
                    tracing::warn!(topic = %cluster.schema_validation.storage_topic(), error = %e, "cannot read the schema storage topic");
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "schema index step failed");
                    break;
                }
            }
        }
    }
}
