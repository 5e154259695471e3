//! A replica's folder read without changing anything (for `quintet recover`): its images,
//! its committed chain, its vote record, its proofs, and the damage met on the way; and a
//! folder written anew from a state image (a re-seed).

use std::collections::BTreeMap;
use std::path::Path;

use super::fs::Fs;
use super::image::{pack, read_image};
use super::log::{self, LogEntry};
use super::replica_store::{CONSENSUS, MIRROR, snap_dir};
use super::{StorageError, io_err, parse_height, proofs, read_all, snapshot, snapshot_name};
use crate::chat::ChatState;
use crate::consensus::{Block, Digest32, Height, Persistent, StateCert};
use crate::wire::peer;

/// A whole image folder.
pub struct FoundImage {
    pub height: Height,
    pub block: Block,
    /// The image's sha256 (what state CHECKPOINTs sign), checked against its files.
    pub image_hash: Digest32,
    pub cert: Option<StateCert>,
}

/// What one folder holds.
#[derive(Default)]
pub struct Inspected {
    /// The folder is missing or holds no replica files.
    pub empty: bool,
    /// Whole images, lowest first.
    pub images: Vec<FoundImage>,
    /// Committed blocks read from the chain segments, by height (whole records only).
    pub chain: BTreeMap<Height, Block>,
    /// Blocks stored above the committed height (consensus.qlog and its mirror).
    pub stored: Vec<Block>,
    /// The newest vote record of either copy.
    pub persistent: Option<Persistent>,
    pub proofs: Vec<proofs::Proof>,
    /// One line per damaged file.
    pub damage: Vec<String>,
}

impl Inspected {
    /// The committed tip: the newest image, then the chain blocks that extend it one by one.
    pub fn tip(&self) -> Option<&Block> {
        let mut tip = self.images.last().map(|i| &i.block);
        let mut height = tip.map_or(0, |b| b.height);
        while let Some(next) = self.chain.get(&(height + 1)) {
            if tip.is_some_and(|t| t.hash != next.parent) {
                break;
            }
            tip = Some(next);
            height += 1;
        }
        tip
    }

    /// The hash this folder holds at `height`, if it holds that block.
    pub fn hash_at(&self, height: Height) -> Option<[u8; 32]> {
        self.chain.get(&height).map(|b| b.hash).or_else(|| self.images.iter().find(|i| i.height == height).map(|i| i.block.hash))
    }
}

/// Reads a log file's whole records; damage is said, a torn tail ignored.
fn scan_file(fs: &dyn Fs, path: &Path, damage: &mut Vec<String>) -> Result<Vec<LogEntry>, StorageError> {
    let data = read_all(fs, path)?;
    Ok(match log::scan(&data) {
        Ok(scan) => scan.entries,
        Err(c) => {
            damage.push(format!("{}: damaged record at byte offset {} ({})", path.display(), c.offset, c.reason));
            log::scan(&data[..c.offset]).map(|s| s.entries).unwrap_or_default()
        }
    })
}

/// Reads a replica's folder; changes nothing.
pub fn inspect(fs: &dyn Fs, dir: &Path) -> Result<Inspected, StorageError> {
    let mut found = Inspected::default();
    let names = match fs.list(dir) {
        Ok(names) => names,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            found.empty = true;
            return Ok(found);
        }
        Err(e) => return Err(io_err(dir)(e)),
    };
    let mut heights: Vec<Height> = names.iter().filter_map(|n| parse_height(n, "snap-", "")).collect();
    heights.sort_unstable();
    for height in heights {
        let whole = read_image(fs, dir, height).and_then(|image| {
            let (_, digest) = pack(fs, &snap_dir(dir, height), false)?;
            if digest != image.state {
                return Err(super::replica_store::corrupt(&snap_dir(dir, height), "the image's files no longer hash to image.sha256"));
            }
            snapshot::read_meta(fs, &snap_dir(dir, height))?;
            Ok(image)
        });
        match whole {
            Ok(i) => found.images.push(FoundImage { height, block: i.block, image_hash: i.state, cert: i.cert }),
            Err(e) => found.damage.push(format!("{}: {e}", snapshot_name(height))),
        }
    }
    let mut chains: Vec<Height> = names.iter().filter_map(|n| parse_height(n, "chain-", ".qlog")).collect();
    chains.sort_unstable();
    for first in chains {
        let path = dir.join(format!("chain-{first:020}.qlog"));
        for entry in scan_file(fs, &path, &mut found.damage)? {
            match peer::decode_block(&entry.bytes) {
                Ok(b) if b.height == entry.height && b.compute_hash() == b.hash => {
                    found.chain.insert(b.height, b);
                }
                _ => found.damage.push(format!("{}: a block record that does not decode or hash", path.display())),
            }
        }
    }
    let mut newest: Option<(u64, Vec<u8>)> = None;
    let mut copies = 0;
    for name in [CONSENSUS, MIRROR] {
        if !names.iter().any(|n| n == name) {
            continue;
        }
        copies += 1;
        for entry in scan_file(fs, &dir.join(name), &mut found.damage)? {
            if entry.height == 0 {
                if newest.as_ref().is_none_or(|(seq, _)| *seq < entry.time_ms) {
                    newest = Some((entry.time_ms, entry.bytes));
                }
            } else if let Ok(b) = peer::decode_block(&entry.bytes) {
                found.stored.push(b);
            }
        }
    }
    if copies == 0 && (!found.images.is_empty() || !found.chain.is_empty()) {
        found.damage.push(format!("both copies of the vote record ({CONSENSUS}, {MIRROR}) are missing"));
    }
    found.persistent = newest.and_then(|(_, bytes)| peer::decode_persistent(&bytes).ok());
    let proofs = proofs::read(fs, dir)?;
    found.proofs = proofs.proofs;
    found.damage.extend(proofs.damage);
    found.empty = found.images.is_empty() && found.chain.is_empty() && copies == 0;
    Ok(found)
}

/// The chat state of a whole image folder (digest checked).
pub fn image_state(fs: &dyn Fs, dir: &Path, height: Height) -> Result<ChatState, StorageError> {
    snapshot::load(fs, &snap_dir(dir, height))
}

/// Writes a replica's folder anew at `dir` (which must not exist): the image of `state`
/// after `block`, empty vote records, nothing else. Returns the image's hash.
pub fn seed(fs: &dyn Fs, dir: &Path, block: &Block, state: &ChatState) -> Result<Digest32, StorageError> {
    fs.create_dir_all(dir).map_err(io_err(dir))?;
    let folder = snap_dir(dir, block.height);
    fs.create_dir_all(&folder).map_err(io_err(&folder))?;
    snapshot::write(fs, &folder, state)?;
    let (_, digest) = pack(fs, &folder, false)?;
    super::replica_store::seal(fs, &folder, block, &digest, None)?;
    for name in [CONSENSUS, MIRROR] {
        super::replica_store::write_synced(fs, &dir.join(name), &[])?;
    }
    fs.sync_dir(dir).map_err(io_err(dir))?;
    Ok(digest)
}
