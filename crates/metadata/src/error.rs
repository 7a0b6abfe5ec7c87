//! The metadata crate's error.

use std::path::PathBuf;

/// A metadata storage failure. The `Display` of each is one line that says
/// what is wrong and, for the ones that stop a start, what to do.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// The disk failed.
    #[error("metadata storage error: cannot {op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// File or directory.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// An earlier write or fsync failed, so what the disk holds is unknown;
    /// every write is refused until the store is opened again.
    #[error(
        "the metadata log refuses writes since an earlier failure ({cause}); restart the process so it recovers from what is on disk"
    )]
    Poisoned {
        /// The failure that stopped writes.
        cause: String,
    },
    /// A file is damaged in a way a crash cannot explain; nothing is cut or
    /// guessed, the store does not open.
    #[error("metadata file {path} is damaged at byte {offset}: {reason}; {remedy}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Where.
        offset: u64,
        /// What.
        reason: String,
        /// What the operator can do.
        remedy: &'static str,
    },
    /// A snapshot that cannot be read (the log after it cannot be used without it).
    #[error(
        "metadata snapshot {path} is unreadable: {reason}; restore the metadata directory from a backup or remove the data directory"
    )]
    BadSnapshot {
        /// File.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The caller broke the log's contract (a gap in appended indexes, a vote
    /// going back, a truncation of committed entries, ...). Nothing changed.
    #[error("refused metadata log operation: {0}")]
    Refused(String),
    /// An entry or snapshot larger than the format allows.
    #[error("metadata {what} of {size} bytes is larger than the maximum of {max} bytes")]
    TooLarge {
        /// Entry or snapshot.
        what: &'static str,
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
}

/// What an operator can do about a damaged file.
pub(crate) const REMEDY_RESTORE: &str =
    "restore the metadata directory from a backup (or, on a single node, remove the data directory to start empty)";
/// What an operator can do about an entry a newer version wrote.
pub(crate) const REMEDY_NEWER: &str = "it was written by a newer Tributary or edited by hand: start the version that wrote it, or restore the metadata directory from a backup";

impl MetadataError {
    pub(crate) fn io(op: &'static str, path: PathBuf) -> impl FnOnce(std::io::Error) -> MetadataError {
        move |source| MetadataError::Io { op, path, source }
    }
}
