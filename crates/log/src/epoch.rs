//! The leader epoch cache: which offset each leader epoch started at, kept in
//! Kafka's `leader-epoch-checkpoint` text format, answering
//! OffsetForLeaderEpoch (KIP-101/KIP-320).

use std::path::Path;

use crate::index::write_file_synced;

/// File name inside the partition directory.
pub const CHECKPOINT_FILE: &str = "leader-epoch-checkpoint";
/// Kafka's `UNDEFINED_EPOCH`: no epoch.
pub const UNDEFINED_EPOCH: i32 = -1;
/// Kafka's `UNDEFINED_EPOCH_OFFSET`: no end offset.
pub const UNDEFINED_EPOCH_OFFSET: i64 = -1;

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

    /// Records that `epoch` starts at `start_offset` (Kafka's `assign`): a
    /// new latest epoch, or the latest one starting earlier than recorded.
    /// Entries that would break the order (an epoch at least as new, or a
    /// start offset at least as late) are removed first, so a follower that
    /// takes a batch of an older epoch at the log end (the newer epoch was
    /// assigned when it led, with no batch written) drops the stale entry.
    /// Negative epochs or offsets change nothing. Returns whether the cache
    /// changed.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> bool {
        if epoch < 0 || start_offset < 0 {
            return false;
        }
        let needed = self.entries.last().is_none_or(|&(e, o)| e != epoch || start_offset < o);
        if !needed {
            return false;
        }
        while self.entries.last().is_some_and(|&(e, o)| e >= epoch || o >= start_offset) {
            self.entries.pop();
        }
        self.entries.push((epoch, start_offset));
        true
    }

    /// Forgets every epoch (the log was emptied).
    pub fn clear(&mut self) -> bool {
        let changed = !self.entries.is_empty();
        self.entries.clear();
        changed
    }

    /// The entries (epoch, start offset), ascending in both.
    pub fn entries(&self) -> &[(i32, i64)] {
        &self.entries
    }

    /// Removes epochs starting at or after `offset` (log truncated to
    /// `offset`; Kafka's `truncateFromEnd`). Returns whether any went.
    pub fn truncate_from_end(&mut self, offset: i64) -> bool {
        let before = self.entries.len();
        self.entries.retain(|&(_, o)| o < offset);
        self.entries.len() != before
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
    /// offset where the next epoch starts (`log_end_offset` for the latest
    /// epoch). `(-1, -1)` when `requested` is undefined (-1) or newer than
    /// every epoch; `(requested, first start offset)` when it is older than
    /// every epoch the cache still holds (the follower then replicates from
    /// where this log's epochs begin).
    pub fn end_offset_for(&self, requested: i32, log_end_offset: i64) -> (i32, i64) {
        if requested == UNDEFINED_EPOCH {
            return (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
        }
        if self.latest_epoch() == Some(requested) {
            return (requested, log_end_offset);
        }
        let Some(higher) = self.entries.iter().find(|&&(e, _)| e > requested) else {
            return (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
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
        assert_eq!(c.epoch_for_offset(120), Some(2));
    }

    /// Kafka's `endOffsetFor` cases, one by one.
    #[test]
    fn end_offset_for_matches_kafka_case_by_case() {
        let empty = LeaderEpochCache::default();
        assert_eq!(empty.end_offset_for(0, 10), (-1, -1), "no epochs at all");
        assert_eq!(empty.end_offset_for(-1, 10), (-1, -1));
        let mut c = LeaderEpochCache::default();
        c.assign(3, 20);
        c.assign(5, 40);
        // Only -1 is undefined; another negative epoch is older than every epoch.
        assert_eq!(c.end_offset_for(-1, 90), (-1, -1));
        assert_eq!(c.end_offset_for(-2, 90), (-2, 20));
        // Older than every cached epoch: the requested epoch, ending where the cache begins.
        assert_eq!(c.end_offset_for(1, 90), (1, 20));
        // Between two epochs: the older one, ending where the newer starts.
        assert_eq!(c.end_offset_for(4, 90), (3, 40));
        assert_eq!(c.end_offset_for(3, 90), (3, 40));
        // The latest epoch ends at the log end offset passed in.
        assert_eq!(c.end_offset_for(5, 90), (5, 90));
        // Newer than the latest: undefined.
        assert_eq!(c.end_offset_for(6, 90), (-1, -1));
    }

    /// Kafka's `assign`: entries stay ascending in epoch and start offset;
    /// an entry that would break that removes the ones it conflicts with.
    #[test]
    fn assign_keeps_the_cache_monotonic_as_kafka_does() {
        let mut c = LeaderEpochCache::default();
        assert!(c.assign(2, 10));
        assert!(!c.assign(2, 15), "the same epoch starting later changes nothing");
        assert!(c.assign(2, 8), "the same epoch starting earlier moves its start");
        assert_eq!(c.entries(), &[(2, 8)]);
        assert!(c.assign(4, 30));
        // A leader assigned epoch 5 at its log end and wrote nothing; taking
        // a batch of epoch 4 at that offset removes every entry with an
        // epoch at least 4 or a start at least 50, as Kafka does (its
        // followers truncate the cache at the log end first, which the
        // follower append does too, so epoch 4's start is kept there).
        assert!(c.assign(5, 50));
        assert!(c.assign(4, 50));
        assert_eq!(c.entries(), &[(2, 8), (4, 50)]);
        assert!(c.assign(4, 30));
        assert_eq!(c.entries(), &[(2, 8), (4, 30)]);
        // An older epoch at a later offset removes every newer entry.
        assert!(c.assign(3, 60));
        assert_eq!(c.entries(), &[(2, 8), (3, 60)]);
        assert!(!c.assign(-1, 70) && !c.assign(7, -1), "negative epochs and offsets are ignored");
        assert!(c.truncate_from_end(60));
        assert!(!c.truncate_from_end(60));
        assert!(c.clear() && c.entries().is_empty());
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
