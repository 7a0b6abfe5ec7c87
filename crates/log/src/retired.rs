//! Segment files on their way out. Dropping a segment under the log's lock
//! only renames its files; they are unlinked once the lock is released, so a
//! produce never waits for a filesystem to free a segment's blocks.

use std::fs;
use std::path::{Path, PathBuf};

/// Files renamed to `<name>.deleted` under the log's lock (segments a
/// compaction replaced, or that retention or DeleteRecords dropped), to be
/// unlinked after it is released: freeing a file's blocks can wait on the
/// disk, renaming it cannot. Files left behind are removed by the next open.
#[derive(Debug, Default)]
#[must_use = "retired files stay on disk until removed"]
pub struct RetiredFiles(pub(crate) Vec<PathBuf>);

impl RetiredFiles {
    /// Unlinks the retired files (call without the log's lock).
    pub fn remove(self) {
        for path in self.0 {
            if let Err(e) = fs::remove_file(&path)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(path = %path.display(), error = %e, "removing a dropped segment file failed; the next start removes it");
            }
        }
    }

    /// Renames `path` to `<path>.deleted`, if it exists, and remembers it.
    pub(crate) fn retire(&mut self, path: &Path) -> std::io::Result<()> {
        let mut name = path.as_os_str().to_owned();
        name.push(DELETED_SUFFIX);
        let retired = PathBuf::from(name);
        match fs::rename(path, &retired) {
            Ok(()) => {
                self.0.push(retired);
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// Suffix of a replaced segment file waiting to be unlinked.
pub(crate) const DELETED_SUFFIX: &str = ".deleted";
