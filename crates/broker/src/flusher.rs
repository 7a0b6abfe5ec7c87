//! Group commit. Appends mark their partition dirty; one thread repeatedly
//! takes every dirty partition, fsyncs what each has appended (without the
//! partition lock), then advances each high watermark. While it syncs, new
//! appends queue up and are covered together by the next round, so many
//! producers share one fsync.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use crate::partition::{Partition, Progress};

#[derive(Default)]
struct Queue {
    dirty: HashMap<usize, Arc<Partition>>,
    stopping: bool,
}

/// The group-commit flusher.
pub struct Flusher {
    queue: Arc<(Mutex<Queue>, Condvar)>,
    thread: Mutex<Option<JoinHandle<()>>>,
    syncs: Arc<AtomicU64>,
}

impl std::fmt::Debug for Flusher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flusher").finish_non_exhaustive()
    }
}

fn lock(queue: &Mutex<Queue>) -> std::sync::MutexGuard<'_, Queue> {
    queue.lock().unwrap_or_else(|p| p.into_inner())
}

impl Flusher {
    /// Starts the flusher thread.
    pub fn start() -> std::io::Result<Flusher> {
        let queue: Arc<(Mutex<Queue>, Condvar)> = Arc::default();
        let q = queue.clone();
        let syncs = Arc::new(AtomicU64::new(0));
        let counter = syncs.clone();
        let thread = std::thread::Builder::new().name("group-commit".to_string()).spawn(move || run(&q, &counter))?;
        Ok(Flusher { queue, thread: Mutex::new(Some(thread)), syncs })
    }

    /// How many partition fsyncs have run: fewer than acknowledged batches
    /// when producers share them.
    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    /// Marks a partition as having appended data that must become durable.
    pub fn mark_dirty(&self, partition: &Arc<Partition>) {
        let (queue, ready) = &*self.queue;
        let key = Arc::as_ptr(partition) as usize;
        let mut q = lock(queue);
        if q.dirty.insert(key, partition.clone()).is_none() && q.dirty.len() == 1 {
            ready.notify_one();
        }
    }

    /// Flushes everything still queued and stops the thread.
    pub fn stop(&self) {
        {
            let (queue, ready) = &*self.queue;
            lock(queue).stopping = true;
            ready.notify_one();
        }
        let handle = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

fn run(queue: &(Mutex<Queue>, Condvar), syncs: &AtomicU64) {
    let (lock_queue, ready) = queue;
    loop {
        let batch: Vec<Arc<Partition>> = {
            let mut q = lock(lock_queue);
            while q.dirty.is_empty() && !q.stopping {
                q = ready.wait(q).unwrap_or_else(|p| p.into_inner());
            }
            if q.dirty.is_empty() && q.stopping {
                return;
            }
            q.dirty.drain().map(|(_, p)| p).collect()
        };
        flush_round(&batch, syncs);
    }
}

/// One round: plan under each lock, fsync without locks, publish progress.
fn flush_round(partitions: &[Arc<Partition>], syncs: &AtomicU64) {
    let plans: Vec<_> = partitions.iter().map(|p| p.log().flush_plan()).collect();
    for (partition, plan) in partitions.iter().zip(plans) {
        let Some(plan) = plan else { continue };
        let outcome = plan.execute();
        syncs.fetch_add(1, Ordering::Relaxed);
        let mut log = partition.log();
        let result = log.complete_flush(plan.target, outcome);
        let progress = Progress { high_watermark: log.durable_offset(), offline: log.offline_reason().is_some() };
        drop(log);
        if let Err(e) = result {
            tracing::error!(topic = %partition.topic, partition = partition.index, error = %e, "flush failed");
        }
        partition.publish(progress);
    }
}
