//! Durable storage for one replica: an append-only log of ordered requests plus CSV
//! snapshots of the chat state, in one data folder.
//!
//! ```text
//! DATA/log-00000000000000000001.qlog   segment whose first record has height 1
//! DATA/snap-00000000000000010000/      snapshot after height 10000 (see snapshot.rs)
//! DATA/snap-00000000000000020000.tmp/  a snapshot being written (removed on start)
//! ```
//! Writing a snapshot: sync the log, write the folder as `.tmp` with every file synced,
//! rename it, sync the data folder, start a new segment, then delete the older segments and
//! snapshots. A crash at any point leaves either the old snapshot and its log or the new one.
//!
//! Opening: load the newest snapshot (and check its digest), read the segments, cut a torn
//! tail off the last one, refuse to start on corruption anywhere else, and hand back the
//! entries after the snapshot for the caller to replay.
//!
//! After any failed write or fsync the storage refuses all further work: the kernel may have
//! dropped the data, and only a restart (which re-reads what is really on disk) is safe.

mod fs;
mod log;
mod memfs;
mod image;
pub mod proofs;
pub mod inspect;
pub mod version;
mod replica_store;
pub mod modes;
pub mod pidlock;
pub mod snapshot;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use fs::{Fs, PLANTED_SKIP_SYNC, RealFs, WriteFile};
pub use log::{LogEntry, PAYLOAD_MAX};
pub use memfs::MemFs;
pub use image::image_of;
pub use replica_store::{DAMAGED, ImageWriter, OnDamage, Opened, ReplicaStore, WrittenImage};

use crate::chat::ChatState;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error(
        "{path}: corrupt log record at byte offset {offset} ({reason}); refusing to start rather than drop \
         data: restore the folder from a backup or recover the replica with reset.sh"
    )]
    Corrupt { path: String, offset: usize, reason: String },
    #[error("{path}: the log jumps from height {expected} to {found}; refusing to start")]
    Gap { path: String, expected: u64, found: u64 },
    #[error("{path}, line {line}: {reason}")]
    Snapshot { path: String, line: u64, reason: String },
    #[error("{path}: snapshot digest mismatch (meta.csv says {expected}, the files give {found})")]
    Digest { path: String, expected: String, found: String },
    #[error(
        "state image at height {height} hashes to {ours}, but 3 replicas signed {certified}: this replica's state \
         diverged; stop it and recover it with reset.sh"
    )]
    Diverged { height: u64, ours: String, certified: String },
    #[error("storage failed earlier ({0}); restart the replica so it recovers from what is on disk")]
    Failed(String),
}

impl StorageError {
    /// What only a recovery (`reset.sh`) repairs: its text says so.
    pub fn needs_recovery(&self) -> bool {
        matches!(self, StorageError::Corrupt { .. } | StorageError::Diverged { .. })
    }

    /// Out of file descriptors (the process's or the system's): a shortage at an open, not a
    /// failed write, so nothing already written is in doubt. The steps that can meet it
    /// before changing anything (starting a state image) skip their work instead of
    /// poisoning the store.
    pub fn is_descriptor_shortage(&self) -> bool {
        matches!(self, StorageError::Io { source, .. } if matches!(source.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)))
    }
}

/// What `Storage::open` found on disk.
pub struct Recovered {
    /// The state of the newest snapshot (empty when there is none), digest checked.
    pub state: ChatState,
    /// Log entries after the snapshot, in height order, for the caller to replay.
    pub tail: Vec<LogEntry>,
    /// A torn tail that was cut off: (segment, bytes before, bytes after).
    pub truncated: Option<(PathBuf, usize, usize)>,
}

pub struct Storage {
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    log: log::LogWriter,
    snapshot_height: u64,
    /// Height of the last record appended (durable or not).
    last_height: u64,
    /// Records appended since the last snapshot; snapshots are due by this count.
    tail_records: u64,
    /// Set by the first failed write or fsync; every later call fails with it.
    failed: Option<String>,
    /// Minimum records between snapshots.
    snapshot_every: u64,
}

/// Maps an I/O error to one that names the file.
pub(crate) fn io_err(path: &Path) -> impl Fn(std::io::Error) -> StorageError + use<> {
    let path = path.display().to_string();
    move |source| StorageError::Io { path: path.clone(), source }
}

fn segment_name(first_height: u64) -> String {
    format!("log-{first_height:020}.qlog")
}

pub(crate) fn snapshot_name(height: u64) -> String {
    format!("snap-{height:020}")
}

pub(crate) fn parse_height(name: &str, prefix: &str, suffix: &str) -> Option<u64> {
    name.strip_prefix(prefix)?.strip_suffix(suffix)?.parse().ok()
}

pub(crate) fn read_all(fs: &dyn Fs, path: &Path) -> Result<Vec<u8>, StorageError> {
    let mut data = Vec::new();
    fs.open_read(path).and_then(|mut f| std::io::Read::read_to_end(&mut f, &mut data)).map_err(io_err(path))?;
    Ok(data)
}

/// One log segment as read: the whole records before any damage, the damage (if any), and
/// the torn tail cut off (if any).
pub(crate) struct Segment {
    pub entries: Vec<LogEntry>,
    pub damage: Option<StorageError>,
    /// When a torn tail was cut: (bytes before, bytes after).
    pub cut: Option<(usize, usize)>,
}

/// Reads one log segment. A torn tail (a crash mid-write) is cut off, durably, only in the
/// `last` segment: in any other it is damage, since a segment is synced before the next one
/// starts. Damage is returned with the records before it, for the caller to refuse or
/// repair.
pub(crate) fn read_segment(fs: &dyn Fs, path: &Path, last: bool) -> Result<Segment, StorageError> {
    let data = read_all(fs, path)?;
    let corrupt = |offset, reason| Some(StorageError::Corrupt { path: path.display().to_string(), offset, reason });
    Ok(match log::scan(&data) {
        Err(c) => {
            let entries = log::scan(&data[..c.offset]).map(|s| s.entries).unwrap_or_default();
            Segment { entries, damage: corrupt(c.offset, c.reason), cut: None }
        }
        Ok(scan) if scan.valid_len == data.len() => Segment { entries: scan.entries, damage: None, cut: None },
        Ok(scan) if !last => {
            let damage = corrupt(scan.valid_len, "torn record in a segment that later ones follow".into());
            Segment { entries: scan.entries, damage, cut: None }
        }
        Ok(scan) => {
            fs.truncate(path, scan.valid_len as u64).map_err(io_err(path))?;
            Segment { entries: scan.entries, damage: None, cut: Some((data.len(), scan.valid_len)) }
        }
    })
}

impl Storage {
    pub fn open(fs: Arc<dyn Fs>, dir: &Path, snapshot_every: u64) -> Result<(Storage, Recovered), StorageError> {
        let io = io_err;
        fs.create_dir_all(dir).map_err(io(dir))?;
        let names = fs.list(dir).map_err(io(dir))?;
        for name in names.iter().filter(|n| n.starts_with("snap-") && n.ends_with(".tmp")) {
            fs.remove_dir_all(&dir.join(name)).map_err(io(&dir.join(name)))?;
        }
        let snapshot_height = names.iter().filter_map(|n| parse_height(n, "snap-", "")).max();
        let state = match snapshot_height {
            Some(h) => snapshot::load(fs.as_ref(), &dir.join(snapshot_name(h)))?,
            None => ChatState::new(),
        };
        let snapshot_height = snapshot_height.unwrap_or(0);
        if state.height() != snapshot_height {
            return Err(StorageError::Snapshot {
                path: dir.join(snapshot_name(snapshot_height)).join("meta.csv").display().to_string(),
                line: 0,
                reason: format!(
                    "the folder is named for height {snapshot_height} but meta.csv says {}: refusing to start",
                    state.height()
                ),
            });
        }

        let mut segments: Vec<u64> = names.iter().filter_map(|n| parse_height(n, "log-", ".qlog")).collect();
        segments.sort_unstable();
        let mut tail = Vec::new();
        let mut truncated = None;
        let mut expected = snapshot_height + 1;
        for (i, first) in segments.iter().enumerate() {
            let path = dir.join(segment_name(*first));
            let Segment { entries, damage, cut } = read_segment(fs.as_ref(), &path, i + 1 == segments.len())?;
            if let Some(e) = damage {
                return Err(e);
            }
            if let Some((before, after)) = cut {
                truncated = Some((path.clone(), before, after));
            }
            for entry in entries.into_iter().filter(|e| e.height > snapshot_height) {
                if entry.height != expected {
                    return Err(StorageError::Gap { path: path.display().to_string(), expected, found: entry.height });
                }
                expected += 1;
                tail.push(entry);
            }
        }
        let segment = dir.join(segment_name(segments.last().copied().unwrap_or(snapshot_height + 1)));
        let file = fs.open_append(&segment).map_err(io(&segment))?;
        fs.sync_dir(dir).map_err(io(dir))?;
        let storage = Storage {
            fs,
            dir: dir.to_path_buf(),
            log: log::LogWriter::new(file),
            snapshot_height,
            last_height: expected - 1,
            tail_records: tail.len() as u64,
            failed: None,
            snapshot_every: snapshot_every.max(1),
        };
        Ok((storage, Recovered { state, tail, truncated }))
    }

    fn check(&self) -> Result<(), StorageError> {
        match &self.failed {
            Some(reason) => Err(StorageError::Failed(reason.clone())),
            None => Ok(()),
        }
    }

    /// Buffers one record; it is durable after the next successful `sync`.
    pub fn append(&mut self, entry: &LogEntry) -> Result<(), StorageError> {
        self.check()?;
        assert_eq!(entry.height, self.last_height + 1, "log heights must be contiguous");
        self.log.append(entry);
        self.last_height = entry.height;
        self.tail_records += 1;
        Ok(())
    }

    /// Writes and fsyncs everything appended. On failure the storage is unusable until the
    /// replica restarts (never retry an fsync: the failed pages may already be dropped).
    pub fn sync(&mut self) -> Result<(), StorageError> {
        self.check()?;
        if let Err(e) = self.log.sync() {
            let reason = format!("log write or fsync failed: {e}");
            self.failed = Some(reason.clone());
            return Err(StorageError::Failed(reason));
        }
        Ok(())
    }

    pub fn last_height(&self) -> u64 {
        self.last_height
    }

    pub fn snapshot_height(&self) -> u64 {
        self.snapshot_height
    }

    /// Due once the log since the last snapshot is long compared with the state, so the
    /// time spent writing snapshots stays a fixed share of the time spent applying.
    pub fn snapshot_due(&self, state: &ChatState) -> bool {
        self.tail_records >= self.snapshot_every.max(state.message_count() / 4)
    }

    /// Writes a snapshot of `state` (which must include every appended record), then drops
    /// the log and snapshots it replaces.
    pub fn write_snapshot(&mut self, state: &ChatState) -> Result<(), StorageError> {
        self.sync()?;
        assert_eq!(state.height(), self.last_height, "a snapshot must cover exactly the log");
        let result = self.write_snapshot_files(state);
        if let Err(e) = &result {
            self.failed = Some(format!("snapshot failed: {e}"));
        }
        result
    }

    fn write_snapshot_files(&mut self, state: &ChatState) -> Result<(), StorageError> {
        let height = state.height();
        if height == self.snapshot_height {
            return Ok(());
        }
        let io = io_err;
        let (fs, dir) = (self.fs.as_ref(), self.dir.as_path());
        let final_dir = dir.join(snapshot_name(height));
        let tmp = dir.join(format!("{}.tmp", snapshot_name(height)));
        let _ = fs.remove_dir_all(&tmp);
        fs.create_dir_all(&tmp).map_err(io(&tmp))?;
        snapshot::write(fs, &tmp, state)?;
        fs.sync_dir(&tmp).map_err(io(&tmp))?;
        fs.rename(&tmp, &final_dir).map_err(io(&tmp))?;
        fs.sync_dir(dir).map_err(io(dir))?;

        let segment = dir.join(segment_name(height + 1));
        self.log = log::LogWriter::new(fs.open_append(&segment).map_err(io(&segment))?);
        fs.sync_dir(dir).map_err(io(dir))?;
        self.snapshot_height = height;
        self.tail_records = 0;
        for name in fs.list(dir).map_err(io(dir))? {
            let path = dir.join(&name);
            if parse_height(&name, "log-", ".qlog").is_some_and(|first| first <= height) {
                fs.remove_file(&path).map_err(io(&path))?;
            } else if parse_height(&name, "snap-", "").is_some_and(|h| h < height) {
                fs.remove_dir_all(&path).map_err(io(&path))?;
            }
        }
        fs.sync_dir(dir).map_err(io(dir))
    }
}
