//! Opening a replica's folder, and what it does with damage (NOTEBOOK, 2026-12-02,
//! "Hostile-input issue: protocol-aware repair").
//!
//! A torn write (a crash mid-write) is cut quietly, as always. *Damage* is anything else
//! that is not what was written: a whole record with a bad checksum, a torn record in a
//! segment that later ones follow, a gap in the chain, a block that does not decode or does
//! not extend the one before, an image whose files no longer give its hash.
//!
//! A replica with others to repair from ([`OnDamage::Repair`]) sets each damaged file aside
//! in `damaged/` (kept for the operator, never read again), keeps what is whole before the
//! damage, and starts: the blocks and the state it lost are committed ones, which the core
//! gets back from the others as it does for a replica that was down (certified blocks
//! above the stable checkpoint, the certified state image below it). What was repaired is
//! returned, one line each, for the replica to report.
//!
//! The one thing the others cannot give back is what the core persisted: its vote record
//! (a replica that forgot which blocks it voted for could vote twice in one view) and the
//! blocks it stored above the committed height (a block certified by a QC may be held by
//! few replicas). consensus.qlog is therefore kept twice, with consensus.mirror.qlog written
//! record for record in the same sync; vote records are numbered, and the newest whole one
//! of either copy is taken, with the stored blocks of both. Only when both copies are
//! damaged does the replica refuse to start. A replica alone in its cluster
//! ([`OnDamage::Refuse`]) repairs one damaged copy the same way, but refuses on any other
//! damage, as nothing else can be got back.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::super::fs::Fs;
use super::super::image::{Image, pack, read_image};
use super::super::log::{self, LogEntry, LogWriter};
use super::super::{Segment, StorageError, io_err, parse_height, read_segment, snapshot, snapshot_name};
use super::{CONSENSUS, MIRROR, Opened, ReplicaStore, chain_name, corrupt, snap_dir, write_synced};
use crate::chat::ChatState;
use crate::consensus::{Block, Height, Restored};
use crate::wire::peer;

/// Where damaged files are set aside.
pub const DAMAGED: &str = "damaged";

/// What opening does with damage it finds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnDamage {
    /// Refuse to start (a replica alone in its cluster: nothing can be got back).
    Refuse,
    /// Set the damaged file aside, keep what is whole, let the others fill in the rest.
    Repair,
}

/// Whether an error is damage on disk (as opposed to a failing disk or a missing right).
/// A file missing from an image folder is damage too: the folder is incomplete.
fn is_damage(e: &StorageError) -> bool {
    match e {
        StorageError::Io { path, source } => source.kind() == std::io::ErrorKind::NotFound && path.contains("/snap-"),
        _ => matches!(
            e,
            StorageError::Corrupt { .. } | StorageError::Gap { .. } | StorageError::Snapshot { .. } | StorageError::Digest { .. }
        ),
    }
}

/// Damage in a few words, without the refusal's advice (it was repaired).
fn describe(e: &StorageError) -> String {
    match e {
        StorageError::Corrupt { path, offset, reason } if path.ends_with(".qlog") => {
            format!("{path}: damaged record at byte offset {offset} ({reason})")
        }
        StorageError::Corrupt { path, reason, .. } => format!("{path}: damaged ({reason})"),
        StorageError::Gap { path, expected, found } => format!("{path}: the chain jumps from height {expected} to {found}"),
        other => other.to_string(),
    }
}

struct Repairs<'a> {
    fs: &'a dyn Fs,
    dir: &'a Path,
    mode: OnDamage,
    notes: Vec<String>,
}

impl Repairs<'_> {
    /// Damage `e` found in the file or folder `name`: refused, or set aside with a note.
    fn damaged(&mut self, e: StorageError, name: &str, outcome: &str) -> Result<(), StorageError> {
        if self.mode == OnDamage::Refuse {
            return Err(e);
        }
        self.repaired_here(e, name, outcome)
    }

    /// Damage that this replica repairs from what it holds itself (either mode).
    fn repaired_here(&mut self, e: StorageError, name: &str, outcome: &str) -> Result<(), StorageError> {
        if !is_damage(&e) {
            return Err(e);
        }
        let aside = self.set_aside(name)?;
        self.notes.push(format!("{}; set aside as {aside}; {outcome}", describe(&e)));
        Ok(())
    }

    /// Moves a file or folder of the data folder into `damaged/`, under a fresh number.
    fn set_aside(&mut self, name: &str) -> Result<String, StorageError> {
        let (fs, dir) = (self.fs, self.dir);
        let aside = dir.join(DAMAGED);
        fs.create_dir_all(&aside).map_err(io_err(&aside))?;
        let taken = fs.list(&aside).map_err(io_err(&aside))?.len();
        let to = format!("{DAMAGED}/{taken:03}-{name}");
        fs.rename(&dir.join(name), &dir.join(&to)).map_err(io_err(&dir.join(name)))?;
        fs.sync_dir(&aside).map_err(io_err(&aside))?;
        fs.sync_dir(dir).map_err(io_err(dir))?;
        Ok(to)
    }
}

/// A copy of the consensus log, read: whether the file is there, and the segment.
struct Read {
    present: bool,
    entries: Vec<LogEntry>,
    damage: Option<StorageError>,
}

/// Reads a copy of the consensus log that `names` (the folder's listing) may not hold.
fn read_copy(fs: &dyn Fs, dir: &Path, names: &[String], name: &str) -> Result<Read, StorageError> {
    if !names.iter().any(|n| n == name) {
        return Ok(Read { present: false, entries: Vec::new(), damage: None });
    }
    let Segment { entries, damage, .. } = read_segment(fs, &dir.join(name), true)?;
    Ok(Read { present: true, entries, damage })
}

/// The newest vote record (Persist) of a copy: (number, bytes).
fn newest_persist(read: &Read) -> Option<(u64, &Vec<u8>)> {
    read.entries.iter().filter(|e| e.height == 0).map(|e| (e.time_ms, &e.bytes)).max_by_key(|(seq, _)| *seq)
}

impl ReplicaStore {
    /// Opens (creating if need be) a replica's folder; `on_damage` says what to do with
    /// damage (module text). `Opened::repairs` lists what was repaired.
    pub fn open(fs: Arc<dyn Fs>, dir: &Path, on_damage: OnDamage) -> Result<(ReplicaStore, Opened), StorageError> {
        let f = fs.as_ref();
        f.create_dir_all(dir).map_err(io_err(dir))?;
        let names = f.list(dir).map_err(io_err(dir))?;
        for name in names.iter().filter(|n| n.ends_with(".tmp")) {
            let path = dir.join(name);
            let _ = f.remove_dir_all(&path);
            let _ = f.remove_file(&path);
        }
        let mut r = Repairs { fs: f, dir, mode: on_damage, notes: Vec::new() };

        // Images: every whole one can be served; the newest that loads gives the state.
        let mut heights: Vec<Height> = names.iter().filter_map(|n| parse_height(n, "snap-", "")).collect();
        heights.sort_unstable();
        let had_images = !heights.is_empty();
        let mut images: Vec<Image> = Vec::new();
        for h in heights {
            let whole = read_image(f, dir, h).and_then(|image| {
                let (_, digest) = pack(f, &snap_dir(dir, h), false)?;
                match digest == image.state {
                    true => Ok(image),
                    false => Err(corrupt(&snap_dir(dir, h), "the image's files no longer hash to image.sha256")),
                }
            });
            match whole {
                Ok(image) => images.push(image),
                Err(e) => r.damaged(e, &snapshot_name(h), "the state comes from an older image or the other replicas")?,
            }
        }
        let (state, state_digest) = loop {
            let Some(newest) = images.last() else {
                let empty = ChatState::new();
                let digest = empty.digest();
                break (empty, digest);
            };
            let height = newest.height;
            match snapshot::load_with_digest(f, &snap_dir(dir, height)) {
                Ok(loaded) => break loaded,
                Err(e) => {
                    images.pop();
                    r.damaged(e, &snapshot_name(height), "the state comes from an older image or the other replicas")?;
                }
            }
        };
        let stable = images.iter().rev().find_map(|i| i.cert.clone());
        let newest = images.last();
        let base = newest.map_or(0, |i| i.height);

        // The committed chain after the newest image, up to the first damage.
        let mut chains: Vec<Height> = names.iter().filter_map(|n| parse_height(n, "chain-", ".qlog")).collect();
        chains.sort_unstable();
        let mut replay: Vec<Block> = Vec::new();
        let mut broken = false;
        // Blocks the newest image covers but no stable checkpoint does yet: others may still
        // need them (S9), and this replica can serve them only if it has them in memory (a
        // running replica keeps them until a checkpoint is stable). Read as found: what is
        // damaged here is simply not served.
        let stable_height = stable.as_ref().map_or(0, |s| s.height);
        let mut covered: BTreeMap<Height, Block> = BTreeMap::new();
        let mut cover = |entries: &[LogEntry]| {
            for e in entries.iter().filter(|e| e.height > stable_height && e.height < base) {
                if let Ok(block) = peer::decode_block(&e.bytes) {
                    covered.insert(e.height, block);
                }
            }
        };
        for (i, first) in chains.iter().enumerate() {
            let name = chain_name(*first);
            let path = dir.join(&name);
            if chains.get(i + 1).is_some_and(|next| *next <= base + 1) {
                // Holds only blocks the image covers (deleted once it is stable).
                if chains.get(i + 1).is_some_and(|next| *next > stable_height + 1)
                    && let Ok(read) = read_segment(f, &path, false)
                {
                    cover(&read.entries);
                }
                continue;
            }
            if broken {
                let aside = r.set_aside(&name)?;
                r.notes.push(format!("{name} follows a damaged segment: set aside as {aside}"));
                continue;
            }
            let read = read_segment(f, &path, i + 1 == chains.len())?;
            cover(&read.entries);
            let mut kept = Vec::new();
            let mut damage = None;
            for entry in read.entries.into_iter().filter(|e| e.height > base) {
                let expected = base + 1 + replay.len() as u64;
                let parent = replay.last().map_or_else(|| newest.map_or([0; 32], |i| i.block.hash), |b| b.hash);
                let block = match (entry.height == expected, peer::decode_block(&entry.bytes)) {
                    (false, _) => Err(StorageError::Gap { path: path.display().to_string(), expected, found: entry.height }),
                    (true, Err(e)) => Err(corrupt(&path, e)),
                    (true, Ok(b)) if b.parent != parent => {
                        Err(corrupt(&path, format!("block {} does not extend block {}", b.height, b.height - 1)))
                    }
                    (true, Ok(b)) => Ok(b),
                };
                match block {
                    Ok(block) => {
                        replay.push(block);
                        kept.push(entry);
                    }
                    Err(e) => {
                        damage = Some(e);
                        break;
                    }
                }
            }
            if let Some(e) = damage.or(read.damage) {
                let committed = base + replay.len() as u64;
                let outcome = format!("kept the committed blocks up to {committed}; the rest comes from the other replicas");
                r.damaged(e, &name, &outcome)?;
                // What is whole above the image goes back in place; blocks the image covers
                // are not needed.
                let mut data = Vec::new();
                kept.iter().for_each(|e| log::encode(e, &mut data));
                if !data.is_empty() {
                    write_synced(f, &path, &data)?;
                    f.sync_dir(dir).map_err(io_err(dir))?;
                }
                broken = true;
            }
        }
        let committed_height = base + replay.len() as u64;
        // The covered blocks that chain to the image's block, lowest first.
        let mut linked = Vec::new();
        if let Some(image) = newest {
            let mut parent = image.block.parent;
            for (_, block) in covered.into_iter().rev() {
                if block.hash != parent {
                    break;
                }
                parent = block.parent;
                linked.push(block);
            }
            linked.reverse();
        }

        // What the core must not forget (its vote record and the blocks it stored), kept
        // twice: either whole copy is enough.
        let consensus = read_copy(f, dir, &names, CONSENSUS)?;
        let mirror = read_copy(f, dir, &names, MIRROR)?;
        let (c_newest, m_newest) = (newest_persist(&consensus), newest_persist(&mirror));
        let lost = |read: &Read, other: &Read| !read.present && !other.entries.is_empty();
        let c_whole = consensus.damage.is_none() && !lost(&consensus, &mirror);
        let m_whole = mirror.damage.is_none() && !lost(&mirror, &consensus);
        // Both files gone from a folder that holds a chain or an image: deleted, not new.
        let deleted = !consensus.present && !mirror.present && (!chains.is_empty() || had_images);
        if (!c_whole && !m_whole) || deleted {
            let path = dir.join(CONSENSUS).display().to_string();
            return Err(StorageError::Corrupt {
                path,
                offset: 0,
                reason: format!(
                    "both copies of this replica's vote record ({CONSENSUS} and {MIRROR}) are damaged or missing: it \
                     could vote twice in a view it already voted in; refusing to start: recover it with reset.sh"
                ),
            });
        }
        let newest_vote = [c_newest, m_newest].into_iter().flatten().max_by_key(|(seq, _)| *seq);
        let persist_seq = newest_vote.map_or(0, |(seq, _)| seq);
        let persisted = newest_vote.map(|(_, bytes)| bytes.clone());
        let damages = [(c_whole, consensus.damage, CONSENSUS, MIRROR), (m_whole, mirror.damage, MIRROR, CONSENSUS)];
        for (whole, damage, name, other) in damages {
            let outcome = format!("what it held comes from {other}");
            match (whole, damage) {
                (true, _) => {}
                (false, Some(e)) => r.repaired_here(e, name, &outcome)?,
                (false, None) => r.notes.push(format!("{name} is missing; {outcome}")),
            }
        }
        // A copy behind the other (a crash between the two writes, or a repair) is written
        // again, so that each copy holds everything.
        let rewrite = consensus.entries != mirror.entries;
        let mut stored = BTreeMap::new();
        let mut blocks = BTreeMap::new();
        let consensus_path = dir.join(CONSENSUS);
        for entry in consensus.entries.iter().chain(&mirror.entries).filter(|e| e.height > committed_height) {
            let block = peer::decode_block(&entry.bytes).map_err(|e| corrupt(&consensus_path, e))?;
            stored.insert((block.height, block.hash), entry.bytes.clone());
            blocks.insert((block.height, block.hash), block);
        }
        let persistent = match &persisted {
            Some(bytes) => Some(peer::decode_persistent(bytes).map_err(|e| corrupt(&consensus_path, e))?),
            None => None,
        };

        let open_log = |path: PathBuf| f.open_append(&path).map(LogWriter::new).map_err(io_err(&path));
        // After a repair the later segments are gone: the chain goes on in a segment named
        // for the next height (the repaired one, when it starts there).
        let next = match broken {
            true => committed_height + 1,
            false => chains.last().copied().unwrap_or(base + 1).max(base + 1),
        };
        let chain = open_log(dir.join(chain_name(next)))?;
        f.sync_dir(dir).map_err(io_err(dir))?;

        let stable_height = stable.as_ref().map_or(0, |s| s.height);
        let served = images.iter().filter(|i| i.height >= stable_height).map(|i| (i.height, i.block.hash, i.state));
        let restored = Restored {
            restarted: names.iter().any(|n| n.starts_with("consensus") || n.starts_with("chain-") || n.starts_with("snap-")),
            persistent,
            committed: linked.into_iter().chain(newest.map(|i| i.block.clone())).chain(replay.iter().cloned()).collect(),
            blocks: blocks.into_values().collect(),
            stable,
            images: served.collect(),
        };
        let mut store = ReplicaStore {
            fs: fs.clone(),
            dir: dir.to_path_buf(),
            consensus: open_log(dir.join(CONSENSUS))?,
            mirror: open_log(dir.join(MIRROR))?,
            chain,
            persisted,
            persist_seq,
            stored,
            consensus_records: consensus.entries.len(),
            committed: committed_height,
            newest_state: (base, state_digest),
            proofs: super::super::proofs::ProofLog::open(fs.clone(), dir, 0)?,
            failed: None,
        };
        if rewrite {
            store.rewrite_consensus()?;
        }
        Ok((store, Opened { restored, state, replay, repairs: r.notes }))
    }
}
