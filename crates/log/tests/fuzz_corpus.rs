//! Replays the `log_recovery` fuzz corpus and its regression inputs, and
//! writes the seeds (directory images of real logs) on request.

use std::path::{Path, PathBuf};

use tributary_log::fuzzing::{ImageFile, encode_image, image_of_dir, log_recovery, parse_image};
use tributary_log::{AppendInfo, LogConfig, PartitionLog};
use tributary_record::Compression;
use tributary_record::builder::{BatchBuilder, RecordSpec};

fn fuzz_dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz").join(kind).join("log_recovery")
}

/// A scratch directory in memory when the machine has one (the harness
/// syncs files; tmpfs makes that free).
fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() { tempfile::tempdir_in(shm) } else { tempfile::tempdir() }.expect("scratch dir")
}

#[test]
fn replay_log_recovery_corpus() {
    let scratch = scratch();
    let dir = scratch.path().join("p");
    let mut count = 0;
    for kind in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz_dir(kind)) else { continue };
        for entry in entries {
            let data = std::fs::read(entry.expect("entry").path()).expect("read");
            log_recovery(&dir, &data);
            count += 1;
        }
    }
    assert!(count >= 8, "expected the seed corpus, found {count} files");
}

/// The seeds reach past recovery: each opens, takes the harness's append
/// and reopens with the offsets its log had (plus the two appended records).
#[test]
fn seeds_open_with_their_offsets() {
    let scratch = scratch();
    let dir = scratch.path().join("p");
    let expect = [
        ("closed-three-segments", Some((0, 38))),
        ("unclean-three-segments-resealed", Some((0, 38))),
        ("unclean-torn-tail", Some((0, 14))),
        ("closed-after-delete-records", Some((15, 32))),
        ("empty-closed", Some((0, 2))),
        ("interrupted-clean", Some((0, 26))),
    ];
    for (name, offsets) in expect {
        let data = std::fs::read(fuzz_dir("corpus").join(name)).expect("seed");
        assert_eq!(log_recovery(&dir, &data), offsets, "{name}");
    }
}

const NOW: i64 = 1_700_000_000_000;

fn info(epoch: i32, ts: i64) -> AppendInfo {
    AppendInfo {
        leader_epoch: epoch,
        max_timestamp: ts,
        offset_delta_of_max_timestamp: 0,
        now_ms: NOW,
        log_append_time: false,
    }
}

/// A log of `batches` batches (some idempotent, some compressed) in
/// segments of about `segment_bytes`, across two leader epochs.
fn build_log(dir: &Path, batches: i32, segment_bytes: u64) -> PartitionLog {
    let config = LogConfig { segment_bytes, index_interval_bytes: 128, ..LogConfig::default() };
    let mut log = PartitionLog::open(dir, config, true, 0, NOW).expect("open");
    for i in 0..batches {
        let codec = [Compression::None, Compression::Gzip, Compression::None, Compression::Zstd][i as usize % 4];
        let mut b = BatchBuilder::new(codec);
        if i % 2 == 0 {
            b = b.producer(9, 0, i / 2 * 3);
        }
        for r in 0..3u8 {
            b.push(RecordSpec::new(Some(&[r]), Some(&[r; 20]), NOW + i64::from(i) * 10 + i64::from(r)));
        }
        let epoch = if i < batches / 2 { 0 } else { 1 };
        if epoch == 1 {
            log.assign_epoch(1).expect("epoch");
        }
        log.append(&b.build(), &info(epoch, NOW + i64::from(i) * 10 + 2)).expect("append");
    }
    log
}

/// Builds a log in a directory; returns the image flags it needs (bit 0: closed cleanly).
type SeedMaker = fn(&Path) -> u8;

fn write_seed(name: &str, flags: u8, files: &[ImageFile]) {
    let dir = fuzz_dir("corpus");
    std::fs::create_dir_all(&dir).expect("corpus dir");
    std::fs::write(dir.join(name), encode_image(flags, files)).expect("write seed");
}

/// Seeds: logs closed cleanly and not, torn, trimmed by DeleteRecords, and
/// with a compaction left half done; each also with the CRC-fixing flag.
#[test]
#[ignore = "regenerates fuzz/corpus/log_recovery"]
fn write_log_recovery_corpus() {
    let scratch = scratch();
    let seeds: [(&str, SeedMaker); 6] = [
        ("closed-three-segments", |d| {
            build_log(d, 12, 700).close().expect("close");
            1
        }),
        ("unclean-three-segments", |d| {
            let log = build_log(d, 12, 700);
            drop(log);
            0
        }),
        ("unclean-torn-tail", |d| {
            drop(build_log(d, 5, 1 << 20));
            let path = d.join("00000000000000000000.log");
            let len = std::fs::metadata(&path).expect("log").len();
            std::fs::OpenOptions::new().write(true).open(&path).expect("open").set_len(len - 17).expect("cut");
            0
        }),
        ("closed-after-delete-records", |d| {
            let mut log = build_log(d, 10, 600);
            let end = log.log_end_offset();
            log.delete_records(end / 2, end, NOW).expect("delete records").1.remove();
            log.close().expect("close");
            1
        }),
        ("empty-closed", |d| {
            build_log(d, 0, 1 << 20).close().expect("close");
            1
        }),
        ("interrupted-clean", |d| {
            build_log(d, 8, 500).close().expect("close");
            // A finished clean of the first segment not yet swapped in, and an unfinished one.
            let first = d.join("00000000000000000000.log");
            let swap = d.join("00000000000000000000.00000000000000000006.swap");
            std::fs::copy(&first, swap).expect("swap");
            std::fs::copy(&first, d.join("00000000000000000006.log.cleaned")).expect("cleaned");
            1
        }),
    ];
    for (name, make) in seeds {
        let dir = scratch.path().join(name);
        let flags = make(&dir);
        let files = image_of_dir(&dir).expect("image");
        assert_eq!(parse_image(&encode_image(flags, &files)), (flags, files.clone()), "{name}: image round trip");
        write_seed(name, flags, &files);
        // The same log with CRCs fixed after mutation and a small index interval.
        write_seed(&format!("{name}-resealed"), flags | 2, &files);
    }
}
