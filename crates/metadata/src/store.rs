//! The durable metadata log: each command is framed, checksummed, appended
//! and fsynced before it is applied; a snapshot of the state is written every
//! [`SNAPSHOT_EVERY_COMMANDS`] commands and the log restarts after it. On
//! open, the newest snapshot is loaded and the commands after it replayed; a
//! torn final record is cut off.
//!
//! Frame: `u32 length | u32 crc32c(index ‖ payload) | u64 index | payload (JSON)`.
//!
//! The log is local on one node. It has the shape a Raft log needs (ordered,
//! indexed, durable entries applied by a deterministic state machine), so the
//! replication work can put a quorum under [`MetadataStore::append`].

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::state::{MetadataCommand, MetadataState};

/// Commands between snapshots.
pub const SNAPSHOT_EVERY_COMMANDS: u64 = 1000;
/// Largest accepted record, so a corrupt length cannot size an allocation.
const RECORD_BYTES_MAX: u32 = 64 << 20;

const LOG_FILE: &str = "metadata.log";
const SNAPSHOT_FILE: &str = "metadata.snapshot";

/// A metadata store failure.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// Disk trouble.
    #[error("metadata storage error on {path}: {source}")]
    Io {
        /// File or directory.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A snapshot that cannot be read (the log after it cannot be trusted either).
    #[error("metadata snapshot {path} is unreadable: {reason}; restore it from a backup or remove the data directory")]
    BadSnapshot {
        /// File.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> MetadataError + '_ {
    move |source| MetadataError::Io { path: path.to_path_buf(), source }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Snapshot {
    index: u64,
    state: MetadataState,
}

/// The metadata log and its applied state.
#[derive(Debug)]
pub struct MetadataStore {
    dir: PathBuf,
    log: File,
    state: MetadataState,
    next_index: u64,
    snapshot_index: u64,
}

impl MetadataStore {
    /// Opens the store in `dir`, creating it if needed.
    pub fn open(dir: &Path) -> Result<MetadataStore, MetadataError> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        let snapshot_path = dir.join(SNAPSHOT_FILE);
        let (mut state, snapshot_index) = match fs::read(&snapshot_path) {
            Ok(bytes) => {
                let snap: Snapshot = serde_json::from_slice(&bytes)
                    .map_err(|e| MetadataError::BadSnapshot { path: snapshot_path.clone(), reason: e.to_string() })?;
                if snap.index == u64::MAX {
                    let reason = "its index is the last one there is, so no command can follow".to_string();
                    return Err(MetadataError::BadSnapshot { path: snapshot_path, reason });
                }
                (snap.state, snap.index)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (MetadataState::default(), 0),
            Err(e) => return Err(io(&snapshot_path)(e)),
        };
        let log_path = dir.join(LOG_FILE);
        let mut log = OpenOptions::new().create(true).read(true).append(true).open(&log_path).map_err(io(&log_path))?;
        let mut bytes = Vec::new();
        log.read_to_end(&mut bytes).map_err(io(&log_path))?;
        let (records, valid_len) = parse_records(&bytes);
        if valid_len < bytes.len() {
            tracing::warn!(path = %log_path.display(), valid_len, total = bytes.len(), "cutting a torn tail off the metadata log");
            log.set_len(valid_len as u64).map_err(io(&log_path))?;
            log.sync_all().map_err(io(&log_path))?;
        }
        let mut next_index = snapshot_index + 1;
        for (index, command) in records {
            if index < next_index {
                continue; // already in the snapshot
            }
            state.apply(index, &command);
            next_index = index + 1;
        }
        Ok(MetadataStore { dir: dir.to_path_buf(), log, state, next_index, snapshot_index })
    }

    /// The applied state.
    pub fn state(&self) -> &MetadataState {
        &self.state
    }

    /// Appends a command durably, then applies it. Returns its index.
    pub fn append(&mut self, command: MetadataCommand) -> Result<u64, MetadataError> {
        let index = self.next_index;
        let payload = serde_json::to_vec(&command).map_err(|e| io(&self.dir)(std::io::Error::other(e)))?;
        let mut frame = Vec::with_capacity(16 + payload.len());
        let mut covered = Vec::with_capacity(8 + payload.len());
        covered.extend_from_slice(&index.to_be_bytes());
        covered.extend_from_slice(&payload);
        frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        frame.extend_from_slice(&crc32c::crc32c(&covered).to_be_bytes());
        frame.extend_from_slice(&covered);
        let log_path = self.dir.join(LOG_FILE);
        self.log.write_all(&frame).map_err(io(&log_path))?;
        self.log.sync_data().map_err(io(&log_path))?;
        self.state.apply(index, &command);
        self.next_index += 1;
        if index - self.snapshot_index >= SNAPSHOT_EVERY_COMMANDS {
            self.snapshot()?;
        }
        Ok(index)
    }

    /// Writes a snapshot of the state and starts an empty log after it.
    pub fn snapshot(&mut self) -> Result<(), MetadataError> {
        let index = self.next_index - 1;
        let snapshot = Snapshot { index, state: self.state.clone() };
        let bytes = serde_json::to_vec(&snapshot).map_err(|e| io(&self.dir)(std::io::Error::other(e)))?;
        write_synced(&self.dir, SNAPSHOT_FILE, &bytes)?;
        // Records up to `index` are now redundant; a crash before this leaves them, and replay skips them.
        write_synced(&self.dir, LOG_FILE, &[])?;
        let log_path = self.dir.join(LOG_FILE);
        self.log = OpenOptions::new().read(true).append(true).open(&log_path).map_err(io(&log_path))?;
        self.snapshot_index = index;
        Ok(())
    }
}

fn write_synced(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), MetadataError> {
    let tmp = dir.join(format!("{name}.tmp"));
    let path = dir.join(name);
    let mut f = File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    fs::rename(&tmp, &path).map_err(io(&path))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

/// Parses frames until the first incomplete or corrupt one; returns the
/// commands and the length of the valid prefix. A frame with index
/// `u64::MAX` is corrupt too: no command could follow it.
fn parse_records(bytes: &[u8]) -> (Vec<(u64, MetadataCommand)>, usize) {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while bytes.len() - pos >= 16 {
        let len = u32::from_be_bytes([bytes[pos], bytes[pos + 1], bytes[pos + 2], bytes[pos + 3]]);
        let crc = u32::from_be_bytes([bytes[pos + 4], bytes[pos + 5], bytes[pos + 6], bytes[pos + 7]]);
        if len > RECORD_BYTES_MAX || bytes.len() - pos - 16 < len as usize {
            break;
        }
        let covered = &bytes[pos + 8..pos + 16 + len as usize];
        if crc32c::crc32c(covered) != crc {
            break;
        }
        let mut index = [0u8; 8];
        index.copy_from_slice(&covered[..8]);
        let index = u64::from_be_bytes(index);
        if index == u64::MAX {
            break;
        }
        let Ok(command) = serde_json::from_slice::<MetadataCommand>(&covered[8..]) else {
            break;
        };
        out.push((index, command));
        pos += 16 + len as usize;
    }
    (out, pos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{PartitionMeta, TopicMeta};

    fn create(name: &str, id: u8) -> MetadataCommand {
        MetadataCommand::CreateTopic {
            topic: TopicMeta {
                name: name.to_string(),
                topic_id: [id; 16],
                partitions: vec![PartitionMeta { replicas: vec![1], leader: 1, leader_epoch: 0, isr: vec![1] }],
                configs: Default::default(),
            },
        }
    }

    #[test]
    fn replays_after_restart_and_cuts_torn_tail() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let mut s = MetadataStore::open(dir.path()).expect("open");
            s.append(MetadataCommand::InitCluster { cluster_id: "c".into() }).expect("append");
            s.append(create("a", 1)).expect("append");
            s.append(create("b", 2)).expect("append");
        }
        // A torn record after the last good one.
        let mut f = OpenOptions::new().append(true).open(dir.path().join(LOG_FILE)).expect("open");
        f.write_all(&[0, 0, 0, 50, 1, 2, 3]).expect("write");
        drop(f);
        let mut s = MetadataStore::open(dir.path()).expect("reopen");
        assert_eq!(s.state().topics.len(), 2);
        assert_eq!(s.state().cluster_id.as_deref(), Some("c"));
        assert_eq!(s.append(create("c", 3)).expect("append"), 4);
        drop(s);
        let s = MetadataStore::open(dir.path()).expect("reopen");
        assert_eq!(s.state().topics.len(), 3);
    }

    #[test]
    fn snapshots_replace_the_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = MetadataStore::open(dir.path()).expect("open");
        for i in 0..(SNAPSHOT_EVERY_COMMANDS + 10) {
            s.append(MetadataCommand::AllocateProducerIds { block_end: i as i64 }).expect("append");
        }
        s.append(create("t", 9)).expect("append");
        let expected = s.state().clone();
        drop(s);
        let log_len = std::fs::metadata(dir.path().join(LOG_FILE)).expect("meta").len();
        assert!(log_len < 2000, "log restarted after the snapshot ({log_len} bytes)");
        let s = MetadataStore::open(dir.path()).expect("reopen");
        assert_eq!(s.state(), &expected);
    }

    /// Found by the `metadata_replay` fuzz target: a record (CRC intact) with
    /// index `u64::MAX` overflowed the next index during replay.
    #[test]
    fn a_record_with_the_last_index_ends_the_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let mut s = MetadataStore::open(dir.path()).expect("open");
            s.append(create("a", 1)).expect("append");
        }
        let payload = serde_json::to_vec(&create("b", 2)).expect("json");
        let mut covered = u64::MAX.to_be_bytes().to_vec();
        covered.extend_from_slice(&payload);
        let mut frame = (payload.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&crc32c::crc32c(&covered).to_be_bytes());
        frame.extend_from_slice(&covered);
        let mut f = OpenOptions::new().append(true).open(dir.path().join(LOG_FILE)).expect("open");
        f.write_all(&frame).expect("write");
        drop(f);
        let mut s = MetadataStore::open(dir.path()).expect("reopen");
        assert_eq!(s.state().topics.keys().collect::<Vec<_>>(), vec!["a"]);
        assert_eq!(s.append(create("c", 3)).expect("append"), 2);
    }

    #[test]
    fn a_snapshot_with_the_last_index_is_unreadable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let snapshot = Snapshot { index: u64::MAX, state: MetadataState::default() };
        std::fs::write(dir.path().join(SNAPSHOT_FILE), serde_json::to_vec(&snapshot).expect("json")).expect("write");
        assert!(matches!(MetadataStore::open(dir.path()), Err(MetadataError::BadSnapshot { .. })));
    }

    #[test]
    fn corrupt_record_stops_replay_there() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let mut s = MetadataStore::open(dir.path()).expect("open");
            s.append(create("a", 1)).expect("append");
            s.append(create("b", 2)).expect("append");
        }
        let path = dir.path().join(LOG_FILE);
        let mut bytes = std::fs::read(&path).expect("read");
        let last = bytes.len() - 3;
        bytes[last] ^= 0x20;
        std::fs::write(&path, &bytes).expect("write");
        let s = MetadataStore::open(dir.path()).expect("reopen");
        assert_eq!(s.state().topics.keys().collect::<Vec<_>>(), vec!["a"]);
    }
}
