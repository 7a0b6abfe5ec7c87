//! Known bugs the simulator's invariants must catch, switched on per test
//! thread (compiled only into this crate's tests). Each names the rule of
//! the design it breaks; `sim::tests` shows a run with the bug fails.

use std::cell::Cell;

/// A deliberate bug.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bug {
    /// The follower fetches (and so reports) its written log end without
    /// waiting for its flush: the high watermark may cover records a crash
    /// takes back.
    FollowerReportsWrittenOffset,
    /// The leader computes the high watermark over the committed ISR,
    /// ignoring a replica whose expansion is in flight (KIP-497's maximal
    /// ISR).
    HighWatermarkOverCommittedIsr,
    /// The controller lets a restarted broker keep leading in the leader
    /// epoch it led before its crash, so one epoch has two histories.
    LeaderKeepsEpochAcrossRestart,
    /// The controller elects any live replica, in sync or not, and puts it
    /// in the ISR.
    ElectOutsideIsr,
}

thread_local! {
    static ACTIVE: Cell<Option<Bug>> = const { Cell::new(None) };
}

/// Whether `bug` is switched on for this thread.
pub(crate) fn active(bug: Bug) -> bool {
    ACTIVE.with(|a| a.get() == Some(bug))
}

/// Runs `f` with `bug` switched on for this thread.
pub(crate) fn with<T>(bug: Bug, f: impl FnOnce() -> T) -> T {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            ACTIVE.with(|a| a.set(None));
        }
    }
    ACTIVE.with(|a| a.set(Some(bug)));
    let _reset = Reset;
    f()
}
