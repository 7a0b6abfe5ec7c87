//! Log compaction through the public API: the latest value of every key
//! survives with its offset and timestamp, tombstones live until their delete
//! horizon, recent segments wait for min.compaction.lag.ms, and a clean whose
//! segments vanished meanwhile is dropped.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use tributary_log::cleaner::clean;
use tributary_log::{AppendInfo, CleanerLimits, CompactionConfig, LogConfig, PartitionLog};
use tributary_record::builder::{BatchBuilder, RecordSpec};
use tributary_record::records::RecordIter;
use tributary_record::{BatchHeader, BatchIter, Compression};

const T0: i64 = 1_700_000_000_000;
const DELETE_RETENTION_MS: i64 = 60_000;

fn compacted() -> LogConfig {
    LogConfig {
        segment_bytes: 8 * 1024,
        index_interval_bytes: 256,
        delete_policy: false,
        compaction: CompactionConfig {
            enabled: true,
            min_cleanable_dirty_ratio: 0.01,
            delete_retention_ms: DELETE_RETENTION_MS,
            ..CompactionConfig::default()
        },
        ..LogConfig::default()
    }
}

/// A record as read back: offset, key, value, timestamp.
type Read = (i64, Option<Vec<u8>>, Option<Vec<u8>>, i64);

fn append(log: &mut PartitionLog, codec: Compression, records: &[(String, Option<String>, i64)]) {
    let mut b = BatchBuilder::new(codec);
    for (k, v, ts) in records {
        b.push(RecordSpec::new(Some(k.as_bytes()), v.as_deref().map(str::as_bytes), *ts));
    }
    let bytes = b.build();
    let h = BatchHeader::parse(&bytes).expect("header");
    let info = AppendInfo {
        leader_epoch: 0,
        max_timestamp: h.max_timestamp,
        offset_delta_of_max_timestamp: h.last_offset_delta,
        now_ms: T0,
        log_append_time: false,
    };
    log.append(&bytes, &info).expect("append");
}

fn flush(log: &mut PartitionLog) {
    if let Some(plan) = log.flush_plan() {
        let r = plan.execute();
        log.complete_flush(&plan, r).expect("flush");
    }
}

/// Every record from the log start to the durable end, batches checked whole.
fn read_all(log: &PartitionLog) -> Vec<Read> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    let end = log.durable_offset();
    while offset < end {
        let Some(plan) = log.plan_read(offset, end).expect("plan") else {
            break;
        };
        let bytes = plan.execute(1 << 20, true).expect("read");
        assert!(!bytes.is_empty(), "nothing read at {offset} before {end}");
        for item in BatchIter::new(&bytes) {
            let (h, raw) = item.expect("whole batches");
            assert!(tributary_record::batch::crc_matches(raw), "CRC of the batch at {}", h.base_offset);
            let payload = &raw[tributary_record::batch::BATCH_HEADER_LEN..];
            let data = h.compression().expect("codec").decompress(payload, 64 << 20).expect("decompress");
            let mut count = 0;
            for r in RecordIter::new(&data) {
                let r = r.expect("record");
                count += 1;
                let o = h.base_offset + i64::from(r.offset_delta);
                assert!(o <= h.last_offset(), "record offset {o} past the batch's last offset");
                out.push((
                    o,
                    r.key.map(<[u8]>::to_vec),
                    r.value.map(<[u8]>::to_vec),
                    h.base_timestamp + r.timestamp_delta,
                ));
            }
            assert_eq!(count, h.records_count, "record count of the batch at {}", h.base_offset);
            offset = h.next_offset();
        }
    }
    for w in out.windows(2) {
        assert!(w[0].0 < w[1].0, "offsets ascend: {} then {}", w[0].0, w[1].0);
    }
    out
}

/// Runs one clean at `now`; returns whether it changed the log.
fn run_cleaner(log: &mut PartitionLog, now: i64) -> bool {
    let Some(mut snapshot) = log.clean_snapshot(log.durable_offset()) else {
        return false;
    };
    if snapshot.tombstone_horizon_unknown() {
        let h = snapshot.scan_tombstone_horizon().expect("scan");
        log.set_tombstone_horizon(h);
    }
    if !snapshot.cleanability(now).due {
        return false;
    }
    let stop = AtomicBool::new(false);
    match clean(&snapshot, &CleanerLimits::default(), now, &stop).expect("clean") {
        Some(cleaned) => {
            let (swapped, retired) = log.commit_clean(cleaned.publish().expect("publish")).expect("commit");
            retired.remove();
            // As the broker does: the next flush syncs the directory and the checkpoint.
            flush(log);
            swapped > 0
        }
        None => false,
    }
}

fn open(dir: &Path, clean_shutdown: bool) -> PartitionLog {
    PartitionLog::open(dir, compacted(), clean_shutdown, 0, T0).expect("open")
}

/// Writes `rounds` values for each of `keys` keys: value `k{key}-r{round}`, timestamp T0 + round*1000 + key.
fn overwrite(
    log: &mut PartitionLog,
    codec: Compression,
    keys: usize,
    rounds: usize,
) -> BTreeMap<String, (String, i64)> {
    let mut latest = BTreeMap::new();
    for round in 0..rounds {
        for chunk in (0..keys).collect::<Vec<_>>().chunks(10) {
            let records: Vec<(String, Option<String>, i64)> = chunk
                .iter()
                .map(|k| (format!("k{k}"), Some(format!("k{k}-r{round}")), T0 + (round * 1000 + k) as i64))
                .collect();
            for (k, v, ts) in &records {
                latest.insert(k.clone(), (v.clone().unwrap_or_default(), *ts));
            }
            append(log, codec, &records);
        }
    }
    latest
}

fn latest_by_key(records: &[Read]) -> BTreeMap<String, (Option<String>, i64)> {
    let mut out = BTreeMap::new();
    for (_, k, v, ts) in records {
        let k = String::from_utf8(k.clone().expect("keyed")).expect("utf8");
        out.insert(k, (v.clone().map(|v| String::from_utf8(v).expect("utf8")), *ts));
    }
    out
}

#[test]
fn compaction_keeps_the_latest_value_of_every_key() {
    for codec in [Compression::None, Compression::Gzip, Compression::Zstd, Compression::Lz4, Compression::Snappy] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = open(dir.path(), true);
        let written = overwrite(&mut log, codec, 200, 20);
        log.roll(T0).expect("roll");
        flush(&mut log);
        let before = read_all(&log);
        assert_eq!(before.len(), 4000);
        let segments_before = log.segment_count();

        assert!(run_cleaner(&mut log, T0 + 1), "{codec:?}: a dirty log is cleaned");
        let after = read_all(&log);
        assert_eq!(after.len(), 200, "{codec:?}: one record per key remains");
        assert!(log.segment_count() <= segments_before);
        for (key, (value, ts)) in latest_by_key(&after) {
            let (want, want_ts) = &written[&key];
            assert_eq!(value.as_deref(), Some(want.as_str()), "{codec:?}: latest value of {key}");
            assert_eq!(ts, *want_ts, "{codec:?}: the record keeps its timestamp");
        }
        // Every surviving record sits at the offset it had before.
        let original: BTreeMap<i64, &Read> = before.iter().map(|r| (r.0, r)).collect();
        for r in &after {
            assert_eq!(original.get(&r.0).copied(), Some(r), "{codec:?}: record at offset {} unchanged", r.0);
        }
        assert!(!run_cleaner(&mut log, T0 + 2), "{codec:?}: a clean log is not cleaned again");

        // The next clean merges the segments the first one left small.
        let written = overwrite(&mut log, codec, 200, 1);
        log.roll(T0).expect("roll");
        flush(&mut log);
        let segments_before = log.segment_count();
        assert!(run_cleaner(&mut log, T0 + 3));
        assert!(log.segment_count() < segments_before, "{codec:?}: small cleaned segments were merged");
        let after = read_all(&log);
        assert_eq!(after.len(), 200);
        for (key, (value, _)) in latest_by_key(&after) {
            assert_eq!(value.as_deref(), Some(written[&key].0.as_str()), "{codec:?}: latest value of {key}");
        }

        // The cleaned log reopens (clean and unclean) to the same records.
        drop(log);
        for clean_shutdown in [false, true] {
            let log = open(dir.path(), clean_shutdown);
            assert_eq!(read_all(&log), after, "{codec:?}: reopened (clean shutdown {clean_shutdown})");
        }
    }
}

#[test]
fn tombstones_stay_until_their_delete_horizon() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), true);
    overwrite(&mut log, Compression::None, 50, 3);
    let deletes: Vec<(String, Option<String>, i64)> = (0..10).map(|k| (format!("k{k}"), None, T0 + 10_000)).collect();
    append(&mut log, Compression::None, &deletes);
    log.roll(T0).expect("roll");
    flush(&mut log);

    let now = T0 + 20_000;
    assert!(run_cleaner(&mut log, now));
    let first = latest_by_key(&read_all(&log));
    assert_eq!(first.len(), 50, "deleted keys are still visible as tombstones");
    for k in 0..10 {
        assert_eq!(first[&format!("k{k}")], (None, T0 + 10_000), "tombstone of k{k} with its timestamp");
    }
    assert!(!run_cleaner(&mut log, now + DELETE_RETENTION_MS - 1), "before the horizon nothing is due");

    // Past the horizon the log is due again although nothing new was written.
    assert!(run_cleaner(&mut log, now + DELETE_RETENTION_MS + 1));
    let second = latest_by_key(&read_all(&log));
    assert_eq!(second.len(), 40, "tombstones and their keys are gone");
    assert!(second.values().all(|(v, _)| v.is_some()));

    // A reopened log finds no horizon left to wait for.
    drop(log);
    let mut log = open(dir.path(), false);
    assert!(!run_cleaner(&mut log, now + 10 * DELETE_RETENTION_MS));
}

#[test]
fn the_horizon_is_found_again_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), true);
    overwrite(&mut log, Compression::Zstd, 20, 2);
    append(&mut log, Compression::Zstd, &[("k1".to_string(), None, T0 + 5_000)]);
    log.roll(T0).expect("roll");
    flush(&mut log);
    assert!(run_cleaner(&mut log, T0 + 10_000));
    drop(log);
    let mut log = open(dir.path(), false);
    assert!(!run_cleaner(&mut log, T0 + 10_000 + DELETE_RETENTION_MS - 1));
    assert!(run_cleaner(&mut log, T0 + 10_000 + DELETE_RETENTION_MS));
    assert!(!latest_by_key(&read_all(&log)).contains_key("k1"));
}

#[test]
fn min_compaction_lag_keeps_young_segments_dirty() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = compacted();
    config.compaction.min_compaction_lag_ms = 3_600_000;
    let mut log = PartitionLog::open(dir.path(), config, true, 0, T0).expect("open");
    overwrite(&mut log, Compression::None, 100, 5);
    log.roll(T0).expect("roll");
    flush(&mut log);
    assert!(!run_cleaner(&mut log, T0 + 60_000), "records a minute old are too young");
    assert!(run_cleaner(&mut log, T0 + 7_200_000), "two hours later they are not");
    assert_eq!(read_all(&log).len(), 100);
}

#[test]
fn the_active_segment_is_never_cleaned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = compacted();
    config.segment_bytes = 1 << 20;
    let mut log = PartitionLog::open(dir.path(), config, true, 0, T0).expect("open");
    overwrite(&mut log, Compression::None, 10, 10);
    flush(&mut log);
    assert_eq!(log.segment_count(), 1);
    assert!(log.clean_snapshot(log.durable_offset()).is_none(), "only the active segment: nothing to clean");
    assert_eq!(read_all(&log).len(), 100);
}

#[test]
fn a_clean_whose_segments_were_deleted_meanwhile_is_dropped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), true);
    overwrite(&mut log, Compression::None, 100, 10);
    log.roll(T0).expect("roll");
    flush(&mut log);
    let snapshot = log.clean_snapshot(log.durable_offset()).expect("snapshot");
    let stop = AtomicBool::new(false);
    let cleaned = clean(&snapshot, &CleanerLimits::default(), T0, &stop).expect("clean").expect("work");
    // DeleteRecords moves the start past the first segments while the clean ran.
    let hw = log.durable_offset();
    log.delete_records(500, hw, T0).expect("delete records").1.remove();
    log.commit_clean(cleaned.publish().expect("publish")).expect("commit").1.remove();
    let after = read_all(&log);
    assert!(after.iter().all(|r| r.0 >= 500));
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().to_string()))
        .filter(|n| n.ends_with(".cleaned") || n.ends_with(".swap"))
        .collect();
    assert!(leftovers.is_empty(), "no cleaner files left: {leftovers:?}");
}

#[test]
fn a_small_dedupe_buffer_cleans_in_steps() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = compacted();
    config.segment_bytes = 4096;
    let mut log = PartitionLog::open(dir.path(), config, true, 0, T0).expect("open");
    let written = overwrite(&mut log, Compression::None, 300, 4);
    log.roll(T0).expect("roll");
    flush(&mut log);
    // Room for about 230 keys: more than one segment holds, fewer than the log has.
    let limits = CleanerLimits { dedupe_buffer_bytes: 12 * 1024, ..CleanerLimits::default() };
    let stop = AtomicBool::new(false);
    let mut passes = 0;
    while let Some(snapshot) = log.clean_snapshot(log.durable_offset()) {
        if !snapshot.cleanability(T0).due {
            break;
        }
        let Some(cleaned) = clean(&snapshot, &limits, T0, &stop).expect("clean") else {
            break;
        };
        log.commit_clean(cleaned.publish().expect("publish")).expect("commit").1.remove();
        passes += 1;
        assert!(passes < 50, "cleaning makes progress");
    }
    assert!(passes > 1, "the map could not hold every key at once");
    let after = latest_by_key(&read_all(&log));
    for (key, (value, _)) in &after {
        assert_eq!(value.as_deref(), Some(written[key].0.as_str()));
    }
    assert_eq!(after.len(), 300);
    assert_eq!(read_all(&log).len(), 300, "one record per key once every pass is done");
}

/// `(base offset, size, inode)` of every segment file, oldest first.
fn segment_files(dir: &Path) -> Vec<(i64, u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let mut out: Vec<(i64, u64, u64)> = std::fs::read_dir(dir)
        .expect("list")
        .filter_map(|e| {
            let e = e.ok()?;
            let name = e.file_name().to_string_lossy().to_string();
            let base = name.strip_suffix(".log")?.parse().ok()?;
            let meta = e.metadata().ok()?;
            Some((base, meta.len(), meta.ino()))
        })
        .collect();
    out.sort();
    out
}

/// Runs one clean at `now` whether or not the log is due; returns its stats.
fn clean_now(log: &mut PartitionLog, now: i64) -> tributary_log::cleaner::CleanStats {
    let mut snapshot = log.clean_snapshot(log.durable_offset()).expect("snapshot");
    if snapshot.tombstone_horizon_unknown() {
        let h = snapshot.scan_tombstone_horizon().expect("scan");
        log.set_tombstone_horizon(h);
    }
    let cleaned = clean(&snapshot, &CleanerLimits::default(), now, &AtomicBool::new(false)).expect("clean");
    let cleaned = cleaned.expect("something to clean");
    let stats = cleaned.stats;
    log.commit_clean(cleaned.publish().expect("publish")).expect("commit").1.remove();
    flush(log);
    stats
}

/// Appends one record per key, ten to a batch.
fn put(log: &mut PartitionLog, records: &[(String, Option<String>)], ts: i64) {
    for chunk in records.chunks(10) {
        let batch: Vec<(String, Option<String>, i64)> = chunk.iter().map(|(k, v)| (k.clone(), v.clone(), ts)).collect();
        append(log, Compression::None, &batch);
    }
}

/// A log whose 1,000 keys were cleaned once, spread over several segments;
/// returns them with the offset the next dirty record gets.
fn cleaned_log(dir: &Path) -> (PartitionLog, Vec<(i64, u64, u64)>) {
    let mut log = open(dir, true);
    overwrite(&mut log, Compression::None, 1000, 2);
    log.roll(T0).expect("roll");
    flush(&mut log);
    let first = clean_now(&mut log, T0 + 1);
    assert!(first.segments_rewritten > 0);
    let mut clean = segment_files(dir);
    clean.pop(); // the active segment
    assert!(clean.len() >= 4, "the clean part spans several segments: {clean:?}");
    (log, clean)
}

#[test]
fn a_pass_leaves_clean_segments_nothing_shadows_as_they_are() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut log, clean) = cleaned_log(dir.path());
    let first_dirty = log.log_end_offset();
    // The dirty part: two rounds over 100 new keys, so its first round is shadowed.
    for round in 0..2 {
        let records: Vec<_> = (0..100).map(|k| (format!("new{k}"), Some(format!("new{k}-r{round}")))).collect();
        put(&mut log, &records, T0 + 10);
    }
    log.roll(T0).expect("roll");
    flush(&mut log);
    let before = segment_files(dir.path());
    let dirty_bytes: u64 = before.iter().filter(|s| s.0 >= first_dirty).map(|s| s.1).sum();
    let clean_bytes: u64 = clean.iter().map(|s| s.1).sum();

    let stats = clean_now(&mut log, T0 + 20);
    let after = segment_files(dir.path());
    for s in &clean {
        assert!(after.contains(s), "clean segment {s:?} was left as it was (same inode and size): {after:?}");
    }
    assert!(stats.bytes_skipped >= clean_bytes, "{stats:?}: the clean part ({clean_bytes} bytes) was skipped");
    assert_eq!(stats.bytes_read + stats.bytes_skipped, clean_bytes + dirty_bytes, "{stats:?}");
    assert!(stats.bytes_read > 0 && stats.bytes_read <= dirty_bytes, "{stats:?}: only the dirty part was rewritten");
    assert!(stats.bytes_written < stats.bytes_read, "{stats:?}: the shadowed first round is gone");
    assert!(stats.segments_rewritten >= 1);
    assert_eq!(
        stats.segments_skipped + stats.segments_rewritten,
        before.len() as u64 - 1,
        "{stats:?}: all but the active segment"
    );

    let values = latest_by_key(&read_all(&log));
    assert_eq!(read_all(&log).len(), 1100, "one record per key");
    assert_eq!(values["new7"].0.as_deref(), Some("new7-r1"));
    assert_eq!(values["k7"].0.as_deref(), Some("k7-r1"));
}

#[test]
fn a_pass_rewrites_only_the_clean_segment_the_map_shadows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut log, clean) = cleaned_log(dir.path());
    // k500 sits in a segment in the middle of the clean part.
    let records = read_all(&log);
    let offset_of_k500 = records.iter().find(|r| r.1.as_deref() == Some(b"k500".as_slice())).expect("k500").0;
    let holder = *clean.iter().rev().find(|s| s.0 <= offset_of_k500).expect("its segment");
    assert!(holder != clean[0] && holder != clean[clean.len() - 1], "{holder:?} is in the middle of {clean:?}");
    put(&mut log, &[("k500".to_string(), Some("changed".to_string()))], T0 + 10);
    log.roll(T0).expect("roll");
    flush(&mut log);

    let stats = clean_now(&mut log, T0 + 20);
    assert_eq!(stats.segments_rewritten, 1, "{stats:?}: only the segment holding k500 was rewritten");
    assert_eq!(stats.bytes_read, holder.1, "{stats:?}");
    assert_eq!(stats.records_read, stats.records_kept + 1, "{stats:?}: one record removed");
    let after = segment_files(dir.path());
    for s in clean.iter().filter(|s| **s != holder) {
        assert!(after.contains(s), "unshadowed segment {s:?} left as it was: {after:?}");
    }
    assert!(!after.contains(&holder), "the shadowed segment was replaced");
    let all = read_all(&log);
    assert_eq!(all.len(), 1000);
    assert_eq!(latest_by_key(&all)["k500"].0.as_deref(), Some("changed"));

    // Reopened, the log reads the same.
    drop(log);
    assert_eq!(read_all(&open(dir.path(), false)), all);
}

#[test]
fn a_skipped_segment_keeps_its_tombstone_horizon() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), true);
    overwrite(&mut log, Compression::None, 100, 2);
    put(&mut log, &[("k3".to_string(), None)], T0 + 5_000);
    log.roll(T0).expect("roll");
    flush(&mut log);
    let now = T0 + 10_000;
    clean_now(&mut log, now);
    assert!(latest_by_key(&read_all(&log))["k3"].0.is_none(), "the tombstone is kept until its horizon");

    // A pass over new keys leaves the segment with the tombstone alone...
    let records: Vec<_> = (0..20).map(|k| (format!("new{k}"), Some("v".to_string()))).collect();
    put(&mut log, &records, now);
    put(&mut log, &records, now);
    log.roll(now).expect("roll");
    flush(&mut log);
    let stats = clean_now(&mut log, now + 1);
    assert!(stats.segments_skipped > 0, "{stats:?}");
    assert_eq!(stats.tombstones_dropped, 0);

    // ...yet the log still knows when the tombstone expires, and drops it then.
    let horizon = now + DELETE_RETENTION_MS;
    assert!(!run_cleaner(&mut log, horizon - 1), "nothing is due before the horizon");
    assert!(run_cleaner(&mut log, horizon), "the horizon of the skipped segment's tombstone makes the log due");
    let values = latest_by_key(&read_all(&log));
    assert!(!values.contains_key("k3"), "the tombstone is gone");
    assert_eq!(values.len(), 119);
}
