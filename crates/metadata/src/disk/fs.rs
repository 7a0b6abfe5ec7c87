//! [`Disk`] on a real directory.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::Disk;

/// A real directory. Files being written stay open between calls.
#[derive(Debug)]
pub struct FsDisk {
    dir: PathBuf,
    open: BTreeMap<String, File>,
}

impl Clone for FsDisk {
    /// Another handle on the same directory (with its own open files).
    fn clone(&self) -> FsDisk {
        FsDisk { dir: self.dir.clone(), open: BTreeMap::new() }
    }
}

impl FsDisk {
    /// The directory `dir`, created if missing.
    pub fn open(dir: &Path) -> io::Result<FsDisk> {
        fs::create_dir_all(dir)?;
        Ok(FsDisk { dir: dir.to_path_buf(), open: BTreeMap::new() })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The open handle of `name`, opened (and created, when `create`) if needed.
    fn file(&mut self, name: &str, create: bool) -> io::Result<&File> {
        if !self.open.contains_key(name) {
            let file =
                OpenOptions::new().read(true).write(true).create(create).truncate(false).open(self.dir.join(name))?;
            self.open.insert(name.to_string(), file);
        }
        self.open.get(name).ok_or_else(|| io::Error::other("file handle vanished"))
    }
}

impl Disk for FsDisk {
    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file()
                && let Ok(name) = entry.file_name().into_string()
            {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    fn len(&self, name: &str) -> io::Result<Option<u64>> {
        match fs::metadata(self.dir.join(name)) {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Err(io::Error::other("not a regular file")),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn read_at(&self, name: &str, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let file = File::open(self.dir.join(name))?;
        let mut buf = vec![0; len];
        file.read_exact_at(&mut buf, offset)?;
        Ok(buf)
    }

    fn write_at(&mut self, name: &str, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.file(name, true)?.write_all_at(bytes, offset)
    }

    fn set_len(&mut self, name: &str, len: u64) -> io::Result<()> {
        self.file(name, false)?.set_len(len)
    }

    fn sync(&mut self, name: &str) -> io::Result<()> {
        self.file(name, false)?.sync_all()
    }

    fn rename(&mut self, from: &str, to: &str) -> io::Result<()> {
        self.open.remove(from);
        self.open.remove(to);
        fs::rename(self.dir.join(from), self.dir.join(to))
    }

    fn remove(&mut self, name: &str) -> io::Result<()> {
        self.open.remove(name);
        fs::remove_file(self.dir.join(name))
    }

    fn sync_dir(&mut self) -> io::Result<()> {
        File::open(&self.dir)?.sync_all()
    }

    fn path_of(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}
