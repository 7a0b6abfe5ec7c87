//! The leader epoch cache: which offset each leader epoch started at, kept in
//! Kafka's `leader-epoch-checkpoint` text format, answering
//! OffsetForLeaderEpoch (KIP-101/KIP-320).

use std::path::Path;

use crate::index::write_file_synced;

/// File name inside the partition directory.
pub const CHECKPOINT_FILE: &str = "leader-epoch-checkpoint";

/// Epoch start offsets, ascending in both.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LeaderEpochCache {
    entries: Vec<(i32, i64)>,
}

impl LeaderEpochCache {
    /// Reads the checkpoint; a missing or unreadable file gives an empty cache.
    pub fn load(dir: &Path) -> LeaderEpochCache {
        let text = crate::files::read_bounded_text(&dir.join(CHECKPOINT_FILE), crate::files::EPOCH_FILE_BYTES_MAX);
        let mut lines = text.lines();
        let (Some("0"), Some(count)) = (lines.next(), lines.next()) else {
            return LeaderEpochCache::default();
        };
        let count: usize = count.trim().parse().unwrap_or(0);
        let mut entries = Vec::new();
        for line in lines.take(count) {
            let mut parts = line.split_whitespace();
            let (Some(e), Some(o)) = (parts.next(), parts.next()) else {
                break;
            };
            let (Ok(e), Ok(o)) = (e.parse::<i32>(), o.parse::<i64>()) else {
                break;
            };
            if entries.last().is_some_and(|&(le, lo): &(i32, i64)| le >= e || lo > o) {
                break;
            }
            entries.push((e, o));
        }
        LeaderEpochCache { entries }
    }

    /// Writes the checkpoint durably.
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        let mut text = format!("0\n{}\n", self.entries.len());
        for (e, o) in &self.entries {
            text.push_str(&format!("{e} {o}\n"));
        }
        write_file_synced(&dir.join(CHECKPOINT_FILE), text.as_bytes())
    }

    /// The latest epoch, if any.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|&(e, _)| e)
    }

    /// Records that `epoch` starts at `start_offset`, if it is newer than the
    /// latest. Returns whether the cache changed.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> bool {
        if epoch < 0 || self.latest_epoch().is_some_and(|l| l >= epoch) {
            return false;
        }
        self.entries.push((epoch, start_offset));
        true
    }

    /// Removes epochs starting at or after `offset` (log truncated to `offset`).
    pub fn truncate_from_end(&mut self, offset: i64) {
        self.entries.retain(|&(_, o)| o < offset);
    }

    /// Removes epochs wholly before `offset`, keeping the one covering it.
    pub fn truncate_from_start(&mut self, offset: i64) {
        let covering = self.entries.iter().rposition(|&(_, o)| o <= offset);
        if let Some(i) = covering {
            self.entries.drain(..i);
            if let Some(first) = self.entries.first_mut() {
                first.1 = first.1.max(offset);
            }
        }
    }

    /// Kafka's `endOffsetFor`: the largest epoch ≤ `requested` and the
    /// offset where the next epoch starts (the log end for the latest epoch).
    /// `(-1, -1)` when `requested` is undefined or newer than every epoch.
    pub fn end_offset_for(&self, requested: i32, log_end_offset: i64) -> (i32, i64) {
        if requested < 0 {
            return (-1, -1);
        }
        if self.latest_epoch() == Some(requested) {
            return (requested, log_end_offset);
        }
        let Some(higher) = self.entries.iter().find(|&&(e, _)| e > requested) else {
            return (-1, -1);
        };
        match self.entries.iter().rev().find(|&&(e, _)| e <= requested) {
            Some(&(e, _)) => (e, higher.1),
            None => (requested, higher.1),
        }
    }

    /// The epoch that covers `offset`, if known.
    pub fn epoch_for_offset(&self, offset: i64) -> Option<i32> {
        self.entries.iter().rev().find(|&&(_, o)| o <= offset).map(|&(e, _)| e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_offsets_follow_kafka() {
        let mut c = LeaderEpochCache::default();
        c.assign(0, 0);
        c.assign(2, 100);
        c.assign(5, 250);
        assert_eq!(c.end_offset_for(5, 300), (5, 300));
        assert_eq!(c.end_offset_for(0, 300), (0, 100));
        assert_eq!(c.end_offset_for(1, 300), (0, 100));
        assert_eq!(c.end_offset_for(3, 300), (2, 250));
        assert_eq!(c.end_offset_for(9, 300), (-1, -1));
        assert_eq!(c.end_offset_for(-1, 300), (-1, -1));
        assert!(!c.assign(4, 260), "older epochs are ignored");
        assert_eq!(c.epoch_for_offset(120), Some(2));
    }

    #[test]
    fn checkpoint_round_trip_and_truncation() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = LeaderEpochCache::default();
        c.assign(0, 0);
        c.assign(3, 40);
        c.save(dir.path()).expect("save");
        assert_eq!(std::fs::read_to_string(dir.path().join(CHECKPOINT_FILE)).expect("read"), "0\n2\n0 0\n3 40\n");
        assert_eq!(LeaderEpochCache::load(dir.path()), c);
        c.truncate_from_end(40);
        assert_eq!(c.latest_epoch(), Some(0));
        let mut d = LeaderEpochCache::load(dir.path());
        d.truncate_from_start(50);
        assert_eq!(d.end_offset_for(3, 60), (3, 60));
        assert_eq!(d.epoch_for_offset(0), None);
    }
}
