//! Entry point shared by the `metadata_replay` fuzz target and its corpus
//! replay test: a metadata directory whose snapshot and log come from the
//! input is opened (snapshot load and log replay).
//!
//! Input: `flags u8 | snapshot_len u32 BE | snapshot bytes | log bytes`
//! (a snapshot length past the end means "no snapshot file"). Flag bit 0
//! recomputes the CRC of every whole frame of the log before it is written,
//! so mutations reach the JSON commands behind the checksums.
//!
//! Besides "no panic", the harness checks what replay promises: a command
//! appended after the open is there after a reopen, with the state equal.

use std::path::Path;

use crate::state::MetadataCommand;
use crate::store::MetadataStore;

/// Splits an input into flags, snapshot (if any) and log.
pub fn parse_input(data: &[u8]) -> (u8, Option<&[u8]>, &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return (0, None, &[]);
    };
    if rest.len() < 4 {
        return (flags, None, rest);
    }
    let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
    let rest = &rest[4..];
    if len > rest.len() {
        return (flags, None, rest);
    }
    let (snapshot, log) = rest.split_at(len);
    (flags, Some(snapshot), log)
}

/// Builds an input (the inverse of [`parse_input`]), for seeds.
pub fn encode_input(flags: u8, snapshot: Option<&[u8]>, log: &[u8]) -> Vec<u8> {
    let mut out = vec![flags];
    match snapshot {
        Some(s) => {
            out.extend_from_slice(&(s.len() as u32).to_be_bytes());
            out.extend_from_slice(s);
        }
        None => out.extend_from_slice(&u32::MAX.to_be_bytes()),
    }
    out.extend_from_slice(log);
    out
}

/// Rewrites the CRC of every whole frame (`len | crc | index | payload`).
fn reseal_frames(bytes: &mut [u8]) {
    let mut pos = 0usize;
    while bytes.len() - pos >= 16 {
        let len = u32::from_be_bytes([bytes[pos], bytes[pos + 1], bytes[pos + 2], bytes[pos + 3]]) as usize;
        if bytes.len() - pos - 16 < len {
            return;
        }
        let end = pos + 16 + len;
        let crc = crc32c::crc32c(&bytes[pos + 8..end]);
        bytes[pos + 4..pos + 8].copy_from_slice(&crc.to_be_bytes());
        pos = end;
    }
}

/// Runs the harness on `data` in the scratch directory `dir` (created,
/// emptied and left behind; give each concurrent caller its own).
///
/// # Panics
/// When replay breaks a promise (see the module docs), or on a scratch
/// directory that cannot be written.
pub fn metadata_replay(dir: &Path, data: &[u8]) {
    let (flags, snapshot, log) = parse_input(data);
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("cannot empty the scratch directory {}: {e}", dir.display()),
    }
    std::fs::create_dir_all(dir).expect("the scratch directory must be writable");
    if let Some(s) = snapshot {
        std::fs::write(dir.join("metadata.snapshot"), s).expect("write the snapshot");
    }
    let mut log = log.to_vec();
    if flags & 1 != 0 {
        reseal_frames(&mut log);
    }
    std::fs::write(dir.join("metadata.log"), &log).expect("write the log");
    let Ok(mut store) = MetadataStore::open(dir) else {
        return;
    };
    let _ = store.state().topics.values().map(|t| t.partitions.len()).sum::<usize>();
    if store.append(MetadataCommand::AllocateProducerIds { block_end: 7 }).is_err() {
        return;
    }
    let state = store.state().clone();
    drop(store);
    let reopened = MetadataStore::open(dir).expect("reopening after an append");
    assert_eq!(reopened.state(), &state, "the state after a reopen");
}
