//! A hosted partition: its log behind a lock, and a watch channel carrying
//! its progress (log end offset, durable offset, high watermark; see
//! [`tributary_log::offsets`]), which wakes acks waiting for their offsets
//! and fetches waiting for data.
//!
//! **Who moves the high watermark.** Until replication lands, a partition's
//! leader is in effect its only in-sync replica: after each flush it commits
//! what it has made durable ([`Partition::commit_durable`]), so the high
//! watermark equals the durable offset, as on a node alone. acks=1 waits
//! for the durable offset and acks=all for the high watermark; fetches read
//! below the high watermark.
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
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::time::Duration;

use tokio::sync::watch;
use tributary_log::PartitionLog;
use tributary_types::{TopicId, now_ms};

use crate::replica_fetch::{FollowerPositions, ReplicaFetch, ReplicaFetchObserver};

/// Wait before the first reload after a panic; doubled for each later one.
const RELOAD_BACKOFF_FIRST: Duration = Duration::from_millis(100);
/// Longest wait before a reload.
pub const RELOAD_BACKOFF_MAX: Duration = Duration::from_secs(60);

/// A partition's progress, as last published (after a flush, a reload, or
/// going offline): the log's three offsets at that moment. Appends between
/// flushes move only the log's own log end offset and publish nothing, so
/// no waiter wakes for each append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// The log end offset when this was published.
    pub log_end_offset: i64,
    /// Offsets below this are fsynced on this node (what acks=1 waits for).
    pub durable_offset: i64,
    /// Offsets below this are committed: consumers read them, acks=all waits for them.
    pub high_watermark: i64,
    /// The partition is offline (a storage error, or a reload under way).
    pub offline: bool,
}

impl Progress {
    /// The progress of `log` as it stands.
    pub fn of(log: &PartitionLog) -> Progress {
        let offsets = log.offsets();
        Progress {
            log_end_offset: offsets.log_end_offset,
            durable_offset: offsets.durable_offset,
            high_watermark: offsets.high_watermark,
            offline: log.offline_reason().is_some(),
        }
    }

    /// This progress, offline.
    fn offline(self) -> Progress {
        Progress { offline: true, ..self }
    }
}

/// Which of a partition's offsets a writer waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// The durable offset: fsynced on this node (acks=1).
    Durable,
    /// The high watermark: committed (acks=all, and the coordinators' own writes).
    Committed,
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
    /// This partition, for the reload thread and the replication driver.
    pub(crate) me: Weak<Partition>,
    /// A reload is scheduled or running.
    reloading: AtomicBool,
    /// Reloads done since the broker started (for the backoff).
    reloads: AtomicU32,
    /// Each follower's newest fetch while this node leads (see `replica_fetch.rs`).
    followers: FollowerPositions,
    /// Where follower fetches go besides `followers`: the replication core's.
    replica_fetch_observer: RwLock<Option<Arc<dyn ReplicaFetchObserver>>>,
    /// The replication core's state, for a partition with several
    /// replicas (see `replication.rs`); locked after `log`.
    pub(crate) replication: Mutex<Option<crate::replication::Replication>>,
    /// Whether the core drives the high watermark (set with `replication`).
    pub(crate) replicated: AtomicBool,
    /// A KRaft broker's lease on its leaderships (none on a single node).
    lease: std::sync::OnceLock<Arc<crate::leader_lease::LeaderLease>>,
}

impl Partition {
    /// Wraps an opened log.
    pub fn new(topic: String, topic_id: TopicId, index: i32, leader_epoch: i32, log: PartitionLog) -> PartitionRef {
        let progress = Progress::of(&log);
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
            followers: FollowerPositions::default(),
            replica_fetch_observer: RwLock::new(None),
            replication: Mutex::new(None),
            replicated: AtomicBool::new(false),
            lease: std::sync::OnceLock::new(),
        })
    }

    /// Ties this partition's leadership to the broker's lease (KRaft mode).
    pub fn set_leader_lease(&self, lease: Arc<crate::leader_lease::LeaderLease>) {
        let _ = self.lease.set(lease);
    }

    /// Whether clients may be served as by the leader now: the metadata
    /// makes this node the leader and its lease holds.
    pub fn leads_now(&self) -> bool {
        self.is_leader() && self.lease.get().is_none_or(|l| l.holds())
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
        self.publish(self.progress().offline());
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
        // A follower's epochs come from its leader's batches only.
        let epoch = if self.is_leader() { self.leader_epoch() } else { -1 };
        let reopened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| guard.reload(epoch, now_ms())));
        self.reloads.fetch_add(1, Ordering::SeqCst);
        match reopened {
            Ok(Ok(mut fresh)) => {
                if self.is_replicated() {
                    // Not its log end (records other replicas may lack): the
                    // checkpoint's, or what clients were shown if higher.
                    let shown = self.progress().high_watermark;
                    fresh.restore_checkpointed_high_watermark();
                    fresh.advance_high_watermark(shown.clamp(0, fresh.log_end_offset()));
                }
                *guard = fresh;
                self.log.clear_poison();
                let progress = self.after_flush(&mut guard);
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
    /// (set by the reconciler). Returns whether anything changed. A change
    /// is made under the log's lock, so an append (which checks the role
    /// under that lock) lands either before it, stamped with the epoch it
    /// was led in, or is refused after it. Becoming leader, or leading in a
    /// new epoch, assigns the epoch at the log end in the leader epoch cache
    /// (Kafka does so on becoming leader), so OffsetForLeaderEpoch answers
    /// for the current epoch before the first append. Follower positions
    /// learnt in the old role or epoch are forgotten.
    pub fn set_leadership(&self, leader: bool, leader_epoch: i32) -> bool {
        if self.is_leader() == leader && self.leader_epoch() == leader_epoch {
            return false;
        }
        let mut log = self.log();
        let was_leader = self.leader.swap(leader, Ordering::SeqCst);
        let was_epoch = self.leader_epoch.swap(leader_epoch, Ordering::SeqCst);
        let changed = was_leader != leader || was_epoch != leader_epoch;
        if changed {
            self.followers.clear();
        }
        if changed
            && leader
            && let Err(e) = log.assign_epoch(leader_epoch)
        {
            tracing::error!(topic = %self.topic, partition = self.index, leader_epoch, error = %e,
                "cannot record the new leader epoch in the leader epoch cache");
        }
        changed
    }

    /// Hands a follower fetch this node served as leader to the
    /// replication core (see `replica_fetch.rs`): recorded in
    /// [`Partition::follower_positions`], then passed to the observer the
    /// core installed, if any.
    pub fn replica_fetched(&self, fetch: ReplicaFetch) {
        self.followers.replica_fetched(&fetch);
        let observer = self.replica_fetch_observer.read().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(observer) = observer {
            observer.replica_fetched(&fetch);
        }
    }

    /// Each follower's newest fetch since this node's role or epoch last changed.
    pub fn follower_positions(&self) -> &FollowerPositions {
        &self.followers
    }

    /// Installs the replication core's observer of follower fetches
    /// (replacing any earlier one; `None` removes it).
    pub fn set_replica_fetch_observer(&self, observer: Option<Arc<dyn ReplicaFetchObserver>>) {
        *self.replica_fetch_observer.write().unwrap_or_else(|p| p.into_inner()) = observer;
    }

    /// What a leader that is its own only in-sync replica commits: every
    /// offset it has made durable. Moves the high watermark to the durable
    /// offset, checks the offsets' invariants (the high watermark never
    /// passes the durable offset here) and returns the progress to publish.
    pub fn commit_durable(&self, log: &mut PartitionLog) -> Progress {
        log.advance_high_watermark(log.durable_offset());
        let progress = Progress::of(log);
        log.offsets().check_sole_replica(&format_args!("{}-{}", self.topic, self.index));
        progress
    }

    /// The current progress.
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

/// Waits until the partition's durable offset or high watermark (`wait`)
/// reaches `target`. Returns the final progress (offline, or caught up).
pub async fn wait_for(mut rx: watch::Receiver<Progress>, target: i64, wait: Wait) -> Progress {
    let reached = |p: &Progress| match wait {
        Wait::Durable => p.durable_offset >= target,
        Wait::Committed => p.high_watermark >= target,
    };
    match rx.wait_for(|p| p.offline || reached(p)).await {
        Ok(p) => *p,
        Err(_) => Progress { log_end_offset: -1, durable_offset: -1, high_watermark: -1, offline: true },
    }
}

/// Waits until the partition's high watermark reaches `target` (what the
/// coordinators' own writes wait for). Returns the final progress.
pub async fn wait_committed(rx: watch::Receiver<Progress>, target: i64) -> Progress {
    wait_for(rx, target, Wait::Committed).await
}

/// Shared handle to a partition.
pub type PartitionRef = Arc<Partition>;

#[cfg(test)]
mod tests {
    use futures::FutureExt;

    use super::*;

    fn progress(durable_offset: i64, high_watermark: i64) -> Progress {
        Progress { log_end_offset: 10, durable_offset, high_watermark, offline: false }
    }

    /// acks=1 is answered once the batch is durable here, acks=all once it
    /// is committed: two offsets that differ once followers count.
    #[tokio::test]
    async fn writers_wait_for_the_offset_their_acks_name() {
        let (tx, rx) = watch::channel(progress(5, 3));
        assert_eq!(wait_for(rx.clone(), 5, Wait::Durable).await.durable_offset, 5);
        let mut committed = Box::pin(wait_for(rx.clone(), 5, Wait::Committed));
        assert!((&mut committed).now_or_never().is_none(), "high watermark 3 does not cover offset 4");
        tx.send_replace(progress(5, 5));
        assert_eq!(committed.await.high_watermark, 5);
        tx.send_replace(progress(5, 5).offline());
        assert!(wait_for(rx, 9, Wait::Committed).await.offline, "going offline answers every waiter");
    }
}
