//! A hosted partition: its log behind a lock, and a watch channel carrying
//! its durable progress (the high watermark on one node), which wakes
//! acks waiting for fsync and fetches waiting for data.
//!
//! **A panic while the log's lock is held** (a broken invariant asserted in
//! the log, a bug) may leave the in-memory log inconsistent with its files.
//! Such a partition is never served as is: the next holder of the lock finds
//! it poisoned, takes the log offline (every request gets
//! KAFKA_STORAGE_ERROR, nothing more is flushed) and starts a reload on a
//! thread of its own, which reopens the log from disk as after a crash
//! (recovery validates every batch past the recovery point and fsyncs it)
//! and brings the partition back online. Reloads after repeated panics back
//! off, up to [`RELOAD_BACKOFF_MAX`].

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::sync::watch;
use tributary_log::PartitionLog;
use tributary_types::{TopicId, now_ms};

/// Wait before the first reload after a panic; doubled for each later one.
const RELOAD_BACKOFF_FIRST: Duration = Duration::from_millis(100);
/// Longest wait before a reload.
pub const RELOAD_BACKOFF_MAX: Duration = Duration::from_secs(60);

/// Durable progress of a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Offsets below this are fsynced and visible to consumers.
    pub high_watermark: i64,
    /// The partition is offline (a storage error, or a reload under way).
    pub offline: bool,
}

/// One partition this broker leads.
#[derive(Debug)]
pub struct Partition {
    /// Topic name.
    pub topic: String,
    /// Topic id.
    pub topic_id: TopicId,
    /// Partition index.
    pub index: i32,
    leader_epoch: AtomicI32,
    /// This node's role for the partition, from the committed metadata:
    /// leader (serves produce and fetch) or follower (refuses produce with
    /// NOT_LEADER_OR_FOLLOWER; replication arrives with the next issue).
    leader: AtomicBool,
    log: Mutex<PartitionLog>,
    progress: watch::Sender<Progress>,
    /// This partition, for the reload thread.
    me: Weak<Partition>,
    /// A reload is scheduled or running.
    reloading: AtomicBool,
    /// Reloads done since the broker started (for the backoff).
    reloads: AtomicU32,
}

impl Partition {
    /// Wraps an opened log.
    pub fn new(topic: String, topic_id: TopicId, index: i32, leader_epoch: i32, log: PartitionLog) -> PartitionRef {
        let progress = Progress { high_watermark: log.durable_offset(), offline: log.offline_reason().is_some() };
        Arc::new_cyclic(|me| Partition {
            topic,
            topic_id,
            index,
            leader_epoch: AtomicI32::new(leader_epoch),
            leader: AtomicBool::new(true),
            log: Mutex::new(log),
            progress: watch::Sender::new(progress),
            me: me.clone(),
            reloading: AtomicBool::new(false),
            reloads: AtomicU32::new(0),
        })
    }

    /// Locks the log. Never held across an await. If an earlier holder
    /// panicked, the log is taken offline and a reload from disk starts.
    pub fn log(&self) -> MutexGuard<'_, PartitionLog> {
        match self.log.lock() {
            Ok(guard) => guard,
            Err(poisoned) => {
                let mut guard = poisoned.into_inner();
                self.after_panic(&mut guard);
                guard
            }
        }
    }

    fn after_panic(&self, log: &mut PartitionLog) {
        log.take_offline(
            "a panic while the partition's lock was held may have left its state inconsistent; it is being reloaded from disk"
                .to_string(),
        );
        self.publish(Progress { high_watermark: self.high_watermark(), offline: true });
        if self.reloading.swap(true, Ordering::SeqCst) {
            return;
        }
        let Some(me) = self.me.upgrade() else {
            return;
        };
        let backoff = RELOAD_BACKOFF_FIRST
            .saturating_mul(1 << self.reloads.load(Ordering::SeqCst).min(16))
            .min(RELOAD_BACKOFF_MAX);
        tracing::error!(
            topic = %self.topic,
            partition = self.index,
            reload_in_ms = backoff.as_millis() as u64,
            "partition offline after a panic while its lock was held; reloading it from disk"
        );
        let spawned =
            std::thread::Builder::new().name(format!("reload-{}-{}", self.topic, self.index)).spawn(move || {
                std::thread::sleep(backoff);
                me.reload();
            });
        if let Err(e) = spawned {
            tracing::error!(topic = %self.topic, partition = self.index, error = %e,
                "cannot start the reload thread; the partition stays offline until the broker restarts");
        }
    }

    /// Reopens the log from disk and brings the partition back online.
    fn reload(&self) {
        let mut guard = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let epoch = self.leader_epoch();
        let reopened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| guard.reload(epoch, now_ms())));
        self.reloads.fetch_add(1, Ordering::SeqCst);
        match reopened {
            Ok(Ok(fresh)) => {
                *guard = fresh;
                self.log.clear_poison();
                let progress = Progress { high_watermark: guard.durable_offset(), offline: false };
                drop(guard);
                self.reloading.store(false, Ordering::SeqCst);
                self.publish(progress);
                tracing::warn!(topic = %self.topic, partition = self.index, high_watermark = progress.high_watermark,
                    "partition reloaded from disk and back online");
            }
            Ok(Err(e)) => tracing::error!(topic = %self.topic, partition = self.index, error = %e,
                "reloading the partition from disk failed; it stays offline until the broker restarts"),
            Err(_) => tracing::error!(topic = %self.topic, partition = self.index,
                "reloading the partition from disk panicked; it stays offline until the broker restarts"),
        }
    }

    /// The current leader epoch.
    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch.load(Ordering::Relaxed)
    }

    /// Whether this node leads the partition.
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Relaxed)
    }

    /// The role and leader epoch the committed metadata gives this node
    /// (set by the reconciler). Returns whether anything changed.
    pub fn set_leadership(&self, leader: bool, leader_epoch: i32) -> bool {
        let was_leader = self.leader.swap(leader, Ordering::SeqCst);
        let was_epoch = self.leader_epoch.swap(leader_epoch, Ordering::SeqCst);
        was_leader != leader || was_epoch != leader_epoch
    }

    /// The current durable progress.
    pub fn progress(&self) -> Progress {
        *self.progress.borrow()
    }

    /// The high watermark.
    pub fn high_watermark(&self) -> i64 {
        self.progress.borrow().high_watermark
    }

    /// Subscribes to progress changes.
    pub fn subscribe(&self) -> watch::Receiver<Progress> {
        self.progress.subscribe()
    }

    /// Publishes new progress (called by the flusher).
    pub fn publish(&self, progress: Progress) {
        self.progress.send_if_modified(|p| {
            let changed = *p != progress;
            *p = progress;
            changed
        });
    }
}

/// Waits until the partition's high watermark reaches `target`. Returns the
/// final progress (offline, or caught up).
pub async fn wait_durable(mut rx: watch::Receiver<Progress>, target: i64) -> Progress {
    match rx.wait_for(|p| p.offline || p.high_watermark >= target).await {
        Ok(p) => *p,
        Err(_) => Progress { high_watermark: -1, offline: true },
    }
}

/// Shared handle to a partition.
pub type PartitionRef = Arc<Partition>;
