//! Migration of metadata directories written before the Raft-shaped log:
//! `metadata.snapshot` (`{"index": n, "state": {...}}` JSON) and
//! `metadata.log` (frames `u32 len | u32 crc32c(index ‖ payload) | u64 index | JSON command`).
//!
//! On the first open the old files are read (bounded), replayed exactly as
//! the old code replayed them, and the result is written in the new format
//! as one snapshot at `(term 1, this node, last old index)` with this node as
//! the only voter, the purge mark at that id and the vote `(1, this node,
//! leader)`. Old indexes are kept. Only once all of that is durable is the
//! marker `legacy-migrated` written; then the old files are deleted and the
//! marker after them. A crash before the marker redoes the migration from
//! the old files; after it, the next open just finishes the deletion.
//!
//! Unlike the old code, a frame whose checksum holds but whose command does
//! not parse stops the migration with the file, the offset and what to do,
//! instead of silently dropping it and everything after it.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::command::{MetadataCommand, TopicMeta};
use crate::disk::{Disk, ReadWholeError, read_whole, write_atomically};
use crate::error::{MetadataError, REMEDY_NEWER, REMEDY_RESTORE};
use crate::frame::{self, SNAPSHOT_BYTES_MAX};
use crate::log::{PURGED_FILE, VOTE_FILE, parse_segment_name};
use crate::machine::write_snapshot;
use crate::state::MetadataState;
use crate::types::{LogId, Membership, NodeId, Vote};

/// The old log file.
pub const LEGACY_LOG_FILE: &str = "metadata.log";
/// The old snapshot file.
pub const LEGACY_SNAPSHOT_FILE: &str = "metadata.snapshot";
/// Written once the migrated files are durable.
pub const MIGRATED_MARKER: &str = "legacy-migrated";
/// Largest old log read (the old code snapshotted every 1000 commands).
pub const LEGACY_LOG_BYTES_MAX: u64 = 1 << 30;
/// The old format's largest record.
const LEGACY_RECORD_BYTES_MAX: usize = 64 << 20;
/// The old frame header: len, crc, index.
const LEGACY_HEADER_BYTES: usize = 16;

#[derive(Deserialize)]
struct LegacySnapshot {
    index: u64,
    state: LegacyState,
}

#[derive(Deserialize)]
struct LegacyState {
    cluster_id: Option<String>,
    topics: BTreeMap<String, TopicMeta>,
    default_broker_configs: BTreeMap<String, String>,
    broker_configs: BTreeMap<i32, BTreeMap<String, String>>,
    producer_id_block_end: i64,
}

/// Migrates the old files in `disk`, if there are any. Returns whether
/// there were.
pub(crate) fn migrate_if_needed(disk: &mut dyn Disk, node_id: NodeId) -> Result<bool, MetadataError> {
    let names = disk.list().map_err(MetadataError::io("list", disk.path_of("")))?;
    let has = |n: &str| names.iter().any(|x| x == n);
    let legacy: Vec<&str> = [LEGACY_LOG_FILE, LEGACY_SNAPSHOT_FILE].into_iter().filter(|n| has(n)).collect();
    if legacy.is_empty() {
        if has(MIGRATED_MARKER) {
            remove_durably(disk, MIGRATED_MARKER)?;
        }
        return Ok(false);
    }
    if !has(MIGRATED_MARKER) {
        if let Some(segment) = names.iter().find(|n| parse_segment_name(n).is_some()) {
            return Err(MetadataError::Corrupt {
                path: disk.path_of(segment),
                offset: 0,
                reason: format!("both the old {LEGACY_LOG_FILE} and a new log segment exist"),
                remedy: "move the files of the format that should not be used out of the metadata directory",
            });
        }
        let state = read_legacy(disk, node_id)?;
        let index = state.applied_index();
        tracing::info!(path = %disk.path_of("").display(), last_index = index, "migrating the metadata directory to the Raft log format");
        if let Some(last) = state.last_applied {
            write_migrated(disk, node_id, &state, last)?;
        }
        let marker = frame::encode_small(&index).map_err(|e| MetadataError::Refused(e.to_string()))?;
        write_atomically(disk, MIGRATED_MARKER, &marker)
            .map_err(MetadataError::io("write", disk.path_of(MIGRATED_MARKER)))?;
    }
    for name in legacy {
        disk.remove(name).map_err(MetadataError::io("remove", disk.path_of(name)))?;
    }
    disk.sync_dir().map_err(MetadataError::io("fsync", disk.path_of("")))?;
    remove_durably(disk, MIGRATED_MARKER)?;
    Ok(true)
}

fn remove_durably(disk: &mut dyn Disk, name: &str) -> Result<(), MetadataError> {
    disk.remove(name).map_err(MetadataError::io("remove", disk.path_of(name)))?;
    disk.sync_dir().map_err(MetadataError::io("fsync", disk.path_of("")))
}

/// Writes the snapshot, the purge mark and the vote of a migrated directory.
fn write_migrated(
    disk: &mut dyn Disk,
    node_id: NodeId,
    state: &MetadataState,
    last: LogId,
) -> Result<(), MetadataError> {
    write_snapshot(disk, state)?;
    let purged = frame::encode_small(&last).map_err(|e| MetadataError::Refused(e.to_string()))?;
    write_atomically(disk, PURGED_FILE, &purged).map_err(MetadataError::io("write", disk.path_of(PURGED_FILE)))?;
    let vote = Vote { term: last.term, voted_for: Some(node_id), committed: true };
    let vote = frame::encode_small(&vote).map_err(|e| MetadataError::Refused(e.to_string()))?;
    write_atomically(disk, VOTE_FILE, &vote).map_err(MetadataError::io("write", disk.path_of(VOTE_FILE)))
}

/// The state the old code would have opened, in the new shape: entries get
/// ids `(1, node_id, old index)` and this node becomes the only voter.
fn read_legacy(disk: &dyn Disk, node_id: NodeId) -> Result<MetadataState, MetadataError> {
    let id = |index: u64| LogId::new(1, node_id, index);
    let mut state = MetadataState::default();
    if let Some(bytes) = read_bounded(disk, LEGACY_SNAPSHOT_FILE, SNAPSHOT_BYTES_MAX)? {
        let snap: LegacySnapshot = serde_json::from_slice(&bytes).map_err(|e| MetadataError::BadSnapshot {
            path: disk.path_of(LEGACY_SNAPSHOT_FILE),
            reason: e.to_string(),
        })?;
        if snap.index == u64::MAX {
            return Err(MetadataError::BadSnapshot {
                path: disk.path_of(LEGACY_SNAPSHOT_FILE),
                reason: "its index is the last one there is, so no command can follow".into(),
            });
        }
        state = MetadataState {
            cluster_id: snap.state.cluster_id,
            topics: snap.state.topics,
            default_broker_configs: snap.state.default_broker_configs,
            broker_configs: snap.state.broker_configs,
            producer_id_block_end: snap.state.producer_id_block_end,
            last_applied: (snap.index > 0).then(|| id(snap.index)),
            ..MetadataState::default()
        };
    }
    if let Some(bytes) = read_bounded(disk, LEGACY_LOG_FILE, LEGACY_LOG_BYTES_MAX)? {
        for (index, command) in parse_legacy_log(disk, &bytes)? {
            // The old replay skipped what the snapshot covered, and so does this.
            state.apply(id(index), &command);
        }
    }
    if let Some(last) = state.last_applied {
        state.set_membership(last, Membership::single(node_id, ""));
    }
    Ok(state)
}

fn read_bounded(disk: &dyn Disk, name: &str, max: u64) -> Result<Option<Vec<u8>>, MetadataError> {
    match read_whole(disk, name, max) {
        Ok(bytes) => Ok(bytes),
        Err(ReadWholeError::Io(e)) => Err(MetadataError::io("read", disk.path_of(name))(e)),
        Err(ReadWholeError::TooLarge { len }) => Err(MetadataError::Corrupt {
            path: disk.path_of(name),
            offset: 0,
            reason: format!("{len} bytes, more than the {max} this file can have (nothing was read)"),
            remedy: REMEDY_RESTORE,
        }),
    }
}

/// The old frames up to the first torn one or the first at index `u64::MAX` (as
/// the old code read them),
/// refusing a frame whose checksum holds but whose command does not parse.
fn parse_legacy_log(disk: &dyn Disk, bytes: &[u8]) -> Result<Vec<(u64, MetadataCommand)>, MetadataError> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while bytes.len() - pos >= LEGACY_HEADER_BYTES {
        let len = u32::from_be_bytes([bytes[pos], bytes[pos + 1], bytes[pos + 2], bytes[pos + 3]]) as usize;
        let crc = u32::from_be_bytes([bytes[pos + 4], bytes[pos + 5], bytes[pos + 6], bytes[pos + 7]]);
        if len > LEGACY_RECORD_BYTES_MAX || bytes.len() - pos - LEGACY_HEADER_BYTES < len {
            break;
        }
        let covered = &bytes[pos + 8..pos + LEGACY_HEADER_BYTES + len];
        if crc32c::crc32c(covered) != crc {
            break;
        }
        let mut index = [0u8; 8];
        index.copy_from_slice(&covered[..8]);
        let index = u64::from_be_bytes(index);
        if index == u64::MAX {
            // No command can follow the last index there is: the old code
            // (since it was fuzzed) ended the valid log here, as at a torn frame.
            break;
        }
        let command = serde_json::from_slice::<MetadataCommand>(&covered[8..]).map_err(|e| MetadataError::Corrupt {
            path: disk.path_of(LEGACY_LOG_FILE),
            offset: pos as u64,
            reason: format!("a command with a valid checksum does not parse ({e})"),
            remedy: REMEDY_NEWER,
        })?;
        out.push((index, command));
        pos += LEGACY_HEADER_BYTES + len;
    }
    if pos < bytes.len() {
        tracing::warn!(
            path = %disk.path_of(LEGACY_LOG_FILE).display(),
            valid_bytes = pos,
            file_bytes = bytes.len(),
            "ignoring a torn tail of the old metadata log (an append that was never acknowledged)"
        );
    }
    Ok(out)
}

/// Writes a directory in the old format (for tests of the migration).
#[doc(hidden)]
pub fn encode_legacy_record(index: u64, command: &MetadataCommand) -> Vec<u8> {
    let payload = serde_json::to_vec(command).unwrap_or_default();
    let mut covered = Vec::with_capacity(8 + payload.len());
    covered.extend_from_slice(&index.to_be_bytes());
    covered.extend_from_slice(&payload);
    let mut frame = Vec::with_capacity(8 + covered.len());
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(&crc32c::crc32c(&covered).to_be_bytes());
    frame.extend_from_slice(&covered);
    frame
}
