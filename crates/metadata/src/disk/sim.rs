//! A simulated disk for seeded crash tests: files live in memory, each with
//! the bytes the "page cache" holds and the bytes that reached the "platter"
//! (the last fsync). [`SimDisk::crash`] keeps only what is durable:
//! - each file falls back to its last synced bytes, or (chosen by the
//!   seeded RNG) to a torn version of what was written since: a prefix cut
//!   at a random byte, sometimes with its tail zeroed (blocks allocated but
//!   never written);
//! - the directory falls back to its state at the last directory fsync plus
//!   a random prefix of the creations, renames and removals made since
//!   (a journaled filesystem persists them in order).
//!
//! Faults can be injected: any mutating call fails at a chosen rate
//! ([`FaultPlan`]; a failing write first writes a random prefix of its
//! bytes), and [`SimDisk::lose_power_after`] makes every mutating call fail
//! from the n-th on, the way a process sees a dying disk before the crash.
//! Everything is deterministic for a seed.

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use super::Disk;

/// A small seeded random generator (SplitMix64): deterministic, no dependency.
#[derive(Debug, Clone)]
pub struct SimRng(u64);

impl SimRng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> SimRng {
        SimRng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// A number in `0..n` as `usize`.
    pub fn below_usize(&mut self, n: usize) -> usize {
        // `below(n) < n`, so it fits.
        usize::try_from(self.below(n as u64)).unwrap_or(0)
    }

    /// True with probability `per_mille` / 1000.
    pub fn chance(&mut self, per_mille: u32) -> bool {
        self.below(1000) < u64::from(per_mille)
    }
}

/// How often each kind of mutating call fails, per mille.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultPlan {
    /// `write_at` (after writing a random prefix).
    pub write_per_mille: u32,
    /// `sync`.
    pub sync_per_mille: u32,
    /// `set_len`.
    pub set_len_per_mille: u32,
    /// `rename`.
    pub rename_per_mille: u32,
    /// `remove`.
    pub remove_per_mille: u32,
    /// `sync_dir`.
    pub sync_dir_per_mille: u32,
}

impl FaultPlan {
    /// No faults.
    pub fn none() -> FaultPlan {
        FaultPlan::default()
    }

    /// Every kind of call fails at the same rate.
    pub fn uniform(per_mille: u32) -> FaultPlan {
        FaultPlan {
            write_per_mille: per_mille,
            sync_per_mille: per_mille,
            set_len_per_mille: per_mille,
            rename_per_mille: per_mille,
            remove_per_mille: per_mille,
            sync_dir_per_mille: per_mille,
        }
    }
}

/// Counters, for tests that want to know a scenario did something.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Writes that succeeded.
    pub writes: u64,
    /// File fsyncs that succeeded.
    pub syncs: u64,
    /// Calls failed on purpose.
    pub injected_failures: u64,
    /// Crashes.
    pub crashes: u64,
    /// Files that came back torn from a crash.
    pub torn_files: u64,
}

#[derive(Debug, Clone, Default)]
struct SimFile {
    current: Vec<u8>,
    synced: Vec<u8>,
}

#[derive(Debug, Clone)]
enum DirOp {
    Link { name: String, inode: u64 },
    Rename { from: String, to: String },
    Unlink { name: String },
}

#[derive(Debug)]
struct SimState {
    rng: SimRng,
    faults: FaultPlan,
    ops_until_power_loss: Option<u64>,
    inodes: BTreeMap<u64, SimFile>,
    next_inode: u64,
    names: BTreeMap<String, u64>,
    durable_names: BTreeMap<String, u64>,
    dir_ops: Vec<DirOp>,
    stats: SimStats,
}

/// The simulated disk. Clones share the same files (a handle for the store
/// and one for the test driving crashes).
#[derive(Debug, Clone)]
pub struct SimDisk {
    inner: Arc<Mutex<SimState>>,
}

fn not_found(name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("sim: no file {name}"))
}

fn injected(what: &str) -> io::Error {
    io::Error::other(format!("sim: injected {what} failure"))
}

impl SimState {
    /// Whether this mutating call fails: power already lost, or a fault drawn.
    fn fails(&mut self, per_mille: u32) -> bool {
        if let Some(left) = self.ops_until_power_loss.as_mut() {
            if *left == 0 {
                self.stats.injected_failures += 1;
                return true;
            }
            *left -= 1;
        }
        if per_mille > 0 && self.rng.chance(per_mille) {
            self.stats.injected_failures += 1;
            return true;
        }
        false
    }

    fn inode(&self, name: &str) -> io::Result<u64> {
        self.names.get(name).copied().ok_or_else(|| not_found(name))
    }

    fn file_mut(&mut self, name: &str) -> io::Result<&mut SimFile> {
        let inode = self.inode(name)?;
        self.inodes.get_mut(&inode).ok_or_else(|| not_found(name))
    }

    fn create(&mut self, name: &str) -> u64 {
        if let Some(&inode) = self.names.get(name) {
            return inode;
        }
        let inode = self.next_inode;
        self.next_inode += 1;
        self.inodes.insert(inode, SimFile::default());
        self.names.insert(name.to_string(), inode);
        self.dir_ops.push(DirOp::Link { name: name.to_string(), inode });
        inode
    }

    fn write(&mut self, inode: u64, offset: usize, bytes: &[u8]) {
        if let Some(file) = self.inodes.get_mut(&inode) {
            let end = offset + bytes.len();
            if file.current.len() < end {
                file.current.resize(end, 0);
            }
            file.current[offset..end].copy_from_slice(bytes);
        }
    }

    /// What survives of one file.
    fn resolve(&mut self, file: &SimFile) -> Vec<u8> {
        if file.current == file.synced {
            return file.synced.clone();
        }
        let common = file.synced.iter().zip(&file.current).take_while(|(a, b)| a == b).count();
        match self.rng.below(4) {
            0 | 1 => file.synced.clone(),
            choice => {
                self.stats.torn_files += 1;
                let keep = common + self.rng.below_usize(file.current.len() - common + 1);
                let mut bytes = file.current[..keep].to_vec();
                if choice == 3 && keep > common {
                    let zero_from = common + self.rng.below_usize(keep - common);
                    bytes[zero_from..].fill(0);
                }
                bytes
            }
        }
    }

    fn crash(&mut self) {
        let persisted = self.rng.below_usize(self.dir_ops.len() + 1);
        let mut names = self.durable_names.clone();
        for op in self.dir_ops.drain(..).take(persisted) {
            match op {
                DirOp::Link { name, inode } => {
                    names.insert(name, inode);
                }
                DirOp::Rename { from, to } => {
                    if let Some(inode) = names.remove(&from) {
                        names.insert(to, inode);
                    }
                }
                DirOp::Unlink { name } => {
                    names.remove(&name);
                }
            }
        }
        let inodes = std::mem::take(&mut self.inodes);
        for inode in names.values() {
            if let Some(file) = inodes.get(inode)
                && !self.inodes.contains_key(inode)
            {
                let bytes = self.resolve(file);
                self.inodes.insert(*inode, SimFile { current: bytes.clone(), synced: bytes });
            }
        }
        self.names = names.clone();
        self.durable_names = names;
        self.ops_until_power_loss = None;
        self.stats.crashes += 1;
    }
}

impl SimDisk {
    /// An empty disk whose randomness comes from `seed`.
    pub fn new(seed: u64) -> SimDisk {
        SimDisk {
            inner: Arc::new(Mutex::new(SimState {
                rng: SimRng::new(seed),
                faults: FaultPlan::none(),
                ops_until_power_loss: None,
                inodes: BTreeMap::new(),
                next_inode: 1,
                names: BTreeMap::new(),
                durable_names: BTreeMap::new(),
                dir_ops: Vec::new(),
                stats: SimStats::default(),
            })),
        }
    }

    fn state(&self) -> MutexGuard<'_, SimState> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the fault rates.
    pub fn set_faults(&self, faults: FaultPlan) {
        self.state().faults = faults;
    }

    /// Every mutating call after the next `ops` fails until [`SimDisk::crash`].
    pub fn lose_power_after(&self, ops: u64) {
        self.state().ops_until_power_loss = Some(ops);
    }

    /// The machine loses power and comes back: only durable bytes and names stay.
    pub fn crash(&self) {
        self.state().crash();
    }

    /// Counters so far.
    pub fn stats(&self) -> SimStats {
        self.state().stats
    }

    /// The bytes a file holds now (page cache view).
    pub fn file_bytes(&self, name: &str) -> Option<Vec<u8>> {
        let st = self.state();
        let inode = st.names.get(name)?;
        st.inodes.get(inode).map(|f| f.current.clone())
    }

    /// Writes a whole file and makes it and its name durable (test setup).
    pub fn put_durable(&self, name: &str, bytes: &[u8]) {
        let mut st = self.state();
        let inode = st.create(name);
        if let Some(file) = st.inodes.get_mut(&inode) {
            file.current = bytes.to_vec();
            file.synced = bytes.to_vec();
        }
        st.durable_names = st.names.clone();
        st.dir_ops.clear();
    }
}

impl Disk for SimDisk {
    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.state().names.keys().cloned().collect())
    }

    fn len(&self, name: &str) -> io::Result<Option<u64>> {
        let st = self.state();
        Ok(st.names.get(name).and_then(|i| st.inodes.get(i)).map(|f| f.current.len() as u64))
    }

    fn read_at(&self, name: &str, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let st = self.state();
        let inode = st.inode(name)?;
        let file = st.inodes.get(&inode).ok_or_else(|| not_found(name))?;
        let start = usize::try_from(offset).map_err(|_| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        let end = start.checked_add(len).ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        file.current.get(start..end).map(<[u8]>::to_vec).ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))
    }

    fn write_at(&mut self, name: &str, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let mut st = self.state();
        let offset = usize::try_from(offset).map_err(|_| io::Error::other("sim: offset too large"))?;
        let per_mille = st.faults.write_per_mille;
        let fail = st.fails(per_mille);
        let inode = st.create(name);
        if fail {
            let written = st.rng.below_usize(bytes.len() + 1);
            st.write(inode, offset, &bytes[..written]);
            return Err(injected("write"));
        }
        st.write(inode, offset, bytes);
        st.stats.writes += 1;
        Ok(())
    }

    fn set_len(&mut self, name: &str, len: u64) -> io::Result<()> {
        let mut st = self.state();
        let per_mille = st.faults.set_len_per_mille;
        if st.fails(per_mille) {
            return Err(injected("set_len"));
        }
        let len = usize::try_from(len).map_err(|_| io::Error::other("sim: length too large"))?;
        st.file_mut(name)?.current.resize(len, 0);
        Ok(())
    }

    fn sync(&mut self, name: &str) -> io::Result<()> {
        let mut st = self.state();
        let per_mille = st.faults.sync_per_mille;
        if st.fails(per_mille) {
            return Err(injected("fsync"));
        }
        let file = st.file_mut(name)?;
        file.synced = file.current.clone();
        st.stats.syncs += 1;
        Ok(())
    }

    fn rename(&mut self, from: &str, to: &str) -> io::Result<()> {
        let mut st = self.state();
        let per_mille = st.faults.rename_per_mille;
        if st.fails(per_mille) {
            return Err(injected("rename"));
        }
        let inode = st.inode(from)?;
        st.names.remove(from);
        st.names.insert(to.to_string(), inode);
        st.dir_ops.push(DirOp::Rename { from: from.to_string(), to: to.to_string() });
        Ok(())
    }

    fn remove(&mut self, name: &str) -> io::Result<()> {
        let mut st = self.state();
        let per_mille = st.faults.remove_per_mille;
        if st.fails(per_mille) {
            return Err(injected("remove"));
        }
        st.inode(name)?;
        st.names.remove(name);
        st.dir_ops.push(DirOp::Unlink { name: name.to_string() });
        Ok(())
    }

    fn sync_dir(&mut self) -> io::Result<()> {
        let mut st = self.state();
        let per_mille = st.faults.sync_dir_per_mille;
        if st.fails(per_mille) {
            return Err(injected("directory fsync"));
        }
        st.durable_names = st.names.clone();
        st.dir_ops.clear();
        Ok(())
    }

    fn path_of(&self, name: &str) -> PathBuf {
        PathBuf::from(format!("sim:/{name}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crash_keeps_synced_bytes_and_names() {
        let mut disk = SimDisk::new(1);
        disk.write_at("a", 0, b"hello").expect("write");
        disk.sync("a").expect("sync");
        disk.sync_dir().expect("sync dir");
        disk.write_at("b", 0, b"never synced").expect("write");
        disk.crash();
        assert_eq!(disk.file_bytes("a").as_deref(), Some(&b"hello"[..]));
        // `b`'s name may or may not have persisted; its bytes were never
        // synced, so what is left is a torn prefix (maybe zeroed), if anything.
        if let Some(b) = disk.file_bytes("b") {
            assert!(b.len() <= 12);
            assert!(b.iter().zip(b"never synced").all(|(got, wrote)| got == wrote || *got == 0), "{b:?}");
        }
    }

    #[test]
    fn unsynced_appends_survive_only_as_a_torn_prefix() {
        for seed in 0..200 {
            let mut disk = SimDisk::new(seed);
            disk.write_at("f", 0, b"durable-").expect("write");
            disk.sync("f").expect("sync");
            disk.sync_dir().expect("sync dir");
            disk.write_at("f", 8, b"volatile").expect("write");
            disk.crash();
            let bytes = disk.file_bytes("f").expect("file stays");
            assert!(bytes.starts_with(b"durable-"), "seed {seed}: {bytes:?}");
            let tail = &bytes[8..];
            let zeros_from = tail.iter().position(|b| *b == 0).unwrap_or(tail.len());
            assert!(b"volatile".starts_with(&tail[..zeros_from]), "seed {seed}: tail {tail:?}");
            assert!(tail[zeros_from..].iter().all(|b| *b == 0), "seed {seed}: tail {tail:?}");
        }
    }

    #[test]
    fn power_loss_fails_every_later_call() {
        let mut disk = SimDisk::new(3);
        disk.lose_power_after(1);
        disk.write_at("f", 0, b"x").expect("first call passes");
        assert!(disk.sync("f").is_err());
        assert!(disk.write_at("f", 1, b"y").is_err());
        disk.crash();
        assert!(disk.write_at("f", 0, b"z").is_ok(), "the machine is back");
    }
}
