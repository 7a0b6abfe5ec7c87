//! `tributary debug`: read-only views of a node's files for diagnosis.
//!
//! `dump-log` lists the record batches of one partition as they lie in its
//! segment files (`<data-dir>/<topic>-<partition>/<base offset>.log`):
//! offsets, leader epoch, producer id, epoch and sequence, record count and
//! CRC-32C (stored, and whether it matches the bytes). It opens the files
//! read-only and never runs the log's recovery, so it is safe on a stopped
//! node's directory and shows exactly what a crash left: a tail that is not
//! a whole, valid batch is reported as such and ends that segment's walk.
//! The fault tier compares replicas with it (`compat/cluster/replicas.py`).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde::Serialize;
use tributary_record::batch::{BATCH_HEADER_LEN, BatchHeader, LOG_OVERHEAD, crc_matches};

/// Largest batch a segment may hold as far as this tool is concerned; a
/// header claiming more is damage, not a batch (checked before any buffer
/// is sized by it).
const BATCH_BYTES_MAX: u64 = 256 << 20;

/// `tributary debug`.
#[derive(Debug, Args)]
#[command(after_long_help = "Examples:\n  \
    tributary debug dump-log --data-dir /var/lib/tributary --topic orders --partition 0\n  \
    tributary debug dump-log -d data1 -t orders -p 3 --up-to 1200 -o json")]
pub struct DebugArgs {
    #[command(subcommand)]
    command: DebugCommand,
}

#[derive(Debug, Subcommand)]
enum DebugCommand {
    /// List the record batches of one partition as they lie on disk (read-only; no recovery is run).
    #[command(after_long_help = "Walks every segment file of <data-dir>/<topic>-<partition> in offset order \
        and prints each batch: segment, file position, base and last offset, partition leader epoch, \
        producer id/epoch, base sequence, record count, stored CRC and whether it matches. A tail that is \
        not a whole valid batch ends the segment's walk and is reported under `torn`. With --up-to N only \
        batches whose last offset is below N are listed. -o json prints {\"dir\", \"batches\": [...], \
        \"torn\": [...], \"leader_epochs\"}. Exit status 4 when the partition directory does not exist.\n\n\
        Examples:\n  \
        tributary debug dump-log --data-dir /var/lib/tributary --topic orders --partition 0\n  \
        tributary debug dump-log -d data1 -t orders -p 3 --up-to 1200 -o json")]
    DumpLog {
        /// The node's data directory (log.dirs).
        #[arg(long, short = 'd')]
        data_dir: PathBuf,
        /// The topic.
        #[arg(long, short = 't')]
        topic: String,
        /// The partition.
        #[arg(long, short = 'p')]
        partition: i32,
        /// Only batches whose last offset is below this offset.
        #[arg(long)]
        up_to: Option<i64>,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value_t)]
        output: crate::output::Format,
    },
}

/// One batch as found on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BatchEntry {
    pub segment: i64,
    pub position: u64,
    pub base_offset: i64,
    pub last_offset: i64,
    pub leader_epoch: i32,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records: i32,
    pub crc: u32,
    pub crc_ok: bool,
    pub bytes: u64,
}

/// Bytes at the end of a segment that are not a whole, valid batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TornTail {
    pub segment: i64,
    pub position: u64,
    pub bytes: u64,
    pub why: String,
}

/// What `dump-log` prints.
#[derive(Debug, Serialize)]
pub struct Dump {
    pub dir: String,
    pub batches: Vec<BatchEntry>,
    pub torn: Vec<TornTail>,
    /// `leader-epoch-checkpoint` as written (epoch, start offset).
    pub leader_epochs: Vec<(i32, i64)>,
}

pub fn run(args: DebugArgs) -> ExitCode {
    match args.command {
        DebugCommand::DumpLog { data_dir, topic, partition, up_to, output } => {
            let dir = data_dir.join(format!("{topic}-{partition}"));
            if !dir.is_dir() {
                eprintln!("error: no partition directory {}", dir.display());
                return ExitCode::from(4);
            }
            match dump(&dir, up_to) {
                Ok(d) => {
                    if !output.print(&d) {
                        print_table(&d);
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: reading {}: {e}", dir.display());
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn print_table(d: &Dump) {
    println!("{}", d.dir);
    println!(
        "{:>20} {:>10} {:>12} {:>12} {:>6} {:>12} {:>6} {:>10} {:>7} {:>10} CHECK",
        "SEGMENT", "POSITION", "BASE", "LAST", "EPOCH", "PRODUCER", "PEPOCH", "SEQUENCE", "RECORDS", "CRC"
    );
    for b in &d.batches {
        println!(
            "{:>20} {:>10} {:>12} {:>12} {:>6} {:>12} {:>6} {:>10} {:>7} {:>10} {}",
            b.segment,
            b.position,
            b.base_offset,
            b.last_offset,
            b.leader_epoch,
            b.producer_id,
            b.producer_epoch,
            b.base_sequence,
            b.records,
            format!("{:08x}", b.crc),
            if b.crc_ok { "ok" } else { "MISMATCH" }
        );
    }
    for t in &d.torn {
        println!("torn tail: segment {} at {} ({} bytes): {}", t.segment, t.position, t.bytes, t.why);
    }
    println!("leader epochs: {:?}", d.leader_epochs);
}

/// The segments of a partition directory, by base offset (only
/// `<20 digits>.log`; cleaner leftovers and retired files are not segments).
fn segments(dir: &Path) -> std::io::Result<Vec<(i64, PathBuf)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
        let Some(stem) = name.strip_suffix(".log") else { continue };
        if stem.len() == 20
            && stem.bytes().all(|b| b.is_ascii_digit())
            && let Ok(base) = stem.parse::<i64>()
        {
            found.push((base, path));
        }
    }
    found.sort();
    Ok(found)
}

/// Every batch of the partition in `dir` whose last offset is below
/// `up_to` (all without it), and the torn tails.
pub fn dump(dir: &Path, up_to: Option<i64>) -> std::io::Result<Dump> {
    let mut batches = Vec::new();
    let mut torn = Vec::new();
    for (base, path) in segments(dir)? {
        walk_segment(base, &path, &mut batches, &mut torn)?;
    }
    if let Some(limit) = up_to {
        batches.retain(|b| b.last_offset < limit);
    }
    Ok(Dump { dir: dir.display().to_string(), batches, torn, leader_epochs: leader_epochs(dir) })
}

fn walk_segment(
    base: i64,
    path: &Path,
    batches: &mut Vec<BatchEntry>,
    torn: &mut Vec<TornTail>,
) -> std::io::Result<()> {
    let file = File::open(path)?;
    let size = file.metadata()?.len();
    let mut position = 0u64;
    let mut tear = |position: u64, why: String| {
        torn.push(TornTail { segment: base, position, bytes: size - position, why });
    };
    while position < size {
        if size - position < BATCH_HEADER_LEN as u64 {
            tear(position, "shorter than a batch header".into());
            break;
        }
        let mut head = [0u8; BATCH_HEADER_LEN];
        file.read_exact_at(&mut head, position)?;
        let header = match BatchHeader::parse(&head) {
            Ok(h) => h,
            Err(e) => {
                tear(position, format!("not a batch header: {e}"));
                break;
            }
        };
        let Ok(length) = u64::try_from(header.batch_length) else {
            tear(position, format!("negative batch length {}", header.batch_length));
            break;
        };
        let total = LOG_OVERHEAD as u64 + length;
        if total < BATCH_HEADER_LEN as u64 || total > BATCH_BYTES_MAX || total > size - position {
            tear(position, format!("batch length {length} does not fit the {} bytes left", size - position));
            break;
        }
        let mut bytes = vec![0u8; total as usize];
        file.read_exact_at(&mut bytes, position)?;
        batches.push(BatchEntry {
            segment: base,
            position,
            base_offset: header.base_offset,
            last_offset: header.base_offset.saturating_add(i64::from(header.last_offset_delta)),
            leader_epoch: header.partition_leader_epoch,
            producer_id: header.producer_id,
            producer_epoch: header.producer_epoch,
            base_sequence: header.base_sequence,
            records: header.records_count,
            crc: header.crc,
            crc_ok: crc_matches(&bytes),
            bytes: total,
        });
        position += total;
    }
    Ok(())
}

/// The partition's `leader-epoch-checkpoint` (version, count, then one
/// `epoch start` line each); empty when missing or unreadable.
fn leader_epochs(dir: &Path) -> Vec<(i32, i64)> {
    let path = dir.join("leader-epoch-checkpoint");
    let Ok(file) = File::open(&path) else { return Vec::new() };
    if file.metadata().map(|m| m.len()).unwrap_or(u64::MAX) > 32 << 20 {
        return Vec::new();
    }
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    text.lines()
        .skip(2)
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_record::batch::set_partition_leader_epoch;
    use tributary_record::builder::{BatchBuilder, RecordSpec};
    use tributary_record::compression::Compression;

    fn batch(base: i64, records: usize, producer: i64, sequence: i32) -> Vec<u8> {
        let mut b = BatchBuilder::new(Compression::None).producer(producer, 0, sequence).base_offset(base);
        for i in 0..records {
            b.push(RecordSpec::new(None, Some(format!("v{i}").as_bytes()), 1_000));
        }
        b.build()
    }

    #[test]
    fn lists_each_batch_in_offset_order_and_reports_a_torn_tail() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("t-0");
        std::fs::create_dir(&dir).expect("mkdir");
        let mut first = batch(0, 3, 7, 0);
        set_partition_leader_epoch(&mut first, 2);
        let second = batch(3, 2, 7, 3);
        let mut segment0 = [first.clone(), second.clone()].concat();
        segment0.extend_from_slice(&second[..20]); // a tail cut mid-batch
        std::fs::write(dir.join(format!("{:020}.log", 0)), &segment0).expect("write");
        let mut damaged = batch(5, 1, 8, 0);
        let last = damaged.len() - 1;
        damaged[last] ^= 0xff;
        std::fs::write(dir.join(format!("{:020}.log", 5)), &damaged).expect("write");
        std::fs::write(dir.join(format!("{:020}.log.cleaned", 0)), &first).expect("write");
        std::fs::write(dir.join("leader-epoch-checkpoint"), "0\n2\n0 0\n2 0\n").expect("write");

        let d = dump(&dir, None).expect("dump");
        let seen: Vec<_> = d.batches.iter().map(|b| (b.segment, b.base_offset, b.last_offset, b.crc_ok)).collect();
        assert_eq!(seen, vec![(0, 0, 2, true), (0, 3, 4, true), (5, 5, 5, false)]);
        assert_eq!((d.batches[0].leader_epoch, d.batches[0].producer_id, d.batches[1].base_sequence), (2, 7, 3));
        assert_eq!(d.batches[1].position, first.len() as u64);
        assert_eq!(d.torn.len(), 1);
        assert_eq!((d.torn[0].segment, d.torn[0].bytes), (0, 20));
        assert_eq!(d.leader_epochs, vec![(0, 0), (2, 0)]);

        let below = dump(&dir, Some(5)).expect("dump");
        assert_eq!(below.batches.iter().map(|b| b.base_offset).collect::<Vec<_>>(), vec![0, 3]);
    }

    #[test]
    fn a_length_larger_than_the_file_is_a_torn_tail_not_an_allocation() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("t-1");
        std::fs::create_dir(&dir).expect("mkdir");
        let mut b = batch(0, 1, -1, -1);
        b[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
        std::fs::write(dir.join(format!("{:020}.log", 0)), &b).expect("write");
        let d = dump(&dir, None).expect("dump");
        assert!(d.batches.is_empty());
        assert_eq!(d.torn.len(), 1);
    }
}
