//! Segment files: naming, the in-memory index of one segment, and the scan
//! that rebuilds it at open.

use crate::disk::Disk;
use crate::error::{MetadataError, REMEDY_NEWER};
use crate::frame::{self, ENTRY_HEADER_BYTES, FrameError};
use crate::types::LogId;

const PREFIX: &str = "segment-";
const SUFFIX: &str = ".log";

/// The file name of the segment whose first entry is `base`.
pub(crate) fn segment_name(base: u64) -> String {
    format!("{PREFIX}{base:020}{SUFFIX}")
}

/// The base index of a segment file name.
pub(crate) fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Where one entry's frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EntryPos {
    pub log_id: LogId,
    pub offset: u64,
    pub len: u64,
}

/// One segment file, as far as it holds valid entries.
#[derive(Debug)]
pub(crate) struct Segment {
    /// Index of its first entry (from the name).
    pub base: u64,
    pub name: String,
    /// End of the last valid frame: where the next one goes.
    pub end: u64,
    /// Its entries, consecutive indexes.
    pub entries: Vec<EntryPos>,
    /// Bytes written since its last fsync.
    pub unsynced: bool,
}

impl Segment {
    pub fn new(base: u64) -> Segment {
        Segment { base, name: segment_name(base), end: 0, entries: Vec::new(), unsynced: false }
    }

    pub fn last(&self) -> Option<LogId> {
        self.entries.last().map(|p| p.log_id)
    }
}

/// A scanned segment and, if it does not end cleanly, where and why.
#[derive(Debug)]
pub(crate) struct Scanned {
    pub segment: Segment,
    pub file_len: u64,
    pub torn: Option<String>,
}

/// Reads every frame of a segment from the start. Stops at the first frame
/// that is incomplete or fails its checksum (a torn write: the caller
/// decides whether that is allowed where it is); fails on a frame whose
/// checksum holds but which cannot be read. Reads are bounded: the file
/// length by `file_bytes_max`, each frame by the frame format's maximum.
pub(crate) fn scan(disk: &dyn Disk, name: &str, base: u64, file_bytes_max: u64) -> Result<Scanned, MetadataError> {
    let path = disk.path_of(name);
    let file_len = disk.len(name).map_err(MetadataError::io("read", path.clone()))?.unwrap_or(0);
    if file_len > file_bytes_max {
        return Err(MetadataError::Corrupt {
            path,
            offset: file_bytes_max,
            reason: format!("the segment is {file_len} bytes, more than any segment can hold ({file_bytes_max})"),
            remedy: crate::error::REMEDY_RESTORE,
        });
    }
    let mut segment = Segment::new(base);
    let mut pos = 0u64;
    let torn = loop {
        if pos == file_len {
            break None;
        }
        if file_len - pos < ENTRY_HEADER_BYTES as u64 {
            break Some("an incomplete entry header".to_string());
        }
        let header = disk.read_at(name, pos, ENTRY_HEADER_BYTES).map_err(MetadataError::io("read", path.clone()))?;
        let header: [u8; ENTRY_HEADER_BYTES] = header.try_into().map_err(|_| short_read(&path, pos))?;
        let (body_len, crc) = match frame::decode_entry_header(&header) {
            Ok(h) => h,
            Err(FrameError::Torn(reason) | FrameError::Unreadable(reason)) => break Some(reason),
        };
        let frame_len = (ENTRY_HEADER_BYTES + body_len) as u64;
        if file_len - pos < frame_len {
            break Some(format!("an entry of {frame_len} bytes runs past the end of the file"));
        }
        let body = disk
            .read_at(name, pos + ENTRY_HEADER_BYTES as u64, body_len)
            .map_err(MetadataError::io("read", path.clone()))?;
        let entry = match frame::decode_entry_body(&body, crc) {
            Ok(entry) => entry,
            Err(FrameError::Torn(reason)) => break Some(reason),
            Err(FrameError::Unreadable(reason)) => {
                return Err(MetadataError::Corrupt { path, offset: pos, reason, remedy: REMEDY_NEWER });
            }
        };
        segment.entries.push(EntryPos { log_id: entry.log_id, offset: pos, len: frame_len });
        pos += frame_len;
    };
    segment.end = pos;
    Ok(Scanned { segment, file_len, torn })
}

fn short_read(path: &std::path::Path, offset: u64) -> MetadataError {
    MetadataError::Io {
        op: "read",
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::UnexpectedEof, format!("short read at {offset}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_in_index_order_and_parse_back() {
        assert_eq!(segment_name(42), "segment-00000000000000000042.log");
        assert_eq!(parse_segment_name(&segment_name(u64::MAX)), Some(u64::MAX));
        assert!(segment_name(9) < segment_name(10));
        assert_eq!(parse_segment_name("segment-42.log"), None);
        assert_eq!(parse_segment_name("segment-0000000000000000004x.log"), None);
        assert_eq!(parse_segment_name("metadata.log"), None);
    }
}
