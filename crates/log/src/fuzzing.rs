//! Entry point shared by the `log_recovery` fuzz target and its corpus
//! replay test: a partition directory whose every file comes from the input
//! is opened (recovery), read, appended to, closed and opened again. None of
//! it may panic, and no allocation may be sized by an on-disk length before
//! that length is checked against the file (run with `-malloc_limit_mb`).
//!
//! The input is a *directory image*:
//!
//! ```text
//! flags u8, then entries until the input ends:
//!   kind u8 | a u16 | b u16 | len u16 | bytes[len]      (integers big-endian)
//! ```
//!
//! `(kind & 0x7f) % 9` names the file: 0 `<a>.log`, 1 `<a>.index`, 2
//! `<a>.timeindex`, 3 `<a>.snapshot`, 4 `leader-epoch-checkpoint`, 5
//! `tributary-checkpoint`, 6 `<a>.<b>.swap` (an interrupted clean), 7
//! `<a>.log.cleaned`, 8 `<a>.log.deleted`. Bit 7 of the kind repeats the
//! bytes until the file is `b & 0xff` KiB long, so a few input bytes make a
//! file larger than the bounds recovery reads small files with (a 64 KiB
//! checkpoint, an index larger than its segment can need). A later entry for
//! the same name replaces the earlier one. Flags: bit 0 = the last shutdown
//! was clean; bit 1 = recompute the CRCs of batches and producer snapshots
//! before writing them, so mutations reach the code behind the checksums;
//! bits 2-4 pick `index.interval.bytes` (64 << n).
//!
//! Besides "no panic", the harness checks what recovery promises: a batch
//! appended after recovery is read back at its offset; after its flush the
//! high watermark reaches the log end (a replica alone commits what it made
//! durable); closing then reopening the log keeps its start and end
//! offsets; reloading it as after a panic (every batch validated) never
//! makes it longer; and a follower's truncation to the middle of it ends the
//! log at or below that offset, and a reopen after a crash never finds
//! anything past the cut.

use std::path::{Path, PathBuf};

use tributary_record::Compression;
use tributary_record::batch::{BATCH_HEADER_LEN, BatchIter, CRC_START, LOG_OVERHEAD};
use tributary_record::builder::{BatchBuilder, RecordSpec};

use crate::log::{AppendInfo, AppendOutcome, BelowHighWatermark, LogConfig, PartitionLog};
use crate::segment::file_stem;

/// The clock every harness run uses, so replays are deterministic.
const NOW_MS: i64 = 1_700_000_000_000;
/// Entry header: kind, a, b, len.
const ENTRY_HEADER_LEN: usize = 7;

/// Bit of the kind that repeats the file's bytes (see the module docs).
const REPEAT_BIT: u8 = 0x80;

/// What a file kind is called for `a` and `b`.
fn file_name(kind: u8, a: u16, b: u16) -> String {
    let (a, b) = (i64::from(a), i64::from(b));
    match (kind & !REPEAT_BIT) % 9 {
        0 => format!("{}.log", file_stem(a)),
        1 => format!("{}.index", file_stem(a)),
        2 => format!("{}.timeindex", file_stem(a)),
        3 => format!("{}.snapshot", file_stem(a)),
        4 => crate::epoch::CHECKPOINT_FILE.to_string(),
        5 => crate::checkpoint::CHECKPOINT_FILE.to_string(),
        6 => format!("{}.{}.swap", file_stem(a), file_stem(b)),
        7 => format!("{}.log.cleaned", file_stem(a)),
        _ => format!("{}.log{}", file_stem(a), crate::retired::DELETED_SUFFIX),
    }
}

/// One file of a directory image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFile {
    /// The kind byte, as in the module docs.
    pub kind: u8,
    /// Base offset (or swap start).
    pub a: u16,
    /// Swap end; unused otherwise.
    pub b: u16,
    /// Contents.
    pub bytes: Vec<u8>,
}

/// Splits a directory image into its flags and files; a truncated last
/// entry keeps the bytes that are there.
pub fn parse_image(data: &[u8]) -> (u8, Vec<ImageFile>) {
    let Some((&flags, mut rest)) = data.split_first() else {
        return (0, Vec::new());
    };
    let mut files = Vec::new();
    while rest.len() >= ENTRY_HEADER_LEN {
        let kind = rest[0];
        let a = u16::from_be_bytes([rest[1], rest[2]]);
        let b = u16::from_be_bytes([rest[3], rest[4]]);
        let len = usize::from(u16::from_be_bytes([rest[5], rest[6]]));
        let body = &rest[ENTRY_HEADER_LEN..];
        let take = len.min(body.len());
        files.push(ImageFile { kind, a, b, bytes: body[..take].to_vec() });
        rest = &body[take..];
    }
    (flags, files)
}

/// Builds a directory image (the inverse of [`parse_image`]), for seeds.
/// Files longer than 64 KiB are cut.
pub fn encode_image(flags: u8, files: &[ImageFile]) -> Vec<u8> {
    let mut out = vec![flags];
    for f in files {
        let len = f.bytes.len().min(usize::from(u16::MAX));
        out.push(f.kind);
        out.extend_from_slice(&f.a.to_be_bytes());
        out.extend_from_slice(&f.b.to_be_bytes());
        out.extend_from_slice(&(len as u16).to_be_bytes());
        out.extend_from_slice(&f.bytes[..len]);
    }
    out
}

/// The image kind, `a` and `b` of a file name, if it has one.
fn kind_of(name: &str) -> Option<(u8, u16, u16)> {
    if name == crate::epoch::CHECKPOINT_FILE {
        return Some((4, 0, 0));
    }
    if name == crate::checkpoint::CHECKPOINT_FILE {
        return Some((5, 0, 0));
    }
    let (stem, rest) = name.split_at_checked(20)?;
    let a: u16 = stem.parse().ok()?;
    let (kind, b) = match rest {
        ".log" => (0, 0),
        ".index" => (1, 0),
        ".timeindex" => (2, 0),
        ".snapshot" => (3, 0),
        ".log.cleaned" => (7, 0),
        _ if rest == format!(".log{}", crate::retired::DELETED_SUFFIX) => (8, 0),
        _ => (6, rest.strip_prefix('.')?.strip_suffix(".swap")?.parse().ok()?),
    };
    (file_name(kind, a, b) == name).then_some((kind, a, b))
}

/// Reads a partition directory back into image files (seeds from real logs).
/// Files whose names do not fit the image's kinds (offsets above 65535) are
/// skipped.
pub fn image_of_dir(dir: &Path) -> std::io::Result<Vec<ImageFile>> {
    let mut names: Vec<(String, PathBuf)> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    names.sort();
    let mut files = Vec::new();
    for (name, path) in names {
        if let Some((kind, a, b)) = kind_of(&name) {
            files.push(ImageFile { kind, a, b, bytes: std::fs::read(&path)? });
        }
    }
    Ok(files)
}

/// Rewrites the CRC of every whole batch from the start of a `.log` file.
fn reseal_batches(bytes: &mut [u8]) {
    let mut pos = 0usize;
    while bytes.len() - pos >= BATCH_HEADER_LEN {
        let length = i32::from_be_bytes([bytes[pos + 8], bytes[pos + 9], bytes[pos + 10], bytes[pos + 11]]);
        let Ok(length) = usize::try_from(length) else { return };
        let end = pos + LOG_OVERHEAD + length;
        if length < BATCH_HEADER_LEN - LOG_OVERHEAD || end > bytes.len() {
            return;
        }
        let crc = crc32c::crc32c(&bytes[pos + CRC_START..end]);
        bytes[pos + 17..pos + 21].copy_from_slice(&crc.to_be_bytes());
        pos = end;
    }
}

/// Rewrites the trailing CRC of a producer snapshot.
fn reseal_snapshot(bytes: &mut [u8]) {
    if bytes.len() >= 14 {
        let at = bytes.len() - 4;
        let crc = crc32c::crc32c(&bytes[..at]);
        bytes[at..].copy_from_slice(&crc.to_be_bytes());
    }
}

/// Writes the image's files into `dir` (emptied first).
fn materialize(dir: &Path, flags: u8, files: &[ImageFile]) -> std::io::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    std::fs::create_dir_all(dir)?;
    for f in files {
        let mut bytes = f.bytes.clone();
        if f.kind & REPEAT_BIT != 0 {
            let len = usize::from(f.b & 0xff) * 1024;
            bytes = if bytes.is_empty() { vec![0; len] } else { bytes.iter().copied().cycle().take(len).collect() };
        }
        if flags & 2 != 0 {
            match (f.kind & !REPEAT_BIT) % 9 {
                0 | 6 | 7 => reseal_batches(&mut bytes),
                3 => reseal_snapshot(&mut bytes),
                _ => {}
            }
        }
        std::fs::write(dir.join(file_name(f.kind, f.a, f.b)), &bytes)?;
    }
    Ok(())
}

fn config(flags: u8) -> LogConfig {
    LogConfig { index_interval_bytes: 64 << ((flags >> 2) & 7), ..LogConfig::default() }
}

/// Runs the harness on `data` in the scratch directory `dir` (created,
/// emptied and left behind; give each concurrent caller its own). Returns
/// the log start and end offsets after the reopen, when it got that far.
///
/// # Panics
/// When the log breaks a promise of recovery (see the module docs), or on
/// a scratch directory that cannot be written.
pub fn log_recovery(dir: &Path, data: &[u8]) -> Option<(i64, i64)> {
    let (flags, files) = parse_image(data);
    materialize(dir, flags, &files).expect("the scratch directory must be writable");
    let clean_shutdown = flags & 1 != 0;
    let mut log = PartitionLog::open(dir, config(flags), clean_shutdown, 0, NOW_MS).ok()?;
    read_everything(&log);
    let (base, last) = append_one(&mut log)?;
    let end = log.log_end_offset();
    let plan = log.plan_read(base, end).expect("the appended batch is readable").expect("and not past the end");
    let bytes = plan.execute(1 << 20, true).expect("reading the appended batch");
    let first = BatchIter::new(&bytes).next().and_then(Result::ok).map(|(h, _)| (h.base_offset, h.last_offset()));
    assert_eq!(first, Some((base, last)), "reading at {base} right after appending there");
    if let Some(flush) = log.flush_plan() {
        let outcome = flush.execute();
        let durable = log.complete_flush(&flush, outcome).ok()?;
        log.advance_high_watermark(durable);
    }
    assert_eq!(log.high_watermark(), end, "the high watermark of a flushed log alone");
    log.offsets().check_sole_replica(&dir.display());
    log.close().ok()?;
    let start = log.log_start_offset();
    drop(log);
    let reopened = PartitionLog::open(dir, config(flags), true, 0, NOW_MS).expect("reopening a closed log");
    let offsets = (reopened.log_start_offset(), reopened.log_end_offset());
    assert_eq!(offsets, (start, end), "offsets after a clean reopen");
    read_everything(&reopened);
    let reloaded = reopened.reload(0, NOW_MS).expect("reloading a log that opened");
    assert!(
        reloaded.log_end_offset() <= end,
        "a reload made the log longer: {} after {end}",
        reloaded.log_end_offset()
    );
    read_everything(&reloaded);
    truncate_and_reopen(dir, flags, reloaded);
    Some((start, end))
}

/// A follower's truncation to the middle of what the log holds: the log
/// then ends at or below that offset, and a crash right after (no close)
/// never brings back what was cut. (It may reopen shorter: the cut segment
/// is validated then, and on a hostile disk the part below the old recovery
/// point, trusted until now, may not pass.)
fn truncate_and_reopen(dir: &Path, flags: u8, mut log: PartitionLog) {
    let (start, end) = (log.log_start_offset(), log.log_end_offset());
    let middle = start + (end - start) / 2;
    let Ok(truncated) = log.truncate_to(middle, BelowHighWatermark::Allow) else {
        return;
    };
    truncated.retired.remove();
    let cut = log.log_end_offset();
    assert!(!truncated.truncated || cut <= middle, "truncated to {middle}, the log ends at {cut}");
    read_everything(&log);
    drop(log);
    let reopened = PartitionLog::open(dir, config(flags), false, 0, NOW_MS).expect("reopening a truncated log");
    assert!(reopened.log_end_offset() <= cut, "a log cut at {cut} reopened ending at {}", reopened.log_end_offset());
}

/// Reads at a few offsets and timestamps; results are not checked, only
/// that nothing panics or allocates beyond the files.
fn read_everything(log: &PartitionLog) {
    let (start, end) = (log.log_start_offset(), log.log_end_offset());
    for offset in [start, start.saturating_add(end.saturating_sub(start) / 2), end.saturating_sub(1)] {
        if let Ok(Some(plan)) = log.plan_read(offset, end) {
            let _ = plan.execute(1 << 20, true);
            let _ = plan.locate(100, false);
        }
    }
    let newest = log.max_timestamp(end);
    for ts in [i64::MIN, -1, 0, NOW_MS, newest.map_or(0, |(_, t)| t)] {
        let _ = log.offset_for_timestamp(ts, end);
    }
    let _ = log.epoch_for_offset(start);
    let _ = log.end_offset_for_epoch(0);
}

/// Appends one small batch; its first and last offsets if it was written.
fn append_one(log: &mut PartitionLog) -> Option<(i64, i64)> {
    let mut builder = BatchBuilder::new(Compression::None);
    builder.push(RecordSpec::new(Some(b"k"), Some(b"appended after recovery"), NOW_MS));
    builder.push(RecordSpec::new(None, Some(b"second"), NOW_MS));
    let batch = builder.build();
    let info = AppendInfo {
        leader_epoch: 0,
        max_timestamp: NOW_MS,
        offset_delta_of_max_timestamp: 1,
        now_ms: NOW_MS,
        log_append_time: false,
    };
    match log.append(&batch, &info) {
        Ok(AppendOutcome::Appended { base_offset, last_offset, .. }) => Some((base_offset, last_offset)),
        _ => None,
    }
}
