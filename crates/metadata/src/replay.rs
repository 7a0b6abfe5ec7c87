//! Opening a metadata directory made of arbitrary files, for fuzzing and
//! hostile-input tests: the files are put on a [`SimDisk`] (durable, as if
//! written long ago) and the single-node store is opened on them.
//!
//! Promises checked beyond "no panic": when the open succeeds, a proposal
//! succeeds, and after a crash the store reopens with the same state (the
//! proposal included); when it fails, it fails with an error, never by
//! accepting damaged bytes as entries (the log's reads re-check every
//! entry's checksum and id).

use crate::command::MetadataCommand;
use crate::disk::SimDisk;
use crate::store::{MetadataStore, StoreOptions};

/// What [`replay_files`] saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replayed {
    /// The files were refused (the error's one line).
    Refused(String),
    /// The store opened and kept its promises.
    Opened {
        /// Entries in the log after the open (before the proposal).
        entries: usize,
    },
}

/// Opens a store on `files` (name, bytes) and checks its promises.
///
/// # Panics
/// When a promise is broken: a proposal on an open store fails, a reopen
/// fails, or the state differs after the reopen.
pub fn replay_files(files: &[(&str, &[u8])], seed: u64) -> Replayed {
    let disk = SimDisk::new(seed);
    for (name, bytes) in files {
        disk.put_durable(name, bytes);
    }
    let options = StoreOptions::default();
    let mut store = match MetadataStore::open_on(disk.clone(), 1, options) {
        Ok(store) => store,
        Err(e) => return Replayed::Refused(e.to_string()),
    };
    let entries =
        store.log().entries(..).map(|e| e.len()).unwrap_or_else(|e| panic!("an opened log cannot be read: {e}"));
    store
        .propose(MetadataCommand::AllocateProducerIdBlock { broker_id: 1 })
        .unwrap_or_else(|e| panic!("a proposal on an opened store failed: {e}"));
    let state = store.state().clone();
    drop(store);
    disk.crash();
    let reopened =
        MetadataStore::open_on(disk, 1, options).unwrap_or_else(|e| panic!("reopening after a proposal failed: {e}"));
    assert_eq!(reopened.state(), &state, "the state after a crash and reopen");
    Replayed::Opened { entries }
}
