//! The partition checkpoint: how far the log is known to be on disk (the
//! recovery point; batches after it are validated on an unclean start) and
//! the log start offset (moved by DeleteRecords and retention), and for
//! compacted logs the first offset the cleaner has not cleaned yet; and for
//! a replicated log a high watermark it reached (Kafka's
//! replication-offset-checkpoint, kept per partition here), which a reopened
//! replica starts from instead of its log end.

use std::path::Path;

use crate::index::write_file_synced;

/// File name inside the partition directory.
pub const CHECKPOINT_FILE: &str = "tributary-checkpoint";

/// Durable positions of a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Checkpoint {
    /// Offsets below this were fsynced and their indexes written.
    pub recovery_point: i64,
    /// First offset visible to readers.
    pub log_start_offset: i64,
    /// Offsets below this were compacted (0 when never).
    pub cleaner_offset: i64,
    /// A high watermark the log had reached (written at most about once a
    /// second, so it may lag; never above what was committed). `None` when
    /// never written.
    pub high_watermark: Option<i64>,
}

impl Checkpoint {
    /// Reads the checkpoint; a missing or malformed file gives zeros (every
    /// segment is then validated).
    pub fn load(dir: &Path) -> Checkpoint {
        let text = crate::files::read_bounded_text(&dir.join(CHECKPOINT_FILE), crate::files::CHECKPOINT_FILE_BYTES_MAX);
        let mut c = Checkpoint::default();
        let mut lines = text.lines();
        if lines.next() != Some("version 0") {
            return c;
        }
        for line in lines {
            match line.split_once(' ') {
                Some(("recovery_point", v)) => c.recovery_point = v.trim().parse().unwrap_or(0),
                Some(("log_start_offset", v)) => c.log_start_offset = v.trim().parse().unwrap_or(0),
                Some(("cleaner_offset", v)) => c.cleaner_offset = v.trim().parse().unwrap_or(0),
                Some(("high_watermark", v)) => c.high_watermark = v.trim().parse().ok(),
                _ => {}
            }
        }
        c
    }

    /// Writes the checkpoint durably.
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        let mut text = format!(
            "version 0\nrecovery_point {}\nlog_start_offset {}\ncleaner_offset {}\n",
            self.recovery_point, self.log_start_offset, self.cleaner_offset
        );
        if let Some(hw) = self.high_watermark {
            text.push_str(&format!("high_watermark {hw}\n"));
        }
        write_file_synced(&dir.join(CHECKPOINT_FILE), text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(Checkpoint::load(dir.path()), Checkpoint::default());
        let c = Checkpoint { recovery_point: 42, log_start_offset: 7, cleaner_offset: 5, high_watermark: None };
        c.save(dir.path()).expect("save");
        assert_eq!(Checkpoint::load(dir.path()), c);
        let with_hw = Checkpoint { high_watermark: Some(40), ..c };
        with_hw.save(dir.path()).expect("save");
        assert_eq!(Checkpoint::load(dir.path()), with_hw);
        std::fs::write(dir.path().join(CHECKPOINT_FILE), "garbage").expect("write");
        assert_eq!(Checkpoint::load(dir.path()), Checkpoint::default());
    }
}
