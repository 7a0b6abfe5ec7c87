//! Reading the log's small files (checkpoints, snapshots) with a bound: a
//! file larger than any the log writes is corrupt, or not ours, and is
//! refused before a buffer is sized by it.

use std::fs;
use std::io::Read;
use std::path::Path;

/// Largest checkpoint file (`tributary-checkpoint`: three numbers).
pub(crate) const CHECKPOINT_FILE_BYTES_MAX: u64 = 64 * 1024;
/// Largest leader-epoch checkpoint: about 25 bytes a line, a million epochs.
pub(crate) const EPOCH_FILE_BYTES_MAX: u64 = 32 << 20;
/// Largest producer snapshot: about 180 bytes per producer, over a million producers.
pub(crate) const PRODUCER_SNAPSHOT_BYTES_MAX: u64 = 256 << 20;

/// The file's bytes, or `None` if it is missing, unreadable or larger than
/// `max` bytes (checked before reading, and again while reading in case the
/// file grows meanwhile).
pub(crate) fn read_bounded(path: &Path, max: u64) -> Option<Vec<u8>> {
    let file = fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    if len > max {
        tracing::warn!(path = %path.display(), len, max, "ignoring a file larger than the log ever writes");
        return None;
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(max + 1).read_to_end(&mut bytes).ok()?;
    (bytes.len() as u64 <= max).then_some(bytes)
}

/// [`read_bounded`] as UTF-8 text (empty if missing, too large or not text).
pub(crate) fn read_bounded_text(path: &Path, max: u64) -> String {
    read_bounded(path, max).and_then(|b| String::from_utf8(b).ok()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_over_the_bound_are_refused_unread() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        fs::write(&path, b"12345").expect("write");
        assert_eq!(read_bounded(&path, 5).as_deref(), Some(&b"12345"[..]));
        assert_eq!(read_bounded(&path, 4), None);
        assert_eq!(read_bounded(&dir.path().join("missing"), 4), None);
        assert_eq!(read_bounded_text(&path, 10), "12345");
    }
}
