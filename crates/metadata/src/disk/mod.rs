//! The disk under the metadata log: a flat directory of named files behind
//! a small trait, so the same log code runs on the real filesystem
//! ([`FsDisk`]) and on a simulated disk that loses what was not fsynced when
//! it "crashes" ([`SimDisk`]).
//!
//! Durability rules every caller relies on (and the simulator enforces):
//! - a file's bytes are durable only after [`Disk::sync`] of that file;
//! - a name (creation, rename, removal) is durable only after
//!   [`Disk::sync_dir`];
//! - after a crash, each file holds its last synced bytes, possibly followed
//!   by a torn prefix of what was written since.

mod fs;
mod sim;

use std::io;
use std::path::PathBuf;

pub use fs::FsDisk;
pub use sim::{FaultPlan, SimDisk, SimRng};

/// A directory of files.
pub trait Disk: std::fmt::Debug + Send + Sync {
    /// Names of the files in the directory.
    fn list(&self) -> io::Result<Vec<String>>;
    /// A file's length, `None` if it does not exist.
    fn len(&self, name: &str) -> io::Result<Option<u64>>;
    /// Reads exactly `len` bytes at `offset` (`UnexpectedEof` if the file is shorter).
    /// Callers check `len` against the file length and their limits first.
    fn read_at(&self, name: &str, offset: u64, len: usize) -> io::Result<Vec<u8>>;
    /// Writes `bytes` at `offset`, creating the file if needed. On error a
    /// prefix of the bytes may have been written.
    fn write_at(&mut self, name: &str, offset: u64, bytes: &[u8]) -> io::Result<()>;
    /// Cuts or extends a file.
    fn set_len(&mut self, name: &str, len: u64) -> io::Result<()>;
    /// Makes a file's bytes and length durable.
    fn sync(&mut self, name: &str) -> io::Result<()>;
    /// Renames a file, replacing `to` if it exists.
    fn rename(&mut self, from: &str, to: &str) -> io::Result<()>;
    /// Removes a file.
    fn remove(&mut self, name: &str) -> io::Result<()>;
    /// Makes creations, renames and removals durable.
    fn sync_dir(&mut self) -> io::Result<()>;
    /// The file's path, for messages.
    fn path_of(&self, name: &str) -> PathBuf;
}

/// Why a whole-file read was refused.
#[derive(Debug)]
pub(crate) enum ReadWholeError {
    /// The disk failed.
    Io(io::Error),
    /// The file is larger than the limit (nothing was allocated).
    TooLarge {
        /// Its length.
        len: u64,
    },
}

/// Reads a whole file of at most `max_bytes` (checked before any buffer is
/// sized); `None` if it does not exist.
pub(crate) fn read_whole(disk: &dyn Disk, name: &str, max_bytes: u64) -> Result<Option<Vec<u8>>, ReadWholeError> {
    let Some(len) = disk.len(name).map_err(ReadWholeError::Io)? else {
        return Ok(None);
    };
    if len > max_bytes {
        return Err(ReadWholeError::TooLarge { len });
    }
    // `len <= max_bytes`, and every limit is far below `usize::MAX`.
    let len = usize::try_from(len).map_err(|_| ReadWholeError::TooLarge { len })?;
    match disk.read_at(name, 0, len) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ReadWholeError::Io(e)),
    }
}

/// Suffix of the temporary file [`write_atomically`] writes first.
pub const TEMP_SUFFIX: &str = ".tmp";

/// Replaces `name` with `bytes` so that after a crash it holds either the
/// old or the new bytes, never a mix: write `name.tmp`, fsync it, rename it
/// over `name`, fsync the directory. Returns once the new bytes are durable.
pub(crate) fn write_atomically(disk: &mut dyn Disk, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = format!("{name}{TEMP_SUFFIX}");
    if disk.len(&tmp)?.is_some() {
        disk.remove(&tmp)?;
    }
    disk.write_at(&tmp, 0, bytes)?;
    disk.sync(&tmp)?;
    disk.rename(&tmp, name)?;
    disk.sync_dir()
}
