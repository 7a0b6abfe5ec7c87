//! Lengths read from disk are checked against their bounds before anything
//! is allocated for them: a batch header or an index file that claims
//! gigabytes (bit rot, a file changed behind the broker's back, a bad disk)
//! is refused or treated as corruption, never trusted with an allocation.
//!
//! A counting global allocator measures what each operation allocates, so a
//! test can assert that it never asked for a buffer sized by the claim (a
//! lazily zeroed 2 GiB `calloc` would not show in the resident set).

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Mutex;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tributary_log::{AppendInfo, LogConfig, PartitionLog};
use tributary_record::builder::{BatchBuilder, RecordSpec};
use tributary_record::{BatchHeader, Compression};

#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

/// The allocator's counters are process-wide: measured sections run one at a time.
static MEASURING: Mutex<()> = Mutex::new(());

/// Runs `f` and returns its result with the bytes it allocated (including
/// growth by reallocation). Other tests of this binary wait meanwhile, so
/// the count is `f`'s alone, up to the test harness's own small allocations.
fn allocated_by<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let _alone = MEASURING.lock().unwrap_or_else(|p| p.into_inner());
    let region = Region::new(GLOBAL);
    let out = f();
    let change = region.change();
    (out, change.bytes_allocated + change.bytes_reallocated.max(0) as usize)
}

/// No operation below may allocate more than this in all.
const ALLOCATION_BOUND: usize = 8 << 20;
/// What the forged headers claim: just under i32::MAX bytes.
const CLAIMED_BATCH_LENGTH: i32 = i32::MAX - 12;

fn config() -> LogConfig {
    LogConfig { segment_bytes: 1 << 20, index_interval_bytes: 256, ..LogConfig::default() }
}

fn append(log: &mut PartitionLog, records: usize, timestamp: i64) {
    let mut b = BatchBuilder::new(Compression::None);
    for i in 0..records {
        b.push(RecordSpec::new(Some(b"key"), Some(&[b'v'; 64]), timestamp + i as i64));
    }
    let bytes = b.build();
    let h = BatchHeader::parse(&bytes).expect("header");
    let info = AppendInfo {
        leader_epoch: 0,
        max_timestamp: h.max_timestamp,
        offset_delta_of_max_timestamp: h.last_offset_delta,
        now_ms: h.max_timestamp,
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

fn filled_log(dir: &Path) -> PartitionLog {
    let mut log = PartitionLog::open(dir, config(), true, 0, 0).expect("open");
    for i in 0..20 {
        append(&mut log, 5, 1_000 + i * 10);
    }
    flush(&mut log);
    log
}

/// Overwrites the batch length field (bytes 8..12) of the batch at `position`.
fn forge_batch_length(dir: &Path, position: u64) {
    let path = dir.join(format!("{:020}.log", 0));
    let file = OpenOptions::new().write(true).open(path).expect("segment");
    file.write_all_at(&CLAIMED_BATCH_LENGTH.to_be_bytes(), position + 8).expect("forge");
    file.sync_all().expect("sync");
}

#[test]
fn a_batch_length_forged_under_a_running_log_is_refused_by_timestamp_lookups() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = filled_log(dir.path());
    let end = log.durable_offset();
    forge_batch_length(dir.path(), 0);

    let (found, largest) = allocated_by(|| log.offset_for_timestamp(0, end));
    assert!(found.is_err(), "a batch claiming {CLAIMED_BATCH_LENGTH} bytes is corruption, got {found:?}");
    assert!(largest < ALLOCATION_BOUND, "allocated {largest} bytes for a claimed length");

    // The plan/run split answers the same way without the log at hand.
    let search = log.plan_timestamp_search(0, end).expect("plan");
    drop(log);
    let (found, largest) = allocated_by(|| search.run());
    assert!(found.is_err());
    assert!(largest < ALLOCATION_BOUND, "allocated {largest} bytes for a claimed length");
}

#[test]
fn a_batch_length_forged_under_a_running_log_ends_a_read_without_allocating() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = filled_log(dir.path());
    let end = log.durable_offset();
    forge_batch_length(dir.path(), 0);
    let (read, largest) = allocated_by(|| {
        let plan = log.plan_read(0, end).expect("plan").expect("something to read");
        plan.execute(1 << 20, true)
    });
    let bytes = read.expect("a read stops at the forged batch");
    assert!(bytes.is_empty(), "nothing past a batch that runs off its segment is served");
    assert!(largest < ALLOCATION_BOUND, "allocated {largest} bytes for a claimed length");
}

#[test]
fn recovery_cuts_a_batch_claiming_gigabytes_without_allocating_for_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = filled_log(dir.path());
    let ten_batches = {
        let plan = log.plan_read(50, log.durable_offset()).expect("plan").expect("read");
        plan.locate(0, false).expect("locate").position
    };
    log.close().expect("close");
    drop(log);
    forge_batch_length(dir.path(), ten_batches);

    let (reopened, largest) = allocated_by(|| PartitionLog::open(dir.path(), config(), false, 0, 0));
    let log = reopened.expect("recovery truncates instead of failing");
    assert_eq!(log.log_end_offset(), 50, "everything before the forged batch survives");
    assert!(largest < ALLOCATION_BOUND, "allocated {largest} bytes for a claimed length");
}

#[test]
fn an_index_file_larger_than_its_segment_can_need_is_rebuilt_not_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = filled_log(dir.path());
    log.close().expect("close");
    drop(log);
    // A sparse 1 GiB index: no disk space used, but reading it would take 1 GiB.
    for name in ["index", "timeindex"] {
        let path = dir.path().join(format!("{:020}.{name}", 0));
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .expect("index")
            .set_len(1 << 30)
            .expect("grow");
    }
    let (reopened, largest) = allocated_by(|| PartitionLog::open(dir.path(), config(), true, 0, 0));
    let log = reopened.expect("open");
    assert_eq!(log.log_end_offset(), 100);
    assert_eq!(log.offset_for_timestamp(1_050, 100).expect("lookup"), Some((25, 1_050)), "indexes were rebuilt");
    assert!(largest < ALLOCATION_BOUND, "allocated {largest} bytes for an index file");
}
