//! A hosted partition: its log behind a lock, and a watch channel carrying
//! its durable progress (the high watermark on one node), which wakes
//! acks waiting for fsync and fetches waiting for data.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;
use tributary_log::PartitionLog;
use tributary_types::TopicId;

/// Durable progress of a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Offsets below this are fsynced and visible to consumers.
    pub high_watermark: i64,
    /// The partition went offline after a storage error.
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
    log: Mutex<PartitionLog>,
    progress: watch::Sender<Progress>,
}

impl Partition {
    /// Wraps an opened log.
    pub fn new(topic: String, topic_id: TopicId, index: i32, leader_epoch: i32, log: PartitionLog) -> Partition {
        let progress = Progress { high_watermark: log.durable_offset(), offline: log.offline_reason().is_some() };
        Partition {
            topic,
            topic_id,
            index,
            leader_epoch: AtomicI32::new(leader_epoch),
            log: Mutex::new(log),
            progress: watch::Sender::new(progress),
        }
    }

    /// Locks the log. Never held across an await.
    pub fn log(&self) -> MutexGuard<'_, PartitionLog> {
        // A panic while holding the lock is a bug; keep serving rather than poisoning every request.
        self.log.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The current leader epoch.
    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch.load(Ordering::Relaxed)
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
