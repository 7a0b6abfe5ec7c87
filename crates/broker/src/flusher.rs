//! Group commit. Appends mark their partition dirty; a few flusher threads
//! take dirty partitions one at a time, fsync what each has appended
//! (without the partition lock), then advance its durable offset and
//! commit it (the high watermark; see `partition.rs`). While a
//! partition syncs, new appends to it queue up and are covered together by
//! its next flush, so many producers share one fsync.
//!
//! One partition is flushed by at most one thread at a time (a flush that
//! started after a roll must not finish before the one still syncing the
//! rolled segment). Several threads keep one slow partition (its lock held by
//! the log cleaner's swap, or its fsync stuck behind a large write-out) from
//! delaying the acknowledgements of every other partition.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use crate::partition::Partition;

/// Flusher threads. fsyncs of different files proceed in parallel on any
/// SSD; more threads than this rarely help one data directory.
const FLUSH_THREADS: usize = 4;

#[derive(Default)]
struct Queue {
    /// Partitions with appends not yet flushed, by address.
    dirty: HashMap<usize, Arc<Partition>>,
    /// Partitions a thread is flushing now.
    flushing: HashSet<usize>,
    stopping: bool,
}

impl Queue {
    /// A dirty partition no thread is flushing, taken out of the queue.
    fn take_ready(&mut self) -> Option<(usize, Arc<Partition>)> {
        let key = *self.dirty.keys().find(|k| !self.flushing.contains(k))?;
        let partition = self.dirty.remove(&key)?;
        self.flushing.insert(key);
        Some((key, partition))
    }
}

/// The group-commit flusher.
pub struct Flusher {
    queue: Arc<(Mutex<Queue>, Condvar)>,
    threads: Mutex<Vec<JoinHandle<()>>>,
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
    /// Starts the flusher threads.
    pub fn start() -> std::io::Result<Flusher> {
        let queue: Arc<(Mutex<Queue>, Condvar)> = Arc::default();
        let syncs = Arc::new(AtomicU64::new(0));
        let mut threads = Vec::with_capacity(FLUSH_THREADS);
        for i in 0..FLUSH_THREADS {
            let (q, counter) = (queue.clone(), syncs.clone());
            let spawned =
                std::thread::Builder::new().name(format!("group-commit-{i}")).spawn(move || run(&q, &counter));
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => {
                    // Stop the ones already running before reporting.
                    let flusher = Flusher { queue, threads: Mutex::new(threads), syncs };
                    flusher.stop();
                    return Err(e);
                }
            }
        }
        Ok(Flusher { queue, threads: Mutex::new(threads), syncs })
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
        if q.dirty.insert(key, partition.clone()).is_none() && !q.flushing.contains(&key) {
            ready.notify_one();
        }
    }

    /// Flushes everything still queued and stops the threads.
    pub fn stop(&self) {
        {
            let (queue, ready) = &*self.queue;
            lock(queue).stopping = true;
            ready.notify_all();
        }
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }
}

fn run(queue: &(Mutex<Queue>, Condvar), syncs: &AtomicU64) {
    let (lock_queue, ready) = queue;
    loop {
        let (key, partition) = {
            let mut q = lock(lock_queue);
            loop {
                if let Some(next) = q.take_ready() {
                    break next;
                }
                if q.stopping && q.dirty.is_empty() {
                    return;
                }
                q = ready.wait(q).unwrap_or_else(|p| p.into_inner());
            }
        };
        // A panic (a broken log invariant) poisons the partition's lock, which
        // takes it offline for a reload; this thread goes on flushing the others.
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| flush(&partition, syncs))).is_err() {
            tracing::error!(topic = %partition.topic, partition = partition.index, "flushing the partition panicked");
        }
        let mut q = lock(lock_queue);
        q.flushing.remove(&key);
        if q.stopping {
            // The other threads wait to see the queue drained.
            ready.notify_all();
        } else if q.dirty.contains_key(&key) && q.dirty.len() > 1 {
            // Appends arrived meanwhile: this thread takes the next ready
            // partition as it loops; one more thread takes the rest. Waking
            // every thread per flush cost three context switches per
            // produce request, for nothing.
            ready.notify_one();
        }
    }
}

/// Plans under the partition lock, fsyncs without it, publishes progress.
fn flush(partition: &Partition, syncs: &AtomicU64) {
    let Some(plan) = partition.log().flush_plan() else {
        return;
    };
    let outcome = plan.execute();
    syncs.fetch_add(1, Ordering::Relaxed);
    let mut log = partition.log();
    let result = log.complete_flush(&plan, outcome);
    let progress = partition.after_flush(&mut log);
    drop(log);
    if let Err(e) = result {
        tracing::error!(topic = %partition.topic, partition = partition.index, error = %e, "flush failed");
    }
    partition.publish(progress);
}
