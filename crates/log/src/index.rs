//! Offset and time indexes of a segment, in Kafka's on-disk formats:
//! `.index` = (relative offset u32, position u32) and `.timeindex` =
//! (timestamp i64, relative offset u32), big-endian, ascending. They are
//! sparse (one entry per `index.interval.bytes` of log) and held in memory;
//! the files are rewritten when a segment is rolled or closed and rebuilt
//! from the log when missing or not trustworthy.

use std::fs;
use std::io::Write;
use std::path::Path;

use tributary_record::batch::BATCH_HEADER_LEN;

/// Sparse offset index: relative offset → byte position.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct OffsetIndex {
    entries: Vec<(u32, u32)>,
}

impl OffsetIndex {
    /// Adds an entry; entries must ascend (a lookup on an index that does
    /// not would read the wrong batches).
    pub fn push(&mut self, relative_offset: u32, position: u32) {
        assert!(
            self.entries.last().is_none_or(|&(o, p)| o < relative_offset && p < position),
            "offset index entries must ascend: ({relative_offset}, {position}) after {:?}",
            self.entries.last()
        );
        self.entries.push((relative_offset, position));
    }

    /// Position of the last entry at or below `relative_offset` (0 if none).
    pub fn lookup(&self, relative_offset: u32) -> u32 {
        let i = self.entries.partition_point(|&(o, _)| o <= relative_offset);
        if i == 0 { 0 } else { self.entries[i - 1].1 }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The entries (relative offset, position), ascending.
    pub fn entries(&self) -> &[(u32, u32)] {
        &self.entries
    }

    /// Whether the index has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Drops entries at or beyond `position` (after a truncation).
    pub fn truncate_to_position(&mut self, position: u32) {
        self.entries.retain(|&(_, p)| p < position);
    }

    /// Writes the index file.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let mut buf = Vec::with_capacity(self.entries.len() * 8);
        for &(o, p) in &self.entries {
            buf.extend_from_slice(&o.to_be_bytes());
            buf.extend_from_slice(&p.to_be_bytes());
        }
        write_file_synced(path, &buf)
    }

    /// Reads an index file, returning `None` if it is absent or not
    /// trustworthy (torn, not ascending, or pointing past `log_size`).
    pub fn read(path: &Path, log_size: u64) -> Option<OffsetIndex> {
        let bytes = read_index_file(path, 8, log_size)?;
        if bytes.len() % 8 != 0 {
            return None;
        }
        let mut index = OffsetIndex::default();
        for chunk in bytes.chunks_exact(8) {
            let o = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            let p = u32::from_be_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]);
            if u64::from(p) >= log_size || index.entries.last().is_some_and(|&(lo, lp)| lo >= o || lp >= p) {
                return None;
            }
            index.entries.push((o, p));
        }
        Some(index)
    }
}

/// Sparse time index: running max timestamp → relative offset of the batch
/// that raised it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TimeIndex {
    entries: Vec<(i64, u32)>,
}

impl TimeIndex {
    /// Adds an entry if `timestamp` exceeds the last one.
    pub fn maybe_push(&mut self, timestamp: i64, relative_offset: u32) {
        if self.entries.last().is_none_or(|&(t, o)| timestamp > t && relative_offset > o) {
            self.entries.push((timestamp, relative_offset));
        }
    }

    /// Relative offset to start scanning from for the first record with a
    /// timestamp at or after `timestamp` (0 if no entry is at or below it).
    pub fn lookup(&self, timestamp: i64) -> u32 {
        let i = self.entries.partition_point(|&(t, _)| t <= timestamp);
        if i == 0 { 0 } else { self.entries[i - 1].1 }
    }

    /// The entries (timestamp, relative offset), ascending.
    pub fn entries(&self) -> &[(i64, u32)] {
        &self.entries
    }

    /// Drops entries at or beyond `relative_offset`.
    pub fn truncate_to_offset(&mut self, relative_offset: u32) {
        self.entries.retain(|&(_, o)| o < relative_offset);
    }

    /// Writes the index file.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let mut buf = Vec::with_capacity(self.entries.len() * 12);
        for &(t, o) in &self.entries {
            buf.extend_from_slice(&t.to_be_bytes());
            buf.extend_from_slice(&o.to_be_bytes());
        }
        write_file_synced(path, &buf)
    }

    /// Reads a time index file of a segment of `log_size` bytes, `None` if
    /// absent or not trustworthy.
    pub fn read(path: &Path, next_relative_offset: u32, log_size: u64) -> Option<TimeIndex> {
        let bytes = read_index_file(path, 12, log_size)?;
        if bytes.len() % 12 != 0 {
            return None;
        }
        let mut index = TimeIndex::default();
        for chunk in bytes.chunks_exact(12) {
            let mut t = [0u8; 8];
            t.copy_from_slice(&chunk[..8]);
            let t = i64::from_be_bytes(t);
            let o = u32::from_be_bytes([chunk[8], chunk[9], chunk[10], chunk[11]]);
            if o >= next_relative_offset.max(1) || index.entries.last().is_some_and(|&(lt, lo)| lt >= t || lo >= o) {
                return None;
            }
            index.entries.push((t, o));
        }
        Some(index)
    }
}

/// Reads an index file whose entries are `entry_len` bytes, refusing (as not
/// trustworthy) one larger than a segment of `log_size` bytes can need before
/// reading it: entries ascend and each names a different batch, and a batch
/// is at least a header long.
fn read_index_file(path: &Path, entry_len: u64, log_size: u64) -> Option<Vec<u8>> {
    let entries_max = log_size / BATCH_HEADER_LEN as u64 + 1;
    if fs::metadata(path).ok()?.len() > entries_max.saturating_mul(entry_len) {
        return None;
    }
    fs::read(path).ok()
}

/// Writes `bytes` to `path` via a temporary file, fsyncs it and renames it
/// into place, so a crash leaves either the old or the new file.
pub(crate) fn write_file_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("{}.tmp", path.extension().and_then(|e| e.to_str()).unwrap_or("")));
    let mut f = fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_lookup_is_floor() {
        let mut idx = OffsetIndex::default();
        idx.push(10, 4096);
        idx.push(20, 8192);
        assert_eq!(idx.lookup(5), 0);
        assert_eq!(idx.lookup(10), 4096);
        assert_eq!(idx.lookup(19), 4096);
        assert_eq!(idx.lookup(25), 8192);
        idx.truncate_to_position(8192);
        assert_eq!(idx.lookup(25), 4096);
    }

    #[test]
    fn time_lookup_and_monotonic_entries() {
        let mut idx = TimeIndex::default();
        idx.maybe_push(100, 1);
        idx.maybe_push(90, 2); // not a new max: skipped
        idx.maybe_push(200, 5);
        assert_eq!(idx.lookup(50), 0);
        assert_eq!(idx.lookup(150), 1);
        assert_eq!(idx.lookup(200), 5);
    }

    #[test]
    fn files_round_trip_and_reject_garbage() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut idx = OffsetIndex::default();
        idx.push(1, 100);
        idx.push(3, 300);
        let path = dir.path().join("0.index");
        idx.write(&path).expect("write");
        assert_eq!(OffsetIndex::read(&path, 1000), Some(idx.clone()));
        assert_eq!(OffsetIndex::read(&path, 200), None, "entry past the log end");
        std::fs::write(&path, [0u8; 7]).expect("write");
        assert_eq!(OffsetIndex::read(&path, 1000), None, "torn entry");

        let mut t = TimeIndex::default();
        t.maybe_push(5, 1);
        let tpath = dir.path().join("0.timeindex");
        t.write(&tpath).expect("write");
        assert_eq!(TimeIndex::read(&tpath, 10, 1000), Some(t));

        // A file larger than any segment of that size can need is refused unread.
        std::fs::write(&path, vec![0u8; 8 * 1000]).expect("write");
        assert_eq!(OffsetIndex::read(&path, 1000), None, "more entries than batches fit");
    }
}
