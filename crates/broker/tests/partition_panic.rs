//! A panic while a partition's lock is held takes the partition offline at
//! once (no request is served from its possibly inconsistent state) and a
//! reload from disk brings it back with everything acknowledged.

use std::time::{Duration, Instant};

use tributary_broker::partition::Partition;
use tributary_log::{AppendInfo, LogConfig, LogError, PartitionLog};
use tributary_record::builder::{BatchBuilder, RecordSpec};
use tributary_record::{BatchHeader, BatchIter, Compression};
use tributary_types::TopicId;

/// Generous: the reload backs off and the machine may be loaded.
const DEADLINE: Duration = Duration::from_secs(60);

fn batch(records: usize, timestamp: i64) -> (Vec<u8>, AppendInfo) {
    let mut b = BatchBuilder::new(Compression::None);
    for i in 0..records {
        b.push(RecordSpec::new(Some(b"k"), Some(b"value"), timestamp + i as i64));
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
    (bytes, info)
}

/// Appends and flushes as the produce path and the flusher do; returns the new high watermark.
fn append_durably(partition: &Partition, records: usize) -> i64 {
    let (bytes, info) = batch(records, 1_000);
    let mut log = partition.log();
    log.append(&bytes, &info).expect("append");
    let plan = log.flush_plan().expect("something to flush");
    let r = plan.execute();
    log.complete_flush(&plan, r).expect("flush");
    let progress = partition.commit_durable(&mut log);
    drop(log);
    partition.publish(progress);
    assert_eq!(progress.high_watermark, progress.durable_offset, "a sole replica commits what is durable");
    progress.high_watermark
}

#[test]
fn a_panic_under_the_lock_takes_the_partition_offline_until_it_is_reloaded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = PartitionLog::open(dir.path(), LogConfig::default(), true, 0, 0).expect("open");
    let partition = Partition::new("t".to_string(), TopicId([1; 16]), 0, 0, log);
    for _ in 0..10 {
        append_durably(&partition, 5);
    }
    assert_eq!(partition.high_watermark(), 50);

    let holder = partition.clone();
    let panicked = std::thread::spawn(move || {
        let _log = holder.log();
        panic!("injected: a bug while the lock is held");
    })
    .join();
    assert!(panicked.is_err());

    // The next holder of the lock finds it poisoned: nothing is served.
    let (bytes, info) = batch(1, 2_000);
    let refused = partition.log().append(&bytes, &info);
    assert!(matches!(refused, Err(LogError::Offline(_))), "served from a poisoned partition: {refused:?}");
    assert!(partition.progress().offline, "waiting producers and fetches learn it at once");
    assert!(partition.log().plan_read(0, 50).is_err());

    // The reload brings it back with all 50 acknowledged records.
    let deadline = Instant::now() + DEADLINE;
    while partition.progress().offline {
        assert!(Instant::now() < deadline, "the partition was never reloaded");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(partition.high_watermark(), 50);
    let plan = partition.log().plan_read(0, 50).expect("online").expect("data");
    let bytes = plan.execute(1 << 20, true).expect("read");
    let records: i32 = BatchIter::new(&bytes).map(|b| b.expect("batch").0.records_count).sum();
    assert_eq!(records, 50);
    assert_eq!(append_durably(&partition, 1), 51, "appends work again");
}
