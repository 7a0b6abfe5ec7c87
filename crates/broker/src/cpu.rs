//! CPU-heavy request work off the network runtime: decompressing and
//! validating produced batches, recompressing them for a topic's
//! `compression.type`, scanning compressed batches for ListOffsets by time.
//!
//! The async workers only move bytes and wait; a batch that takes tens of
//! milliseconds to decompress would otherwise stall every connection sharing
//! that worker. Jobs run on tokio's blocking threads, at most
//! [`CpuPool::parallelism`] at a time (one per core), so a burst of large
//! compressed batches queues here instead of spawning a thread each. The
//! same type, with more slots, bounds request work that may wait on storage
//! (`Cluster::waiting`), so such waits never hold a CPU slot.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Semaphore;

/// An uncompressed batch up to this size is validated in place rather than
/// handed to another thread: its CRC and record walk take a fraction of a
/// millisecond (about 0.2 ms for 1 MiB of 100-byte records), less than the
/// two thread wakeups a hand-off costs in CPU and latency. Compressed batches
/// always go to the pool (decompression may take tens of milliseconds).
pub const INLINE_BYTES_MAX: usize = 1024 * 1024;

/// A bounded pool for CPU-heavy jobs.
#[derive(Debug, Clone)]
pub struct CpuPool {
    permits: Arc<Semaphore>,
    parallelism: usize,
    started: Arc<AtomicU64>,
}

impl CpuPool {
    /// A pool running at most `parallelism` jobs at once (at least one).
    pub fn new(parallelism: usize) -> CpuPool {
        let parallelism = parallelism.max(1);
        CpuPool { permits: Arc::new(Semaphore::new(parallelism)), parallelism, started: Arc::new(AtomicU64::new(0)) }
    }

    /// One job per available core.
    pub fn per_core() -> CpuPool {
        CpuPool::new(std::thread::available_parallelism().map_or(2, usize::from))
    }

    /// Jobs that may run at once.
    pub fn parallelism(&self) -> usize {
        self.parallelism
    }

    /// Jobs started since the pool was made.
    pub fn jobs_started(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }

    /// Runs `job` on a blocking thread once a slot is free. `None` if the job
    /// panicked (the panic is logged; what it was computing is lost, nothing else).
    pub async fn run<T: Send + 'static>(&self, job: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        // The semaphore is never closed, so acquiring only waits.
        let permit = self.permits.clone().acquire_owned().await.ok()?;
        self.started.fetch_add(1, Ordering::Relaxed);
        let joined = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            job()
        })
        .await;
        match joined {
            Ok(value) => Some(value),
            Err(e) => {
                tracing::error!(error = %e, "a CPU job panicked");
                None
            }
        }
    }
}

/// Runs blocking `work` so that the other tasks of a multi-threaded
/// runtime's worker are not held up; on any other runtime, on a blocking
/// thread, or outside a runtime it runs in place.
pub fn off_workers<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(work),
        _ => work(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runs_at_most_parallelism_jobs_at_once() {
        let pool = CpuPool::new(2);
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let jobs = (0..8).map(|_| {
            let (pool, running, peak) = (pool.clone(), running.clone(), peak.clone());
            tokio::spawn(async move {
                pool.run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            })
        });
        for job in futures::future::join_all(jobs).await {
            assert_eq!(job.expect("join"), Some(()));
        }
        assert!(peak.load(Ordering::SeqCst) <= 2, "peak {}", peak.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_panicking_job_is_reported_and_frees_its_slot() {
        let pool = CpuPool::new(1);
        assert_eq!(pool.run(|| -> u8 { panic!("boom") }).await, None);
        assert_eq!(pool.run(|| 7).await, Some(7), "the slot was released");
    }
}
