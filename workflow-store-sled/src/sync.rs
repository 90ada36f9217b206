//! Making a flushed write survive a power loss.
//!
//! sled's flush writes its log with `sync_file_range`, which neither persists file metadata
//! nor flushes the device's write cache. After each flush the committer calls
//! `fdatasync` on sled's data file and `fsync` on any new blob file (sled keeps large values
//! in files of their own, which it never syncs) and on the blob directory.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

pub(crate) struct Syncer {
    db_file: Option<File>,
    blobs: PathBuf,
    /// The blob directory's modification time when it was last scanned, if it was old enough
    /// that no later change can share it (file times are coarse).
    scanned: Option<SystemTime>,
    synced: HashSet<OsString>,
}

impl Syncer {
    pub(crate) fn new(dir: &Path) -> std::io::Result<Syncer> {
        let db_file = File::open(dir.join("db")).ok();
        // The directory entries of the files sled created must be durable too.
        File::open(dir)?.sync_all()?;
        Ok(Syncer { db_file, blobs: dir.join("blobs"), scanned: None, synced: HashSet::new() })
    }

    pub(crate) fn sync(&mut self) -> std::io::Result<()> {
        if let Some(f) = &self.db_file {
            f.sync_data()?;
        }
        self.sync_blobs()
    }

    fn sync_blobs(&mut self) -> std::io::Result<()> {
        let Ok(meta) = std::fs::metadata(&self.blobs) else { return Ok(()) };
        let mtime = meta.modified()?;
        if self.scanned == Some(mtime) {
            return Ok(());
        }
        let mut present = HashSet::new();
        let mut new = false;
        for entry in std::fs::read_dir(&self.blobs)? {
            let entry = entry?;
            let name = entry.file_name();
            if !self.synced.contains(&name) {
                // A blob deleted since the listing needs no sync.
                if let Ok(f) = File::open(entry.path()) {
                    f.sync_all()?;
                }
                new = true;
            }
            present.insert(name);
        }
        if new {
            File::open(&self.blobs)?.sync_all()?;
        }
        self.synced = present;
        // A change within the same clock tick would not move the time: trust it only once
        // it is clearly in the past.
        let settled = SystemTime::now().duration_since(mtime).is_ok_and(|age| age > Duration::from_millis(50));
        self.scanned = settled.then_some(mtime);
        Ok(())
    }
}
