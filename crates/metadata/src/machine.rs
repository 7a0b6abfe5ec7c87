//! The state machine side of the store: the applied [`MetadataState`] and
//! its snapshots (openraft's `RaftStateMachine` maps onto this).
//!
//! ```text
//! <dir>/snapshot-<last included index, 20 digits>.snap   frame.rs snapshot format
//! ```
//!
//! A snapshot is written atomically (tmp, fsync, rename, dir fsync); older
//! ones are deleted only after the new one is durable. The log entries a
//! snapshot covers stay until the caller purges them (with a quorum,
//! openraft decides when; the single-node store purges at once). At open the
//! newest snapshot is loaded and the log's committed entries after it are
//! applied.

use crate::disk::{Disk, ReadWholeError, TEMP_SUFFIX, read_whole, write_atomically};
use crate::error::MetadataError;
use crate::frame::{self, FrameError, SNAPSHOT_BYTES_MAX};
use crate::log::MetadataLog;
use crate::state::{ApplyOutcome, MetadataState};
use crate::types::{Entry, LogId, SnapshotMeta, StoredMembership};

const SNAPSHOT_PREFIX: &str = "snapshot-";
const SNAPSHOT_SUFFIX: &str = ".snap";

/// The file name of the snapshot whose last included entry is `index`.
pub fn snapshot_name(index: u64) -> String {
    format!("{SNAPSHOT_PREFIX}{index:020}{SNAPSHOT_SUFFIX}")
}

fn parse_snapshot_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(SNAPSHOT_PREFIX)?.strip_suffix(SNAPSHOT_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Writes a snapshot file atomically; returns its meta.
pub(crate) fn write_snapshot(
    disk: &mut dyn Disk,
    state: &MetadataState,
) -> Result<Option<SnapshotMeta>, MetadataError> {
    let Some(last) = state.last_applied else {
        return Ok(None);
    };
    let meta = SnapshotMeta {
        last_included: last,
        membership: state.membership.clone(),
        snapshot_id: format!("{}-{}-{}", last.term, last.leader, last.index),
    };
    let name = snapshot_name(last.index);
    let bytes = frame::encode_snapshot(&meta, state)
        .map_err(|e| MetadataError::Refused(format!("the state does not serialize: {e}")))?;
    if bytes.len() as u64 > SNAPSHOT_BYTES_MAX {
        return Err(MetadataError::TooLarge { what: "snapshot", size: bytes.len() as u64, max: SNAPSHOT_BYTES_MAX });
    }
    write_atomically(disk, &name, &bytes).map_err(MetadataError::io("write", disk.path_of(&name)))?;
    Ok(Some(meta))
}

/// The applied state and its snapshots on a [`Disk`].
#[derive(Debug)]
pub struct MetadataStateMachine<D: Disk> {
    disk: D,
    state: MetadataState,
    snapshot: Option<SnapshotMeta>,
}

impl<D: Disk> MetadataStateMachine<D> {
    /// Loads the newest snapshot (if any) and applies the entries of `log`
    /// after it up to the log's committed id.
    pub fn open<L: Disk>(mut disk: D, log: &MetadataLog<L>) -> Result<MetadataStateMachine<D>, MetadataError> {
        let names = disk.list().map_err(MetadataError::io("list", disk.path_of("")))?;
        for name in names.iter().filter(|n| n.starts_with(SNAPSHOT_PREFIX) && n.ends_with(TEMP_SUFFIX)) {
            disk.remove(name).map_err(MetadataError::io("remove", disk.path_of(name)))?;
        }
        let mut indexes: Vec<u64> = names.iter().filter_map(|n| parse_snapshot_name(n)).collect();
        indexes.sort_unstable();
        let (state, snapshot) = match indexes.last() {
            Some(&index) => {
                let (meta, state) = load_snapshot(&disk, &snapshot_name(index))?;
                (state, Some(meta))
            }
            None => (MetadataState::default(), None),
        };
        for &older in indexes.iter().rev().skip(1) {
            let name = snapshot_name(older);
            if let Err(e) = disk.remove(&name) {
                tracing::warn!(path = %disk.path_of(&name).display(), error = %e, "cannot remove an old metadata snapshot");
            }
        }
        let mut machine = MetadataStateMachine { disk, state, snapshot };
        if let Some(committed) = log.read_committed() {
            machine.apply_from(log, committed.index)?;
        }
        Ok(machine)
    }

    /// Applies the log's entries after the last applied one, up to `upto`.
    /// Every one of them must be present. With nothing applied yet, the
    /// log's first entry is the first to apply (a Raft log may start at 0).
    pub(crate) fn apply_from<L: Disk>(&mut self, log: &MetadataLog<L>, upto: u64) -> Result<(), MetadataError> {
        let missing = |reason: String| MetadataError::Corrupt {
            path: log.disk().path_of(""),
            offset: 0,
            reason,
            remedy: crate::error::REMEDY_RESTORE,
        };
        let start = match (self.state.last_applied, log.log_state().last_purged) {
            // Nothing can follow the last index there is.
            (Some(applied), _) => match applied.index.checked_add(1) {
                Some(start) => start,
                None => return Ok(()),
            },
            (None, Some(purged)) => {
                return Err(missing(format!("entries up to {purged} were purged but no snapshot holds them")));
            }
            (None, None) => match log.first_index() {
                Some(first) => first,
                None => return Ok(()),
            },
        };
        if upto < start {
            return Ok(());
        }
        // `None` once the entry at the last index there is was applied.
        let mut expected = Some(start);
        for entry in log.entries(start..=upto)? {
            if Some(entry.log_id.index) != expected {
                break;
            }
            self.state.apply_entry(&entry);
            expected = entry.log_id.index.checked_add(1);
        }
        if let Some(expected) = expected
            && expected <= upto
        {
            return Err(missing(format!(
                "entry {expected} is needed (the state is at {:?}, the log is committed to {upto}) but the log does not have it",
                self.state.last_applied.map(|l| l.index)
            )));
        }
        Ok(())
    }

    /// The applied state.
    pub fn state(&self) -> &MetadataState {
        &self.state
    }

    /// The last applied id and the membership in effect.
    pub fn applied_state(&self) -> (Option<LogId>, StoredMembership) {
        (self.state.last_applied, self.state.membership.clone())
    }

    /// Applies one committed entry.
    pub fn apply(&mut self, entry: &Entry) -> ApplyOutcome {
        self.state.apply_entry(entry)
    }

    /// The current durable snapshot's description.
    pub fn snapshot_meta(&self) -> Option<&SnapshotMeta> {
        self.snapshot.as_ref()
    }

    /// Writes a snapshot of the applied state (nothing when nothing was
    /// applied, the current one when nothing changed since) and deletes the
    /// older ones. Returns its description.
    pub fn build_snapshot(&mut self) -> Result<Option<SnapshotMeta>, MetadataError> {
        if let Some(current) = &self.snapshot
            && Some(current.last_included) == self.state.last_applied
        {
            return Ok(Some(current.clone()));
        }
        let Some(meta) = write_snapshot(&mut self.disk, &self.state)? else {
            return Ok(None);
        };
        self.remove_snapshots_except(meta.last_included.index);
        self.snapshot = Some(meta.clone());
        Ok(Some(meta))
    }

    /// The current snapshot's description and bytes (to send to a node
    /// that is behind); the bytes are what [`Self::install_snapshot`] takes.
    pub fn current_snapshot(&self) -> Result<Option<(SnapshotMeta, Vec<u8>)>, MetadataError> {
        let Some(meta) = &self.snapshot else {
            return Ok(None);
        };
        let name = snapshot_name(meta.last_included.index);
        let bytes = read_snapshot_bytes(&self.disk, &name)?;
        Ok(Some((meta.clone(), bytes)))
    }

    /// Installs a snapshot received from the leader: checks it, writes it
    /// durably, replaces the state with it and deletes every other snapshot.
    /// The log is not touched (the caller truncates or purges it).
    pub fn install_snapshot(&mut self, bytes: &[u8]) -> Result<SnapshotMeta, MetadataError> {
        if bytes.len() as u64 > SNAPSHOT_BYTES_MAX {
            return Err(MetadataError::TooLarge {
                what: "snapshot",
                size: bytes.len() as u64,
                max: SNAPSHOT_BYTES_MAX,
            });
        }
        let (meta, state) = frame::decode_snapshot(bytes)
            .map_err(|e| MetadataError::BadSnapshot { path: "received snapshot".into(), reason: frame_reason(e) })?;
        let name = snapshot_name(meta.last_included.index);
        write_atomically(&mut self.disk, &name, bytes).map_err(MetadataError::io("write", self.disk.path_of(&name)))?;
        self.remove_snapshots_except(meta.last_included.index);
        self.state = state;
        self.snapshot = Some(meta.clone());
        Ok(meta)
    }

    fn remove_snapshots_except(&mut self, keep: u64) {
        let names = match self.disk.list() {
            Ok(names) => names,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list metadata snapshots to remove old ones");
                return;
            }
        };
        for name in names.iter().filter(|n| parse_snapshot_name(n).is_some_and(|i| i != keep)) {
            if let Err(e) = self.disk.remove(name) {
                tracing::warn!(path = %self.disk.path_of(name).display(), error = %e, "cannot remove an old metadata snapshot");
            }
        }
    }
}

fn frame_reason(e: FrameError) -> String {
    match e {
        FrameError::Torn(r) | FrameError::Unreadable(r) => r,
    }
}

fn read_snapshot_bytes(disk: &dyn Disk, name: &str) -> Result<Vec<u8>, MetadataError> {
    let path = disk.path_of(name);
    match read_whole(disk, name, SNAPSHOT_BYTES_MAX) {
        Ok(Some(bytes)) => Ok(bytes),
        Ok(None) => Err(MetadataError::BadSnapshot { path, reason: "the file is gone".into() }),
        Err(ReadWholeError::Io(e)) => Err(MetadataError::io("read", path)(e)),
        Err(ReadWholeError::TooLarge { len }) => Err(MetadataError::BadSnapshot {
            path,
            reason: format!("{len} bytes, more than the {SNAPSHOT_BYTES_MAX} a snapshot may have (nothing was read)"),
        }),
    }
}

fn load_snapshot(disk: &dyn Disk, name: &str) -> Result<(SnapshotMeta, MetadataState), MetadataError> {
    let bytes = read_snapshot_bytes(disk, name)?;
    let (meta, state) = frame::decode_snapshot(&bytes)
        .map_err(|e| MetadataError::BadSnapshot { path: disk.path_of(name), reason: frame_reason(e) })?;
    if parse_snapshot_name(name) != Some(meta.last_included.index) {
        return Err(MetadataError::BadSnapshot {
            path: disk.path_of(name),
            reason: format!("it holds the state at {}, not what its name says", meta.last_included),
        });
    }
    Ok((meta, state))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::MetadataCommand;
    use crate::disk::SimDisk;
    use crate::log::LogOptions;
    use crate::types::{EntryPayload, Membership};

    /// openraft writes its first entry (the initial membership) at index 0.
    #[test]
    fn a_log_starting_at_index_zero_is_replayed_from_it() {
        let disk = SimDisk::new(1);
        let mut log = MetadataLog::open(disk.clone(), LogOptions::default()).expect("log");
        let voters = Membership::single(1, "a:9093");
        let first = Entry {
            log_id: LogId::new(0, LogId::UNKNOWN_LEADER, 0),
            payload: EntryPayload::Membership(voters.clone()),
        };
        let second = Entry::command(LogId::new(1, 1, 1), MetadataCommand::InitCluster { cluster_id: "c".into() });
        log.append(&[first, second]).expect("append");
        log.save_committed(LogId::new(1, 1, 1)).expect("committed");
        drop(log);
        let log = MetadataLog::open(disk.clone(), LogOptions::default()).expect("log");
        let machine = MetadataStateMachine::open(disk, &log).expect("machine");
        assert_eq!(machine.state().membership.membership, voters, "the entry at index 0 was applied");
        assert_eq!(machine.state().cluster_id.as_deref(), Some("c"));
        assert_eq!(machine.state().last_applied, Some(LogId::new(1, 1, 1)));
    }

    #[test]
    fn a_purged_log_without_a_snapshot_cannot_be_replayed() {
        let disk = SimDisk::new(2);
        let mut log = MetadataLog::open(disk.clone(), LogOptions::default()).expect("log");
        let entries: Vec<Entry> = (1..=3).map(|i| Entry::blank(LogId::new(1, 1, i))).collect();
        log.append(&entries).expect("append");
        log.save_committed(LogId::new(1, 1, 3)).expect("committed");
        log.purge(LogId::new(1, 1, 2)).expect("purge");
        drop(log);
        let log = MetadataLog::open(disk.clone(), LogOptions::default()).expect("log");
        let err = MetadataStateMachine::open(disk, &log).expect_err("refused");
        assert!(err.to_string().contains("no snapshot"), "{err}");
    }

    #[test]
    fn apply_outcomes_serialize() {
        let outcome = ApplyOutcome::PartitionChanged { leader: 1, leader_epoch: 2, partition_epoch: 3 };
        let json = serde_json::to_string(&outcome).expect("serialize");
        assert_eq!(serde_json::from_str::<ApplyOutcome>(&json).expect("deserialize"), outcome);
    }
}
