//! `DATA/proofs.qlog`: the CHECKPOINTs a replica keeps as proofs of commit (S11), for
//! `quintet recover` to read when the cluster is down. A block is proven committed when q
//! replicas signed CHECKPOINTs naming it or a descendant; a QC chain alone does not prove it
//! (S4's 2Δ condition is local).
//!
//! ```text
//! one log record per kept CHECKPOINT: height = its height, time field = the reset epoch it
//! was signed in, bytes = the encoded Message::Checkpoint
//! ```
//! Records are appended as the core hands them over (`Action::KeepProof`, at most one per
//! signer and commit) and made durable with the batch's sync; the file is rewritten with
//! each signer's newest record when it grows. It is evidence for the operator, not state:
//! damage in it never stops a replica (what is whole is kept, the rest rewritten), and a
//! torn tail is simply cut.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::fs::Fs;
use super::log::{self, LogEntry, LogWriter};
use super::{StorageError, io_err, read_all};
use crate::consensus::{Checkpoint, Message, ReplicaId};
use crate::wire::peer;

pub const PROOFS: &str = "proofs.qlog";
/// Records beyond each signer's newest before the file is rewritten.
const REWRITE_AFTER: usize = 1_000;

/// A kept proof, as read back.
#[derive(Clone, Debug)]
pub struct Proof {
    /// The reset epoch it was signed in (its signature's domain).
    pub epoch: u64,
    pub checkpoint: Checkpoint,
}

/// What [`read`] found: the proofs, and damage (with the proofs before it kept).
pub struct Read {
    pub proofs: Vec<Proof>,
    pub damage: Option<String>,
    /// A torn tail (a crash mid-write) follows the whole records: (whole bytes, file bytes).
    pub torn: Option<(u64, u64)>,
}

/// Reads a folder's proofs file without changing it (a missing file holds none).
pub fn read(fs: &dyn Fs, dir: &Path) -> Result<Read, StorageError> {
    let path = dir.join(PROOFS);
    if !fs.list(dir).map_err(io_err(dir))?.iter().any(|n| n == PROOFS) {
        return Ok(Read { proofs: Vec::new(), damage: None, torn: None });
    }
    let data = read_all(fs, &path)?;
    let mut torn = None;
    let (entries, mut damage) = match log::scan(&data) {
        Ok(scan) => {
            if scan.valid_len < data.len() {
                torn = Some((scan.valid_len as u64, data.len() as u64));
            }
            (scan.entries, None)
        }
        Err(c) => {
            let before = log::scan(&data[..c.offset]).map(|s| s.entries).unwrap_or_default();
            (before, Some(format!("{PROOFS}: damaged record at byte offset {} ({})", c.offset, c.reason)))
        }
    };
    let mut proofs = Vec::new();
    for entry in entries {
        match peer::decode_message(&entry.bytes) {
            Ok(Message::Checkpoint(checkpoint)) if checkpoint.height == entry.height => {
                proofs.push(Proof { epoch: entry.time_ms, checkpoint })
            }
            _ => {
                damage.get_or_insert_with(|| format!("{PROOFS}: a record that is not a CHECKPOINT"));
            }
        }
    }
    Ok(Read { proofs, damage, torn })
}

/// The writer a running replica keeps.
pub struct ProofLog {
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    writer: LogWriter,
    /// Each signer's newest record: what a rewrite keeps.
    newest: BTreeMap<ReplicaId, LogEntry>,
    records: usize,
    pub(super) epoch: u64,
}

impl ProofLog {
    /// Opens the folder's proofs file for appending; records signed in `epoch`. Damage is
    /// rewritten away (what is whole is kept).
    pub fn open(fs: Arc<dyn Fs>, dir: &Path, epoch: u64) -> Result<ProofLog, StorageError> {
        let found = read(fs.as_ref(), dir)?;
        let mut newest: BTreeMap<ReplicaId, LogEntry> = BTreeMap::new();
        for p in &found.proofs {
            let entry = LogEntry { height: p.checkpoint.height, time_ms: p.epoch, bytes: peer::encode_message(&Message::Checkpoint(p.checkpoint.clone())) };
            if newest.get(&p.checkpoint.voter).is_none_or(|e| (e.time_ms, e.height) <= (entry.time_ms, entry.height)) {
                newest.insert(p.checkpoint.voter, entry);
            }
        }
        let path = dir.join(PROOFS);
        if let Some((whole, _)) = found.torn {
            fs.truncate(&path, whole).map_err(io_err(&path))?;
        }
        let writer = LogWriter::new(fs.open_append(&path).map_err(io_err(&path))?);
        let mut proofs = ProofLog { fs, dir: dir.to_path_buf(), writer, newest, records: found.proofs.len(), epoch };
        if found.damage.is_some() {
            proofs.rewrite()?;
        }
        Ok(proofs)
    }

    pub fn keep(&mut self, c: &Checkpoint) {
        let entry = LogEntry { height: c.height, time_ms: self.epoch, bytes: peer::encode_message(&Message::Checkpoint(c.clone())) };
        self.writer.append(&entry);
        self.records += 1;
        if self.newest.get(&c.voter).is_none_or(|e| (e.time_ms, e.height) <= (entry.time_ms, entry.height)) {
            self.newest.insert(c.voter, entry);
        }
    }

    /// Makes what was kept durable; rewrites the file when it has grown.
    pub fn sync(&mut self) -> Result<(), StorageError> {
        let path = self.dir.join(PROOFS);
        self.writer.sync().map_err(io_err(&path))?;
        if self.records > self.newest.len() + REWRITE_AFTER {
            self.rewrite()?;
        }
        Ok(())
    }

    /// Writes each signer's newest record to a temp file and renames it over the old one.
    fn rewrite(&mut self) -> Result<(), StorageError> {
        let (fs, dir) = (self.fs.as_ref(), self.dir.as_path());
        let mut data = Vec::new();
        self.newest.values().for_each(|e| log::encode(e, &mut data));
        let (path, tmp) = (dir.join(PROOFS), dir.join(format!("{PROOFS}.tmp")));
        super::replica_store::write_synced(fs, &tmp, &data)?;
        fs.rename(&tmp, &path).map_err(io_err(&tmp))?;
        fs.sync_dir(dir).map_err(io_err(dir))?;
        self.writer = LogWriter::new(fs.open_append(&path).map_err(io_err(&path))?);
        self.records = self.newest.len();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemFs;

    fn checkpoint(voter: ReplicaId, height: u64) -> Checkpoint {
        Checkpoint { height, hash: [height as u8; 32], state: None, voter, signature: vec![voter; 64] }
    }

    /// An empty folder in memory and its proofs log, in `epoch`.
    fn fresh(epoch: u64) -> (Arc<MemFs>, &'static Path, ProofLog) {
        let fs = Arc::new(MemFs::new());
        let dir = Path::new("/data");
        fs.create_dir_all(dir).unwrap();
        let log = ProofLog::open(fs.clone(), dir, epoch).unwrap();
        (fs, dir, log)
    }

    #[test]
    fn kept_proofs_read_back_with_their_epoch_and_a_grown_file_keeps_each_signers_newest() {
        let (fs, dir, mut log) = fresh(3);
        for height in 1..=(REWRITE_AFTER as u64 + 10) {
            log.keep(&checkpoint((height % 2) as u8, height));
            log.sync().unwrap();
        }
        let read = read(fs.as_ref(), dir).unwrap();
        assert!(read.damage.is_none());
        assert!(read.proofs.len() < 20, "rewritten: {} records", read.proofs.len());
        let newest = |voter| read.proofs.iter().filter(|p| p.checkpoint.voter == voter).map(|p| p.checkpoint.height).max();
        assert_eq!((newest(0), newest(1)), (Some(REWRITE_AFTER as u64 + 10), Some(REWRITE_AFTER as u64 + 9)));
        assert!(read.proofs.iter().all(|p| p.epoch == 3));
    }

    #[test]
    fn a_damaged_proofs_file_is_reported_and_rewritten_from_what_is_whole() {
        let (fs, dir, mut log) = fresh(0);
        log.keep(&checkpoint(0, 1));
        log.keep(&checkpoint(1, 2));
        log.sync().unwrap();
        let len = fs.file_len(&dir.join(PROOFS)).unwrap() as usize;
        fs.corrupt(&dir.join(PROOFS), len - 10);
        let found = read(fs.as_ref(), dir).unwrap();
        assert!(found.damage.as_deref().is_some_and(|d| d.contains("damaged record")), "{:?}", found.damage);
        assert_eq!(found.proofs.len(), 1);
        drop(ProofLog::open(fs.clone(), dir, 0).unwrap());
        let again = read(fs.as_ref(), dir).unwrap();
        assert!(again.damage.is_none(), "{:?}", again.damage);
        assert_eq!(again.proofs.len(), 1);
    }

    #[test]
    fn a_torn_tail_is_cut_before_new_records_follow_it() {
        let (fs, dir, mut log) = fresh(0);
        log.keep(&checkpoint(0, 1));
        log.sync().unwrap();
        // Half a record lands, then the power goes.
        let mut half = Vec::new();
        log::encode(&LogEntry { height: 2, time_ms: 0, bytes: vec![1; 100] }, &mut half);
        let path = dir.join(PROOFS);
        let mut file = fs.open_append(&path).unwrap();
        std::io::Write::write_all(&mut file, &half[..half.len() / 2]).unwrap();
        file.sync().unwrap();
        drop(file);
        let mut log = ProofLog::open(fs.clone(), dir, 0).unwrap();
        log.keep(&checkpoint(1, 3));
        log.sync().unwrap();
        let read = read(fs.as_ref(), dir).unwrap();
        assert!(read.damage.is_none() && read.torn.is_none(), "{:?} {:?}", read.damage, read.torn);
        assert_eq!(read.proofs.iter().map(|p| p.checkpoint.height).collect::<Vec<_>>(), vec![1, 3]);
    }
}
