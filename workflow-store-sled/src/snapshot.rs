//! Private copies of a store, for opening it for inspection without writing to it
//! ([`SledStore::open_snapshot`](crate::SledStore::open_snapshot)).

use std::fs::{File, TryLockError};
use std::path::Path;

use workflow_core::StoreError;

use crate::codec::io_error;

/// Copies the store at `original` into a new temporary folder, holding the store's lock (the
/// one sled takes on its `db` file) so that no process can change it meanwhile.
pub(crate) fn copy(original: &Path) -> Result<tempfile::TempDir, StoreError> {
    let db = original.join("db");
    let empty = std::fs::read_dir(original).map_or(true, |mut entries| entries.next().is_none());
    if empty {
        return Err(StoreError::NotFound {
            what: format!("a sled store at {} (no such folder, or empty)", original.display()),
        });
    }
    // Opened for reading only: taking a lock on it changes nothing on disk. A store whose
    // data file is gone has no lock to take; opening the copy says what is wrong with it.
    let lock = match File::open(&db) {
        Ok(file) => Some(file),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_error(&format!("cannot read {}", db.display()), &e)),
    };
    if let Some(lock) = &lock {
        // As in `open_with`: a store dropped a moment ago in this process may still hold the
        // lock in sled's background threads, so wait for it briefly; another process holding
        // it still gets `InUse`, a second later.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        loop {
            match lock.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(StoreError::InUse { path: original.display().to_string() })
                }
                Err(TryLockError::Error(e)) => return Err(io_error(&format!("cannot lock {}", db.display()), &e)),
            }
        }
    }
    let copy = tempfile::Builder::new()
        .prefix("wf-snapshot-")
        .tempdir()
        .map_err(|e| io_error("cannot create a temporary folder for a copy of the store (set TMPDIR)", &e))?;
    copy_dir(original, copy.path()).map_err(|e| {
        io_error(&format!("cannot copy the store {} to {} (set TMPDIR)", original.display(), copy.path().display()), &e)
    })?;
    drop(lock);
    Ok(copy)
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            std::fs::create_dir(&target)?;
            copy_dir(&entry.path(), &target)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target)?;
        }
        // Anything else (a socket, a symlink) is not part of a sled store.
    }
    Ok(())
}

/// An error about the copy, told about the original: the copy's path is a detail the user
/// cannot act on.
pub(crate) fn about_original(e: StoreError, copy: &Path, original: &Path) -> StoreError {
    let (copy, original) = (copy.display().to_string(), original.display().to_string());
    let fix = |s: String| s.replace(&copy, &original);
    match e {
        StoreError::Corrupt { key, reason } => StoreError::Corrupt { key: fix(key), reason: fix(reason) },
        StoreError::OutdatedFormat { path, found, supported } => {
            StoreError::OutdatedFormat { path: fix(path), found, supported }
        }
        StoreError::LostWrites { path, found, expected } => StoreError::LostWrites { path: fix(path), found, expected },
        StoreError::InUse { path } => StoreError::InUse { path: fix(path) },
        StoreError::Backend { reason, retryable } => StoreError::Backend { reason: fix(reason), retryable },
        StoreError::NotFound { what } => StoreError::NotFound { what: fix(what) },
        other => other,
    }
}
