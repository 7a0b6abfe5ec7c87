//! Entry point shared by the `metadata_replay` fuzz target and its corpus
//! replay test: a metadata directory whose every file comes from the input
//! is opened by the single-node store (old-format migration, log segment
//! scan, vote / committed / purge marks, snapshot load, replay), then a
//! proposal is made, the disk crashes and the store is opened again
//! ([`crate::replay::replay_files`], on a simulated disk).
//!
//! The input is a *directory image*:
//!
//! ```text
//! flags u8, then entries until the input ends:
//!   kind u8 | index u64 | len u16 | bytes[len]      (integers big-endian)
//! ```
//!
//! `kind % 8` names the file: 0 `segment-<index>.log`, 1
//! `snapshot-<index>.snap`, 2 `vote`, 3 `committed`, 4 `purged`, 5 the old
//! `metadata.log`, 6 the old `metadata.snapshot`, 7 `legacy-migrated`; bit
//! 7 of the kind appends `.tmp` (a leftover of an interrupted atomic
//! write). A later entry for the same name replaces the earlier one.
//!
//! Flag bit 0 recomputes every checksum (and the length of the whole-file
//! formats) before the files are put on the disk, so mutations reach the
//! JSON and the ids behind them; the other bits seed the simulated disk
//! (which writes tear at the crash).
//!
//! Besides "no panic", the promises of `replay_files` are checked: an
//! opened store reads its whole log back, accepts a proposal, and reopens
//! after a crash with the same state; a refused directory is refused with
//! an error.

use std::collections::BTreeMap;

use crate::disk::TEMP_SUFFIX;
use crate::frame::{ENTRY_HEADER_BYTES, SNAPSHOT_HEADER_BYTES};
use crate::legacy::{LEGACY_LOG_FILE, LEGACY_SNAPSHOT_FILE, MIGRATED_MARKER};
use crate::log::{COMMITTED_FILE, PURGED_FILE, VOTE_FILE};
use crate::machine::snapshot_name;
use crate::replay::{Replayed, replay_files};

/// Entry header: kind, index, len.
const ENTRY_HEADER_LEN: usize = 11;
/// Bit of the kind that names the `.tmp` leftover of the file.
const TEMP_BIT: u8 = 0x80;

/// One file of a directory image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFile {
    /// The kind byte (see the module docs).
    pub kind: u8,
    /// The index in a segment or snapshot name; unused otherwise.
    pub index: u64,
    /// Contents.
    pub bytes: Vec<u8>,
}

/// The file name a kind and index stand for.
pub fn file_name(kind: u8, index: u64) -> String {
    let name = match kind % 8 {
        0 => format!("segment-{index:020}.log"),
        1 => snapshot_name(index),
        2 => VOTE_FILE.to_string(),
        3 => COMMITTED_FILE.to_string(),
        4 => PURGED_FILE.to_string(),
        5 => LEGACY_LOG_FILE.to_string(),
        6 => LEGACY_SNAPSHOT_FILE.to_string(),
        _ => MIGRATED_MARKER.to_string(),
    };
    if kind & TEMP_BIT != 0 { format!("{name}{TEMP_SUFFIX}") } else { name }
}

/// The kind and index of a file name, if the image can name it.
pub fn kind_of(name: &str) -> Option<(u8, u64)> {
    let (name, temp) = match name.strip_suffix(TEMP_SUFFIX) {
        Some(stem) => (stem, TEMP_BIT),
        None => (name, 0),
    };
    let indexed = |prefix: &str, suffix: &str| -> Option<u64> {
        let digits = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
        (digits.len() == 20).then(|| digits.parse().ok()).flatten()
    };
    let (kind, index) = if let Some(i) = indexed("segment-", ".log") {
        (0, i)
    } else if let Some(i) = indexed("snapshot-", ".snap") {
        (1, i)
    } else {
        let kind = match name {
            VOTE_FILE => 2,
            COMMITTED_FILE => 3,
            PURGED_FILE => 4,
            LEGACY_LOG_FILE => 5,
            LEGACY_SNAPSHOT_FILE => 6,
            MIGRATED_MARKER => 7,
            _ => return None,
        };
        (kind, 0)
    };
    Some((kind | temp, index))
}

/// Splits a directory image into its flags and files; a truncated last
/// entry keeps the bytes that are there.
pub fn parse_image(data: &[u8]) -> (u8, Vec<ImageFile>) {
    let Some((&flags, mut rest)) = data.split_first() else {
        return (0, Vec::new());
    };
    let mut files = Vec::new();
    while rest.len() >= ENTRY_HEADER_LEN {
        let kind = rest[0];
        let mut index = [0u8; 8];
        index.copy_from_slice(&rest[1..9]);
        let len = usize::from(u16::from_be_bytes([rest[9], rest[10]]));
        let body = &rest[ENTRY_HEADER_LEN..];
        let take = len.min(body.len());
        files.push(ImageFile { kind, index: u64::from_be_bytes(index), bytes: body[..take].to_vec() });
        rest = &body[take..];
    }
    (flags, files)
}

/// Builds a directory image (the inverse of [`parse_image`]), for seeds.
/// Files longer than 64 KiB are cut.
pub fn encode_image(flags: u8, files: &[ImageFile]) -> Vec<u8> {
    let mut out = vec![flags];
    for f in files {
        let len = f.bytes.len().min(usize::from(u16::MAX));
        out.push(f.kind);
        out.extend_from_slice(&f.index.to_be_bytes());
        out.extend_from_slice(&(len as u16).to_be_bytes());
        out.extend_from_slice(&f.bytes[..len]);
    }
    out
}

/// Rewrites the checksum of every whole frame `u32 len | u32 crc | covered`,
/// where the checksum covers `covered_extra` bytes besides `len` (the old
/// log's index).
fn reseal_frames(bytes: &mut [u8], covered_extra: usize) {
    let mut pos = 0usize;
    while bytes.len() - pos >= ENTRY_HEADER_BYTES + covered_extra {
        let len = u32::from_be_bytes([bytes[pos], bytes[pos + 1], bytes[pos + 2], bytes[pos + 3]]) as usize;
        let Some(end) = (pos + ENTRY_HEADER_BYTES + covered_extra).checked_add(len).filter(|&e| e <= bytes.len())
        else {
            return;
        };
        let crc = crc32c::crc32c(&bytes[pos + ENTRY_HEADER_BYTES..end]);
        bytes[pos + 4..pos + 8].copy_from_slice(&crc.to_be_bytes());
        pos = end;
    }
}

/// Rewrites the length and checksum of a whole-file format whose header is
/// a `len_bytes` length and a `u32` checksum of the rest.
fn reseal_whole(bytes: &mut [u8], len_bytes: usize) {
    let header = len_bytes + 4;
    if bytes.len() < header {
        return;
    }
    let body_len = (bytes.len() - header) as u64;
    bytes[..len_bytes].copy_from_slice(&body_len.to_be_bytes()[8 - len_bytes..]);
    let crc = crc32c::crc32c(&bytes[header..]);
    bytes[len_bytes..header].copy_from_slice(&crc.to_be_bytes());
}

/// The files an image puts on the disk, checksums fixed when asked.
pub fn materialize(flags: u8, files: &[ImageFile]) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for f in files {
        let mut bytes = f.bytes.clone();
        if flags & 1 != 0 {
            match f.kind % 8 {
                0 => reseal_frames(&mut bytes, 0),
                1 => reseal_whole(&mut bytes, SNAPSHOT_HEADER_BYTES - 4),
                2..=4 | 7 => reseal_whole(&mut bytes, 4),
                5 => reseal_frames(&mut bytes, 8),
                _ => {}
            }
        }
        out.insert(file_name(f.kind, f.index), bytes);
    }
    out
}

/// Runs the harness on `data`.
///
/// # Panics
/// When the store breaks a promise (see the module docs).
pub fn metadata_replay(data: &[u8]) -> Replayed {
    let (flags, files) = parse_image(data);
    let files = materialize(flags, &files);
    let list: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
    replay_files(&list, u64::from(flags >> 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_kinds_and_back() {
        for kind in (0..8).chain(TEMP_BIT..TEMP_BIT + 8) {
            for index in [0, 7, u64::MAX] {
                let name = file_name(kind, index);
                let (k, i) = kind_of(&name).unwrap_or_else(|| panic!("{name} has no kind"));
                assert_eq!(file_name(k, i), name);
            }
        }
        assert_eq!(kind_of("segment-7.log"), None);
        assert_eq!(kind_of("something-else"), None);
    }

    #[test]
    fn images_round_trip() {
        let files = vec![
            ImageFile { kind: 0, index: u64::MAX, bytes: b"abc".to_vec() },
            ImageFile { kind: 2 | TEMP_BIT, index: 0, bytes: Vec::new() },
        ];
        assert_eq!(parse_image(&encode_image(3, &files)), (3, files));
    }

    #[test]
    fn resealing_fixes_lengths_and_checksums() {
        let mut small = crate::frame::encode_small(&7u64).expect("encode");
        let last = small.len() - 1;
        small[last] = b'8';
        small.push(b'9');
        reseal_whole(&mut small, 4);
        assert_eq!(crate::frame::decode_small::<u64>(&small), Ok(89));
    }
}
