//! The log cleaner thread: compacts the partitions of topics whose
//! `cleanup.policy` includes `compact` (`__consumer_offsets` among them), one
//! partition at a time, on its own OS thread so the network runtime and the
//! flusher never wait for it. Each round it picks the dirtiest partition that
//! is due (see [`tributary_log::cleaner`]); with nothing due it sleeps
//! `log.cleaner.backoff.ms`. The partition lock is held only to take the
//! snapshot and to swap the cleaned segments in.
//!
//! The thread lowers its own I/O priority first ([`CLEANER_IO_CLASS`]), so
//! that on a scheduler honouring I/O classes its reads and the writeback it
//! starts wait behind the flusher's and the request handlers' I/O.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tributary_config::BrokerConfig;
use tributary_log::cleaner::clean;
use tributary_log::{CleanSnapshot, CleanerLimits};
use tributary_sys::priority::{BEST_EFFORT_LOWEST, IoClass, set_current_thread_io_class};
use tributary_types::now_ms;

use crate::cluster::Cluster;
use crate::flusher::Flusher;
use crate::partition::PartitionRef;

/// How long a partition whose clean failed is left alone.
const FAILED_PARTITION_BACKOFF: Duration = Duration::from_secs(60);

/// The I/O scheduling class of the cleaner thread: the lowest best-effort
/// level (see docs/design/cleaner.md for what was measured).
const CLEANER_IO_CLASS: IoClass = IoClass::BestEffort(BEST_EFFORT_LOWEST);

/// Settings from the broker config.
#[derive(Debug, Clone, Copy)]
pub struct CleanerSettings {
    /// `log.cleaner.enable`.
    pub enabled: bool,
    /// `log.cleaner.backoff.ms`.
    pub backoff: Duration,
    /// Dedupe buffer and I/O rate.
    pub limits: CleanerLimits,
}

impl CleanerSettings {
    /// Reads the `log.cleaner.*` keys.
    pub fn from_config(config: &BrokerConfig) -> CleanerSettings {
        let get = |key: &str| {
            config.properties.get(key).map(String::as_str).or_else(|| BrokerConfig::default_of(key)).unwrap_or("")
        };
        let defaults = CleanerLimits::default();
        let io: f64 = get("log.cleaner.io.max.bytes.per.second").trim().parse().unwrap_or(f64::INFINITY);
        CleanerSettings {
            enabled: !get("log.cleaner.enable").trim().eq_ignore_ascii_case("false"),
            backoff: Duration::from_millis(get("log.cleaner.backoff.ms").trim().parse().unwrap_or(15_000)),
            limits: CleanerLimits {
                dedupe_buffer_bytes: get("log.cleaner.dedupe.buffer.size")
                    .trim()
                    .parse::<u64>()
                    .map_or(defaults.dedupe_buffer_bytes, |b| b.min(usize::MAX as u64) as usize),
                // Kafka's default (Double.MAX_VALUE) means unthrottled.
                io_bytes_per_second: if io >= f64::MAX / 2.0 { f64::INFINITY } else { io },
            },
        }
    }
}

#[derive(Debug, Default)]
struct Signal {
    stop: AtomicBool,
    wake: Mutex<bool>,
    bell: Condvar,
}

/// The running cleaner; [`LogCleaner::stop`] ends it between batches.
#[derive(Debug)]
pub struct LogCleaner {
    signal: Arc<Signal>,
    thread: Option<JoinHandle<()>>,
}

impl LogCleaner {
    /// Starts the cleaner thread, unless `log.cleaner.enable=false`.
    pub fn start(cluster: Arc<Cluster>) -> Option<LogCleaner> {
        let settings = CleanerSettings::from_config(&cluster.config);
        if !settings.enabled {
            tracing::info!("log cleaner disabled (log.cleaner.enable=false); compacted topics are not compacted");
            return None;
        }
        let signal = Arc::new(Signal::default());
        let s = signal.clone();
        let thread = std::thread::Builder::new()
            .name("log-cleaner".to_string())
            .spawn(move || run(&cluster, settings, &s))
            .map_err(|e| tracing::error!(error = %e, "cannot start the log cleaner thread"))
            .ok()?;
        Some(LogCleaner { signal, thread: Some(thread) })
    }

    /// Asks the cleaner to look for work now instead of after its backoff.
    pub fn wake(&self) {
        let mut woken = self.signal.wake.lock().unwrap_or_else(|p| p.into_inner());
        *woken = true;
        self.signal.bell.notify_one();
    }

    /// Stops the cleaner (an unfinished clean is abandoned) and waits for it.
    pub fn stop(mut self) {
        self.signal.stop.store(true, Ordering::Relaxed);
        self.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(cluster: &Arc<Cluster>, settings: CleanerSettings, signal: &Signal) {
    if let Err(e) = set_current_thread_io_class(CLEANER_IO_CLASS) {
        tracing::warn!(error = %e, io_class = ?CLEANER_IO_CLASS, "cannot lower the log cleaner's I/O priority; it competes with produce requests at the default one");
    }
    tracing::info!(
        backoff_ms = settings.backoff.as_millis() as u64,
        dedupe_buffer_bytes = settings.limits.dedupe_buffer_bytes,
        io_bytes_per_second = settings.limits.io_bytes_per_second,
        io_class = ?CLEANER_IO_CLASS,
        "log cleaner running"
    );
    let mut failed: HashMap<(String, i32), Instant> = HashMap::new();
    while !signal.stop.load(Ordering::Relaxed) {
        failed.retain(|_, until| *until > Instant::now());
        let now = now_ms();
        let cleaned_one = match dirtiest_due(cluster, now, &failed) {
            Some((partition, snapshot)) => {
                let key = (partition.topic.clone(), partition.index);
                if !clean_partition(&partition, &snapshot, &settings, &cluster.flusher, &signal.stop) {
                    failed.insert(key, Instant::now() + FAILED_PARTITION_BACKOFF);
                }
                true
            }
            None => false,
        };
        if !cleaned_one {
            let woken = signal.wake.lock().unwrap_or_else(|p| p.into_inner());
            let (mut woken, _) =
                signal.bell.wait_timeout_while(woken, settings.backoff, |w| !*w).unwrap_or_else(|p| p.into_inner());
            *woken = false;
        }
    }
    tracing::info!("log cleaner stopped");
}

/// The partition due for cleaning with the highest dirty ratio.
fn dirtiest_due(
    cluster: &Cluster,
    now: i64,
    failed: &HashMap<(String, i32), Instant>,
) -> Option<(PartitionRef, CleanSnapshot)> {
    let mut best: Option<(f64, PartitionRef, CleanSnapshot)> = None;
    for topic in cluster.registry().topics.values().filter(|t| t.config.compact) {
        for p in &topic.partitions {
            if failed.contains_key(&(p.topic.clone(), p.index)) {
                continue;
            }
            let hw = p.high_watermark();
            let snapshot = {
                let mut log = p.log();
                if let Err(e) = log.roll_for_compaction(now) {
                    tracing::warn!(topic = %p.topic, partition = p.index, error = %e, "rolling for max.compaction.lag.ms failed");
                }
                log.clean_snapshot(hw)
            };
            let Some(mut snapshot) = snapshot else {
                continue;
            };
            if snapshot.tombstone_horizon_unknown() {
                match snapshot.scan_tombstone_horizon() {
                    Ok(h) => p.log().set_tombstone_horizon(h),
                    Err(e) => {
                        tracing::warn!(topic = %p.topic, partition = p.index, error = %e, "reading tombstone horizons failed");
                        continue;
                    }
                }
            }
            let state = snapshot.cleanability(now);
            if state.due && best.as_ref().is_none_or(|(ratio, _, _)| state.dirty_ratio > *ratio) {
                best = Some((state.dirty_ratio, p.clone(), snapshot));
            }
        }
    }
    best.map(|(_, p, s)| (p, s))
}

/// Cleans one partition; false if it failed (it is then left alone a while).
fn clean_partition(
    partition: &PartitionRef,
    snapshot: &CleanSnapshot,
    settings: &CleanerSettings,
    flusher: &Flusher,
    stop: &AtomicBool,
) -> bool {
    let started = Instant::now();
    let (topic, index) = (&partition.topic, partition.index);
    let cleaned = match clean(snapshot, &settings.limits, now_ms(), stop) {
        Ok(Some(cleaned)) => cleaned,
        // Nothing could be mapped (dedupe buffer too small) or the broker is stopping.
        Ok(None) => return false,
        Err(e) => {
            tracing::warn!(%topic, partition = index, error = %e, "cleaning failed; the log is left as it was");
            return false;
        }
    };
    let stats = cleaned.stats;
    // Publishing syncs files and the directory: done before taking the lock,
    // which then covers only renames.
    let published = match cleaned.publish() {
        Ok(published) => published,
        Err(e) => {
            tracing::warn!(%topic, partition = index, error = %e, "publishing the cleaned segments failed; the log is left as it was");
            return false;
        }
    };
    let started_commit = Instant::now();
    let committed = partition.log().commit_clean(published);
    let commit_ms = started_commit.elapsed().as_millis() as u64;
    // Unlinking the replaced files may wait on the disk: not under the lock.
    let committed = committed.map(|(groups, retired)| {
        retired.remove();
        groups
    });
    // The next flush makes the renames and the cleaner offset durable (a crash before that
    // finishes the published swap on open).
    flusher.mark_dirty(partition);
    match committed {
        Ok(groups) => {
            tracing::info!(
                %topic,
                partition = index,
                groups,
                bytes_before = stats.bytes_read,
                bytes_after = stats.bytes_written,
                segments_rewritten = stats.segments_rewritten,
                segments_skipped = stats.segments_skipped,
                bytes_skipped = stats.bytes_skipped,
                records_read = stats.records_read,
                records_kept = stats.records_kept,
                tombstones_dropped = stats.tombstones_dropped,
                keys = stats.keys_mapped,
                ms = started.elapsed().as_millis() as u64,
                commit_ms,
                "compacted"
            );
            true
        }
        Err(e) => {
            tracing::warn!(%topic, partition = index, error = %e, "swapping in the cleaned segments failed");
            false
        }
    }
}
