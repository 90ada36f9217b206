//! The high-water mark: how many commits the store has made durable, kept in a small file
//! beside sled's (`high-water`), so that opening a store that lost acknowledged writes (its
//! data file deleted, truncated, replaced by an older copy, or cut short by damage that sled
//! reads as a torn tail) is refused instead of showing an older state as if it were current.
//!
//! Every commit batch also writes its number into the store (`~commits`, in the same batch
//! as the records). Once a batch is durable, the committer writes that number here, 24
//! bytes in place (magic, number, checksum). The file is written after sled's data, so it can
//! lag behind (a crash between the two) but never lead: a store holding fewer commits than
//! its mark has lost acknowledged work. The file is synced at most once a second and when the
//! store closes: after a process crash the kernel still has it; after a power loss it may lag
//! (detection is then weaker, never wrong).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// The file's name in the store's directory.
pub(crate) const FILE: &str = "high-water";

/// The key in the records tree holding the number of the last commit batch.
pub(crate) const COMMITS_KEY: &[u8] = b"~commits";

const MAGIC: &[u8; 8] = b"WFHWM\x00\x00\x01";

pub(crate) struct HighWater {
    file: File,
    last_sync: Instant,
    dirty: bool,
}

/// What the file said when the store was opened.
pub(crate) enum Found {
    /// No file (a new store, or one from before the mark existed).
    Nothing,
    /// The mark.
    Mark(u64),
    /// The file cannot be read as a mark.
    Damaged(String),
}

fn checksum(n: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in MAGIC.iter().chain(n.to_be_bytes().iter()) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn decode(bytes: &[u8]) -> Found {
    if bytes.is_empty() {
        return Found::Nothing;
    }
    if bytes.len() != 24 || &bytes[..8] != MAGIC {
        return Found::Damaged(format!("{} bytes that are not a high-water mark", bytes.len()));
    }
    let n = u64::from_be_bytes(bytes[8..16].try_into().expect("8 bytes"));
    let sum = u64::from_be_bytes(bytes[16..24].try_into().expect("8 bytes"));
    if sum != checksum(n) {
        return Found::Damaged("its checksum does not match".into());
    }
    Found::Mark(n)
}

impl HighWater {
    /// Opens (creating) the file in `dir` and reads the mark it holds.
    pub(crate) fn open(dir: &Path) -> std::io::Result<(HighWater, Found)> {
        let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(dir.join(FILE))?;
        let mut bytes = Vec::new();
        Read::by_ref(&mut file).take(1024).read_to_end(&mut bytes)?;
        Ok((HighWater { file, last_sync: Instant::now(), dirty: false }, decode(&bytes)))
    }

    /// Records that commits up to `n` are durable.
    pub(crate) fn record(&mut self, n: u64) -> std::io::Result<()> {
        let mut buf = [0u8; 24];
        buf[..8].copy_from_slice(MAGIC);
        buf[8..16].copy_from_slice(&n.to_be_bytes());
        buf[16..].copy_from_slice(&checksum(n).to_be_bytes());
        self.file.seek(SeekFrom::Start(0))?;
        self.file.write_all(&buf)?;
        self.dirty = true;
        if self.last_sync.elapsed() >= Duration::from_secs(1) {
            self.sync()?;
        }
        Ok(())
    }

    /// Makes the last mark durable.
    pub(crate) fn sync(&mut self) -> std::io::Result<()> {
        if self.dirty {
            self.file.sync_data()?;
            self.dirty = false;
        }
        self.last_sync = Instant::now();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_round_trip_and_damage_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let (mut hw, found) = HighWater::open(dir.path()).unwrap();
        assert!(matches!(found, Found::Nothing));
        hw.record(41).unwrap();
        hw.record(42).unwrap();
        hw.sync().unwrap();
        drop(hw);
        assert!(matches!(HighWater::open(dir.path()).unwrap().1, Found::Mark(42)));
        let mut bytes = std::fs::read(dir.path().join(FILE)).unwrap();
        bytes[12] ^= 1;
        std::fs::write(dir.path().join(FILE), &bytes).unwrap();
        assert!(matches!(HighWater::open(dir.path()).unwrap().1, Found::Damaged(_)));
        std::fs::write(dir.path().join(FILE), b"x").unwrap();
        assert!(matches!(HighWater::open(dir.path()).unwrap().1, Found::Damaged(_)));
    }
}
