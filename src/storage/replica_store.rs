//! The disk of a replica that runs the ordering protocol: what the consensus core must not
//! forget, the committed chain, and state images at checkpoint heights (S11).
//!
//! ```text
//! DATA/consensus.qlog                 Persist records (height 0, numbered in the time field)
//!                                     and stored blocks (height = block height); the newest
//!                                     Persist wins; rewritten whole (temp + fsync + rename)
//!                                     when it grows
//! DATA/consensus.mirror.qlog          the same records again: what the core must not
//!                                     forget is kept twice, so one damaged copy loses nothing
//! DATA/chain-00000000000000000001.qlog  committed blocks, one record each (height = block
//!                                     height); a new segment starts after every image
//! DATA/snap-00000000000000001000/     the state image after block 1000: the snapshot CSV
//!                                     files, block.pb (that block), block.sha256 (its hash),
//!                                     image.sha256 (the image's hash) and, once stable,
//!                                     cert.pb (S11)
//! DATA/proofs.qlog                    CHECKPOINTs kept as proofs of commit (proofs.rs), for
//!                                     `quintet recover`
//! DATA/damaged/                       damaged files set aside by a repair (open.rs)
//! ```
//! The *image* that travels between replicas and whose hash CHECKPOINTs sign is the four
//! CSV files packed in a fixed order (`image.rs`); the CSV writer is deterministic, so replicas
//! with equal states have byte-equal images.
//!
//! Every write is buffered until [`ReplicaStore::sync`], which the driver calls before any
//! message of the batch leaves. A failed write or fsync poisons the store until restart.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::fs::Fs;
use super::image::{pack, read_image, unpack};
use super::log::{self, LogEntry, LogWriter};
use super::{StorageError, io_err, parse_height, snapshot, snapshot_name};
use crate::chat::ChatState;
use crate::consensus::{Block, Digest32, Hash, Height, Persistent, Restored, StateCert, StateTransfer};
use crate::crypto::encode_hex;
use crate::wire::peer;

pub(super) const CONSENSUS: &str = "consensus.qlog";
/// The second copy of consensus.qlog, written with it record for record (see open.rs).
pub(super) const MIRROR: &str = "consensus.mirror.qlog";

/// What [`ReplicaStore::open`] found.
pub struct Opened {
    /// For `Core::new`.
    pub restored: Restored,
    /// The state of the newest image (empty without one), its digest checked.
    pub state: ChatState,
    /// Committed blocks after that image, to execute in order.
    pub replay: Vec<Block>,
    /// What was repaired (damage set aside), one line each, for the replica to report.
    pub repairs: Vec<String>,
}

pub struct ReplicaStore {
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    consensus: LogWriter,
    mirror: LogWriter,
    chain: LogWriter,
    /// The newest Persist and the stored blocks above the committed height, encoded: what a
    /// rewrite of consensus.qlog keeps.
    persisted: Option<Vec<u8>>,
    /// The newest Persist's number (carried in its record's time field, in both copies).
    persist_seq: u64,
    stored: BTreeMap<(Height, Hash), Vec<u8>>,
    consensus_records: usize,
    committed: Height,
    /// The newest image's height and chat state digest (`ChatState::digest`, computed where
    /// the image was written or loaded): what `status` shows, so that no status walks the
    /// state on the ordering path.
    newest_state: (Height, Digest32),
    proofs: super::proofs::ProofLog,
    failed: Option<String>,
}

pub(super) fn snap_dir(dir: &Path, height: Height) -> PathBuf {
    dir.join(snapshot_name(height))
}

fn chain_name(first: Height) -> String {
    format!("chain-{first:020}.qlog")
}

/// Writes block.pb, block.sha256 (its hash, so damage to it shows), image.sha256 (and
/// cert.pb) into an image's temp folder and syncs it.
pub(super) fn seal(fs: &dyn Fs, tmp: &Path, block: &Block, digest: &Digest32, cert: Option<&StateCert>) -> Result<(), StorageError> {
    write_synced(fs, &tmp.join("block.pb"), &peer::encode_block(block))?;
    write_synced(fs, &tmp.join("block.sha256"), encode_hex(&block.hash).as_bytes())?;
    write_synced(fs, &tmp.join("image.sha256"), encode_hex(digest).as_bytes())?;
    if let Some(cert) = cert {
        write_synced(fs, &tmp.join("cert.pb"), &peer::encode_state_cert(cert))?;
    }
    fs.sync_dir(tmp).map_err(io_err(tmp))
}

pub(super) fn write_synced(fs: &dyn Fs, path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    let mut file = fs.create(path).map_err(io_err(path))?;
    std::io::Write::write_all(&mut file, bytes).and_then(|_| file.sync()).map_err(io_err(path))
}

pub(super) fn corrupt(path: &Path, reason: impl ToString) -> StorageError {
    StorageError::Corrupt { path: path.display().to_string(), offset: 0, reason: reason.to_string() }
}

impl ReplicaStore {
    fn check(&self) -> Result<(), StorageError> {
        self.failed.as_ref().map_or(Ok(()), |reason| Err(StorageError::Failed(reason.clone())))
    }

    /// Runs a step that writes; its first failure poisons the store.
    fn guard<T>(&mut self, step: impl FnOnce(&mut Self) -> Result<T, StorageError>) -> Result<T, StorageError> {
        self.guarded(false, step)
    }

    /// `guard` for a step whose only descriptor-shortage failure comes before it changes
    /// anything: that failure is returned without poisoning the store.
    fn guard_retryable<T>(&mut self, step: impl FnOnce(&mut Self) -> Result<T, StorageError>) -> Result<T, StorageError> {
        self.guarded(true, step)
    }

    fn guarded<T>(&mut self, retryable: bool, step: impl FnOnce(&mut Self) -> Result<T, StorageError>) -> Result<T, StorageError> {
        self.check()?;
        let result = step(self);
        if let Err(e) = &result
            && !(retryable && e.is_descriptor_shortage())
        {
            self.failed = Some(e.to_string());
        }
        result
    }

    pub fn persist(&mut self, p: &Persistent) -> Result<(), StorageError> {
        self.check()?;
        // Numbered: the newest whole one of either copy is taken at open.
        self.persist_seq += 1;
        let entry = LogEntry { height: 0, time_ms: self.persist_seq, bytes: peer::encode_persistent(p) };
        self.append_consensus(&entry);
        self.persisted = Some(entry.bytes);
        Ok(())
    }

    pub fn store_block(&mut self, b: &Block) -> Result<(), StorageError> {
        self.check()?;
        let entry = LogEntry { height: b.height, time_ms: b.time_ms, bytes: peer::encode_block(b) };
        self.append_consensus(&entry);
        self.stored.insert((b.height, b.hash), entry.bytes);
        Ok(())
    }

    /// Appends a record to consensus.qlog and to its mirror.
    fn append_consensus(&mut self, entry: &LogEntry) {
        self.consensus.append(entry);
        self.mirror.append(entry);
        self.consensus_records += 1;
    }

    /// Appends a committed block to the chain (the caller executes it).
    pub fn commit(&mut self, b: &Block) -> Result<(), StorageError> {
        self.check()?;
        assert_eq!(b.height, self.committed + 1, "commits are contiguous");
        self.chain.append(&LogEntry { height: b.height, time_ms: b.time_ms, bytes: peer::encode_block(b) });
        self.committed = b.height;
        self.stored.retain(|(h, _), _| *h > b.height);
        Ok(())
    }

    /// Keeps a CHECKPOINT as a proof of commit (`Action::KeepProof`), durable with the
    /// next sync.
    pub fn keep_proof(&mut self, c: &crate::consensus::Checkpoint) -> Result<(), StorageError> {
        self.check()?;
        self.proofs.keep(c);
        Ok(())
    }

    /// The reset epoch the proofs kept from now on were signed in (cluster.toml's).
    pub fn set_epoch(&mut self, epoch: u64) {
        self.proofs.epoch = epoch;
    }

    /// Makes everything appended durable. Call before any message that depends on it leaves.
    pub fn sync(&mut self) -> Result<(), StorageError> {
        self.guard(|s| {
            s.proofs.sync()?;
            s.consensus.sync().map_err(io_err(&s.dir.join(CONSENSUS)))?;
            s.mirror.sync().map_err(io_err(&s.dir.join(MIRROR)))?;
            s.chain.sync().map_err(io_err(&s.dir))?;
            if s.consensus_records > 4 * (s.stored.len() + 1) + 1_000 {
                s.rewrite_consensus()?;
            }
            Ok(())
        })
    }

    /// Replaces consensus.qlog and its mirror by their live records (the newest Persist and
    /// the stored blocks above the committed height), each whole before it replaces the old
    /// file.
    fn rewrite_consensus(&mut self) -> Result<(), StorageError> {
        let mut data = Vec::new();
        if let Some(p) = &self.persisted {
            log::encode(&LogEntry { height: 0, time_ms: self.persist_seq, bytes: p.clone() }, &mut data);
        }
        for ((height, _), b) in &self.stored {
            log::encode(&LogEntry { height: *height, time_ms: 0, bytes: b.clone() }, &mut data);
        }
        self.consensus = self.replace_file(CONSENSUS, &data)?;
        self.mirror = self.replace_file(MIRROR, &data)?;
        self.consensus_records = self.stored.len() + 1;
        Ok(())
    }

    /// Writes `name` anew (temp file, fsync, rename, directory fsync); returns its writer.
    fn replace_file(&self, name: &str, data: &[u8]) -> Result<LogWriter, StorageError> {
        let (fs, dir) = (self.fs.as_ref(), self.dir.as_path());
        let (path, tmp) = (dir.join(name), dir.join(format!("{name}.tmp")));
        write_synced(fs, &tmp, data)?;
        fs.rename(&tmp, &path).map_err(io_err(&tmp))?;
        fs.sync_dir(dir).map_err(io_err(dir))?;
        Ok(LogWriter::new(fs.open_append(&path).map_err(io_err(&path))?))
    }

    /// Keeps the image of `state` (which must have executed exactly through `block`) and
    /// returns its sha256, for `Input::Snapshot`: `begin_image`, `write` and `place_image`
    /// in one go (the simulator; the replica runs `write` on another thread).
    pub fn take_image(&mut self, block: &Block, state: &ChatState) -> Result<Digest32, StorageError> {
        let writer = self.begin_image(block)?;
        let written = self.guard(|_| writer.write(state))?;
        let digest = written.digest;
        self.place_image(written)?;
        Ok(digest)
    }

    /// Starts a new chain segment after `block` (whose image is about to be kept).
    /// Opening the segment is its first step and changes nothing if it fails, so that
    /// failure alone may be a descriptor shortage; a failed directory sync is not.
    fn next_segment(&mut self, first: Height) -> Result<(), StorageError> {
        let (fs, dir) = (self.fs.as_ref(), self.dir.as_path());
        let segment = dir.join(chain_name(first));
        self.chain = LogWriter::new(fs.open_append(&segment).map_err(io_err(&segment))?);
        fs.sync_dir(dir).map_err(|e| StorageError::Failed(format!("{}: {e}", dir.display())))
    }

    /// Renames a complete temp folder into place.
    /// An image already at that height is first renamed away whole (a removal is not atomic:
    /// a crash inside one would leave a folder with some of its files), and removed once the
    /// new one is in place; a crash in between leaves a `.tmp` name, removed at open.
    fn place(&self, tmp: &Path, folder: &Path) -> Result<(), StorageError> {
        let (fs, dir) = (self.fs.as_ref(), self.dir.as_path());
        let old = folder.with_extension("old.tmp");
        let _ = fs.remove_dir_all(&old);
        let replaced = fs.rename(folder, &old).is_ok();
        fs.rename(tmp, folder).map_err(io_err(tmp))?;
        fs.sync_dir(dir).map_err(io_err(dir))?;
        if replaced {
            let _ = fs.remove_dir_all(&old);
        }
        Ok(())
    }

    /// A stable checkpoint (S11). If this replica's own image at its height matches, the
    /// certificate is kept with it and everything older is deleted. Returns `Diverged` when
    /// the image differs: this replica's state is not the one 3 replicas signed.
    pub fn stable(&mut self, cert: &StateCert) -> Result<(), StorageError> {
        self.guard(|s| {
            let (fs, dir) = (s.fs.as_ref(), s.dir.as_path());
            let folder = snap_dir(dir, cert.height);
            if !fs.list(dir).map_err(io_err(dir))?.iter().any(|n| parse_height(n, "snap-", "") == Some(cert.height)) {
                return Ok(()); // never took that image (it was behind); nothing to truncate yet
            }
            let image = read_image(fs, dir, cert.height)?;
            if image.state != cert.state || image.block.hash != cert.hash {
                return Err(StorageError::Diverged {
                    height: cert.height,
                    ours: encode_hex(&image.state),
                    certified: encode_hex(&cert.state),
                });
            }
            let tmp = folder.join("cert.pb.tmp");
            write_synced(fs, &tmp, &peer::encode_state_cert(cert))?;
            fs.rename(&tmp, &folder.join("cert.pb")).map_err(io_err(&tmp))?;
            fs.sync_dir(&folder).map_err(io_err(&folder))?;
            s.delete_below(cert.height)
        })
    }

    /// Deletes images below `height` and chain segments that hold only blocks up to it.
    fn delete_below(&mut self, height: Height) -> Result<(), StorageError> {
        let (fs, dir) = (self.fs.as_ref(), self.dir.as_path());
        for name in fs.list(dir).map_err(io_err(dir))? {
            let path = dir.join(&name);
            if parse_height(&name, "snap-", "").is_some_and(|h| h < height) {
                fs.remove_dir_all(&path).map_err(io_err(&path))?;
            } else if parse_height(&name, "chain-", ".qlog").is_some_and(|first| first <= height) {
                fs.remove_file(&path).map_err(io_err(&path))?;
            }
        }
        fs.sync_dir(dir).map_err(io_err(dir))
    }

    /// The image at a stable height and its block, for `Message::State`.
    pub fn image(&self, cert: &StateCert) -> Result<StateTransfer, StorageError> {
        self.check()?;
        let (fs, dir) = (self.fs.as_ref(), self.dir.as_path());
        let image = read_image(fs, dir, cert.height)?;
        let (bytes, digest) = pack(fs, &snap_dir(dir, cert.height), true)?;
        if digest != cert.state {
            let folder = snap_dir(dir, cert.height);
            return Err(corrupt(&folder, "the image's files no longer hash to image.sha256"));
        }
        Ok(StateTransfer { cert: cert.clone(), block: image.block, image: bytes })
    }

    /// Installs a certified image (the core checked certificate, block and hash): it becomes
    /// the newest image, the chain restarts after its block, and everything older goes.
    /// Returns the state it holds.
    pub fn install(&mut self, t: &StateTransfer) -> Result<ChatState, StorageError> {
        self.sync()?;
        self.guard(|s| {
            let (fs, dir) = (s.fs.as_ref(), s.dir.as_path());
            let folder = snap_dir(dir, t.cert.height);
            let tmp = folder.with_extension("tmp");
            let _ = fs.remove_dir_all(&tmp);
            fs.create_dir_all(&tmp).map_err(io_err(&tmp))?;
            let files = unpack(&t.image).ok_or_else(|| corrupt(&tmp, "the state image is not a packed snapshot"))?;
            for (name, bytes) in files {
                write_synced(fs, &tmp.join(name), bytes)?;
            }
            let (state, state_digest) = snapshot::load_with_digest(fs, &tmp)?;
            seal(fs, &tmp, &t.block, &t.cert.state, Some(&t.cert))?;
            s.newest_state = (t.cert.height, state_digest);
            s.place(&tmp, &folder)?;
            s.next_segment(t.cert.height + 1)?;
            s.committed = t.cert.height;
            s.stored.retain(|(h, _), _| *h > t.cert.height);
            s.delete_below(t.cert.height)?;
            Ok(state)
        })
    }

    /// Hands buffered records to the files without syncing (tests tear them).
    #[cfg(test)]
    fn write_unsynced(&mut self) {
        for w in [&mut self.consensus, &mut self.chain] {
            let pending = std::mem::take(&mut w.pending);
            std::io::Write::write_all(&mut w.file, &pending).expect("in-memory write");
        }
    }

    /// The newest image's height and chat state digest.
    pub fn newest_state(&self) -> (Height, Digest32) {
        self.newest_state
    }

    pub fn committed_height(&self) -> Height {
        self.committed
    }
}

mod image_writer;
mod open;
pub use image_writer::{ImageWriter, WrittenImage};
pub use open::{DAMAGED, OnDamage};

#[cfg(test)]
#[path = "replica_store_tests.rs"]
mod tests;
