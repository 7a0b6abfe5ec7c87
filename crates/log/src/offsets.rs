//! The three offsets that bound what a partition log holds, and the rules
//! between them.
//!
//! ```text
//!   log start ── … ── high watermark ── … ── durable offset ── … ── log end offset
//!   (first readable)   (committed: read by       (fsynced here)     (written here, perhaps
//!                       consumers, acks=all)                          only to the page cache)
//! ```
//!
//! - **Log end offset (LEO)**: the offset the next append gets. Every offset
//!   below it was written to this replica's files, perhaps only to the page
//!   cache.
//! - **Durable offset**: every offset below it is fsynced on this replica.
//!   Only a flush moves it (see [`crate::log::FlushPlan`]).
//! - **High watermark (HW)**: every offset below it is committed: consumers
//!   may read it and acks=all producers are answered. Whoever decides what is
//!   committed moves it with [`crate::PartitionLog::advance_high_watermark`];
//!   the log only keeps it and checks it.
//!
//! Invariants, asserted by [`LogOffsets::check`] wherever the log changes one
//! of them:
//!
//! - `durable offset ≤ LEO`: nothing is fsynced that was not written;
//! - `HW ≤ LEO`: a replica never exposes offsets it does not hold;
//! - all three only grow, except when the log is reopened from disk (a
//!   reload after a panic may cut a corrupt tail, and the log then starts
//!   again from what the disk holds).
//!
//! One more holds on a leader whose in-sync replica set is itself alone
//! (replication factor 1, or a node without a cluster): `HW ≤ durable
//! offset`, because a consumer must never read a record a crash could take
//! back. Such a leader sets the HW to its durable offset after each flush,
//! so there the two are equal; the broker asserts it
//! ([`LogOffsets::check_sole_replica`]). With followers the HW will be the
//! lowest offset the in-sync replicas have made durable, which the leader
//! learns from their fetches.

/// A consistent view of a log's offsets (taken under its lock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogOffsets {
    /// The offset the next append gets.
    pub log_end_offset: i64,
    /// Every offset below this is fsynced.
    pub durable_offset: i64,
    /// Every offset below this is committed.
    pub high_watermark: i64,
}

impl LogOffsets {
    /// Offsets of a log whose every record is on disk (just opened or
    /// recovered): all three at the log end.
    pub fn all_at(log_end_offset: i64) -> LogOffsets {
        LogOffsets { log_end_offset, durable_offset: log_end_offset, high_watermark: log_end_offset }
    }

    /// Asserts the invariants every replica keeps (see the module docs).
    /// `what` names the log in the panic message.
    pub fn check(&self, what: &dyn std::fmt::Display) {
        assert!(self.durable_offset >= 0 && self.high_watermark >= 0, "negative offsets {self:?} in {what}");
        assert!(
            self.durable_offset <= self.log_end_offset,
            "durable offset {} past the log end {} of {what}",
            self.durable_offset,
            self.log_end_offset
        );
        assert!(
            self.high_watermark <= self.log_end_offset,
            "high watermark {} past the log end {} of {what}",
            self.high_watermark,
            self.log_end_offset
        );
    }

    /// Asserts, besides [`LogOffsets::check`], what a leader that is its
    /// own only in-sync replica keeps: nothing is committed that is not
    /// durable here.
    pub fn check_sole_replica(&self, what: &dyn std::fmt::Display) {
        self.check(what);
        assert!(
            self.high_watermark <= self.durable_offset,
            "high watermark {} past the durable offset {} of {what}, a leader that is its only in-sync replica",
            self.high_watermark,
            self.durable_offset
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_in_order_pass() {
        LogOffsets { log_end_offset: 10, durable_offset: 7, high_watermark: 7 }.check_sole_replica(&"t-0");
        LogOffsets { log_end_offset: 10, durable_offset: 7, high_watermark: 9 }.check(&"t-0");
        LogOffsets::all_at(0).check_sole_replica(&"t-0");
    }

    #[test]
    #[should_panic(expected = "durable offset 11 past the log end 10")]
    fn durable_past_the_end_panics() {
        LogOffsets { log_end_offset: 10, durable_offset: 11, high_watermark: 0 }.check(&"t-0");
    }

    #[test]
    #[should_panic(expected = "high watermark 11 past the log end 10")]
    fn high_watermark_past_the_end_panics() {
        LogOffsets { log_end_offset: 10, durable_offset: 10, high_watermark: 11 }.check(&"t-0");
    }

    #[test]
    #[should_panic(expected = "past the durable offset 7")]
    fn a_sole_replica_never_commits_what_is_not_durable() {
        LogOffsets { log_end_offset: 10, durable_offset: 7, high_watermark: 8 }.check_sole_replica(&"t-0");
    }
}
