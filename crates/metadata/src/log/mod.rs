//! The Raft-shaped metadata log: entries in segment files, the vote, the
//! committed mark and the purge mark, with the operations a Raft log store
//! needs (openraft's `RaftLogStorage` maps onto them one to one).
//!
//! ```text
//! <dir>/segment-<first index, 20 digits>.log   entry frames (frame.rs), rolled at LogOptions::segment_bytes
//!       vote                                  the vote          (written atomically: tmp, fsync, rename, dir fsync)
//!       committed                             the committed id  (the same)
//!       purged                                the last purged id (the same)
//! ```
//!
//! Rules (docs/design/metadata-log.md gives the reasons):
//! - `append` writes; `flush` fsyncs. An entry is durable once a `flush`
//!   that started after its `append` returned `Ok`.
//! - Before a new segment gets its first byte the previous one is fsynced,
//!   so only the last segment can end torn.
//! - A failed write is cut back to the last good end (and that is fsynced);
//!   a failed fsync, cut-back, rename or removal poisons the log: every
//!   later write is refused until it is opened again, since what the page
//!   cache did with the failed data is unknown.
//! - `truncate`, `purge`, `save_vote` and `save_committed` are durable when
//!   they return. `purge` writes its mark before it deletes anything.
//! - At open, a torn tail of the last segment is cut (unless that would
//!   lose a committed entry); anything else that does not read back is
//!   refused with the file, the offset and what to do.

mod segment;

use std::ops::{Bound, RangeBounds};

use serde::de::DeserializeOwned;

pub(crate) use segment::parse_segment_name;
use segment::{EntryPos, Segment};

use crate::disk::{Disk, ReadWholeError, TEMP_SUFFIX, read_whole, write_atomically};
use crate::error::{MetadataError, REMEDY_NEWER, REMEDY_RESTORE};
use crate::frame::{self, ENTRY_BODY_BYTES_MAX, ENTRY_HEADER_BYTES, FrameError, SMALL_FILE_BYTES_MAX};
use crate::types::{Entry, LogId, LogState, NodeId, Vote};

/// File holding the vote.
pub const VOTE_FILE: &str = "vote";
/// File holding the last committed log id.
pub const COMMITTED_FILE: &str = "committed";
/// File holding the last purged log id.
pub const PURGED_FILE: &str = "purged";
/// Default segment roll size.
pub const SEGMENT_BYTES_DEFAULT: u64 = 1 << 20;

/// Log tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogOptions {
    /// A segment is rolled before an entry would take it past this size
    /// (an entry larger than it gets a segment of its own).
    pub segment_bytes: u64,
}

impl Default for LogOptions {
    fn default() -> LogOptions {
        LogOptions { segment_bytes: SEGMENT_BYTES_DEFAULT }
    }
}

impl LogOptions {
    /// The largest segment file this configuration can write: a segment
    /// just under the roll size plus one maximal entry.
    fn segment_file_bytes_max(&self) -> u64 {
        self.segment_bytes + (ENTRY_HEADER_BYTES + ENTRY_BODY_BYTES_MAX) as u64
    }
}

/// The metadata log on a [`Disk`].
#[derive(Debug)]
pub struct MetadataLog<D: Disk> {
    disk: D,
    options: LogOptions,
    segments: Vec<Segment>,
    last_purged: Option<LogId>,
    vote: Option<Vote>,
    committed: Option<LogId>,
    /// The newest term's leader, as far as the entries say.
    term_leader: TermLeader,
    dir_unsynced: bool,
    poisoned: Option<String>,
}

/// The leader of the newest term seen: one leader per term, where an entry
/// whose writer did not know the leader ([`LogId::UNKNOWN_LEADER`]) agrees
/// with any.
#[derive(Debug, Clone, Copy, Default)]
struct TermLeader(Option<(u64, NodeId)>);

impl TermLeader {
    /// The other leader `id`'s term already has, if `id` names a different one.
    fn conflict(&self, id: LogId) -> Option<NodeId> {
        match self.0 {
            Some((term, leader))
                if term == id.term
                    && leader != LogId::UNKNOWN_LEADER
                    && id.leader != LogId::UNKNOWN_LEADER
                    && leader != id.leader =>
            {
                Some(leader)
            }
            _ => None,
        }
    }

    fn note(&mut self, id: LogId) {
        match self.0 {
            Some((term, leader)) if term == id.term => {
                if leader == LogId::UNKNOWN_LEADER {
                    self.0 = Some((term, id.leader));
                }
            }
            _ => self.0 = Some((id.term, id.leader)),
        }
    }
}

/// Reads a small state file; a damaged one stops the open.
fn read_small<T: DeserializeOwned>(disk: &dyn Disk, name: &str) -> Result<Option<T>, MetadataError> {
    let path = disk.path_of(name);
    let bytes = match read_whole(disk, name, SMALL_FILE_BYTES_MAX) {
        Ok(None) => return Ok(None),
        Ok(Some(bytes)) => bytes,
        Err(ReadWholeError::Io(e)) => return Err(MetadataError::io("read", path)(e)),
        Err(ReadWholeError::TooLarge { len }) => {
            return Err(MetadataError::Corrupt {
                path,
                offset: 0,
                reason: format!("{len} bytes, more than the {SMALL_FILE_BYTES_MAX} such a file can hold"),
                remedy: REMEDY_RESTORE,
            });
        }
    };
    frame::decode_small(&bytes).map(Some).map_err(|e| {
        let (reason, remedy) = match e {
            FrameError::Torn(r) => (r, REMEDY_RESTORE),
            FrameError::Unreadable(r) => (r, REMEDY_NEWER),
        };
        MetadataError::Corrupt { path, offset: 0, reason, remedy }
    })
}

impl<D: Disk> MetadataLog<D> {
    /// Opens the log on `disk`: removes leftovers of interrupted atomic
    /// writes, reads the vote, committed and purge marks, scans every
    /// segment not wholly purged, cuts a torn tail off the last one, and
    /// fsyncs what it keeps (a previous process may have left it unsynced).
    pub fn open(mut disk: D, options: LogOptions) -> Result<MetadataLog<D>, MetadataError> {
        let dir = disk.path_of("");
        let names = disk.list().map_err(MetadataError::io("list", dir.clone()))?;
        for name in names.iter().filter(|n| n.ends_with(TEMP_SUFFIX) && !n.starts_with("snapshot-")) {
            disk.remove(name).map_err(MetadataError::io("remove", disk.path_of(name)))?;
        }
        let vote: Option<Vote> = read_small(&disk, VOTE_FILE)?;
        let committed: Option<LogId> = read_small(&disk, COMMITTED_FILE)?;
        let last_purged: Option<LogId> = read_small(&disk, PURGED_FILE)?;
        let mut bases: Vec<u64> = names.iter().filter_map(|n| parse_segment_name(n)).collect();
        bases.sort_unstable();

        let mut log = MetadataLog {
            disk,
            options,
            segments: Vec::new(),
            last_purged,
            vote,
            committed,
            term_leader: TermLeader::default(),
            dir_unsynced: false,
            poisoned: None,
        };
        let purged_index = last_purged.map(|p| p.index);
        for (i, &base) in bases.iter().enumerate() {
            let next_base = bases.get(i + 1).copied();
            let name = segment::segment_name(base);
            // Wholly purged (the next segment starts at or below the purge
            // mark + 1): a purge that did not get to delete it.
            if let (Some(next), Some(p)) = (next_base, purged_index)
                && next.saturating_sub(1) <= p
            {
                log.disk.remove(&name).map_err(MetadataError::io("remove", log.disk.path_of(&name)))?;
                log.dir_unsynced = true;
                continue;
            }
            log.load_segment(base, next_base.is_none())?;
        }
        // A last segment that is empty or wholly purged goes too.
        if let Some(last) = log.segments.last()
            && last.last().is_none_or(|l| purged_index.is_some_and(|p| l.index <= p))
        {
            let name = last.name.clone();
            log.segments.pop();
            if log.disk.len(&name).map_err(MetadataError::io("read", log.disk.path_of(&name)))?.is_some() {
                log.disk.remove(&name).map_err(MetadataError::io("remove", log.disk.path_of(&name)))?;
            }
            log.dir_unsynced = true;
        }
        if let Some(c) = log.committed {
            let end = log.log_state().last;
            if end.is_none_or(|e| e.index < c.index) {
                let (path, offset) = match log.segments.last() {
                    Some(s) => (log.disk.path_of(&s.name), s.end),
                    None => (log.disk.path_of(""), 0),
                };
                return Err(MetadataError::Corrupt {
                    path,
                    offset,
                    reason: format!("entry {c} was committed but the log ends at {}", display_opt(end)),
                    remedy: REMEDY_RESTORE,
                });
            }
        }
        if let Some(last) = log.segments.last_mut() {
            let name = last.name.clone();
            log.disk.sync(&name).map_err(MetadataError::io("fsync", log.disk.path_of(&name)))?;
        }
        log.disk.sync_dir().map_err(MetadataError::io("fsync", dir))?;
        log.dir_unsynced = false;
        Ok(log)
    }

    /// Scans one segment into the index, checking it continues the log.
    fn load_segment(&mut self, base: u64, is_last: bool) -> Result<(), MetadataError> {
        let name = segment::segment_name(base);
        let path = self.disk.path_of(&name);
        let scanned = segment::scan(&self.disk, &name, base, self.options.segment_file_bytes_max())?;
        let mut prev = self.last_entry();
        for (n, pos) in scanned.segment.entries.iter().enumerate() {
            // `None`: the entry before is at the last index there is.
            let expected = if n == 0 { Some(base) } else { prev.map_or(Some(base), |p| p.index.checked_add(1)) };
            let broken = if expected != Some(pos.log_id.index) {
                Some(match expected {
                    Some(expected) => format!("entry {} where index {expected} belongs", pos.log_id),
                    None => format!("entry {} follows the last index there is", pos.log_id),
                })
            } else if n == 0 && prev.is_some_and(|p| p.index.checked_add(1) != Some(base)) {
                Some(format!("the segment starts at {base} but the previous one ends at {}", display_opt(prev)))
            } else if let Some(p) = prev.filter(|p| pos.log_id.term < p.term) {
                Some(format!("entry {} has a lower term than {p} before it", pos.log_id))
            } else {
                self.term_leader.conflict(pos.log_id).map(|other| {
                    format!("entry {} names another leader of term {} than {other}", pos.log_id, pos.log_id.term)
                })
            };
            if let Some(reason) = broken {
                return Err(MetadataError::Corrupt { path, offset: pos.offset, reason, remedy: REMEDY_RESTORE });
            }
            self.term_leader.note(pos.log_id);
            prev = Some(pos.log_id);
        }
        if let Some(reason) = scanned.torn {
            if !is_last {
                return Err(MetadataError::Corrupt {
                    path,
                    offset: scanned.segment.end,
                    reason: format!("{reason}, in a segment that later segments follow"),
                    remedy: REMEDY_RESTORE,
                });
            }
            let kept_last = prev.or(self.last_purged);
            if let Some(c) = self.committed
                && kept_last.is_none_or(|k| k.index < c.index)
            {
                return Err(MetadataError::Corrupt {
                    path,
                    offset: scanned.segment.end,
                    reason: format!("{reason}, which cuts off entry {c} that was committed"),
                    remedy: REMEDY_RESTORE,
                });
            }
            tracing::warn!(
                path = %path.display(),
                valid_bytes = scanned.segment.end,
                file_bytes = scanned.file_len,
                reason = %reason,
                "cutting a torn tail off the metadata log (an append that was never acknowledged)"
            );
            self.disk.set_len(&name, scanned.segment.end).map_err(MetadataError::io("cut", path.clone()))?;
            self.disk.sync(&name).map_err(MetadataError::io("fsync", path))?;
        }
        self.segments.push(scanned.segment);
        Ok(())
    }

    /// The disk (for tests and tools).
    pub fn disk(&self) -> &D {
        &self.disk
    }

    /// Why writes are refused, if they are.
    pub fn poisoned(&self) -> Option<&str> {
        self.poisoned.as_deref()
    }

    /// The last purged id and the last id.
    pub fn log_state(&self) -> LogState {
        LogState { last_purged: self.last_purged, last: self.last_entry().or(self.last_purged) }
    }

    /// The id of the entry at `index`, if present.
    pub fn log_id_at(&self, index: u64) -> Option<LogId> {
        self.locate(index).map(|(_, pos)| pos.log_id)
    }

    /// The index of the first present entry.
    pub fn first_index(&self) -> Option<u64> {
        let purged = self.last_purged.map(|p| p.index);
        self.segments
            .iter()
            .flat_map(|s| s.entries.iter())
            .map(|p| p.log_id.index)
            .find(|&i| purged.is_none_or(|p| i > p))
    }

    /// The saved vote.
    pub fn read_vote(&self) -> Option<Vote> {
        self.vote
    }

    /// The saved committed id.
    pub fn read_committed(&self) -> Option<LogId> {
        self.committed
    }

    /// The newest term's leader, from the entries (after a truncation).
    fn newest_term_leader(&self) -> TermLeader {
        let mut ids = self.segments.iter().rev().flat_map(|s| s.entries.iter().rev()).map(|p| p.log_id);
        let Some(last) = ids.next() else {
            return TermLeader::default();
        };
        let known = std::iter::once(last)
            .chain(ids.take_while(|id| id.term == last.term))
            .map(|id| id.leader)
            .find(|&l| l != LogId::UNKNOWN_LEADER);
        TermLeader(Some((last.term, known.unwrap_or(LogId::UNKNOWN_LEADER))))
    }

    fn last_entry(&self) -> Option<LogId> {
        self.segments.iter().rev().find_map(Segment::last)
    }

    fn locate(&self, index: u64) -> Option<(&Segment, EntryPos)> {
        if self.last_purged.is_some_and(|p| index <= p.index) {
            return None;
        }
        let i = self.segments.partition_point(|s| s.base <= index);
        let segment = self.segments.get(i.checked_sub(1)?)?;
        let first = segment.entries.first()?.log_id.index;
        let pos = *segment.entries.get(usize::try_from(index.checked_sub(first)?).ok()?)?;
        (pos.log_id.index == index).then_some((segment, pos))
    }

    fn check_writable(&self) -> Result<(), MetadataError> {
        match &self.poisoned {
            Some(cause) => Err(MetadataError::Poisoned { cause: cause.clone() }),
            None => Ok(()),
        }
    }

    /// Records that writes must stop, and returns `error` for the caller.
    fn poison(&mut self, error: MetadataError) -> MetadataError {
        tracing::error!(error = %error, "metadata log: refusing further writes until restart");
        self.poisoned = Some(error.to_string());
        error
    }

    /// Reads entries in `range` (clamped to what is present).
    pub fn entries(&self, range: impl RangeBounds<u64>) -> Result<Vec<Entry>, MetadataError> {
        let Some(first) = self.first_index() else {
            return Ok(Vec::new());
        };
        let last = self.last_entry().map_or(0, |l| l.index);
        let start = match range.start_bound() {
            Bound::Included(&s) => s,
            Bound::Excluded(&s) => s.saturating_add(1),
            Bound::Unbounded => first,
        }
        .max(first);
        let end = match range.end_bound() {
            Bound::Included(&e) => e,
            Bound::Excluded(&e) => match e.checked_sub(1) {
                Some(e) => e,
                None => return Ok(Vec::new()),
            },
            Bound::Unbounded => last,
        }
        .min(last);
        let mut out = Vec::new();
        let mut index = start;
        while index <= end {
            let Some((segment, pos)) = self.locate(index) else {
                break;
            };
            // One read for the run of wanted entries in this segment.
            let first_n = usize::try_from(index - segment.entries[0].log_id.index).unwrap_or(usize::MAX);
            let run: Vec<EntryPos> =
                segment.entries[first_n..].iter().take_while(|p| p.log_id.index <= end).copied().collect();
            let run_end = run.last().map_or(pos.offset, |p| p.offset + p.len);
            let bytes = self.read_span(segment, pos.offset, run_end)?;
            for p in &run {
                let at = usize::try_from(p.offset - pos.offset).unwrap_or(usize::MAX);
                out.push(self.decode_at(segment, *p, &bytes[at..at + p.len as usize])?);
            }
            match run.last().map_or(end.checked_add(1), |p| p.log_id.index.checked_add(1)) {
                Some(next) => index = next,
                None => break, // read up to the last index there is
            }
        }
        Ok(out)
    }

    /// The entry at `index`, if present.
    pub fn entry(&self, index: u64) -> Result<Option<Entry>, MetadataError> {
        Ok(self.entries(index..=index)?.pop())
    }

    fn read_span(&self, segment: &Segment, from: u64, to: u64) -> Result<Vec<u8>, MetadataError> {
        let len = usize::try_from(to - from).map_err(|_| MetadataError::TooLarge {
            what: "read",
            size: to - from,
            max: usize::MAX as u64,
        })?;
        self.disk.read_at(&segment.name, from, len).map_err(MetadataError::io("read", self.disk.path_of(&segment.name)))
    }

    /// Decodes a frame read back, checking it is the entry the index says.
    fn decode_at(&self, segment: &Segment, pos: EntryPos, frame: &[u8]) -> Result<Entry, MetadataError> {
        let corrupt = |reason: String| MetadataError::Corrupt {
            path: self.disk.path_of(&segment.name),
            offset: pos.offset,
            reason,
            remedy: REMEDY_RESTORE,
        };
        let header: [u8; ENTRY_HEADER_BYTES] =
            frame[..ENTRY_HEADER_BYTES].try_into().map_err(|_| corrupt("short frame".into()))?;
        let (_, crc) = frame::decode_entry_header(&header).map_err(|e| corrupt(format!("{e:?}")))?;
        let entry = frame::decode_entry_body(&frame[ENTRY_HEADER_BYTES..], crc)
            .map_err(|e| corrupt(format!("changed since it was written: {e:?}")))?;
        if entry.log_id != pos.log_id {
            return Err(corrupt(format!("holds {} where {} was written", entry.log_id, pos.log_id)));
        }
        Ok(entry)
    }

    /// Appends entries (readable at once, durable after [`MetadataLog::flush`]).
    ///
    /// Each entry must follow the previous one: the next index (any index
    /// for the first entry of a log that never had one), a term no lower,
    /// and in the same term the same leader. On an error other than a
    /// refusal, a prefix of `entries` may have been appended;
    /// [`MetadataLog::log_state`] tells how much.
    pub fn append(&mut self, entries: &[Entry]) -> Result<(), MetadataError> {
        self.check_writable()?;
        let frames = self.encode_following(entries)?;
        let mut pending: Vec<u8> = Vec::new();
        let mut pending_entries: Vec<EntryPos> = Vec::new();
        for (entry, frame) in entries.iter().zip(frames) {
            let roll_to = match self.segments.last() {
                None => true,
                Some(s) if s.entries.is_empty() && pending_entries.is_empty() => s.base != entry.log_id.index,
                Some(s) => {
                    let used = s.end + pending.len() as u64;
                    used > 0 && used + frame.len() as u64 > self.options.segment_bytes
                }
            };
            if roll_to {
                self.write_pending(&mut pending, &mut pending_entries)?;
                self.roll(entry.log_id.index)?;
            }
            let active_end = self.segments.last().map_or(0, |s| s.end);
            pending_entries.push(EntryPos {
                log_id: entry.log_id,
                offset: active_end + pending.len() as u64,
                len: frame.len() as u64,
            });
            pending.extend_from_slice(&frame);
        }
        self.write_pending(&mut pending, &mut pending_entries)
    }

    /// Checks that `entries` continue the log and encodes them.
    fn encode_following(&self, entries: &[Entry]) -> Result<Vec<Vec<u8>>, MetadataError> {
        let mut term_leader = self.term_leader;
        let mut prev_index = self.last_entry().or(self.last_purged).map(|p| p.index);
        let mut prev_term = self.last_entry().or(self.last_purged).map_or(0, |p| p.term);
        let mut frames = Vec::with_capacity(entries.len());
        for entry in entries {
            let id = entry.log_id;
            if let Some(p) = prev_index
                && Some(id.index) != p.checked_add(1)
            {
                return Err(MetadataError::Refused(format!("entry {id} does not follow index {p}")));
            }
            if id.term < prev_term {
                return Err(MetadataError::Refused(format!("entry {id} has a lower term than the log's {prev_term}")));
            }
            if let Some(other) = term_leader.conflict(id) {
                return Err(MetadataError::Refused(format!(
                    "entry {id} names another leader of term {} than {other}",
                    id.term
                )));
            }
            term_leader.note(id);
            let frame = frame::encode_entry(entry)
                .map_err(|e| MetadataError::Refused(format!("entry {id} does not serialize: {e}")))?;
            if frame.len() - ENTRY_HEADER_BYTES > ENTRY_BODY_BYTES_MAX {
                return Err(MetadataError::TooLarge {
                    what: "entry",
                    size: frame.len() as u64,
                    max: ENTRY_BODY_BYTES_MAX as u64,
                });
            }
            frames.push(frame);
            prev_index = Some(id.index);
            prev_term = id.term;
        }
        Ok(frames)
    }

    /// Starts a new segment whose first entry will be `base`. The previous
    /// segment is fsynced first, so no later segment ever follows a torn one.
    fn roll(&mut self, base: u64) -> Result<(), MetadataError> {
        if let Some(active) = self.segments.last()
            && active.entries.is_empty()
        {
            // An empty segment named for another index (left by a failed write).
            let name = active.name.clone();
            if self.disk.len(&name).map_err(MetadataError::io("read", self.disk.path_of(&name)))?.is_some()
                && let Err(e) = self.disk.remove(&name)
            {
                let error = MetadataError::io("remove", self.disk.path_of(&name))(e);
                return Err(self.poison(error));
            }
            self.segments.pop();
        }
        if let Some(active) = self.segments.last_mut()
            && active.unsynced
        {
            let name = active.name.clone();
            if let Err(e) = self.disk.sync(&name) {
                let error = MetadataError::io("fsync", self.disk.path_of(&name))(e);
                return Err(self.poison(error));
            }
            if let Some(active) = self.segments.last_mut() {
                active.unsynced = false;
            }
        }
        self.segments.push(Segment::new(base));
        self.dir_unsynced = true;
        Ok(())
    }

    /// Writes the pending frames at the end of the active segment; on a
    /// failed write, cuts the file back to its last good end.
    fn write_pending(
        &mut self,
        pending: &mut Vec<u8>,
        pending_entries: &mut Vec<EntryPos>,
    ) -> Result<(), MetadataError> {
        if pending.is_empty() {
            return Ok(());
        }
        let Some(active) = self.segments.last() else {
            return Err(MetadataError::Refused("no active segment".into()));
        };
        let (name, end) = (active.name.clone(), active.end);
        let path = self.disk.path_of(&name);
        if let Err(e) = self.disk.write_at(&name, end, pending) {
            pending.clear();
            pending_entries.clear();
            let error = MetadataError::io("write", path.clone())(e);
            return Err(self.cut_back(&name, end, error));
        }
        for pos in pending_entries.iter() {
            self.term_leader.note(pos.log_id);
        }
        if let Some(active) = self.segments.last_mut() {
            active.end += pending.len() as u64;
            active.entries.append(pending_entries);
            active.unsynced = true;
        }
        pending.clear();
        Ok(())
    }

    /// Cuts `name` back to `end` after a failed write and fsyncs it; if that
    /// fails too, the log is poisoned. Returns the write's error.
    fn cut_back(&mut self, name: &str, end: u64, error: MetadataError) -> MetadataError {
        let cut = match self.disk.len(name) {
            Ok(None) => Ok(()),
            Ok(Some(_)) => self.disk.set_len(name, end).and_then(|()| self.disk.sync(name)),
            Err(e) => Err(e),
        };
        match cut {
            Ok(()) => {
                if let Some(active) = self.segments.last_mut() {
                    active.unsynced = false;
                }
                tracing::warn!(error = %error, "metadata log: a failed write was cut back");
                error
            }
            Err(e) => {
                let path = self.disk.path_of(name);
                self.poison(MetadataError::Io { op: "cut back a failed write in", path, source: e });
                error
            }
        }
    }

    /// Makes every appended entry durable; returns the last id.
    pub fn flush(&mut self) -> Result<Option<LogId>, MetadataError> {
        self.check_writable()?;
        for i in 0..self.segments.len() {
            if !self.segments[i].unsynced {
                continue;
            }
            let name = self.segments[i].name.clone();
            if let Err(e) = self.disk.sync(&name) {
                let error = MetadataError::io("fsync", self.disk.path_of(&name))(e);
                return Err(self.poison(error));
            }
            self.segments[i].unsynced = false;
        }
        if self.dir_unsynced {
            if let Err(e) = self.disk.sync_dir() {
                let error = MetadataError::io("fsync", self.disk.path_of(""))(e);
                return Err(self.poison(error));
            }
            self.dir_unsynced = false;
        }
        Ok(self.log_state().last)
    }

    /// Removes the entries from `from` on (an uncommitted suffix that
    /// conflicts with the leader's log). Durable on return.
    pub fn truncate(&mut self, from: u64) -> Result<(), MetadataError> {
        self.check_writable()?;
        if let Some(p) = self.last_purged
            && from <= p.index
        {
            return Err(MetadataError::Refused(format!("cannot truncate at {from}: entries up to {p} are purged")));
        }
        if let Some(c) = self.committed
            && from <= c.index
        {
            return Err(MetadataError::Refused(format!("cannot truncate at {from}: entries up to {c} are committed")));
        }
        if self.last_entry().is_none_or(|l| from > l.index) {
            return Ok(());
        }
        // Whole segments first, newest first, each removal made durable
        // before the next, so a crash leaves a prefix of the old log.
        while let Some(last) = self.segments.last()
            && last.base >= from
        {
            let name = last.name.clone();
            let removed = match self.disk.remove(&name) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(("remove", e)),
                _ => self.disk.sync_dir().map_err(|e| ("fsync", e)),
            };
            if let Err((op, e)) = removed {
                let error = MetadataError::io(op, self.disk.path_of(&name))(e);
                return Err(self.poison(error));
            }
            self.segments.pop();
        }
        if let Some(last) = self.segments.last()
            && let Some(n) = last.entries.iter().position(|p| p.log_id.index >= from)
        {
            let (name, offset) = (last.name.clone(), last.entries[n].offset);
            if let Err(e) = self.disk.set_len(&name, offset).and_then(|()| self.disk.sync(&name)) {
                let error = MetadataError::io("truncate", self.disk.path_of(&name))(e);
                return Err(self.poison(error));
            }
            if let Some(last) = self.segments.last_mut() {
                last.entries.truncate(n);
                last.end = offset;
                last.unsynced = false;
            }
        }
        self.term_leader = self.newest_term_leader();
        // Earlier segments were fsynced when they were rolled; with the
        // directory synced too, the log is durable as it now stands.
        if let Err(e) = self.disk.sync_dir() {
            let error = MetadataError::io("fsync", self.disk.path_of(""))(e);
            return Err(self.poison(error));
        }
        self.dir_unsynced = false;
        Ok(())
    }

    /// Forgets the entries up to `upto` (a snapshot covers them; the caller
    /// says when that is safe). `upto` may lie past the last entry (after a
    /// snapshot was installed); the next entry then follows it. The purge
    /// mark is durable before any file is deleted; whole segments go.
    pub fn purge(&mut self, upto: LogId) -> Result<(), MetadataError> {
        self.check_writable()?;
        if self.last_purged.is_some_and(|p| upto.index <= p.index) {
            return Ok(());
        }
        // One leader per term: term and index name an entry; the mark keeps
        // the log's own id when it has the entry.
        let upto = match self.log_id_at(upto.index) {
            Some(id) if id.term != upto.term => {
                return Err(MetadataError::Refused(format!("cannot purge up to {upto}: the log has {id} there")));
            }
            Some(id) => id,
            None => upto,
        };
        let bytes = frame::encode_small(&upto).map_err(|e| MetadataError::Refused(e.to_string()))?;
        if let Err(e) = write_atomically(&mut self.disk, PURGED_FILE, &bytes) {
            let error = MetadataError::io("write", self.disk.path_of(PURGED_FILE))(e);
            return Err(self.poison(error));
        }
        self.last_purged = Some(upto);
        let mut removed = false;
        while let Some(first) = self.segments.first() {
            let wholly_purged = match self.segments.get(1) {
                Some(next) => next.base.saturating_sub(1) <= upto.index,
                None => first.last().is_none_or(|l| l.index <= upto.index),
            };
            if !wholly_purged {
                break;
            }
            let name = first.name.clone();
            match self.disk.remove(&name) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    let error = MetadataError::io("remove", self.disk.path_of(&name))(e);
                    return Err(self.poison(error));
                }
                _ => {}
            }
            self.segments.remove(0);
            removed = true;
        }
        if removed && let Err(e) = self.disk.sync_dir() {
            let error = MetadataError::io("fsync", self.disk.path_of(""))(e);
            return Err(self.poison(error));
        }
        Ok(())
    }

    /// Saves the vote, durably, before the caller acts on it (grants it, or
    /// campaigns). A vote that would go back is refused.
    pub fn save_vote(&mut self, vote: &Vote) -> Result<(), MetadataError> {
        self.check_writable()?;
        if let Some(old) = self.vote
            && !old.may_be_replaced_by(vote)
        {
            return Err(MetadataError::Refused(format!("vote {vote} would replace {old}")));
        }
        let bytes = frame::encode_small(vote).map_err(|e| MetadataError::Refused(e.to_string()))?;
        if let Err(e) = write_atomically(&mut self.disk, VOTE_FILE, &bytes) {
            let error = MetadataError::io("write", self.disk.path_of(VOTE_FILE))(e);
            return Err(self.poison(error));
        }
        self.vote = Some(*vote);
        Ok(())
    }

    /// Saves the committed id, durably, after flushing the log (so the
    /// entries it names are durable before the mark is).
    pub fn save_committed(&mut self, committed: LogId) -> Result<(), MetadataError> {
        self.check_writable()?;
        if let Some(old) = self.committed
            && committed.index < old.index
        {
            return Err(MetadataError::Refused(format!("committed {committed} would go back from {old}")));
        }
        let end = self.log_state().last;
        if end.is_none_or(|e| e.index < committed.index) {
            return Err(MetadataError::Refused(format!(
                "committed {committed} is past the log's end {}",
                display_opt(end)
            )));
        }
        let committed = match self.log_id_at(committed.index) {
            Some(id) if id.term != committed.term => {
                return Err(MetadataError::Refused(format!("committed {committed} but the log has {id} there")));
            }
            Some(id) => id,
            None => committed,
        };
        if self.committed == Some(committed) {
            return Ok(());
        }
        self.flush()?;
        let bytes = frame::encode_small(&committed).map_err(|e| MetadataError::Refused(e.to_string()))?;
        if let Err(e) = write_atomically(&mut self.disk, COMMITTED_FILE, &bytes) {
            let error = MetadataError::io("write", self.disk.path_of(COMMITTED_FILE))(e);
            return Err(self.poison(error));
        }
        self.committed = Some(committed);
        Ok(())
    }
}

fn display_opt(id: Option<LogId>) -> String {
    id.map_or_else(|| "nothing".to_string(), |i| i.to_string())
}

#[cfg(test)]
mod tests;
