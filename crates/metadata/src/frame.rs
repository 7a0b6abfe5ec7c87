//! Byte formats: log entry frames, the small state files (vote, committed,
//! purged) and snapshot files. All integers are big-endian; every format
//! starts its checksummed body with a format version byte so it can evolve.
//!
//! ```text
//! entry frame      u32 body_len | u32 crc32c(body) | body
//!   body           u8 version=1 | u64 term | i32 leader | u64 index | JSON EntryPayload
//! small file       u32 body_len | u32 crc32c(body) | u8 version=1 | JSON value
//! snapshot file    u64 body_len | u32 crc32c(body) | u8 version=1 | JSON {meta, state}
//! ```

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::state::MetadataState;
use crate::types::{Entry, EntryPayload, LogId, SnapshotMeta};

/// Version byte of every format here.
pub const FORMAT_VERSION: u8 = 1;
/// `body_len` + `crc` of an entry frame.
pub const ENTRY_HEADER_BYTES: usize = 8;
/// version + term + leader + index.
pub const ENTRY_FIXED_BYTES: usize = 1 + 8 + 4 + 8;
/// Largest entry body accepted (a bigger length on disk is damage, a bigger
/// command is refused before it is appended).
pub const ENTRY_BODY_BYTES_MAX: usize = 32 << 20;
/// Largest small state file.
pub const SMALL_FILE_BYTES_MAX: u64 = 64 << 10;
/// `body_len` + `crc` of a snapshot file.
pub const SNAPSHOT_HEADER_BYTES: usize = 12;
/// Largest snapshot (file) accepted; checked before it is read.
pub const SNAPSHOT_BYTES_MAX: u64 = 512 << 20;

/// Why bytes do not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The checksum or length does not hold: a torn or damaged write.
    Torn(String),
    /// The checksum holds but the content cannot be read (a newer format,
    /// or a bug): never a crash artifact.
    Unreadable(String),
}

/// Encodes one entry as a frame.
pub fn encode_entry(entry: &Entry) -> Result<Vec<u8>, serde_json::Error> {
    let payload = serde_json::to_vec(&entry.payload)?;
    let body_len = ENTRY_FIXED_BYTES + payload.len();
    let mut frame = Vec::with_capacity(ENTRY_HEADER_BYTES + body_len);
    frame.extend_from_slice(&(body_len as u32).to_be_bytes());
    frame.extend_from_slice(&[0; 4]);
    frame.push(FORMAT_VERSION);
    frame.extend_from_slice(&entry.log_id.term.to_be_bytes());
    frame.extend_from_slice(&entry.log_id.leader.to_be_bytes());
    frame.extend_from_slice(&entry.log_id.index.to_be_bytes());
    frame.extend_from_slice(&payload);
    let crc = crc32c::crc32c(&frame[ENTRY_HEADER_BYTES..]);
    frame[4..8].copy_from_slice(&crc.to_be_bytes());
    Ok(frame)
}

/// The body length and checksum from a frame header; `Torn` when the
/// length cannot be a body.
pub fn decode_entry_header(header: &[u8; ENTRY_HEADER_BYTES]) -> Result<(usize, u32), FrameError> {
    let body_len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    if body_len <= ENTRY_FIXED_BYTES || body_len > ENTRY_BODY_BYTES_MAX {
        return Err(FrameError::Torn(format!("entry length {body_len} is out of range")));
    }
    Ok((body_len, crc))
}

fn be_u64(bytes: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[..8]);
    u64::from_be_bytes(b)
}

/// Decodes an entry body whose header carried `crc`.
pub fn decode_entry_body(body: &[u8], crc: u32) -> Result<Entry, FrameError> {
    if crc32c::crc32c(body) != crc {
        return Err(FrameError::Torn("checksum mismatch".into()));
    }
    if body.len() <= ENTRY_FIXED_BYTES {
        return Err(FrameError::Torn("entry too short".into()));
    }
    if body[0] != FORMAT_VERSION {
        return Err(FrameError::Unreadable(format!("entry format version {} is unknown", body[0])));
    }
    let term = be_u64(&body[1..9]);
    let leader = i32::from_be_bytes([body[9], body[10], body[11], body[12]]);
    let index = be_u64(&body[13..21]);
    let payload: EntryPayload = serde_json::from_slice(&body[ENTRY_FIXED_BYTES..])
        .map_err(|e| FrameError::Unreadable(format!("entry {index} does not parse: {e}")))?;
    Ok(Entry { log_id: LogId { term, leader, index }, payload })
}

/// Encodes a small state file.
pub fn encode_small<T: Serialize>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let json = serde_json::to_vec(value)?;
    let mut body = Vec::with_capacity(1 + json.len());
    body.push(FORMAT_VERSION);
    body.extend_from_slice(&json);
    let mut out = Vec::with_capacity(8 + body.len());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decodes a small state file (whole).
pub fn decode_small<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, FrameError> {
    if bytes.len() < 9 {
        return Err(FrameError::Torn(format!("{} bytes is too short", bytes.len())));
    }
    let len = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    let crc = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    let body = &bytes[8..];
    if len != body.len() {
        return Err(FrameError::Torn(format!("length {len} but {} bytes follow", body.len())));
    }
    if crc32c::crc32c(body) != crc {
        return Err(FrameError::Torn("checksum mismatch".into()));
    }
    if body[0] != FORMAT_VERSION {
        return Err(FrameError::Unreadable(format!("format version {} is unknown", body[0])));
    }
    serde_json::from_slice(&body[1..]).map_err(|e| FrameError::Unreadable(e.to_string()))
}

#[derive(Serialize)]
struct SnapshotRef<'a> {
    meta: &'a SnapshotMeta,
    state: &'a MetadataState,
}

#[derive(serde::Deserialize)]
struct SnapshotOwned {
    meta: SnapshotMeta,
    state: MetadataState,
}

/// Encodes a snapshot file.
pub fn encode_snapshot(meta: &SnapshotMeta, state: &MetadataState) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = vec![0u8; SNAPSHOT_HEADER_BYTES];
    out.push(FORMAT_VERSION);
    serde_json::to_writer(&mut out, &SnapshotRef { meta, state })?;
    let body_len = (out.len() - SNAPSHOT_HEADER_BYTES) as u64;
    let crc = crc32c::crc32c(&out[SNAPSHOT_HEADER_BYTES..]);
    out[..8].copy_from_slice(&body_len.to_be_bytes());
    out[8..12].copy_from_slice(&crc.to_be_bytes());
    Ok(out)
}

/// Decodes a snapshot file (whole), checking that the state says what the meta says.
pub fn decode_snapshot(bytes: &[u8]) -> Result<(SnapshotMeta, MetadataState), FrameError> {
    if bytes.len() <= SNAPSHOT_HEADER_BYTES {
        return Err(FrameError::Torn(format!("{} bytes is too short", bytes.len())));
    }
    let len = be_u64(&bytes[..8]);
    let crc = u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    let body = &bytes[SNAPSHOT_HEADER_BYTES..];
    if len != body.len() as u64 {
        return Err(FrameError::Torn(format!("length {len} but {} bytes follow", body.len())));
    }
    if crc32c::crc32c(body) != crc {
        return Err(FrameError::Torn("checksum mismatch".into()));
    }
    if body[0] != FORMAT_VERSION {
        return Err(FrameError::Unreadable(format!("snapshot format version {} is unknown", body[0])));
    }
    let snap: SnapshotOwned = serde_json::from_slice(&body[1..]).map_err(|e| FrameError::Unreadable(e.to_string()))?;
    if snap.state.last_applied != Some(snap.meta.last_included) || snap.state.membership != snap.meta.membership {
        return Err(FrameError::Unreadable("the snapshot's state does not match its description".into()));
    }
    Ok((snap.meta, snap.state))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::MetadataCommand;

    #[test]
    fn entry_frames_round_trip_and_catch_damage() {
        let entry = Entry::command(LogId::new(7, 3, 42), MetadataCommand::InitCluster { cluster_id: "abc".into() });
        let frame = encode_entry(&entry).expect("encode");
        let header: [u8; 8] = frame[..8].try_into().expect("header");
        let (len, crc) = decode_entry_header(&header).expect("header");
        assert_eq!(len, frame.len() - 8);
        assert_eq!(decode_entry_body(&frame[8..], crc), Ok(entry));
        let mut damaged = frame.clone();
        damaged[20] ^= 1;
        assert!(matches!(decode_entry_body(&damaged[8..], crc), Err(FrameError::Torn(_))));
    }

    #[test]
    fn a_valid_checksum_over_unreadable_content_is_not_torn() {
        let entry = Entry::blank(LogId::new(1, 1, 1));
        let mut frame = encode_entry(&entry).expect("encode");
        let json_at = 8 + ENTRY_FIXED_BYTES;
        frame[json_at] = b'{';
        let crc = crc32c::crc32c(&frame[8..]);
        assert!(matches!(decode_entry_body(&frame[8..], crc), Err(FrameError::Unreadable(_))));
        frame[8] = 9;
        let crc = crc32c::crc32c(&frame[8..]);
        assert!(matches!(decode_entry_body(&frame[8..], crc), Err(FrameError::Unreadable(_))));
    }

    #[test]
    fn implausible_lengths_are_torn_before_anything_is_allocated() {
        let mut header = [0u8; 8];
        header[..4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(decode_entry_header(&header), Err(FrameError::Torn(_))));
        assert!(matches!(decode_entry_header(&[0; 8]), Err(FrameError::Torn(_))));
    }

    #[test]
    fn small_files_round_trip() {
        let bytes = encode_small(&Some(LogId::new(1, 2, 3))).expect("encode");
        assert_eq!(decode_small::<Option<LogId>>(&bytes), Ok(Some(LogId::new(1, 2, 3))));
        assert!(decode_small::<Option<LogId>>(&bytes[..bytes.len() - 1]).is_err());
    }
}
