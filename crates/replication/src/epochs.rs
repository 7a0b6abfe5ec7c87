//! Leader epochs: the cache of where each epoch starts (as the log keeps it
//! in its `leader-epoch-checkpoint`), and the follower's rule for where to
//! truncate once the leader has said where an epoch ends (KIP-101, KIP-279).
//!
//! Why epochs find the divergence point: one leader writes each epoch, and
//! it never resumes an epoch after a restart (the controller moves or bumps
//! its leadership when it registers again, see
//! [`crate::controller_model::ControllerModel::register_broker`]). So two
//! logs that both hold epoch `e` hold the same records of `e`, up to the
//! shorter one's end; the first offset where they differ is where one of
//! them starts an epoch the other does not have.

use crate::log::{EpochEndOffset, ReplicaLog};
use crate::types::{LeaderEpoch, Offset};

/// Epoch start offsets, ascending in both (the model of
/// `tributary_log::epoch::LeaderEpochCache`, without the file).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct EpochCache {
    entries: Vec<(LeaderEpoch, Offset)>,
}

impl EpochCache {
    /// The entries, oldest first.
    pub fn entries(&self) -> &[(LeaderEpoch, Offset)] {
        &self.entries
    }

    /// The latest epoch, if any.
    pub fn latest_epoch(&self) -> Option<LeaderEpoch> {
        self.entries.last().map(|&(e, _)| e)
    }

    /// Records that `epoch` starts at `start_offset` when it is newer than
    /// the latest, dropping epochs that start at or after it (epochs a
    /// leader began without writing anything, as Kafka's cache does).
    /// Returns whether the cache changed.
    pub fn assign(&mut self, epoch: LeaderEpoch, start_offset: Offset) -> bool {
        if epoch < 0 || self.latest_epoch().is_some_and(|latest| latest >= epoch) {
            return false;
        }
        while self.entries.last().is_some_and(|&(_, start)| start >= start_offset) {
            self.entries.pop();
        }
        self.entries.push((epoch, start_offset));
        true
    }

    /// Forgets epochs that start at or after `offset` (the log was cut there).
    pub fn truncate_from_end(&mut self, offset: Offset) {
        self.entries.retain(|&(_, start)| start < offset);
    }

    /// Kafka's `endOffsetFor`: the largest epoch ≤ `requested` and the
    /// offset where the next epoch starts, the log end for the latest epoch;
    /// `requested` itself with the first epoch's start when it is older than
    /// every epoch; `None` when `requested` is undefined or newer than every
    /// epoch.
    pub fn end_offset_for(&self, requested: LeaderEpoch, log_end_offset: Offset) -> Option<EpochEndOffset> {
        if requested < 0 {
            return None;
        }
        if self.latest_epoch() == Some(requested) {
            return Some(EpochEndOffset { epoch: requested, end_offset: log_end_offset });
        }
        let &(_, next_start) = self.entries.iter().find(|&&(e, _)| e > requested)?;
        let epoch = self.entries.iter().rev().find(|&&(e, _)| e <= requested).map_or(requested, |&(e, _)| e);
        Some(EpochEndOffset { epoch, end_offset: next_start })
    }

    /// The epoch that covers `offset`, if known.
    pub fn epoch_for_offset(&self, offset: Offset) -> Option<LeaderEpoch> {
        self.entries.iter().rev().find(|&&(_, start)| start <= offset).map(|&(e, _)| e)
    }
}

/// Where a follower truncates, and whether it knows the divergence point
/// yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TruncationTarget {
    /// Cut the log here (never above its end).
    pub offset: Offset,
    /// False when the follower had to cut back to an older epoch of its own
    /// and must ask the leader again about that one.
    pub complete: bool,
}

/// Kafka's `getOffsetTruncationState`: given the leader's end offset for the
/// follower's epoch (`None` when the leader could not tell), where the
/// follower's `log` should be cut.
///
/// - The leader could not tell: back to the follower's high watermark,
///   which every replica's log agrees on.
/// - The leader answered with an epoch the follower does not have: cut to
///   the end of the follower's largest older epoch and ask again.
/// - Otherwise: the smaller of the two logs' ends of that epoch.
pub fn truncation_target<L: ReplicaLog>(log: &L, leader_answer: Option<EpochEndOffset>) -> TruncationTarget {
    let log_end = log.log_end_offset();
    let Some(leader) = leader_answer else {
        return TruncationTarget { offset: log.high_watermark().min(log_end), complete: true };
    };
    match log.end_offset_for_epoch(leader.epoch) {
        Some(local) if local.epoch != leader.epoch => {
            TruncationTarget { offset: local.end_offset.min(log_end), complete: false }
        }
        Some(local) => {
            TruncationTarget { offset: local.end_offset.min(leader.end_offset).min(log_end), complete: true }
        }
        None => TruncationTarget { offset: leader.end_offset.min(log_end), complete: true },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: &[(LeaderEpoch, Offset)]) -> EpochCache {
        let mut c = EpochCache::default();
        for &(e, o) in entries {
            assert!(c.assign(e, o));
        }
        c
    }

    #[test]
    fn end_offsets_answer_as_kafka_does() {
        let c = cache(&[(0, 0), (2, 100), (5, 250)]);
        assert_eq!(c.end_offset_for(5, 300), Some(EpochEndOffset { epoch: 5, end_offset: 300 }));
        assert_eq!(c.end_offset_for(0, 300), Some(EpochEndOffset { epoch: 0, end_offset: 100 }));
        assert_eq!(c.end_offset_for(1, 300), Some(EpochEndOffset { epoch: 0, end_offset: 100 }));
        assert_eq!(c.end_offset_for(3, 300), Some(EpochEndOffset { epoch: 2, end_offset: 250 }));
        assert_eq!(c.end_offset_for(9, 300), None, "newer than every epoch");
        assert_eq!(c.end_offset_for(-1, 300), None);
        let later = cache(&[(3, 40)]);
        assert_eq!(later.end_offset_for(1, 60), Some(EpochEndOffset { epoch: 1, end_offset: 40 }), "older than all");
        assert_eq!(c.epoch_for_offset(120), Some(2));
        assert_eq!(later.epoch_for_offset(10), None);
    }

    #[test]
    fn older_epochs_are_ignored_and_truncation_forgets_later_ones() {
        let mut c = cache(&[(0, 0), (3, 40)]);
        assert!(!c.assign(2, 50));
        assert!(!c.assign(3, 50));
        c.truncate_from_end(40);
        assert_eq!(c.entries(), &[(0, 0)]);
        c.truncate_from_end(0);
        assert_eq!(c.latest_epoch(), None);
    }

    #[test]
    fn a_newer_epoch_at_the_same_start_replaces_an_empty_one() {
        let mut c = cache(&[(0, 0), (3, 40)]);
        assert!(c.assign(5, 40), "epoch 3 never wrote a record");
        assert_eq!(c.entries(), &[(0, 0), (5, 40)]);
        assert!(c.assign(6, 30), "a start before the latest's drops it too");
        assert_eq!(c.entries(), &[(0, 0), (6, 30)]);
    }

    /// A log with only an epoch cache, for the truncation rule.
    struct Log {
        cache: EpochCache,
        end: Offset,
        hw: Offset,
    }

    impl ReplicaLog for Log {
        type Records = ();
        fn log_end_offset(&self) -> Offset {
            self.end
        }
        fn durable_offset(&self) -> Offset {
            self.end
        }
        fn high_watermark(&self) -> Offset {
            self.hw
        }
        fn set_high_watermark(&mut self, offset: Offset) {
            self.hw = offset;
        }
        fn latest_epoch(&self) -> Option<LeaderEpoch> {
            self.cache.latest_epoch()
        }
        fn end_offset_for_epoch(&self, epoch: LeaderEpoch) -> Option<EpochEndOffset> {
            self.cache.end_offset_for(epoch, self.end)
        }
        fn assign_epoch_start(&mut self, _: LeaderEpoch, _: Offset) -> Result<(), crate::log::LogError> {
            Ok(())
        }
        fn append_as_follower(&mut self, _: ()) -> Result<(), crate::log::LogError> {
            Ok(())
        }
        fn truncate_to(&mut self, _: Offset) -> Result<(), crate::log::LogError> {
            Ok(())
        }
    }

    #[test]
    fn truncation_cuts_to_the_shorter_end_of_the_shared_epoch() {
        // Follower: epoch 1 from 0, epoch 2 from 10, end 18. Leader wrote
        // epoch 2 only up to 14 before epoch 4 began.
        let log = Log { cache: cache(&[(1, 0), (2, 10)]), end: 18, hw: 9 };
        let leader = Some(EpochEndOffset { epoch: 2, end_offset: 14 });
        assert_eq!(truncation_target(&log, leader), TruncationTarget { offset: 14, complete: true });
        // The leader has more of epoch 2 than the follower: nothing to cut.
        let longer = Some(EpochEndOffset { epoch: 2, end_offset: 30 });
        assert_eq!(truncation_target(&log, longer), TruncationTarget { offset: 18, complete: true });
    }

    #[test]
    fn an_epoch_the_follower_lacks_means_cutting_back_and_asking_again() {
        // Follower asked about its epoch 3; the leader never had 3 and says
        // its largest older epoch is 2, ending at 25. The follower has no 2:
        // it cuts to the end of its epoch 1 and asks about 1.
        let log = Log { cache: cache(&[(1, 0), (3, 12)]), end: 20, hw: 5 };
        let answer = Some(EpochEndOffset { epoch: 2, end_offset: 25 });
        assert_eq!(truncation_target(&log, answer), TruncationTarget { offset: 12, complete: false });
    }

    #[test]
    fn an_unknown_answer_falls_back_to_the_high_watermark() {
        let log = Log { cache: cache(&[(1, 0)]), end: 20, hw: 7 };
        assert_eq!(truncation_target(&log, None), TruncationTarget { offset: 7, complete: true });
        // An epoch older than the follower's first: cut where that one starts.
        let log = Log { cache: cache(&[(4, 10)]), end: 20, hw: 7 };
        let answer = Some(EpochEndOffset { epoch: 2, end_offset: 15 });
        assert_eq!(truncation_target(&log, answer), TruncationTarget { offset: 10, complete: true });
        // A follower tracking no epochs: the leader's offset.
        let log = Log { cache: EpochCache::default(), end: 20, hw: 7 };
        assert_eq!(truncation_target(&log, answer), TruncationTarget { offset: 15, complete: true });
    }
}
