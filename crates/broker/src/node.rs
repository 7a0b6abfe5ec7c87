//! This node's data directory: the exclusive lock, the clean-shutdown
//! marker, `meta.properties`, the partition directories' names, and the
//! removal of directories no topic owns.
//!
//! ```text
//! <data>/
//!   .lock                       held (flock) while a broker uses the directory
//!   .tributary_cleanshutdown    present only between a clean stop and the next start
//!   meta.properties             node.id and cluster.id (Kafka's format)
//!   initial-controllers.properties   the first voters, written by `storage format --standalone`
//!                               or `--initial-controllers` (dynamic voters only)
//!   __cluster_metadata/         the metadata log
//!   <topic>-<partition>/        one partition's log (crates/log)
//!   <topic>-<partition>.<id>-delete/   a deleted partition, removed in the background
//! ```

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

/// File whose presence at start means the last stop was clean.
const CLEAN_SHUTDOWN_FILE: &str = ".tributary_cleanshutdown";
/// The first voters of a dynamic quorum, as `storage format` wrote them.
const INITIAL_CONTROLLERS_FILE: &str = "initial-controllers.properties";
/// Directory of the metadata log inside the data directory.
pub(crate) const METADATA_DIR: &str = "__cluster_metadata";

/// Why the data directory cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("cannot use data directory {path}: {reason}")]
pub struct DataDirError {
    /// The directory.
    pub path: PathBuf,
    /// Why, with what to do.
    pub reason: String,
}

/// The data directory, locked for this process.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    clean_start: bool,
    _lock: File,
}

impl DataDir {
    /// Creates (if needed) and locks `path`; consumes the clean-shutdown
    /// marker, remembering whether the last stop was clean.
    pub fn open(path: &Path) -> Result<DataDir, DataDirError> {
        let error = |reason: String| DataDirError { path: path.to_path_buf(), reason };
        fs::create_dir_all(path).map_err(|e| error(format!("{e}; check the path and its permissions")))?;
        let lock = File::create(path.join(".lock")).map_err(|e| error(e.to_string()))?;
        if lock.try_lock().is_err() {
            return Err(error(
                "another Tributary process is using it; stop that process or pick another --data-dir".to_string(),
            ));
        }
        let marker = path.join(CLEAN_SHUTDOWN_FILE);
        let clean_start = marker.exists();
        if clean_start {
            fs::remove_file(&marker).map_err(|e| error(e.to_string()))?;
            File::open(path).and_then(|d| d.sync_all()).map_err(|e| error(e.to_string()))?;
        }
        Ok(DataDir { path: path.to_path_buf(), clean_start, _lock: lock })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the previous stop was clean (logs need no validation).
    pub fn clean_start(&self) -> bool {
        self.clean_start
    }

    /// Where the metadata log lives.
    pub fn metadata_dir(&self) -> PathBuf {
        self.path.join(METADATA_DIR)
    }

    /// `<data>/<topic>-<partition>`, as Kafka names partition directories.
    pub fn partition_dir(&self, topic: &str, partition: i32) -> PathBuf {
        partition_dir(&self.path, topic, partition)
    }

    /// Reads `meta.properties`, if the directory has one.
    pub fn read_meta_properties(&self) -> std::io::Result<Option<MetaProperties>> {
        MetaProperties::read(&self.path)
    }

    /// Writes `meta.properties` once (node id and cluster id), as Kafka's storage tool does.
    pub fn write_meta_properties(&self, node_id: i32, cluster_id: &str) -> std::io::Result<()> {
        let path = self.path.join("meta.properties");
        if path.exists() {
            return Ok(());
        }
        let text = format!("#\n#Tributary node metadata\nversion=1\nnode.id={node_id}\ncluster.id={cluster_id}\n");
        let tmp = self.path.join("meta.properties.tmp");
        fs::write(&tmp, text)?;
        File::open(&tmp)?.sync_all()?;
        fs::rename(tmp, path)
    }

    /// The first voter set `storage format --standalone` or
    /// `--initial-controllers` wrote (`None`: not formatted that way).
    pub fn read_initial_controllers(&self) -> Result<Option<BTreeMap<i32, String>>, String> {
        let path = self.path.join(INITIAL_CONTROLLERS_FILE);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let value = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("initial.controllers="))
            .ok_or_else(|| format!("{} has no initial.controllers line", path.display()))?;
        let voters = tributary_quorum::config::parse_voters(value).map_err(|e| {
            format!("{}: {}", path.display(), e.0.replace("controller.quorum.voters", "initial.controllers"))
        })?;
        Ok(Some(voters.into_iter().map(|(id, e)| (id, e.address())).collect()))
    }

    /// Writes the first voter set (once, durably).
    pub fn write_initial_controllers(&self, voters: &BTreeMap<i32, String>) -> std::io::Result<()> {
        let list: Vec<String> = voters.iter().map(|(id, address)| format!("{id}@{address}")).collect();
        let text = format!(
            "#\n#The metadata quorum's first voters (storage format); read when the metadata log is empty\ninitial.controllers={}\n",
            list.join(",")
        );
        let tmp = self.path.join(format!("{INITIAL_CONTROLLERS_FILE}.tmp"));
        fs::write(&tmp, text)?;
        File::open(&tmp)?.sync_all()?;
        fs::rename(tmp, self.path.join(INITIAL_CONTROLLERS_FILE))?;
        self.sync()
    }

    /// Fsyncs the directory itself (after creating or renaming entries).
    pub fn sync(&self) -> std::io::Result<()> {
        File::open(&self.path).and_then(|d| d.sync_all())
    }

    /// Leaves the clean-shutdown marker (every log was closed cleanly).
    pub fn mark_clean_shutdown(&self) -> std::io::Result<()> {
        File::create(self.path.join(CLEAN_SHUTDOWN_FILE)).and_then(|f| f.sync_all())?;
        self.sync()
    }

    /// Removes partition directories no topic owns (a delete interrupted by a
    /// crash) and leftovers marked `-delete`, in the background. `owned`
    /// says whether a `<topic>-<partition>` directory belongs to a topic.
    pub fn remove_stray_partition_dirs(&self, owned: impl Fn(&str, i32) -> bool) {
        let Ok(entries) = fs::read_dir(&self.path) else {
            return;
        };
        let mut doomed = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == METADATA_DIR || name.starts_with('.') {
                continue;
            }
            // Only what looks like a partition directory (`<topic>-<n>`, or a
            // `...-delete` leftover) is ours to remove: anything else (`logs/`
            // of `tributary start`, a user's own folder) is left alone.
            let partition = name.rsplit_once('-').and_then(|(topic, p)| p.parse::<i32>().ok().map(|p| (topic, p)));
            if partition.is_none() && !name.ends_with("-delete") {
                continue;
            }
            if !partition.is_some_and(|(topic, p)| owned(topic, p)) {
                tracing::info!(dir = %path.display(), "removing a partition directory no topic owns");
                doomed.push(path);
            }
        }
        spawn_dir_removal(doomed);
    }
}

/// What `meta.properties` says (Kafka's format: `node.id`, `cluster.id`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetaProperties {
    /// `node.id`.
    pub node_id: Option<i32>,
    /// `cluster.id`.
    pub cluster_id: Option<String>,
}

impl MetaProperties {
    /// Reads `<dir>/meta.properties`; `None` when there is none.
    pub fn read(dir: &Path) -> std::io::Result<Option<MetaProperties>> {
        let text = match fs::read_to_string(dir.join("meta.properties")) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut meta = MetaProperties::default();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            match line.split_once('=') {
                Some(("node.id", v)) => {
                    meta.node_id = Some(v.trim().parse().map_err(|_| {
                        std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            format!("meta.properties: node.id={v} is not a number"),
                        )
                    })?)
                }
                Some(("cluster.id", v)) if !v.trim().is_empty() => meta.cluster_id = Some(v.trim().to_string()),
                _ => {}
            }
        }
        Ok(Some(meta))
    }
}

/// A new cluster id: 16 random bytes, base64url without padding (22 characters), as Kafka's `Uuid`.
/// Never one that starts with `-` (as Kafka's `Uuid.randomUuid`), which a command line would
/// take for an option: `--cluster-id $(tributary storage random-uuid)` must always work.
pub fn random_cluster_id() -> String {
    loop {
        let id = tributary_types::base64_url_no_pad(uuid::Uuid::new_v4().as_bytes());
        if !id.starts_with('-') {
            return id;
        }
    }
}

/// Whether `id` is a cluster id Kafka accepts (16 bytes, base64url, 22 characters).
pub fn valid_cluster_id(id: &str) -> bool {
    id.len() == 22 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `<data>/<topic>-<partition>`, as Kafka names partition directories.
pub fn partition_dir(data_dir: &Path, topic: &str, partition: i32) -> PathBuf {
    data_dir.join(format!("{topic}-{partition}"))
}

/// Removes directories on a thread of its own.
pub(crate) fn spawn_dir_removal(dirs: Vec<PathBuf>) {
    if dirs.is_empty() {
        return;
    }
    let spawned = std::thread::Builder::new().name("delete-dirs".to_string()).spawn(move || {
        for dir in dirs {
            if let Err(e) = fs::remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot remove directory");
            }
        }
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the directory removal thread");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_locked_directory_is_refused_and_the_marker_is_consumed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = DataDir::open(dir.path()).expect("open");
        assert!(!first.clean_start());
        let err = DataDir::open(dir.path()).expect_err("locked");
        assert!(err.reason.contains("another Tributary process"), "{err}");
        first.mark_clean_shutdown().expect("marker");
        drop(first);
        let second = DataDir::open(dir.path()).expect("reopen");
        assert!(second.clean_start());
        drop(second);
        assert!(!DataDir::open(dir.path()).expect("reopen").clean_start(), "the marker is used once");
    }

    #[test]
    fn random_cluster_ids_are_valid_and_never_look_like_an_option() {
        // One id in 64 would start with '-' if nothing prevented it.
        for _ in 0..20_000 {
            let id = random_cluster_id();
            assert!(valid_cluster_id(&id), "{id}");
            assert!(!id.starts_with('-'), "{id}");
        }
    }
}
