//! One segment: `<base offset>.log` holding batches exactly as appended,
//! with its sparse offset and time indexes.

use std::fs::{self, File, OpenOptions};
use std::io::IoSlice;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tributary_record::batch::{BATCH_HEADER_LEN, CRC_START};
use tributary_record::{BatchHeader, STORED_BATCH_BYTES_MAX};

use crate::index::{OffsetIndex, TimeIndex};
use crate::retired::RetiredFiles;

/// Chunk size for streaming CRC checks during recovery.
const RECOVERY_CHUNK_BYTES: usize = 1 << 20;

/// File name stem of a segment: the base offset, zero-padded to 20 digits.
pub fn file_stem(base_offset: i64) -> String {
    format!("{base_offset:020}")
}

/// Writes `pieces` one after another at `position`, in as few system calls
/// as the kernel allows (one `pwritev` for a batch's header and records).
fn write_all_at(file: &File, pieces: &[&[u8]], mut position: u64) -> std::io::Result<()> {
    let mut pieces: Vec<&[u8]> = pieces.iter().copied().filter(|p| !p.is_empty()).collect();
    while !pieces.is_empty() {
        let slices: Vec<IoSlice<'_>> = pieces.iter().map(|p| IoSlice::new(p)).collect();
        let written = match rustix::io::pwritev(file, &slices, position) {
            Ok(0) => return Err(std::io::Error::new(std::io::ErrorKind::WriteZero, "the file accepted no bytes")),
            Ok(n) => n,
            Err(e) if e == rustix::io::Errno::INTR => continue,
            Err(e) => return Err(e.into()),
        };
        position += written as u64;
        let mut left = written;
        while let Some(first) = pieces.first_mut() {
            if left < first.len() {
                *first = &first[left..];
                break;
            }
            left -= first.len();
            pieces.remove(0);
        }
    }
    Ok(())
}

/// Reads the batch header at `position`, `Ok(None)` at or past the end.
pub(crate) fn read_header_at(file: &File, position: u64, size: u64) -> std::io::Result<Option<BatchHeader>> {
    if position + BATCH_HEADER_LEN as u64 > size {
        return Ok(None);
    }
    let mut buf = [0u8; BATCH_HEADER_LEN];
    file.read_exact_at(&mut buf, position)?;
    Ok(BatchHeader::parse(&buf).ok())
}

/// Whether a header found on disk in the segment at `segment_base` can be
/// a batch this log wrote: offsets not negative, not running backwards
/// inside the batch, the next offset representable, and every offset within
/// `u32` of the segment's base (the log rolls before that). Recovery ends
/// the valid log at one that is not (the base offset is not covered by the
/// CRC, and after a clean shutdown headers are walked without checksums).
fn offsets_plausible(header: &BatchHeader, segment_base: i64) -> bool {
    header.base_offset >= segment_base
        && header.last_offset_delta >= 0
        && header
            .base_offset
            .checked_add(i64::from(header.last_offset_delta))
            .is_some_and(|last| last - segment_base < i64::from(u32::MAX))
}

/// A segment of a partition log.
#[derive(Debug)]
pub struct Segment {
    /// Offset of the first batch (and the file name).
    pub base_offset: i64,
    /// The `.log` file, shared with in-flight reads.
    pub file: Arc<File>,
    /// Path of the `.log` file.
    pub path: PathBuf,
    /// Bytes of valid batches.
    pub size: u64,
    /// Offset after the last batch (`base_offset` when empty).
    pub next_offset: i64,
    /// Sparse offset index.
    pub offset_index: OffsetIndex,
    /// Sparse time index.
    pub time_index: TimeIndex,
    /// Bytes appended since the last index entry.
    bytes_since_index: u64,
    /// Largest record timestamp (-1 when empty).
    pub max_timestamp: i64,
    /// Offset of the record with `max_timestamp`.
    pub offset_of_max_timestamp: i64,
    /// Max timestamp of the first batch, the base for time-based rolling.
    pub first_batch_timestamp: Option<i64>,
    /// When this segment was created (ms), for rolling empty-timestamp segments.
    pub created_ms: i64,
}

/// What recovery found in a segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanOutcome {
    /// Valid bytes.
    pub valid_bytes: u64,
    /// Whether bytes after them were cut off (torn or corrupt tail).
    pub truncated: bool,
}

impl Segment {
    /// Paths of the `.log`, `.index` and `.timeindex` files.
    pub fn paths(dir: &Path, base_offset: i64) -> (PathBuf, PathBuf, PathBuf) {
        let stem = file_stem(base_offset);
        (dir.join(format!("{stem}.log")), dir.join(format!("{stem}.index")), dir.join(format!("{stem}.timeindex")))
    }

    /// Creates an empty segment.
    pub fn create(dir: &Path, base_offset: i64, now_ms: i64) -> std::io::Result<Segment> {
        let (path, index_path, time_path) = Segment::paths(dir, base_offset);
        let _ = fs::remove_file(index_path);
        let _ = fs::remove_file(time_path);
        Segment::create_at(&path, base_offset, now_ms)
    }

    /// Creates an empty segment file at `path` (the cleaner's `.cleaned` file).
    pub(crate) fn create_at(path: &Path, base_offset: i64, now_ms: i64) -> std::io::Result<Segment> {
        let file = OpenOptions::new().create(true).read(true).write(true).truncate(true).open(path)?;
        Ok(Segment::empty(base_offset, Arc::new(file), path.to_path_buf(), now_ms))
    }

    fn empty(base_offset: i64, file: Arc<File>, path: PathBuf, now_ms: i64) -> Segment {
        Segment {
            base_offset,
            file,
            path,
            size: 0,
            next_offset: base_offset,
            offset_index: OffsetIndex::default(),
            time_index: TimeIndex::default(),
            bytes_since_index: 0,
            max_timestamp: -1,
            offset_of_max_timestamp: base_offset,
            first_batch_timestamp: None,
            created_ms: now_ms,
        }
    }

    /// Opens an existing segment. With `validate`, every batch is checked
    /// (length, CRC, ascending offsets) and a bad tail is cut off; indexes are
    /// rebuilt. Without it, the file is trusted and indexes are read from
    /// disk, rebuilt only if missing or not trustworthy.
    pub fn open(
        dir: &Path,
        base_offset: i64,
        validate: bool,
        index_interval_bytes: u32,
    ) -> std::io::Result<(Segment, ScanOutcome)> {
        let (path, index_path, time_path) = Segment::paths(dir, base_offset);
        let file = OpenOptions::new().read(true).write(true).open(&path)?;
        let file_size = file.metadata()?.len();
        let created_ms = file
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as i64);
        let mut segment = Segment::empty(base_offset, Arc::new(file), path, created_ms);
        if !validate {
            let indexes =
                OffsetIndex::read(&index_path, file_size).zip(TimeIndex::read(&time_path, u32::MAX, file_size));
            if let Some((offset_index, time_index)) = indexes
                && segment.load_summary(file_size, offset_index, time_index)?
            {
                return Ok((segment, ScanOutcome { valid_bytes: file_size, truncated: false }));
            }
        }
        let outcome = segment.rebuild(file_size, validate, index_interval_bytes)?;
        if outcome.truncated {
            segment.file.set_len(outcome.valid_bytes)?;
            segment.file.sync_all()?;
        }
        Ok((segment, outcome))
    }

    /// Uses indexes read from disk, after checking them against a walk of
    /// the batch headers (which also finds the end offset and timestamps):
    /// every offset index entry must name the start of a batch and that
    /// batch's first offset, every time index entry a batch's first offset.
    /// Returns false if the walk finds anything inconsistent (then the caller
    /// rebuilds).
    fn load_summary(
        &mut self,
        file_size: u64,
        offset_index: OffsetIndex,
        time_index: TimeIndex,
    ) -> std::io::Result<bool> {
        // Timestamps need a full header walk anyway; headers are 61 bytes per batch.
        let mut position = 0u64;
        let mut expected = self.base_offset;
        let mut offset_entries = offset_index.entries().iter().peekable();
        let mut time_entries = time_index.entries().iter().peekable();
        while let Some(h) = read_header_at(&self.file, position, file_size)? {
            if h.base_offset < expected
                || !offsets_plausible(&h, self.base_offset)
                || position + h.total_len() as u64 > file_size
                || h.total_len() > STORED_BATCH_BYTES_MAX
            {
                return Ok(false);
            }
            let relative = h.base_offset - self.base_offset;
            if let Some(&&(offset, at)) = offset_entries.peek()
                && u64::from(at) <= position
            {
                if u64::from(at) < position || i64::from(offset) != relative {
                    return Ok(false);
                }
                offset_entries.next();
            }
            if let Some(&&(_, offset)) = time_entries.peek()
                && i64::from(offset) <= relative
            {
                if i64::from(offset) < relative {
                    return Ok(false);
                }
                time_entries.next();
            }
            self.note_batch(&h, h.max_timestamp, h.last_offset());
            expected = h.next_offset();
            position += h.total_len() as u64;
        }
        if position != file_size || offset_entries.next().is_some() || time_entries.next().is_some() {
            return Ok(false);
        }
        self.size = file_size;
        self.offset_index = offset_index;
        self.time_index = time_index;
        Ok(true)
    }

    /// Walks every batch from the start, rebuilding indexes; with `validate`,
    /// checks each batch's CRC and stops at the first bad one.
    fn rebuild(&mut self, file_size: u64, validate: bool, index_interval_bytes: u32) -> std::io::Result<ScanOutcome> {
        let mut position = 0u64;
        let mut expected = self.base_offset;
        let mut chunk = Vec::new();
        loop {
            if position == file_size {
                break;
            }
            let header = match read_header_at(&self.file, position, file_size)? {
                Some(h) => h,
                None => break,
            };
            let len = header.total_len() as u64;
            if header.base_offset < expected
                || !offsets_plausible(&header, self.base_offset)
                || position + len > file_size
                || len > STORED_BATCH_BYTES_MAX as u64
            {
                break;
            }
            if validate && !self.crc_ok(position, &header, &mut chunk)? {
                break;
            }
            self.index_batch(&header, position, index_interval_bytes, header.max_timestamp, header.last_offset());
            self.note_batch(&header, header.max_timestamp, header.last_offset());
            expected = header.next_offset();
            position += len;
        }
        self.size = position;
        Ok(ScanOutcome { valid_bytes: position, truncated: position != file_size })
    }

    fn crc_ok(&self, position: u64, header: &BatchHeader, chunk: &mut Vec<u8>) -> std::io::Result<bool> {
        let end = position + header.total_len() as u64;
        let mut at = position + CRC_START as u64;
        let mut crc = 0u32;
        while at < end {
            let n = ((end - at) as usize).min(RECOVERY_CHUNK_BYTES);
            chunk.resize(n, 0);
            self.file.read_exact_at(chunk, at)?;
            crc = crc32c::crc32c_append(crc, chunk);
            at += n as u64;
        }
        Ok(crc == header.crc)
    }

    fn note_batch(&mut self, header: &BatchHeader, max_timestamp: i64, offset_of_max: i64) {
        if self.first_batch_timestamp.is_none() {
            self.first_batch_timestamp = Some(max_timestamp);
        }
        if max_timestamp > self.max_timestamp {
            self.max_timestamp = max_timestamp;
            self.offset_of_max_timestamp = offset_of_max;
        }
        self.next_offset = header.next_offset();
    }

    fn index_batch(
        &mut self,
        header: &BatchHeader,
        position: u64,
        index_interval_bytes: u32,
        max_timestamp: i64,
        _: i64,
    ) {
        if position == 0 || self.bytes_since_index >= u64::from(index_interval_bytes) {
            // An entry must point inside this segment, at an offset it holds.
            assert!(
                header.base_offset >= self.base_offset
                    && header.base_offset - self.base_offset <= i64::from(u32::MAX)
                    && position <= u64::from(u32::MAX),
                "index entry for offset {} at position {position} does not fit segment {}",
                header.base_offset,
                self.base_offset
            );
            let relative = (header.base_offset - self.base_offset) as u32;
            if position > 0 {
                self.offset_index.push(relative, position as u32);
            }
            self.time_index.maybe_push(max_timestamp.max(self.max_timestamp), relative);
            self.bytes_since_index = 0;
        }
        self.bytes_since_index += header.total_len() as u64;
    }

    /// Appends a batch (offsets already assigned) at the end of the file.
    /// On a write error the file is cut back to its previous length.
    pub fn append(
        &mut self,
        head: &[u8],
        records: &[u8],
        header: &BatchHeader,
        index_interval_bytes: u32,
        max_timestamp: i64,
        offset_of_max_timestamp: i64,
    ) -> std::io::Result<()> {
        let position = self.size;
        if let Err(e) = write_all_at(&self.file, &[head, records], position) {
            // Leave no partial batch behind; if even this fails the caller takes the log offline.
            self.file.set_len(position)?;
            return Err(e);
        }
        self.index_batch(header, position, index_interval_bytes, max_timestamp, offset_of_max_timestamp);
        self.note_batch(header, max_timestamp, offset_of_max_timestamp);
        self.size += (head.len() + records.len()) as u64;
        Ok(())
    }

    /// Finds the first batch whose last offset is at least `offset`:
    /// its position and header. `None` if the segment ends before it.
    pub fn find(&self, offset: i64) -> std::io::Result<Option<(u64, BatchHeader)>> {
        let relative = (offset - self.base_offset).clamp(0, i64::from(u32::MAX)) as u32;
        let mut position = u64::from(self.offset_index.lookup(relative));
        while let Some(h) = read_header_at(&self.file, position, self.size)? {
            if h.last_offset() >= offset {
                return Ok(Some((position, h)));
            }
            position += h.total_len() as u64;
        }
        Ok(None)
    }

    /// Position of the first batch that may hold a record with a timestamp at
    /// or after `timestamp` (start scanning there).
    pub fn position_for_timestamp(&self, timestamp: i64) -> u64 {
        let relative = self.time_index.lookup(timestamp);
        u64::from(self.offset_index.lookup(relative))
    }

    /// The offset after the last batch that ends at or before `position` (a
    /// batch boundary): where the log ends once cut there. The segment's
    /// base offset when no batch does.
    pub fn end_offset_at(&self, position: u64) -> std::io::Result<i64> {
        let mut end = self.base_offset;
        let mut p = 0;
        while let Some(h) = read_header_at(&self.file, p, self.size.min(position))? {
            let len = h.total_len() as u64;
            if p + len > position {
                break;
            }
            end = h.next_offset();
            p += len;
        }
        Ok(end)
    }

    /// Cuts the segment at `position` (a batch boundary): the file is
    /// shortened (not synced: the caller syncs), the indexes lose their
    /// entries at or past the cut, and the end offset and timestamps are
    /// found again by walking the headers that remain.
    pub fn truncate(&mut self, position: u64) -> std::io::Result<()> {
        let position = position.min(self.size);
        self.file.set_len(position)?;
        self.size = position;
        self.next_offset = self.base_offset;
        self.max_timestamp = -1;
        self.offset_of_max_timestamp = self.base_offset;
        self.first_batch_timestamp = None;
        self.bytes_since_index = 0;
        let mut p = 0;
        while let Some(h) = read_header_at(&self.file, p, self.size)? {
            self.note_batch(&h, h.max_timestamp, h.last_offset());
            p += h.total_len() as u64;
        }
        self.offset_index.truncate_to_position(u32::try_from(position).unwrap_or(u32::MAX));
        let end = u32::try_from(self.next_offset - self.base_offset).unwrap_or(u32::MAX);
        self.time_index.truncate_to_offset(end);
        Ok(())
    }

    /// Writes both index files.
    pub fn write_indexes(&self, dir: &Path) -> std::io::Result<()> {
        let (_, index_path, time_path) = Segment::paths(dir, self.base_offset);
        self.offset_index.write(&index_path)?;
        self.time_index.write(&time_path)
    }

    /// Removes the segment's files. Readers holding the file keep reading it.
    pub fn delete_files(&self, dir: &Path) -> std::io::Result<()> {
        Segment::remove_files(dir, self.base_offset)
    }

    /// Renames the segment's files into `retired`, to be unlinked later.
    /// Readers holding the file keep reading it.
    pub(crate) fn retire_files(&self, dir: &Path, retired: &mut RetiredFiles) -> std::io::Result<()> {
        let (path, index_path, time_path) = Segment::paths(dir, self.base_offset);
        for p in [&path, &index_path, &time_path] {
            retired.retire(p)?;
        }
        Ok(())
    }

    /// Removes the `.log`, `.index` and `.timeindex` files of the segment at
    /// `base_offset`, those that exist.
    pub(crate) fn remove_files(dir: &Path, base_offset: i64) -> std::io::Result<()> {
        let (path, index_path, time_path) = Segment::paths(dir, base_offset);
        for p in [&path, &index_path, &time_path] {
            match fs::remove_file(p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Whether the segment holds no batch.
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }
}

/// Bytes of batch headers read at a time while measuring a read.
const HEADER_WINDOW_BYTES: usize = 16 * 1024;

/// A run of whole batches in a segment file. Holding it keeps the file open,
/// so the bytes stay readable even if retention deletes the segment.
#[derive(Debug, Clone)]
pub struct FileSlice {
    /// The segment's `.log` file.
    pub file: Arc<File>,
    /// Where the first batch starts.
    pub position: u64,
    /// Bytes of whole batches from `position`.
    pub len: usize,
}

impl FileSlice {
    /// Copies the bytes into memory.
    pub fn read(&self) -> std::io::Result<Vec<u8>> {
        let mut buf = vec![0u8; self.len];
        self.file.read_exact_at(&mut buf, self.position)?;
        Ok(buf)
    }
}

/// Measures the whole batches in `file` from `position` (a batch boundary):
/// up to `max_bytes`, stopping before any batch at or after `upper_bound`
/// or past `segment_size`. If `min_one` and the first batch is larger than
/// `max_bytes`, it is taken whole (KIP-74). Reads only batch headers, a
/// window at a time; runs without the partition lock.
pub fn locate_batches(
    file: &Arc<File>,
    position: u64,
    segment_size: u64,
    max_bytes: usize,
    upper_bound: i64,
    min_one: bool,
) -> std::io::Result<FileSlice> {
    let available = segment_size.saturating_sub(position);
    let mut window = Vec::new();
    let mut window_at = position; // file position of window[0]
    let mut end = 0u64; // bytes taken so far
    while available - end >= BATCH_HEADER_LEN as u64 {
        let at = position + end;
        if at + BATCH_HEADER_LEN as u64 > window_at + window.len() as u64 {
            let fill = (segment_size - at).min(HEADER_WINDOW_BYTES as u64) as usize;
            window.resize(fill, 0);
            file.read_exact_at(&mut window, at)?;
            window_at = at;
        }
        let Ok(header) = BatchHeader::parse(&window[(at - window_at) as usize..]) else { break };
        if header.base_offset >= upper_bound {
            break;
        }
        let len = header.total_len() as u64;
        if end + len > available || len > STORED_BATCH_BYTES_MAX as u64 {
            break;
        }
        if end + len > max_bytes as u64 {
            if end == 0 && min_one {
                end = len;
            }
            break;
        }
        end += len;
    }
    Ok(FileSlice { file: file.clone(), position, len: end as usize })
}

/// Reads whole batches into memory; see [`locate_batches`].
pub fn read_batches(
    file: &Arc<File>,
    position: u64,
    segment_size: u64,
    max_bytes: usize,
    upper_bound: i64,
    min_one: bool,
) -> std::io::Result<Vec<u8>> {
    locate_batches(file, position, segment_size, max_bytes, upper_bound, min_one)?.read()
}
