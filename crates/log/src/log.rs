//! A partition log: ordered segments, the offsets that bound it, the leader
//! epoch cache and the idempotent producer state.
//!
//! Appends write to the active segment's file (page cache) under the
//! partition's lock; durability is a separate step. [`PartitionLog::flush_plan`]
//! hands the files to fsync to the group-commit flusher, which syncs them
//! without the lock and reports back with [`PartitionLog::complete_flush`];
//! only then does the durable offset move. The high watermark is a third
//! number the log keeps but does not decide (see [`crate::offsets`]).
//! Reads likewise take a [`ReadPlan`] under the lock and copy bytes without it.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tributary_record::batch::{
    BATCH_HEADER_LEN, mark_log_append_time, reseal, set_base_offset, set_max_timestamp_field,
    set_partition_leader_epoch,
};
use tributary_record::validate::first_record_at_or_after;
use tributary_record::{BatchHeader, DECOMPRESSED_BATCH_BYTES_MAX, STORED_BATCH_BYTES_MAX};

use crate::checkpoint::Checkpoint;
use crate::cleaner::{
    CleanSnapshot, CleanedGroup, CompactionConfig, PublishedClean, SourceSegment, cleaned_index_paths,
};
use crate::epoch::LeaderEpochCache;
use crate::error::{LogError, Result};
use crate::offsets::LogOffsets;
use crate::producer::{ProducerState, SequenceCheck, snapshot_file_name, snapshot_offset};
use crate::retired::RetiredFiles;
use crate::segment::{FileSlice, Segment, locate_batches, read_batches, read_header_at};

mod follower;
#[cfg(test)]
mod testing;
mod truncate;

pub use follower::{FollowerAppend, FollowerAppendError};
pub use truncate::{BelowHighWatermark, Truncated};

/// The topic configs the log acts on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogConfig {
    /// `segment.bytes`.
    pub segment_bytes: u64,
    /// `segment.ms`.
    pub segment_ms: i64,
    /// `index.interval.bytes`.
    pub index_interval_bytes: u32,
    /// `retention.ms` (-1 = forever).
    pub retention_ms: i64,
    /// `retention.bytes` (-1 = unlimited).
    pub retention_bytes: i64,
    /// Whether `cleanup.policy` includes delete (time/size retention applies).
    pub delete_policy: bool,
    /// `producer.id.expiration.ms`.
    pub producer_id_expiration_ms: i64,
    /// Compaction (`cleanup.policy=compact`) settings.
    pub compaction: CompactionConfig,
    /// A flush also checkpoints the high watermark when it moved and the
    /// last checkpoint of it is at least this old (Kafka's
    /// `replica.high.watermark.checkpoint.interval.ms` is 5000; a stale value
    /// only makes a restarted replica start lower).
    pub high_watermark_checkpoint_interval_ms: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 604_800_000,
            index_interval_bytes: 4096,
            retention_ms: 604_800_000,
            retention_bytes: -1,
            delete_policy: true,
            producer_id_expiration_ms: 86_400_000,
            compaction: CompactionConfig::default(),
            high_watermark_checkpoint_interval_ms: 1000,
        }
    }
}

/// Numbers every opened [`PartitionLog`], so work planned on one instance
/// (a flush) is never applied to another opened on the same directory later.
static NEXT_INSTANCE: AtomicU64 = AtomicU64::new(1);

/// Facts about a validated batch the append needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Leader epoch to stamp.
    pub leader_epoch: i32,
    /// Max record timestamp computed during validation.
    pub max_timestamp: i64,
    /// Offset delta of the record holding it.
    pub offset_delta_of_max_timestamp: i32,
    /// Broker time.
    pub now_ms: i64,
    /// The topic uses LogAppendTime.
    pub log_append_time: bool,
}

/// Result of an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOutcome {
    /// Written at these offsets (not yet durable).
    Appended {
        /// First offset.
        base_offset: i64,
        /// Last offset.
        last_offset: i64,
        /// Broker time written into the batch, or -1 (CreateTime).
        log_append_time_ms: i64,
    },
    /// A retry of a batch already in the log.
    Duplicate {
        /// Its first offset.
        base_offset: i64,
        /// Its last offset.
        last_offset: i64,
    },
}

/// Files to fsync to make everything appended so far durable.
#[derive(Debug)]
pub struct FlushPlan {
    files: Vec<Arc<File>>,
    dir: Option<PathBuf>,
    /// A checkpoint to write after the fsyncs (see [`CheckpointWriter`]).
    checkpoint: Option<(CheckpointWriter, u64, Checkpoint)>,
    /// The durable offset once the plan has run.
    pub target: i64,
    /// The log instance that planned it.
    instance: u64,
    /// The log's truncation count when it was planned: a truncation since
    /// may have replaced what it covered, so it then moves nothing.
    truncations: u64,
}

impl FlushPlan {
    /// Runs the fsyncs (no lock held).
    pub fn execute(&self) -> std::io::Result<()> {
        for f in &self.files {
            f.sync_data()?;
        }
        if let Some(dir) = &self.dir {
            File::open(dir)?.sync_all()?;
        }
        if let Some((writer, seq, checkpoint)) = &self.checkpoint {
            writer.write(*seq, checkpoint)?;
        }
        Ok(())
    }
}

/// Writes a log's checkpoint file, with or without the log's lock. Every
/// version gets a sequence number under the lock; a write that finds a newer
/// version already on disk is skipped, so a deferred write never puts an
/// older checkpoint over a newer one.
#[derive(Debug, Clone)]
struct CheckpointWriter {
    dir: PathBuf,
    /// Sequence number of the version on disk.
    written: Arc<Mutex<u64>>,
}

impl CheckpointWriter {
    fn write(&self, seq: u64, checkpoint: &Checkpoint) -> std::io::Result<()> {
        let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        if *written >= seq {
            return Ok(());
        }
        checkpoint.save(&self.dir)?;
        *written = seq;
        Ok(())
    }
}

/// ListOffsets by time, planned under the partition's lock and run without
/// it: the segments that may hold a record at or after the timestamp, each
/// with the position its time index points at. The open file handles keep
/// the bytes readable even if retention or compaction replaces a segment
/// meanwhile (the answer is then the one the log gave when planned).
#[derive(Debug)]
pub struct TimestampSearch {
    timestamp: i64,
    upper_bound: i64,
    log_start_offset: i64,
    segments: Vec<SearchSegment>,
}

#[derive(Debug)]
struct SearchSegment {
    file: Arc<File>,
    path: PathBuf,
    size: u64,
    start: u64,
}

impl TimestampSearch {
    /// Walks the planned segments' batches: the first record at or after the
    /// timestamp, and that timestamp. CPU-heavy for compressed batches
    /// (each is decompressed, streaming, up to [`DECOMPRESSED_BATCH_BYTES_MAX`]):
    /// run it off the network runtime. Every batch length read from the file
    /// is checked against the segment's end and [`STORED_BATCH_BYTES_MAX`]
    /// before a buffer is sized by it.
    pub fn run(&self) -> Result<Option<(i64, i64)>> {
        let (timestamp, upper_bound) = (self.timestamp, self.upper_bound);
        let mut batch = Vec::new();
        for segment in &self.segments {
            let io = io_at(&segment.path);
            let mut position = segment.start;
            while let Some(h) = read_header_at(&segment.file, position, segment.size).map_err(&io)? {
                if h.base_offset >= upper_bound {
                    return Ok(None);
                }
                let len = h.total_len();
                if len > STORED_BATCH_BYTES_MAX || position + len as u64 > segment.size {
                    return Err(LogError::io(
                        &segment.path,
                        std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            format!(
                                "the batch at position {position} claims {len} bytes, past the segment's end ({} bytes) or the largest batch a log holds ({STORED_BATCH_BYTES_MAX})",
                                segment.size
                            ),
                        ),
                    ));
                }
                if h.max_timestamp >= timestamp && h.last_offset() >= self.log_start_offset {
                    batch.resize(len, 0);
                    std::os::unix::fs::FileExt::read_exact_at(&*segment.file, &mut batch, position).map_err(&io)?;
                    let found = first_record_at_or_after(&batch, timestamp, DECOMPRESSED_BATCH_BYTES_MAX)
                        .map_err(|e| LogError::io(&segment.path, std::io::Error::other(e.to_string())))?;
                    if let Some((offset, ts)) = found
                        && offset >= self.log_start_offset
                        && offset < upper_bound
                    {
                        return Ok(Some((offset, ts)));
                    }
                }
                position += len as u64;
            }
        }
        Ok(None)
    }
}

/// Where to read from, captured under the lock.
#[derive(Debug, Clone)]
pub struct ReadPlan {
    file: Arc<File>,
    position: u64,
    segment_size: u64,
    upper_bound: i64,
}

impl ReadPlan {
    /// Copies whole batches (no lock held); see [`read_batches`].
    pub fn execute(&self, max_bytes: usize, min_one: bool) -> std::io::Result<Vec<u8>> {
        read_batches(&self.file, self.position, self.segment_size, max_bytes, self.upper_bound, min_one)
    }

    /// Measures whole batches without copying them (no lock held); see [`locate_batches`].
    pub fn locate(&self, max_bytes: usize, min_one: bool) -> std::io::Result<FileSlice> {
        locate_batches(&self.file, self.position, self.segment_size, max_bytes, self.upper_bound, min_one)
    }
}

/// One partition's log.
#[derive(Debug)]
pub struct PartitionLog {
    dir: PathBuf,
    config: LogConfig,
    segments: BTreeMap<i64, Segment>,
    log_start_offset: i64,
    /// The log end offset, durable offset and high watermark (see [`crate::offsets`]).
    log_end_offset: i64,
    durable_offset: i64,
    high_watermark: i64,
    checkpointed: Checkpoint,
    unflushed: Vec<Arc<File>>,
    dir_dirty: bool,
    /// Writes the checkpoint file; `checkpoint_seq` numbers its versions.
    checkpoint_writer: CheckpointWriter,
    checkpoint_seq: u64,
    /// `checkpointed` holds news (the cleaner offset) for the next flush to write.
    checkpoint_dirty: bool,
    epochs: LeaderEpochCache,
    producers: ProducerState,
    offline: Option<String>,
    /// This instance's number (see [`NEXT_INSTANCE`]).
    instance: u64,
    /// Truncations so far (see [`FlushPlan`]).
    truncations: u64,
    /// Earliest delete horizon of a kept tombstone; `Err` until known.
    tombstone_horizon: std::result::Result<Option<i64>, ()>,
    /// When the high watermark last went into a checkpoint (`None`: not by
    /// this instance): it is written with a flush at most once per
    /// `high_watermark_checkpoint_interval_ms`.
    high_watermark_checkpointed_at: Option<Instant>,
    /// Opened with its high watermark at its log end and nothing has moved
    /// it yet: [`PartitionLog::restore_checkpointed_high_watermark`] may
    /// still lower it to the checkpoint's.
    high_watermark_restorable: bool,
    /// A replicated log (it was restored): flushes checkpoint the high
    /// watermark. A log alone never needs it (it commits its log end).
    high_watermark_checkpointing: bool,
}

fn io_at(path: &Path) -> impl Fn(std::io::Error) -> LogError + '_ {
    move |e| LogError::io(path, e)
}

impl PartitionLog {
    /// Opens (or creates) the log in `dir`. After an unclean shutdown every
    /// batch past the recovery point is validated and a bad tail cut off.
    /// `leader_epoch` is the epoch this replica leads in, assigned at the log
    /// end, or -1 for a follower (whose epochs come only from the leader's
    /// batches: an epoch of its own at its log end would hide a divergent
    /// tail from OffsetForLeaderEpoch).
    pub fn open(
        dir: &Path,
        config: LogConfig,
        clean_shutdown: bool,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<PartitionLog> {
        let writer = (CheckpointWriter { dir: dir.to_path_buf(), written: Arc::default() }, 0);
        PartitionLog::open_with(dir, config, clean_shutdown, leader_epoch, now_ms, writer)
    }

    /// A log that could not be opened: no segments, offline for `reason`.
    /// Every operation fails with [`LogError::Offline`]; nothing is read from
    /// or written to `dir`. [`PartitionLog::reload`] tries to open it again.
    pub fn failed(dir: &Path, config: LogConfig, reason: String) -> PartitionLog {
        PartitionLog {
            dir: dir.to_path_buf(),
            config,
            segments: BTreeMap::new(),
            log_start_offset: 0,
            log_end_offset: 0,
            durable_offset: 0,
            high_watermark: 0,
            checkpointed: Checkpoint::default(),
            unflushed: Vec::new(),
            dir_dirty: false,
            checkpoint_writer: CheckpointWriter { dir: dir.to_path_buf(), written: Arc::default() },
            checkpoint_seq: 0,
            checkpoint_dirty: false,
            epochs: LeaderEpochCache::default(),
            producers: ProducerState::default(),
            offline: Some(reason),
            instance: NEXT_INSTANCE.fetch_add(1, Ordering::Relaxed),
            truncations: 0,
            tombstone_horizon: Err(()),
            high_watermark_checkpointed_at: None,
            high_watermark_restorable: false,
            high_watermark_checkpointing: false,
        }
    }

    /// Opens the log again from its directory, as after a crash (every batch
    /// past the recovery point validated, a bad tail cut, indexes and
    /// producer state rebuilt): for a partition whose in-memory state can no
    /// longer be trusted (a panic while its lock was held). The new instance
    /// keeps this one's checkpoint writer, so a checkpoint this one still has
    /// in flight can never overwrite a newer one; flushes planned by this
    /// instance are ignored by the new one. `leader_epoch` as for
    /// [`PartitionLog::open`].
    pub fn reload(&self, leader_epoch: i32, now_ms: i64) -> Result<PartitionLog> {
        let writer = (self.checkpoint_writer.clone(), self.checkpoint_seq);
        PartitionLog::open_with(&self.dir, self.config, false, leader_epoch, now_ms, writer)
    }

    fn open_with(
        dir: &Path,
        config: LogConfig,
        clean_shutdown: bool,
        leader_epoch: i32,
        now_ms: i64,
        (checkpoint_writer, checkpoint_seq): (CheckpointWriter, u64),
    ) -> Result<PartitionLog> {
        let io = io_at(dir);
        fs::create_dir_all(dir).map_err(&io)?;
        crate::cleaner::finish_interrupted_swaps(dir).map_err(&io)?;
        let checkpoint = Checkpoint::load(dir);
        let mut bases = Vec::new();
        for entry in fs::read_dir(dir).map_err(&io)? {
            let path = entry.map_err(&io)?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
            if name.ends_with(".tmp") {
                let _ = fs::remove_file(&path);
            } else if let Some(stem) = name.strip_suffix(".log")
                && let Ok(base) = stem.parse::<i64>()
            {
                bases.push(base);
            }
        }
        bases.sort_unstable();

        let mut segments = BTreeMap::new();
        let mut cut_after: Option<usize> = None;
        for (i, &base) in bases.iter().enumerate() {
            let may_hold_unflushed = bases.get(i + 1).is_none_or(|&next| next > checkpoint.recovery_point);
            let validate = !clean_shutdown && may_hold_unflushed;
            let (segment, outcome) = Segment::open(dir, base, validate, config.index_interval_bytes).map_err(&io)?;
            if validate {
                segment.file.sync_data().map_err(&io)?;
            }
            segments.insert(base, segment);
            if outcome.truncated {
                tracing::warn!(dir = %dir.display(), base, valid_bytes = outcome.valid_bytes, "cut a torn or corrupt tail off a segment");
                cut_after = Some(i);
                break;
            }
        }
        if let Some(i) = cut_after {
            for &base in &bases[i + 1..] {
                tracing::warn!(dir = %dir.display(), base, "deleting a segment that follows a corrupt tail");
                if let Ok((s, _)) = Segment::open(dir, base, false, config.index_interval_bytes) {
                    s.delete_files(dir).map_err(&io)?;
                }
            }
        }
        if segments.is_empty() {
            let base = checkpoint.log_start_offset.max(0);
            segments.insert(base, Segment::create(dir, base, now_ms).map_err(&io)?);
        }
        let next_offset = segments.values().next_back().map_or(0, |s| s.next_offset);
        let first_base = segments.keys().next().copied().unwrap_or(0);
        let log_start_offset = checkpoint.log_start_offset.max(first_base).min(next_offset);

        // As Kafka's loader: no epoch past the data, none before the log
        // start (a crash in a truncation or a start-over may leave either).
        let mut epochs = LeaderEpochCache::load(dir);
        epochs.truncate_from_end(next_offset);
        epochs.truncate_from_start(log_start_offset);
        epochs.assign(leader_epoch, next_offset);
        epochs.save(dir).map_err(&io)?;

        let mut log = PartitionLog {
            dir: dir.to_path_buf(),
            config,
            segments,
            log_start_offset,
            // Recovery fsynced what it kept, and a replica alone commits
            // what is durable: all three offsets start at the log end.
            log_end_offset: next_offset,
            durable_offset: next_offset,
            high_watermark: next_offset,
            checkpointed: checkpoint,
            unflushed: Vec::new(),
            dir_dirty: false,
            checkpoint_writer,
            checkpoint_seq,
            checkpoint_dirty: false,
            epochs,
            producers: ProducerState::default(),
            offline: None,
            instance: NEXT_INSTANCE.fetch_add(1, Ordering::Relaxed),
            truncations: 0,
            tombstone_horizon: Err(()),
            high_watermark_checkpointed_at: None,
            high_watermark_restorable: true,
            high_watermark_checkpointing: false,
        };
        log.recover_producer_state()?;
        log.write_checkpoint()?;
        File::open(dir).and_then(|d| d.sync_all()).map_err(&io)?;
        Ok(log)
    }

    /// Loads the newest usable producer snapshot and replays the batches after it.
    fn recover_producer_state(&mut self) -> Result<()> {
        let io = io_at(&self.dir);
        let mut snapshots: Vec<(i64, PathBuf)> = fs::read_dir(&self.dir)
            .map_err(&io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter_map(|p| snapshot_offset(&p).map(|o| (o, p)))
            .collect();
        snapshots.sort_by_key(|(o, _)| *o);
        let mut from = self.segments.keys().next().copied().unwrap_or(0);
        for (offset, path) in snapshots.iter().rev() {
            if *offset > self.log_end_offset {
                let _ = fs::remove_file(path);
                continue;
            }
            if let Some(state) = crate::files::read_bounded(path, crate::files::PRODUCER_SNAPSHOT_BYTES_MAX)
                .and_then(|b| ProducerState::decode(&b))
            {
                self.producers = state;
                from = *offset;
                break;
            }
            let _ = fs::remove_file(path);
        }
        let walk: Vec<(Arc<File>, u64, i64)> = self
            .segments
            .values()
            .filter(|s| s.next_offset > from)
            .map(|s| (s.file.clone(), s.size, s.base_offset))
            .collect();
        for (file, size, _) in walk {
            let mut position = 0;
            while let Some(h) = read_header_at(&file, position, size).map_err(&io)? {
                if h.base_offset >= from {
                    self.producers.update(&h);
                }
                position += h.total_len() as u64;
            }
        }
        Ok(())
    }

    /// The directory of this log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// First readable offset.
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }

    /// The log end offset: the offset the next append gets.
    pub fn log_end_offset(&self) -> i64 {
        self.log_end_offset
    }

    /// Every offset below this is on disk (fsynced).
    pub fn durable_offset(&self) -> i64 {
        self.durable_offset
    }

    /// Every offset below this is committed (see [`crate::offsets`]).
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }

    /// The log end offset, durable offset and high watermark together,
    /// their invariants checked.
    pub fn offsets(&self) -> LogOffsets {
        let offsets = LogOffsets {
            log_end_offset: self.log_end_offset,
            durable_offset: self.durable_offset,
            high_watermark: self.high_watermark,
        };
        offsets.check(&self.dir.display());
        offsets
    }

    /// Moves the high watermark forward to `committed` (never back: a
    /// lower value leaves it where it is) and returns it. The caller decides
    /// what is committed: a leader that is its own only in-sync replica
    /// passes its durable offset after each flush. Committing past the log
    /// end is a bug and panics.
    pub fn advance_high_watermark(&mut self, committed: i64) -> i64 {
        assert!(
            committed <= self.log_end_offset,
            "high watermark {committed} asked for past the log end {} of {}",
            self.log_end_offset,
            self.dir.display()
        );
        self.high_watermark_restorable = false;
        self.high_watermark = self.high_watermark.max(committed);
        self.offsets().high_watermark
    }

    /// Bytes held by all segments.
    pub fn size_bytes(&self) -> u64 {
        self.segments.values().map(|s| s.size).sum()
    }

    /// Number of segments.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// The latest leader epoch in the log.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.epochs.latest_epoch()
    }

    /// Replaces the log's config (topic config change).
    pub fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }

    /// The log's config.
    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// Whether an unrecoverable storage error took the partition offline.
    pub fn offline_reason(&self) -> Option<&str> {
        self.offline.as_deref()
    }

    fn check_online(&self) -> Result<()> {
        match &self.offline {
            Some(reason) => Err(LogError::Offline(reason.clone())),
            None => Ok(()),
        }
    }

    fn go_offline(&mut self, reason: String) {
        tracing::error!(dir = %self.dir.display(), %reason, "partition is going offline after a storage error");
        self.offline = Some(reason);
    }

    /// Takes the log offline: every later operation fails with
    /// [`LogError::Offline`] and nothing is flushed, until the log is
    /// reopened ([`PartitionLog::reload`]).
    pub fn take_offline(&mut self, reason: String) {
        if self.offline.is_none() {
            tracing::error!(dir = %self.dir.display(), %reason, "partition is going offline");
            self.offline = Some(reason);
        }
    }

    /// Checks the idempotent producer state for a batch without appending.
    pub fn check_sequence(&self, header: &BatchHeader) -> Result<SequenceCheck> {
        self.producers.check(header)
    }

    /// Appends a validated batch: idempotence check, offset and epoch
    /// assignment, LogAppendTime, roll if needed, write. The header is
    /// rewritten in a copy; the record bytes go to the file from where they
    /// are. The data is not durable until a flush covers it.
    pub fn append(&mut self, batch: &[u8], info: &AppendInfo) -> Result<AppendOutcome> {
        self.check_online()?;
        let header =
            BatchHeader::parse(batch).map_err(|e| LogError::io(&self.dir, std::io::Error::other(e.to_string())))?;
        if let SequenceCheck::Duplicate(b) = self.producers.check(&header)? {
            return Ok(AppendOutcome::Duplicate {
                base_offset: b.base_offset,
                last_offset: b.base_offset + i64::from(b.last_offset_delta),
            });
        }
        if batch.len() > STORED_BATCH_BYTES_MAX {
            return Err(LogError::BatchTooLarge { size: batch.len(), max: STORED_BATCH_BYTES_MAX });
        }
        if batch.len() as u64 > self.config.segment_bytes {
            return Err(LogError::BatchLargerThanSegment {
                size: batch.len(),
                segment_bytes: self.config.segment_bytes,
            });
        }
        let batch_timestamp = if info.log_append_time { info.now_ms } else { info.max_timestamp };
        self.maybe_roll(batch.len(), &header, self.log_end_offset, batch_timestamp, info.now_ms)?;

        // parse() checked that the whole header is there.
        let (head_bytes, records) = batch.split_at(BATCH_HEADER_LEN);
        let mut head = [0u8; BATCH_HEADER_LEN];
        head.copy_from_slice(head_bytes);
        let base_offset = self.log_end_offset;
        set_base_offset(&mut head, base_offset);
        set_partition_leader_epoch(&mut head, info.leader_epoch);
        let (max_timestamp, offset_of_max, log_append_time_ms) = if info.log_append_time {
            mark_log_append_time(&mut head, info.now_ms);
            reseal(&mut head, records);
            (info.now_ms, base_offset, info.now_ms)
        } else {
            if header.max_timestamp != info.max_timestamp {
                set_max_timestamp_field(&mut head, info.max_timestamp);
                reseal(&mut head, records);
            }
            (info.max_timestamp, base_offset + i64::from(info.offset_delta_of_max_timestamp), -1)
        };
        let header = BatchHeader { base_offset, partition_leader_epoch: info.leader_epoch, max_timestamp, ..header };
        // Offsets strictly increase: a batch holds at least one offset and
        // starts at the log end (validation refused anything else).
        assert!(
            header.last_offset_delta >= 0 && header.next_offset() > self.log_end_offset,
            "a batch at {base_offset} with last offset delta {} would not advance the log end {} of {}",
            header.last_offset_delta,
            self.log_end_offset,
            self.dir.display()
        );

        if self.epochs.assign(info.leader_epoch, base_offset)
            && let Err(e) = self.epochs.save(&self.dir)
        {
            self.go_offline(format!("cannot write the leader epoch checkpoint: {e}"));
            return Err(LogError::io(&self.dir, e));
        }
        let interval = self.config.index_interval_bytes;
        let Some(active) = self.segments.values_mut().next_back() else {
            return Err(LogError::Offline("no active segment".to_string()));
        };
        if let Err(e) = active.append(&head, records, &header, interval, max_timestamp, offset_of_max) {
            // A failed write was cut back; a failed cut-back is not recoverable here.
            let path = active.path.clone();
            if active.file.metadata().map(|m| m.len()).ok() != Some(active.size) {
                self.go_offline(format!("write to {} failed and could not be undone: {e}", path.display()));
            }
            return Err(LogError::io(path, e));
        }
        self.producers.update(&header);
        self.log_end_offset = header.next_offset();
        Ok(AppendOutcome::Appended { base_offset, last_offset: header.last_offset(), log_append_time_ms })
    }

    /// Rolls when the segment is full, when its age exceeds `segment.ms`, or
    /// before relative offsets would overflow. Age follows Kafka: the new
    /// batch's timestamp minus the segment's first batch timestamp, or wall
    /// time since creation when the segment has no timestamps. `base_offset`
    /// is the offset the batch will start at.
    fn maybe_roll(
        &mut self,
        batch_len: usize,
        header: &BatchHeader,
        base_offset: i64,
        batch_timestamp: i64,
        now_ms: i64,
    ) -> Result<()> {
        let Some(active) = self.segments.values().next_back() else {
            return Ok(());
        };
        if active.is_empty() {
            return Ok(());
        }
        let full = active.size + batch_len as u64 > self.config.segment_bytes;
        let waited = match active.first_batch_timestamp.filter(|&t| t >= 0) {
            Some(first) => batch_timestamp.saturating_sub(first),
            None => now_ms.saturating_sub(active.created_ms),
        };
        let aged = waited > self.config.segment_ms;
        let offsets_overflow =
            base_offset - active.base_offset + i64::from(header.last_offset_delta) >= i64::from(u32::MAX);
        if full || aged || offsets_overflow {
            self.roll(now_ms)?;
        }
        Ok(())
    }

    /// Closes the active segment and starts a new one at the log end.
    pub fn roll(&mut self, now_ms: i64) -> Result<()> {
        let io = io_at(&self.dir);
        if let Some(active) = self.segments.values().next_back() {
            active.write_indexes(&self.dir).map_err(&io)?;
            self.unflushed.push(active.file.clone());
        }
        let base = self.log_end_offset;
        let segment = Segment::create(&self.dir, base, now_ms).map_err(&io)?;
        self.segments.insert(base, segment);
        self.dir_dirty = true;
        let snapshot = self.dir.join(snapshot_file_name(base));
        crate::index::write_file_synced(&snapshot, &self.producers.encode()).map_err(&io)?;
        self.delete_old_snapshots(base);
        Ok(())
    }

    fn delete_old_snapshots(&self, keep_from: i64) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        let mut snapshots: Vec<(i64, PathBuf)> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter_map(|p| snapshot_offset(&p).map(|o| (o, p)))
            .collect();
        snapshots.sort_by_key(|(o, _)| *o);
        // Keep the two newest at or below keep_from so a torn newest still leaves one.
        let keep: Vec<i64> = snapshots.iter().filter(|(o, _)| *o <= keep_from).rev().take(2).map(|(o, _)| *o).collect();
        for (o, p) in snapshots {
            if o <= keep_from && !keep.contains(&o) {
                let _ = fs::remove_file(p);
            }
        }
    }

    /// What to fsync to make every appended batch durable, or `None` if all is.
    pub fn flush_plan(&mut self) -> Option<FlushPlan> {
        if self.offline.is_some()
            || (self.durable_offset == self.log_end_offset
                && self.unflushed.is_empty()
                && !self.dir_dirty
                && !self.checkpoint_dirty)
        {
            return None;
        }
        let mut files = std::mem::take(&mut self.unflushed);
        if let Some(active) = self.segments.values().next_back() {
            files.push(active.file.clone());
        }
        let dir = std::mem::take(&mut self.dir_dirty).then(|| self.dir.clone());
        self.checkpoint_high_watermark_if_due();
        let checkpoint = std::mem::take(&mut self.checkpoint_dirty).then(|| {
            self.checkpoint_seq += 1;
            let c = Checkpoint { log_start_offset: self.log_start_offset, ..self.checkpointed };
            (self.checkpoint_writer.clone(), self.checkpoint_seq, c)
        });
        Some(FlushPlan {
            files,
            dir,
            checkpoint,
            target: self.log_end_offset,
            instance: self.instance,
            truncations: self.truncations,
        })
    }

    /// Records the outcome of a [`FlushPlan`]. A failed fsync takes the
    /// partition offline: what the OS dropped cannot be known. A plan made
    /// by another instance of the log (before a reload) changes nothing.
    pub fn complete_flush(&mut self, plan: &FlushPlan, outcome: std::io::Result<()>) -> Result<i64> {
        if plan.instance != self.instance {
            return Ok(self.durable_offset);
        }
        if let Err(e) = outcome {
            self.go_offline(format!("fsync failed: {e}"));
            return Err(LogError::io(&self.dir, e));
        }
        if plan.truncations != self.truncations {
            // Planned before a truncation: what it synced may since have been
            // cut and written anew. The next flush covers the log as it is.
            return Ok(self.durable_offset);
        }
        let target = plan.target;
        assert!(
            target <= self.log_end_offset,
            "a flush made offsets durable up to {target}, past the log end {} ({})",
            self.log_end_offset,
            self.dir.display()
        );
        self.durable_offset = self.durable_offset.max(target);
        self.offsets();
        let rolled_since_checkpoint =
            self.segments.keys().next_back().is_some_and(|&b| b > self.checkpointed.recovery_point);
        if rolled_since_checkpoint {
            // Closed segments are durable now: move the recovery point to the active segment.
            let recovery_point = self.segments.keys().next_back().copied().unwrap_or(0).min(self.durable_offset);
            if recovery_point > self.checkpointed.recovery_point {
                self.checkpointed.recovery_point = recovery_point;
                self.write_checkpoint()?;
            }
        }
        Ok(self.durable_offset)
    }

    /// Puts the high watermark of a replicated log into the checkpoint the
    /// next flush writes, if it moved and the last one is
    /// `high_watermark_checkpoint_interval_ms` old (or this instance wrote
    /// none).
    fn checkpoint_high_watermark_if_due(&mut self) {
        let interval = Duration::from_millis(self.config.high_watermark_checkpoint_interval_ms);
        if !self.high_watermark_checkpointing
            || self.checkpointed.high_watermark.is_some_and(|hw| hw >= self.high_watermark)
            || self.high_watermark_checkpointed_at.is_some_and(|at| at.elapsed() < interval)
        {
            return;
        }
        self.checkpointed.high_watermark = Some(self.high_watermark);
        self.high_watermark_checkpointed_at = Some(Instant::now());
        self.checkpoint_dirty = true;
    }

    /// The high watermark of the checkpoint this log was opened with (or
    /// wrote since), if any.
    pub fn checkpointed_high_watermark(&self) -> Option<i64> {
        self.checkpointed.high_watermark
    }

    /// Makes this a replicated log: from now on its flushes checkpoint its
    /// high watermark, and, just opened, its high watermark comes down from
    /// the log end (what a replica alone may commit) to the checkpointed
    /// one (the log start when none was written), never above the log end.
    /// A replica's log end may hold records no other replica has; showing
    /// them as committed would let a restarted leader answer a retried
    /// acks=all batch, or show consumers records a leader change then
    /// replaces. The high watermark is left alone once it has been moved
    /// (or restored) since the open. Returns the high watermark.
    pub fn restore_checkpointed_high_watermark(&mut self) -> i64 {
        self.high_watermark_checkpointing = true;
        if std::mem::take(&mut self.high_watermark_restorable) {
            let restored = self.checkpointed.high_watermark.unwrap_or(self.log_start_offset);
            self.high_watermark = restored.clamp(self.log_start_offset, self.log_end_offset);
            self.offsets();
        }
        self.high_watermark
    }

    fn write_checkpoint(&mut self) -> Result<()> {
        let c = Checkpoint { log_start_offset: self.log_start_offset, ..self.checkpointed };
        self.checkpoint_seq += 1;
        self.checkpoint_writer.write(self.checkpoint_seq, &c).map_err(io_at(&self.dir))?;
        self.checkpointed = c;
        self.checkpoint_dirty = false;
        Ok(())
    }

    /// Plans a read at `offset` of batches below `upper_bound` (the high
    /// watermark). `Ok(None)` when `offset == upper_bound` (nothing yet).
    pub fn plan_read(&self, offset: i64, upper_bound: i64) -> Result<Option<ReadPlan>> {
        self.check_online()?;
        self.offsets();
        // The caller's bound (a published high watermark) may predate a
        // reload that cut a corrupt tail: never read past what the log holds.
        let upper_bound = upper_bound.min(self.log_end_offset);
        if offset < self.log_start_offset || offset > upper_bound {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                end_offset: upper_bound,
            });
        }
        if offset == upper_bound {
            return Ok(None);
        }
        let floor = self.segments.range(..=offset).next_back().map_or(i64::MIN, |(&b, _)| b);
        for segment in self.segments.range(floor..).map(|(_, s)| s) {
            if let Some((position, header)) = segment.find(offset).map_err(io_at(&segment.path))? {
                if header.base_offset >= upper_bound {
                    return Ok(None);
                }
                return Ok(Some(ReadPlan {
                    file: segment.file.clone(),
                    position,
                    segment_size: segment.size,
                    upper_bound,
                }));
            }
        }
        Ok(None)
    }

    /// Plans ListOffsets by time: the first offset whose record timestamp is
    /// at least `timestamp`, among records in `[log start, upper_bound)`. The
    /// plan holds the segment files to search; [`TimestampSearch::run`] reads
    /// and decompresses them without the partition's lock.
    pub fn plan_timestamp_search(&self, timestamp: i64, upper_bound: i64) -> Result<TimestampSearch> {
        self.check_online()?;
        let segments = self
            .segments
            .values()
            .filter(|s| s.max_timestamp >= timestamp)
            .map(|s| SearchSegment {
                file: s.file.clone(),
                path: s.path.clone(),
                size: s.size,
                start: s.position_for_timestamp(timestamp),
            })
            .collect();
        Ok(TimestampSearch { timestamp, upper_bound, log_start_offset: self.log_start_offset, segments })
    }

    /// [`PartitionLog::plan_timestamp_search`] and its run in one step (under the lock).
    pub fn offset_for_timestamp(&self, timestamp: i64, upper_bound: i64) -> Result<Option<(i64, i64)>> {
        self.plan_timestamp_search(timestamp, upper_bound)?.run()
    }

    /// The record with the largest timestamp below `upper_bound` (ListOffsets -3):
    /// its offset and timestamp.
    pub fn max_timestamp(&self, upper_bound: i64) -> Option<(i64, i64)> {
        self.segments
            .values()
            .filter(|s| {
                s.max_timestamp >= 0
                    && s.offset_of_max_timestamp < upper_bound
                    && s.offset_of_max_timestamp >= self.log_start_offset
            })
            .fold(None, |best: Option<(i64, i64)>, s| match best {
                Some((_, t)) if t >= s.max_timestamp => best,
                _ => Some((s.offset_of_max_timestamp, s.max_timestamp)),
            })
    }

    /// The epoch covering `offset`.
    pub fn epoch_for_offset(&self, offset: i64) -> Option<i32> {
        self.epochs.epoch_for_offset(offset)
    }

    /// OffsetForLeaderEpoch (Kafka's `endOffsetForEpoch`): the largest epoch
    /// ≤ `requested` and the offset where it ends, the log end offset for
    /// the latest epoch; `(-1, -1)` when it is not known (see
    /// [`LeaderEpochCache::end_offset_for`]). A follower finds where its log
    /// diverges from this one with it.
    pub fn end_offset_for_epoch(&self, requested: i32) -> (i32, i64) {
        self.epochs.end_offset_for(requested, self.log_end_offset)
    }

    /// The leader epoch cache's entries (epoch, start offset), ascending.
    pub fn epoch_entries(&self) -> &[(i32, i64)] {
        self.epochs.entries()
    }

    /// Records that `epoch` starts at the log end (this replica became its
    /// leader; Kafka's `maybeAssignEpochStartOffset` on becoming leader).
    pub fn assign_epoch(&mut self, epoch: i32) -> Result<()> {
        if self.epochs.assign(epoch, self.log_end_offset) {
            self.epochs.save(&self.dir).map_err(io_at(&self.dir))?;
        }
        Ok(())
    }

    /// DeleteRecords: moves the log start to `offset` (-1 = `upper_bound`),
    /// which must not exceed `upper_bound`. Returns the new low watermark and
    /// the files of the segments wholly below it, renamed for
    /// [`RetiredFiles::remove`] to unlink once the caller has let go of the
    /// log's lock.
    pub fn delete_records(&mut self, offset: i64, upper_bound: i64, now_ms: i64) -> Result<(i64, RetiredFiles)> {
        self.check_online()?;
        let target = if offset == -1 { upper_bound } else { offset };
        if target < 0 || target > upper_bound {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                end_offset: upper_bound,
            });
        }
        let mut retired = RetiredFiles::default();
        if target > self.log_start_offset {
            self.log_start_offset = target;
            self.write_checkpoint()?;
            self.delete_segments_while(now_ms, &mut retired, |s, start| s.next_offset <= start)?;
            self.epochs.truncate_from_start(self.log_start_offset);
            self.epochs.save(&self.dir).map_err(io_at(&self.dir))?;
        }
        Ok((self.log_start_offset, retired))
    }

    /// Applies retention by time, size and log start offset to segments wholly
    /// below `upper_bound`. Returns how many segments were deleted, and their
    /// files, renamed for [`RetiredFiles::remove`] to unlink once the caller
    /// has let go of the log's lock.
    pub fn apply_retention(&mut self, now_ms: i64, upper_bound: i64) -> Result<(usize, RetiredFiles)> {
        let mut retired = RetiredFiles::default();
        if self.offline.is_some() {
            return Ok((0, retired));
        }
        self.producers.expire(now_ms.saturating_sub(self.config.producer_id_expiration_ms));
        let config = self.config;
        let mut total: i64 = self.size_bytes() as i64;
        let deleted = self.delete_segments_while(now_ms, &mut retired, |s, start| {
            if s.is_empty() || s.next_offset > upper_bound {
                return false;
            }
            let by_start = s.next_offset <= start;
            let by_time = config.delete_policy
                && config.retention_ms >= 0
                && s.max_timestamp >= 0
                && now_ms.saturating_sub(s.max_timestamp) > config.retention_ms;
            let by_size =
                config.delete_policy && config.retention_bytes >= 0 && total - s.size as i64 >= config.retention_bytes;
            let delete = by_start || by_time || by_size;
            if delete {
                total -= s.size as i64;
            }
            delete
        })?;
        if deleted > 0 {
            self.epochs.truncate_from_start(self.log_start_offset);
            self.epochs.save(&self.dir).map_err(io_at(&self.dir))?;
        }
        Ok((deleted, retired))
    }

    /// Drops the oldest segments while `predicate(segment, log_start)` holds,
    /// rolling first if the active segment would go too. Their files are
    /// renamed into `retired` (a rename never waits for blocks to be freed);
    /// a crash before they are unlinked leaves `.deleted` files that the next
    /// open removes.
    fn delete_segments_while(
        &mut self,
        now_ms: i64,
        retired: &mut RetiredFiles,
        mut predicate: impl FnMut(&Segment, i64) -> bool,
    ) -> Result<usize> {
        let start = self.log_start_offset;
        let doomed: Vec<i64> =
            self.segments.values().take_while(|s| predicate(s, start)).map(|s| s.base_offset).collect();
        if doomed.is_empty() {
            return Ok(0);
        }
        if doomed.len() == self.segments.len() {
            self.roll(now_ms)?;
        }
        for base in &doomed {
            if let Some(segment) = self.segments.remove(base) {
                segment.retire_files(&self.dir, retired).map_err(io_at(&self.dir))?;
            }
        }
        self.dir_dirty = true;
        let first = self.segments.keys().next().copied().unwrap_or(self.log_end_offset);
        if first > self.log_start_offset {
            self.log_start_offset = first;
            self.write_checkpoint()?;
        }
        Ok(doomed.len())
    }

    /// Rolls the active segment of a compacted log once its oldest record is
    /// older than `max.compaction.lag.ms`, so the cleaner may reach it.
    pub fn roll_for_compaction(&mut self, now_ms: i64) -> Result<bool> {
        let lag = self.config.compaction.max_compaction_lag_ms;
        if !self.config.compaction.enabled || lag == i64::MAX || self.offline.is_some() {
            return Ok(false);
        }
        let Some(active) = self.segments.values().next_back() else {
            return Ok(false);
        };
        let oldest = active.first_batch_timestamp.filter(|&t| t >= 0).unwrap_or(active.created_ms);
        if active.is_empty() || now_ms.saturating_sub(oldest) <= lag {
            return Ok(false);
        }
        self.roll(now_ms)?;
        Ok(true)
    }

    /// What the cleaner needs to compact this log: the closed segments wholly
    /// below `upper_bound` (the high watermark). `None` when the log is not
    /// compacted, offline, or has no closed segment.
    pub fn clean_snapshot(&self, upper_bound: i64) -> Option<CleanSnapshot> {
        if !self.config.compaction.enabled || self.offline.is_some() {
            return None;
        }
        let bases: Vec<i64> = self.segments.keys().copied().collect();
        let mut segments = Vec::new();
        for (i, s) in self.segments.values().enumerate() {
            let Some(&end) = bases.get(i + 1) else {
                break; // the active segment
            };
            if end > upper_bound {
                break;
            }
            segments.push(SourceSegment {
                base_offset: s.base_offset,
                end,
                size: s.size,
                max_timestamp: s.max_timestamp,
                first_batch_timestamp: s.first_batch_timestamp,
                file: s.file.clone(),
            });
        }
        if segments.is_empty() {
            return None;
        }
        Some(CleanSnapshot {
            dir: self.dir.clone(),
            config: self.config,
            segments,
            first_dirty: self.checkpointed.cleaner_offset,
            tombstone_horizon: self.tombstone_horizon,
        })
    }

    /// Remembers the earliest tombstone horizon the cleaner found by scanning.
    pub fn set_tombstone_horizon(&mut self, horizon: Option<i64>) {
        self.tombstone_horizon = Ok(horizon);
    }

    /// Swaps published cleaned segments in for the ones they were made from.
    /// A group whose originals changed meanwhile (deleted by retention or
    /// DeleteRecords) is dropped. Returns the number of groups swapped in.
    ///
    /// Under the lock this only renames: the new segments, their indexes and
    /// the `.swap` names were synced by the cleaner before (see
    /// [`Cleaned::publish`]), so a crash at any point here is finished by the
    /// next open; the replaced files are renamed to `.deleted`, and the caller
    /// unlinks them after releasing the lock ([`RetiredFiles::remove`]). The next flush (see [`PartitionLog::flush_plan`]) syncs the
    /// directory and writes the new cleaner offset to the checkpoint, without
    /// the lock; if a crash comes first, the next clean only redoes work.
    pub fn commit_clean(&mut self, published: PublishedClean) -> Result<(usize, RetiredFiles)> {
        let cleaned = published.0;
        let mut retired = RetiredFiles::default();
        if let Err(e) = self.check_online() {
            cleaned.discard();
            return Err(e);
        }
        if cleaned.dir != self.dir {
            cleaned.discard();
            return Ok((0, retired));
        }
        let dir = self.dir.clone();
        let (end, horizon) = (cleaned.end, cleaned.tombstone_horizon);
        let active_base = self.segments.keys().next_back().copied().unwrap_or(i64::MAX);
        let mut swapped = 0;
        for group in cleaned.groups {
            let base = group.segment.base_offset;
            let current: Vec<(i64, u64)> = self.segments.range(base..group.end).map(|(&b, s)| (b, s.size)).collect();
            if current != group.replaces || group.end > active_base {
                tracing::info!(dir = %dir.display(), base, "segments changed while cleaning; dropping that part of the clean");
                group.discard(&dir);
                continue;
            }
            // From the first unlink on, memory and disk differ until the
            // swap is in: on error the log goes offline until a restart
            // finishes the swap.
            if let Err(e) = self.swap_in(group, &mut retired) {
                self.go_offline(format!("swapping in a cleaned segment failed: {e}"));
                return Err(LogError::io(&dir, e));
            }
            swapped += 1;
        }
        self.dir_dirty = true;
        self.checkpointed.cleaner_offset = end;
        self.checkpoint_dirty = true;
        self.tombstone_horizon = Ok(horizon);
        Ok((swapped, retired))
    }

    fn swap_in(&mut self, group: CleanedGroup, retired: &mut RetiredFiles) -> std::io::Result<()> {
        for (base, _) in &group.replaces {
            if let Some(old) = self.segments.remove(base) {
                old.retire_files(&self.dir, retired)?;
            }
        }
        let mut segment = group.segment;
        let (log_path, index_path, time_path) = Segment::paths(&self.dir, segment.base_offset);
        let (cleaned_index, cleaned_time) = cleaned_index_paths(&self.dir, segment.base_offset);
        fs::rename(&segment.path, &log_path)?;
        fs::rename(cleaned_index, index_path)?;
        fs::rename(cleaned_time, time_path)?;
        segment.path = log_path;
        self.segments.insert(segment.base_offset, segment);
        Ok(())
    }

    /// Makes everything durable and writes indexes, a producer snapshot and
    /// the checkpoint, so the next start needs no recovery.
    pub fn close(&mut self) -> Result<()> {
        if self.offline.is_some() {
            return Ok(());
        }
        if let Some(plan) = self.flush_plan() {
            let outcome = plan.execute();
            self.complete_flush(&plan, outcome)?;
        }
        let dir = self.dir.clone();
        let io = io_at(&dir);
        if let Some(active) = self.segments.values().next_back() {
            active.write_indexes(&dir).map_err(&io)?;
        }
        let snapshot = dir.join(snapshot_file_name(self.log_end_offset));
        crate::index::write_file_synced(&snapshot, &self.producers.encode()).map_err(&io)?;
        self.delete_old_snapshots(self.log_end_offset);
        self.checkpointed.recovery_point = self.log_end_offset;
        self.write_checkpoint()?;
        File::open(&dir).and_then(|d| d.sync_all()).map_err(&io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deferred_checkpoint_never_overwrites_a_newer_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let writer = CheckpointWriter { dir: dir.path().to_path_buf(), written: Arc::default() };
        let older = Checkpoint { recovery_point: 10, log_start_offset: 0, cleaner_offset: 5, high_watermark: None };
        let newer = Checkpoint { recovery_point: 20, log_start_offset: 7, cleaner_offset: 5, high_watermark: Some(9) };
        // Version 1 was planned first, but version 2 (written under the lock) reached the disk first.
        writer.write(2, &newer).expect("write newer");
        writer.write(1, &older).expect("skip older");
        assert_eq!(Checkpoint::load(dir.path()), newer);
        writer.write(3, &older).expect("write");
        assert_eq!(Checkpoint::load(dir.path()), older);
    }
}
