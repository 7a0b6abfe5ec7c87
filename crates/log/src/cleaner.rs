//! Log compaction for topics whose `cleanup.policy` includes `compact`: keep
//! the latest record of every key in the segments behind the active one,
//! drop tombstones once their delete horizon has passed, and swap the
//! cleaned segments in without a window where a crash loses a latest value.
//!
//! ```text
//!  snapshot (lock)      offset map (no lock)      survey (no lock)        rewrite (no lock)       commit (lock)
//!  closed, durable  ──▶ key → latest offset  ──▶  which segments the ──▶  <base>.log.cleaned  ──▶ rename to <base>.<end>.swap,
//!  segments and the     over the dirty            map shadows or hold     per run of changed      delete the old segments,
//!  first dirty offset   segments, within          expired tombstones      segments (each run      rename to <base>.log, indexes
//!                       log.cleaner.dedupe.buffer (the rest stays as is)  ≤ segment.bytes)
//! ```
//!
//! A pass rewrites only the segments it changes (see [`survey`]): a segment,
//! clean or dirty, in which no record is shadowed by the map, no tombstone's
//! horizon has passed and no tombstone still needs one is left as it is, so
//! what a pass writes follows what it removes rather than the log's size.
//! Small neighbouring segments that are rewritten anyway are merged into
//! groups of at most `segment.bytes`; a segment left alone ends a group
//! (unless it is empty: folding it in costs nothing).
//!
//! A record survives when it has no key, or when no later record in the
//! dirty part has its key. A kept tombstone's batch gets a delete horizon
//! (now + `delete.retention.ms`, written into the batch's base timestamp with
//! the delete-horizon attribute bit, record timestamp deltas re-based so
//! every record keeps its timestamp); a later clean after that horizon drops
//! the tombstone. Offsets never change; batches keep their base offset,
//! producer fields and codec, and a batch left without records is dropped.
//!
//! Crash safety: both renames come after an fsync of what they publish, and
//! each swap names the offset range it replaces, so whatever subset of the
//! segments a pass rewrites, the ones it left alone are outside every range. A
//! `.cleaned` file on open is an unfinished clean and is deleted. A
//! `<base>.<end>.swap` file is a finished one: [`finish_interrupted_swaps`]
//! deletes every segment whose base offset lies in `[base, end)` and renames
//! the swap file to `<base>.log`.

use std::collections::HashMap;
use std::fs::{self, File};
use std::ops::ControlFlow;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tributary_record::batch::{ATTR_DELETE_HORIZON, BATCH_HEADER_LEN};
use tributary_record::builder::{BatchFields, assemble_batch, encode_record};
use tributary_record::records::RecordIter;
use tributary_record::{BatchHeader, Compression, DECOMPRESSED_BATCH_BYTES_MAX, STORED_BATCH_BYTES_MAX};

use crate::error::{LogError, Result};
use crate::log::LogConfig;
use crate::retired::DELETED_SUFFIX;
use crate::segment::{Segment, file_stem, read_header_at};

mod survey;

use survey::{RecordFate, Survey, delete_horizon_passed, record_fate, survey_segment};

/// Every this many bytes the cleaner starts writeback of what it wrote
/// (without waiting for it) and drops it from the page cache. On ext4 a
/// produce's fsync commits the journal, which first writes out every file's
/// newly allocated dirty pages, so a large backlog of cleaner output would
/// stall produce acknowledgements on other partitions.
const WRITEBACK_EVERY_BYTES: u64 = 4 << 20;
/// Estimated map bytes per key besides the key itself (hash slot, box, offset).
const MAP_ENTRY_OVERHEAD_BYTES: usize = 48;

/// Compaction settings of one log, from its topic config.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompactionConfig {
    /// `cleanup.policy` includes `compact`.
    pub enabled: bool,
    /// `min.cleanable.dirty.ratio`.
    pub min_cleanable_dirty_ratio: f64,
    /// `min.compaction.lag.ms`: a segment whose newest record is younger stays dirty.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: a dirty record older than this forces a clean.
    pub max_compaction_lag_ms: i64,
    /// `delete.retention.ms`: how long a tombstone survives after its first clean.
    pub delete_retention_ms: i64,
}

impl Default for CompactionConfig {
    fn default() -> Self {
        CompactionConfig {
            enabled: false,
            min_cleanable_dirty_ratio: 0.5,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            delete_retention_ms: 86_400_000,
        }
    }
}

/// Limits shared by every clean (broker configs).
#[derive(Debug, Clone, Copy)]
pub struct CleanerLimits {
    /// `log.cleaner.dedupe.buffer.size`: memory for the key → offset map.
    pub dedupe_buffer_bytes: usize,
    /// `log.cleaner.io.max.bytes.per.second` (read + written); infinite = unthrottled.
    pub io_bytes_per_second: f64,
}

impl Default for CleanerLimits {
    fn default() -> Self {
        CleanerLimits { dedupe_buffer_bytes: 128 << 20, io_bytes_per_second: (50 << 20) as f64 }
    }
}

/// A closed segment as the cleaner sees it.
#[derive(Debug, Clone)]
pub(crate) struct SourceSegment {
    pub(crate) base_offset: i64,
    /// Base offset of the segment after it: the boundary a clean may end at.
    pub(crate) end: i64,
    pub(crate) size: u64,
    pub(crate) max_timestamp: i64,
    pub(crate) first_batch_timestamp: Option<i64>,
    pub(crate) file: Arc<File>,
}

/// What a clean needs from a log, taken under its lock by
/// [`crate::PartitionLog::clean_snapshot`]; the files stay readable after.
#[derive(Debug)]
pub struct CleanSnapshot {
    pub(crate) dir: PathBuf,
    pub(crate) config: LogConfig,
    /// Closed, fully durable segments, oldest first.
    pub(crate) segments: Vec<SourceSegment>,
    /// Offsets below this were cleaned before (a segment boundary).
    pub(crate) first_dirty: i64,
    /// Earliest delete horizon among kept tombstones, `None` if there is none;
    /// `Err(())` when unknown (not yet scanned since the log was opened).
    pub(crate) tombstone_horizon: std::result::Result<Option<i64>, ()>,
}

/// Why a log is due for cleaning, or how dirty it is when it is not.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cleanability {
    /// Dirty bytes over all bytes of the cleanable segments.
    pub dirty_ratio: f64,
    /// Dirty bytes that may be cleaned now.
    pub dirty_bytes: u64,
    /// Whether a clean should run now.
    pub due: bool,
}

impl CleanSnapshot {
    /// The boundary below which segments may be cleaned: `min.compaction.lag.ms`
    /// holds back every segment from the first one with a record that young.
    fn cleanable_end(&self, now_ms: i64) -> i64 {
        let lag = self.config.compaction.min_compaction_lag_ms;
        let mut end = self.segments.first().map_or(self.first_dirty, |s| s.base_offset);
        for s in &self.segments {
            if lag > 0 && s.max_timestamp > now_ms.saturating_sub(lag) {
                break;
            }
            end = s.end;
        }
        end
    }

    fn first_dirty(&self) -> i64 {
        let first = self.segments.first().map_or(self.first_dirty, |s| s.base_offset);
        self.first_dirty.max(first)
    }

    /// How dirty the log is and whether it should be cleaned now.
    pub fn cleanability(&self, now_ms: i64) -> Cleanability {
        let end = self.cleanable_end(now_ms);
        let first_dirty = self.first_dirty();
        let cleanable = self.segments.iter().filter(|s| s.end <= end);
        let (mut total, mut dirty) = (0u64, 0u64);
        let mut oldest_dirty: Option<i64> = None;
        for s in cleanable {
            total += s.size;
            if s.base_offset >= first_dirty {
                dirty += s.size;
                let t = s.first_batch_timestamp.unwrap_or(s.max_timestamp);
                if t >= 0 {
                    oldest_dirty = Some(oldest_dirty.map_or(t, |o| o.min(t)));
                }
            }
        }
        let dirty_ratio = if total == 0 { 0.0 } else { dirty as f64 / total as f64 };
        let config = &self.config.compaction;
        let by_ratio = dirty > 0 && dirty_ratio >= config.min_cleanable_dirty_ratio;
        let by_lag = dirty > 0
            && config.max_compaction_lag_ms < i64::MAX
            && oldest_dirty.is_some_and(|t| now_ms.saturating_sub(t) > config.max_compaction_lag_ms);
        let by_horizon = matches!(self.tombstone_horizon, Ok(Some(h)) if h <= now_ms);
        Cleanability { dirty_ratio, dirty_bytes: dirty, due: config.enabled && (by_ratio || by_lag || by_horizon) }
    }

    /// Whether the earliest tombstone horizon is unknown (see [`CleanSnapshot::scan_tombstone_horizon`]).
    pub fn tombstone_horizon_unknown(&self) -> bool {
        self.tombstone_horizon.is_err()
    }

    /// Reads the batch headers of the cleaned part for the earliest delete
    /// horizon (no lock held; headers only).
    pub fn scan_tombstone_horizon(&mut self) -> std::io::Result<Option<i64>> {
        let first_dirty = self.first_dirty();
        let mut earliest: Option<i64> = None;
        for s in self.segments.iter().filter(|s| s.base_offset < first_dirty) {
            let mut position = 0;
            while let Some(h) = read_header_at(&s.file, position, s.size)? {
                if h.has_delete_horizon() && h.records_count > 0 {
                    earliest = Some(earliest.map_or(h.base_timestamp, |e| e.min(h.base_timestamp)));
                }
                position += h.total_len() as u64;
            }
        }
        self.tombstone_horizon = Ok(earliest);
        Ok(earliest)
    }
}

/// Counters of one clean.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanStats {
    /// Bytes of the segments rewritten.
    pub bytes_read: u64,
    /// Bytes of the cleaned segments.
    pub bytes_written: u64,
    /// Segments rewritten (they were replaced by `groups` new ones).
    pub segments_rewritten: u64,
    /// Segments left as they were: nothing in them was shadowed or expired.
    pub segments_skipped: u64,
    /// Bytes of the segments left as they were (read once to find that out).
    pub bytes_skipped: u64,
    /// Records read.
    pub records_read: u64,
    /// Records kept.
    pub records_kept: u64,
    /// Tombstones dropped because their horizon had passed.
    pub tombstones_dropped: u64,
    /// Distinct keys in the offset map.
    pub keys_mapped: u64,
}

/// A cleaned group of segments waiting to replace the originals.
#[derive(Debug)]
pub(crate) struct CleanedGroup {
    /// `(base offset, size)` of every segment it replaces, in order.
    pub(crate) replaces: Vec<(i64, u64)>,
    /// The boundary after the group.
    pub(crate) end: i64,
    /// The new segment, at its `.cleaned` path until published, then at its
    /// `.swap` path.
    pub(crate) segment: Segment,
}

/// The output of [`clean`]: cleaned segments nobody else can see yet. They
/// take effect through [`Cleaned::publish`] and then
/// [`crate::PartitionLog::commit_clean`].
#[derive(Debug)]
pub struct Cleaned {
    pub(crate) dir: PathBuf,
    pub(crate) groups: Vec<CleanedGroup>,
    /// Offsets below this are clean once committed.
    pub(crate) end: i64,
    pub(crate) tombstone_horizon: Option<i64>,
    /// What the clean did.
    pub stats: CleanStats,
}

/// A clean whose segments are published as `.swap` files: durable, and
/// finished by the next open if the process dies before
/// [`crate::PartitionLog::commit_clean`] swaps them in.
#[derive(Debug)]
pub struct PublishedClean(pub(crate) Cleaned);

impl PublishedClean {
    /// What the clean did.
    pub fn stats(&self) -> CleanStats {
        self.0.stats
    }

    /// Deletes the published files (an abandoned clean).
    pub fn discard(self) {
        self.0.discard();
    }
}

impl Cleaned {
    /// Deletes the cleaned files (an abandoned clean).
    pub fn discard(self) {
        for g in self.groups {
            g.discard(&self.dir);
        }
    }

    /// Publishes the cleaned segments without the log's lock: each becomes
    /// `<base>.<end>.swap`, then the directory is synced. The originals are
    /// untouched, so readers and appends go on; what is published is either
    /// swapped in by [`crate::PartitionLog::commit_clean`] or, after a crash,
    /// by the next open. On error nothing of the clean is left.
    pub fn publish(mut self) -> Result<PublishedClean> {
        for i in 0..self.groups.len() {
            let group = &mut self.groups[i];
            let swap = swap_path(&self.dir, group.segment.base_offset, group.end);
            if let Err(e) = fs::rename(&group.segment.path, &swap) {
                self.discard();
                return Err(LogError::io(&swap, e));
            }
            group.segment.path = swap;
        }
        if self.groups.is_empty() {
            // Every segment was left as it was: nothing to make durable.
            return Ok(PublishedClean(self));
        }
        if let Err(e) = File::open(&self.dir).and_then(|d| d.sync_all()) {
            // Some swaps may be durable already; a crash now finishes them,
            // which is as good as this clean. Without a crash they go.
            let dir = self.dir.clone();
            self.discard();
            return Err(LogError::io(&dir, e));
        }
        Ok(PublishedClean(self))
    }
}

impl CleanedGroup {
    /// Removes the new segment (wherever it stands) and its cleaned indexes.
    pub(crate) fn discard(&self, dir: &Path) {
        let _ = fs::remove_file(&self.segment.path);
        remove_cleaned_files(dir, self.segment.base_offset);
    }
}

/// Path of a cleaned, not yet published segment.
pub(crate) fn cleaned_path(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(format!("{}.log.cleaned", file_stem(base_offset)))
}

/// Paths of a cleaned segment's offset and time indexes, not yet published.
pub(crate) fn cleaned_index_paths(dir: &Path, base_offset: i64) -> (PathBuf, PathBuf) {
    let stem = file_stem(base_offset);
    (dir.join(format!("{stem}.index.cleaned")), dir.join(format!("{stem}.timeindex.cleaned")))
}

/// Path of a published swap: replaces the segments in `[base_offset, end)`.
pub(crate) fn swap_path(dir: &Path, base_offset: i64, end: i64) -> PathBuf {
    dir.join(format!("{}.{}.swap", file_stem(base_offset), file_stem(end)))
}

fn parse_swap_name(name: &str) -> Option<(i64, i64)> {
    let (base, end) = name.strip_suffix(".swap")?.split_once('.')?;
    Some((base.parse().ok()?, end.parse().ok()?))
}

/// Removes unfinished cleans and completes finished ones (see the module
/// docs). Runs when a log opens, before its segments are listed.
pub(crate) fn finish_interrupted_swaps(dir: &Path) -> std::io::Result<()> {
    let mut swaps = Vec::new();
    let mut logs = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        if name.ends_with(".cleaned") {
            tracing::info!(path = %path.display(), "removing an unfinished clean");
            fs::remove_file(&path)?;
        } else if name.ends_with(DELETED_SUFFIX) {
            // Replaced by a committed clean; only its unlink was left to do.
            fs::remove_file(&path)?;
        } else if let Some((base, end)) = parse_swap_name(&name) {
            swaps.push((base, end, path));
        } else if let Some(stem) = name.strip_suffix(".log")
            && let Ok(base) = stem.parse::<i64>()
        {
            logs.push(base);
        }
    }
    if swaps.is_empty() {
        return Ok(());
    }
    for (base, end, path) in swaps {
        tracing::info!(path = %path.display(), "completing a clean interrupted by a crash");
        for &old in logs.iter().filter(|&&b| b >= base && b < end) {
            Segment::remove_files(dir, old)?;
        }
        // The originals' indexes are gone; the swap's are rebuilt when it opens.
        Segment::remove_files(dir, base)?;
        fs::rename(&path, Segment::paths(dir, base).0)?;
    }
    File::open(dir)?.sync_all()
}

/// Paces reads and writes to `log.cleaner.io.max.bytes.per.second`.
#[derive(Debug)]
struct Throttle {
    bytes_per_second: f64,
    started: Instant,
    bytes: u64,
}

impl Throttle {
    fn account(&mut self, bytes: u64) {
        self.bytes += bytes;
        if !self.bytes_per_second.is_finite() || self.bytes_per_second <= 0.0 {
            return;
        }
        let due = Duration::from_secs_f64(self.bytes as f64 / self.bytes_per_second);
        if let Some(wait) = due.checked_sub(self.started.elapsed()) {
            std::thread::sleep(wait);
        }
    }
}

/// Starts writeback of `len` bytes at `offset` and drops them from the page
/// cache (Linux's `POSIX_FADV_DONTNEED` writes dirty pages back without
/// waiting). Advice only: a failure changes nothing but timing.
fn start_writeback(file: &File, offset: u64, len: u64) {
    use rustix::fs::{Advice, fadvise};
    let _ = fadvise(file, offset, std::num::NonZeroU64::new(len), Advice::DontNeed);
}

/// Walks the batches of a segment file, one whole batch at a time, until
/// `f` breaks off.
fn for_each_batch(
    segment: &SourceSegment,
    buf: &mut Vec<u8>,
    mut f: impl FnMut(&BatchHeader, &[u8]) -> Result<ControlFlow<()>>,
) -> Result<()> {
    let io = |e| LogError::io(format!("segment {}", segment.base_offset), e);
    let mut position = 0u64;
    while let Some(h) = read_header_at(&segment.file, position, segment.size).map_err(io)? {
        let len = h.total_len() as u64;
        if position + len > segment.size || len > STORED_BATCH_BYTES_MAX as u64 {
            return Err(io(std::io::Error::other(format!(
                "the batch at position {position} claims {len} bytes, past the end of its segment or the largest batch a log holds"
            ))));
        }
        buf.resize(len as usize, 0);
        segment.file.read_exact_at(buf, position).map_err(io)?;
        if f(&h, buf)?.is_break() {
            break;
        }
        position += len;
    }
    Ok(())
}

fn corrupt(what: impl std::fmt::Display) -> LogError {
    LogError::io("log cleaner", std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string()))
}

/// The uncompressed record bytes of a batch.
fn records_of<'a>(header: &BatchHeader, batch: &'a [u8], scratch: &'a mut Vec<u8>) -> Result<&'a [u8]> {
    let payload = &batch[BATCH_HEADER_LEN..];
    match header.compression().map_err(corrupt)? {
        Compression::None => Ok(payload),
        codec => {
            *scratch = codec.decompress(payload, DECOMPRESSED_BATCH_BYTES_MAX).map_err(corrupt)?;
            Ok(scratch)
        }
    }
}

/// Key → offset of its latest record in the dirty segments.
#[derive(Debug, Default)]
struct OffsetMap {
    latest: HashMap<Box<[u8]>, i64>,
    bytes: usize,
}

impl OffsetMap {
    /// Records `offset` as the latest for `key`; false if a new key would not fit.
    fn put(&mut self, key: &[u8], offset: i64, limit: usize) -> bool {
        if let Some(latest) = self.latest.get_mut(key) {
            *latest = offset;
            return true;
        }
        let cost = key.len() + MAP_ENTRY_OVERHEAD_BYTES;
        if self.bytes + cost > limit {
            return false;
        }
        self.bytes += cost;
        self.latest.insert(key.into(), offset);
        true
    }

    fn is_latest(&self, key: Option<&[u8]>, offset: i64) -> bool {
        key.and_then(|k| self.latest.get(k)).is_none_or(|&latest| offset >= latest)
    }
}

/// Builds the offset map over the dirty segments below `end`. Returns the
/// boundary the map covers completely (a clean may go that far).
fn build_offset_map(
    snapshot: &CleanSnapshot,
    end: i64,
    limits: &CleanerLimits,
    throttle: &mut Throttle,
    stop: &AtomicBool,
    map: &mut OffsetMap,
) -> Result<Option<i64>> {
    let first_dirty = snapshot.first_dirty();
    let mut covered = first_dirty;
    let mut buf = Vec::new();
    let mut scratch = Vec::new();
    for s in snapshot.segments.iter().filter(|s| s.base_offset >= first_dirty && s.end <= end) {
        let mut full = false;
        for_each_batch(s, &mut buf, |h, batch| {
            if full || h.is_control() {
                return Ok(ControlFlow::Continue(()));
            }
            let records = records_of(h, batch, &mut scratch)?;
            for r in RecordIter::new(records) {
                let r = r.map_err(|(i, why)| corrupt(format!("record {i} of batch {}: {why}", h.base_offset)))?;
                if let Some(key) = r.key
                    && !map.put(key, h.base_offset + i64::from(r.offset_delta), limits.dedupe_buffer_bytes)
                {
                    full = true;
                    break;
                }
            }
            throttle.account(batch.len() as u64);
            Ok(ControlFlow::Continue(()))
        })?;
        if stop.load(Ordering::Relaxed) {
            return Ok(None);
        }
        if full {
            // Entries from this segment only point at records that stay (it is
            // not cleaned this time), so they may remain in the map.
            break;
        }
        covered = s.end;
    }
    Ok(Some(covered))
}

/// What happens to one batch.
enum Fate {
    Keep { max_timestamp: i64, offset_of_max: i64, horizon: Option<i64> },
    Drop,
    Rewrite { batch: Vec<u8>, max_timestamp: i64, offset_of_max: i64, horizon: Option<i64> },
}

fn filter_batch(
    h: &BatchHeader,
    batch: &[u8],
    map: &OffsetMap,
    now_ms: i64,
    config: &LogConfig,
    stats: &mut CleanStats,
    scratch: &mut Vec<u8>,
) -> Result<Fate> {
    if h.is_control() {
        return Ok(Fate::Keep { max_timestamp: h.max_timestamp, offset_of_max: h.last_offset(), horizon: None });
    }
    let horizon_passed = delete_horizon_passed(h, now_ms);
    let records = records_of(h, batch, scratch)?;
    let mut kept = Vec::new();
    let mut removed_any = false;
    let mut tombstones_kept = false;
    for r in RecordIter::new(records) {
        let r = r.map_err(|(i, why)| corrupt(format!("record {i} of batch {}: {why}", h.base_offset)))?;
        stats.records_read += 1;
        match record_fate(map, h, &r, horizon_passed) {
            RecordFate::Shadowed => removed_any = true,
            RecordFate::ExpiredTombstone => {
                removed_any = true;
                stats.tombstones_dropped += 1;
            }
            RecordFate::Kept => {
                tombstones_kept |= r.value.is_none();
                kept.push(r);
            }
        }
    }
    stats.records_kept += kept.len() as u64;
    if kept.is_empty() {
        return Ok(Fate::Drop);
    }
    let stamp_horizon = tombstones_kept && !h.has_delete_horizon();
    let new_base_timestamp =
        if stamp_horizon { now_ms.saturating_add(config.compaction.delete_retention_ms) } else { h.base_timestamp };
    let (mut max_timestamp, mut offset_of_max) = (-1i64, h.base_offset);
    for r in &kept {
        let t = h.base_timestamp.saturating_add(r.timestamp_delta);
        if t > max_timestamp {
            max_timestamp = t;
            offset_of_max = h.base_offset + i64::from(r.offset_delta);
        }
    }
    if h.is_log_append_time() {
        max_timestamp = h.max_timestamp;
    }
    let horizon = if tombstones_kept { Some(new_base_timestamp) } else { None };
    if !removed_any && !stamp_horizon {
        return Ok(Fate::Keep { max_timestamp, offset_of_max, horizon });
    }
    let mut raw = Vec::with_capacity(records.len());
    for r in &kept {
        let t = h.base_timestamp.saturating_add(r.timestamp_delta);
        encode_record(r, t.saturating_sub(new_base_timestamp), &mut raw);
    }
    let attributes = if stamp_horizon { h.attributes | ATTR_DELETE_HORIZON } else { h.attributes };
    let fields = BatchFields {
        base_offset: h.base_offset,
        partition_leader_epoch: h.partition_leader_epoch,
        attributes_without_compression: attributes,
        last_offset_delta: h.last_offset_delta,
        base_timestamp: new_base_timestamp,
        max_timestamp: if h.is_log_append_time() { h.max_timestamp } else { max_timestamp },
        producer_id: h.producer_id,
        producer_epoch: h.producer_epoch,
        base_sequence: h.base_sequence,
        records_count: kept.len() as i32,
    };
    let codec = h.compression().map_err(corrupt)?;
    let batch = assemble_batch(&fields, codec, None, &raw);
    Ok(Fate::Rewrite { batch, max_timestamp, offset_of_max, horizon })
}

/// Splits the segments to rewrite into groups of consecutive segments that
/// fit one segment each. `segments` pairs each segment below the clean's end
/// with whether it is rewritten; one that is not ends the group before it,
/// unless it is empty: an empty segment (every record of it was removed by an
/// earlier clean) costs nothing to rewrite, so it joins the group next to it
/// instead of staying behind as a file of its own.
fn plan_groups(segments: &[(&SourceSegment, bool)], segment_bytes: u64) -> Vec<Vec<SourceSegment>> {
    let mut groups: Vec<Vec<SourceSegment>> = Vec::new();
    let mut current: Vec<SourceSegment> = Vec::new();
    // Empty segments just before `current` starts, which it takes in if it does.
    let mut empty_before: Vec<SourceSegment> = Vec::new();
    let mut size = 0u64;
    for &(s, rewrite) in segments {
        let empty = s.size == 0;
        let span_ok = current.first().is_none_or(|f| s.end - f.base_offset < i64::from(i32::MAX));
        let joins = !current.is_empty() && (rewrite || empty) && size + s.size <= segment_bytes && span_ok;
        if joins {
            size += s.size;
            current.push(s.clone());
            continue;
        }
        if !current.is_empty() {
            groups.push(std::mem::take(&mut current));
            size = 0;
        }
        if rewrite {
            current = std::mem::take(&mut empty_before);
            if current.first().is_some_and(|f| s.end - f.base_offset >= i64::from(i32::MAX)) {
                current.clear();
            }
            size = s.size;
            current.push(s.clone());
        } else if empty {
            empty_before.push(s.clone());
        } else {
            empty_before.clear();
        }
    }
    if !current.is_empty() {
        groups.push(current);
    }
    groups
}

/// Cleans the log described by `snapshot` (no lock held). Returns `None` if
/// there was nothing to clean or `stop` was raised (files are removed then).
pub fn clean(
    snapshot: &CleanSnapshot,
    limits: &CleanerLimits,
    now_ms: i64,
    stop: &AtomicBool,
) -> Result<Option<Cleaned>> {
    let mut throttle = Throttle { bytes_per_second: limits.io_bytes_per_second, started: Instant::now(), bytes: 0 };
    let mut stats = CleanStats::default();
    let cleanable_end = snapshot.cleanable_end(now_ms);
    let mut map = OffsetMap::default();
    let Some(end) = build_offset_map(snapshot, cleanable_end, limits, &mut throttle, stop, &mut map)? else {
        return Ok(None);
    };
    stats.keys_mapped = map.latest.len() as u64;
    if end <= snapshot.first_dirty() && !matches!(snapshot.tombstone_horizon, Ok(Some(h)) if h <= now_ms) {
        if snapshot.segments.iter().any(|s| s.base_offset >= snapshot.first_dirty() && s.end <= cleanable_end) {
            tracing::warn!(
                dir = %snapshot.dir.display(),
                limit = limits.dedupe_buffer_bytes,
                "one segment holds more keys than log.cleaner.dedupe.buffer.size can map; raise it to compact this log"
            );
        }
        return Ok(None);
    }
    let mut cleaned = Cleaned { dir: snapshot.dir.clone(), groups: Vec::new(), end, tombstone_horizon: None, stats };
    let (mut buf, mut scratch) = (Vec::new(), Vec::new());
    let mut surveyed = Vec::new();
    for s in snapshot.segments.iter().filter(|s| s.end <= end) {
        let survey = survey_segment(s, &map, now_ms, &mut throttle, &mut buf, &mut scratch)?;
        if stop.load(Ordering::Relaxed) {
            return Ok(None);
        }
        if let Survey::Unchanged { tombstone_horizon } = survey {
            cleaned.tombstone_horizon = earliest(cleaned.tombstone_horizon, tombstone_horizon);
        }
        surveyed.push((s, survey == Survey::Changes));
    }
    let groups = plan_groups(&surveyed, snapshot.config.segment_bytes);
    let rewritten: usize = groups.iter().map(Vec::len).sum();
    cleaned.stats.segments_skipped = (surveyed.len() - rewritten) as u64;
    let all_bytes: u64 = surveyed.iter().map(|(s, _)| s.size).sum();
    let rewritten_bytes: u64 = groups.iter().flatten().map(|s| s.size).sum();
    cleaned.stats.bytes_skipped = all_bytes - rewritten_bytes;
    let mut rewrite = Rewrite { snapshot, map: &map, now_ms, stop, throttle, buf, scratch };
    for group in groups {
        let base = group[0].base_offset;
        let written = rewrite.group(&group, &mut cleaned);
        match written {
            Ok(Some(segment)) => {
                cleaned.stats.segments_rewritten += group.len() as u64;
                let replaces = group.iter().map(|s| (s.base_offset, s.size)).collect();
                let end = group[group.len() - 1].end;
                cleaned.groups.push(CleanedGroup { replaces, end, segment });
            }
            // Stopped, or failed: nothing of this clean stays on disk.
            Ok(None) | Err(_) => {
                remove_cleaned_files(&snapshot.dir, base);
                cleaned.discard();
                return written.map(|_| None);
            }
        }
    }
    Ok(Some(cleaned))
}

/// The state of one clean's rewrite pass.
struct Rewrite<'a> {
    snapshot: &'a CleanSnapshot,
    map: &'a OffsetMap,
    now_ms: i64,
    stop: &'a AtomicBool,
    throttle: Throttle,
    buf: Vec<u8>,
    scratch: Vec<u8>,
}

impl Rewrite<'_> {
    /// Writes the kept batches of `group` into `<base>.log.cleaned`, synced,
    /// with its indexes. `None` if `stop` was raised.
    fn group(&mut self, group: &[SourceSegment], cleaned: &mut Cleaned) -> Result<Option<Segment>> {
        let base = group[0].base_offset;
        let path = cleaned_path(&self.snapshot.dir, base);
        let io = |e| LogError::io(&path, e);
        let interval = self.snapshot.config.index_interval_bytes;
        let mut out = Segment::create_at(&path, base, self.now_ms).map_err(io)?;
        let mut unsynced = 0u64;
        let Rewrite { snapshot, map, now_ms, throttle, buf, scratch, .. } = self;
        for s in group {
            cleaned.stats.bytes_read += s.size;
            for_each_batch(s, buf, |h, batch| {
                let fate = filter_batch(h, batch, map, *now_ms, &snapshot.config, &mut cleaned.stats, scratch)?;
                let (bytes, max_timestamp, offset_of_max, horizon) = match &fate {
                    Fate::Drop => return Ok(ControlFlow::Continue(())),
                    Fate::Keep { max_timestamp, offset_of_max, horizon } => {
                        (batch, *max_timestamp, *offset_of_max, *horizon)
                    }
                    Fate::Rewrite { batch, max_timestamp, offset_of_max, horizon } => {
                        (batch.as_slice(), *max_timestamp, *offset_of_max, *horizon)
                    }
                };
                let header = BatchHeader::parse(bytes).map_err(corrupt)?;
                let (head, records) = bytes.split_at(BATCH_HEADER_LEN);
                out.append(head, records, &header, interval, max_timestamp, offset_of_max).map_err(io)?;
                unsynced += bytes.len() as u64;
                if unsynced >= WRITEBACK_EVERY_BYTES {
                    start_writeback(&out.file, out.size - unsynced, unsynced);
                    unsynced = 0;
                }
                cleaned.tombstone_horizon = earliest(cleaned.tombstone_horizon, horizon);
                throttle.account((batch.len() + bytes.len()) as u64);
                Ok(ControlFlow::Continue(()))
            })?;
            if self.stop.load(Ordering::Relaxed) {
                return Ok(None);
            }
        }
        out.file.sync_all().map_err(io)?;
        // Indexes are written (and synced) now, so the swap under the lock only renames.
        let (index_path, time_path) = cleaned_index_paths(&self.snapshot.dir, base);
        out.offset_index.write(&index_path).map_err(|e| LogError::io(&index_path, e))?;
        out.time_index.write(&time_path).map_err(|e| LogError::io(&time_path, e))?;
        cleaned.stats.bytes_written += out.size;
        Ok(Some(out))
    }
}

/// The earlier of two optional horizons.
fn earliest(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Removes a cleaned segment's files (`.log.cleaned` and its indexes), if present.
fn remove_cleaned_files(dir: &Path, base_offset: i64) {
    let (index, time) = cleaned_index_paths(dir, base_offset);
    for p in [cleaned_path(dir, base_offset), index, time] {
        let _ = fs::remove_file(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retired::RetiredFiles;

    use crate::log::{AppendInfo, PartitionLog};
    use tributary_record::BatchIter;
    use tributary_record::builder::{BatchBuilder, RecordSpec};

    fn config() -> LogConfig {
        LogConfig {
            segment_bytes: 4096,
            index_interval_bytes: 256,
            compaction: CompactionConfig { enabled: true, min_cleanable_dirty_ratio: 0.0, ..Default::default() },
            ..LogConfig::default()
        }
    }

    /// A log with 5 rounds over 100 keys in closed segments, and its cleaned form (not committed).
    fn dirty_log(dir: &Path) -> (PartitionLog, Cleaned) {
        let mut log = PartitionLog::open(dir, config(), true, 0, 0).expect("open");
        for round in 0..5 {
            for chunk in (0..100).collect::<Vec<i32>>().chunks(10) {
                let mut b = BatchBuilder::new(Compression::None);
                for k in chunk {
                    b.push(RecordSpec::new(Some(format!("k{k}").as_bytes()), Some(format!("r{round}").as_bytes()), 1));
                }
                let bytes = b.build();
                let info = AppendInfo {
                    leader_epoch: 0,
                    max_timestamp: 1,
                    offset_delta_of_max_timestamp: 0,
                    now_ms: 1,
                    log_append_time: false,
                };
                log.append(&bytes, &info).expect("append");
            }
        }
        log.roll(1).expect("roll");
        let plan = log.flush_plan().expect("plan");
        let r = plan.execute();
        log.complete_flush(&plan, r).expect("flush");
        let snapshot = log.clean_snapshot(log.durable_offset()).expect("snapshot");
        let cleaned = clean(&snapshot, &CleanerLimits::default(), 2, &AtomicBool::new(false)).expect("clean");
        (log, cleaned.expect("something to clean"))
    }

    /// Key → value of every record, and the number of records.
    fn contents(dir: &Path) -> (std::collections::BTreeMap<String, String>, usize) {
        let log = PartitionLog::open(dir, config(), false, 0, 0).expect("reopen");
        let mut out = std::collections::BTreeMap::new();
        let mut count = 0;
        let mut offset = log.log_start_offset();
        while let Some(plan) = log.plan_read(offset, log.durable_offset()).expect("plan") {
            let bytes = plan.execute(1 << 20, true).expect("read");
            for item in BatchIter::new(&bytes) {
                let (h, raw) = item.expect("batch");
                for r in RecordIter::new(&raw[BATCH_HEADER_LEN..]) {
                    let r = r.expect("record");
                    count += 1;
                    let text = |b: Option<&[u8]>| String::from_utf8_lossy(b.unwrap_or_default()).to_string();
                    out.insert(text(r.key), text(r.value));
                }
                offset = h.next_offset();
            }
        }
        (out, count)
    }

    fn cleaner_files(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .expect("list")
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().to_string()))
            .filter(|n| n.ends_with(".cleaned") || n.ends_with(".swap") || n.ends_with(".deleted"))
            .collect()
    }

    fn all_latest(values: &std::collections::BTreeMap<String, String>) -> bool {
        values.len() == 100 && values.values().all(|v| v == "r4")
    }

    #[test]
    fn a_crash_before_the_swap_leaves_the_log_as_it_was() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (log, cleaned) = dirty_log(dir.path());
        drop(log);
        drop(cleaned); // the process dies: .cleaned files stay behind
        assert!(!cleaner_files(dir.path()).is_empty());
        let (values, count) = contents(dir.path());
        assert!(all_latest(&values));
        assert_eq!(count, 500, "nothing was removed");
        assert!(cleaner_files(dir.path()).is_empty(), "the unfinished clean was removed on open");
    }

    #[test]
    fn a_crash_after_the_swap_was_published_is_finished_on_open() {
        // Crash points: after the rename to .swap with every old segment still
        // there, after retiring (renaming to .deleted) or deleting some of
        // them, and after retiring or deleting all of them.
        for (deleted, retire) in [(0usize, false), (1, false), (usize::MAX, false), (1, true), (usize::MAX, true)] {
            let dir = tempfile::tempdir().expect("tempdir");
            let (log, cleaned) = dirty_log(dir.path());
            let published = cleaned.publish().expect("publish");
            let mut retired = RetiredFiles::default();
            for group in &published.0.groups {
                for (base, _) in group.replaces.iter().take(deleted) {
                    if retire {
                        let (log, index, time) = Segment::paths(dir.path(), *base);
                        for p in [log, index, time] {
                            retired.retire(&p).expect("retire");
                        }
                    } else {
                        Segment::remove_files(dir.path(), *base).expect("delete");
                    }
                }
            }
            assert_eq!(retired.0.is_empty(), !retire);
            drop(log);
            let (values, count) = contents(dir.path());
            assert!(all_latest(&values), "crash after deleting {deleted} old segments per group: {values:?}");
            assert_eq!(count, 100, "the finished clean took effect (deleted {deleted})");
            assert!(cleaner_files(dir.path()).is_empty());
        }
    }

    #[test]
    fn swap_names_round_trip() {
        let dir = Path::new("/x");
        let p = swap_path(dir, 42, 1000);
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        assert_eq!(parse_swap_name(name), Some((42, 1000)));
        assert_eq!(parse_swap_name("00000000000000000042.log"), None);
        assert_eq!(parse_swap_name("garbage.swap"), None);
    }

    #[test]
    fn groups_respect_segment_bytes_and_skipped_segments() {
        let file = Arc::new(tempfile::tempfile().expect("tempfile"));
        let seg = |base: i64, end: i64, size: u64| SourceSegment {
            base_offset: base,
            end,
            size,
            max_timestamp: 0,
            first_batch_timestamp: Some(0),
            file: file.clone(),
        };
        let segments = [seg(0, 10, 40), seg(10, 20, 40), seg(20, 30, 40), seg(30, 40, 100), seg(40, 50, 10)];
        let bases = |rewrite: [bool; 5]| -> Vec<Vec<i64>> {
            let surveyed: Vec<(&SourceSegment, bool)> = segments.iter().zip(rewrite).collect();
            plan_groups(&surveyed, 100).iter().map(|g| g.iter().map(|s| s.base_offset).collect()).collect()
        };
        assert_eq!(bases([true; 5]), vec![vec![0, 10], vec![20], vec![30], vec![40]]);
        // A segment left alone is in no group and splits the ones around it.
        assert_eq!(bases([true, false, true, true, true]), vec![vec![0], vec![20], vec![30], vec![40]]);
        assert_eq!(bases([false, true, true, false, true]), vec![vec![10, 20], vec![40]]);
        assert_eq!(bases([false; 5]), Vec::<Vec<i64>>::new());

        // Empty segments join the group next to them, and only a group.
        let segments = [seg(0, 10, 0), seg(10, 20, 40), seg(20, 30, 0), seg(30, 40, 50), seg(40, 50, 0)];
        let surveyed: Vec<(&SourceSegment, bool)> = segments.iter().zip([false, true, false, false, false]).collect();
        let groups = plan_groups(&surveyed, 100);
        let bases: Vec<Vec<i64>> = groups.iter().map(|g| g.iter().map(|s| s.base_offset).collect()).collect();
        assert_eq!(bases, vec![vec![0, 10, 20]]);
        let surveyed: Vec<(&SourceSegment, bool)> = segments.iter().zip([false, false, false, true, false]).collect();
        let groups = plan_groups(&surveyed, 100);
        let bases: Vec<Vec<i64>> = groups.iter().map(|g| g.iter().map(|s| s.base_offset).collect()).collect();
        assert_eq!(bases, vec![vec![20, 30, 40]]);
    }

    #[test]
    fn the_map_keeps_the_latest_offset_and_respects_its_limit() {
        let mut map = OffsetMap::default();
        assert!(map.put(b"a", 1, 200));
        assert!(map.put(b"a", 5, 200));
        assert!(map.put(b"b", 2, 200));
        assert!(map.is_latest(Some(b"a"), 5));
        assert!(!map.is_latest(Some(b"a"), 1));
        assert!(map.is_latest(Some(b"zz"), 0), "keys only in the clean part stay");
        assert!(map.is_latest(None, 0), "records without a key stay");
        assert!(!map.put(b"c", 3, 100), "a new key beyond the limit is refused");
        assert!(map.put(b"a", 9, 100), "updating a mapped key needs no room");
    }
}
