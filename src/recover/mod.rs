//! Recovery after more than two faults (`quintet recover`, run by `reset.sh`): read every
//! replica's folder, find the longest history that signed CHECKPOINTs prove, and re-seed
//! every replica from it in a new reset epoch.
//!
//! A block is *proven* when q replicas signed CHECKPOINTs (S11) naming it or a descendant
//! (kept in each folder's proofs.qlog), when a state certificate (q state CHECKPOINTs, an
//! image's cert.pb) names it or a descendant, or when it is the block the last reset started
//! from. A QC chain alone proves nothing (S4's 2Δ condition is local), and a block only one
//! folder holds proves nothing either.
//!
//! `plan` reads and decides, and changes nothing; `apply` (in `apply.rs`) backs up, re-seeds
//! and writes the new cluster.toml.

mod apply;
mod index;
mod locks;
mod report;
mod signatures;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::config::ClusterConfig;
use crate::consensus::{Block, Hash, Height};
use crate::crypto::PeerKeys;
use crate::storage::inspect::{self, Inspected};
use crate::storage::{Fs, RealFs};

pub use apply::{Done, STAGE, apply, refill, resume, wipe};
pub use locks::{Locks, lock_all};
pub use report::table;
use index::{Index, first_difference};
use signatures::check_signatures;

/// One replica's folder, read and checked.
pub struct Folder {
    pub id: String,
    pub dir: PathBuf,
    pub found: Inspected,
    /// Signatures that did not verify (proofs, certificates, QCs), one line each.
    pub bad_signatures: Vec<String>,
    /// Signers (replica indexes) whose proofs this folder holds, per the height they reach.
    proofs: Vec<(usize, Height, Hash)>,
}

/// What became of one replica in the plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    UpToDate,
    /// No history was chosen (conflicting proven histories): its own proven tip is shown.
    Undecided,
    Empty,
    Behind,
    /// Agrees with the history through its proven tip, holds blocks above it nobody proves.
    Unprovable(u64),
    DivergedAt(Height),
    /// Its own proven history reaches above the kept one, and no folder holds the blocks
    /// that would show whether it extends it.
    Unrelated,
}

pub struct Row {
    pub id: String,
    pub height: Height,
    /// The highest block of its own chain that is proven.
    pub proven: Option<Height>,
    /// Its newest image: height and sha256.
    pub image: Option<(Height, [u8; 32])>,
    pub finding: Finding,
    pub damage: Vec<String>,
}

/// The history recovery keeps: its proven tip and who proves it.
#[derive(Clone, Debug)]
pub struct History {
    pub block: Block,
    /// The folder it comes from.
    pub from: usize,
    /// How it is proven, for the report.
    pub proof: String,
}

pub struct Plan {
    pub folders: Vec<Folder>,
    pub rows: Vec<Row>,
    pub history: Option<History>,
    /// Two proven histories that conflict, when no `--keep` chose between them.
    pub conflict: Option<Conflict>,
    /// Whether anything must change: the cluster cannot recover by itself (fewer than q
    /// folders hold the proven history, or one is damaged, diverged, or cannot start).
    pub changes: bool,
    /// Blocks above the kept history that some folder holds committed but nobody proves
    /// (dropped by a re-seed; in the backup), as (folder, count).
    pub unproven: Vec<(usize, u64)>,
    /// When the only change needed is folders that cannot start (empty, or below the
    /// reset's block, after a reset) while q others hold the history: those folders, to be
    /// re-seeded in place in the same epoch (`apply::refill`).
    pub refill: Vec<usize>,
    /// Lines for the report beyond the table.
    pub notes: Vec<String>,
}

/// Two folders' proven tips of which neither extends the other.
#[derive(Clone, Debug)]
pub struct Conflict {
    /// (folder, proven height, block hash, how it is proven) for each side.
    pub sides: [(usize, Height, Hash, String); 2],
    /// They differ at this height; `None` when no folder holds the blocks that would tell
    /// (the longer history's blocks down to the shorter one's tip were pruned).
    pub at: Option<Height>,
}

/// The data folders of a config: `ROOT/ID` for every replica.
pub fn folders_of(config: &ClusterConfig, root: &Path) -> Vec<(String, PathBuf)> {
    config.replicas.iter().map(|r| (r.id.clone(), root.join(&r.id))).collect()
}

/// What the operator asked for besides the defaults.
#[derive(Clone, Debug, Default)]
pub struct Choice {
    /// `--keep REPLICA`: its history wins a conflict.
    pub keep: Option<String>,
    /// `--unproven` (with `--keep`): keep that replica's whole committed chain, proven or not.
    pub unproven: bool,
}

pub fn plan(config: &ClusterConfig, root: &Path, choice: &Choice) -> anyhow::Result<Plan> {
    let fs = RealFs;
    let keys: Vec<_> = config.replicas.iter().map(|r| r.verifying_key()).collect();
    let epoch = config.epoch();
    let current = PeerKeys::new(keys.clone(), &config.signing_id());
    let q = config.quorum();
    let base = config.base();
    let mut folders = Vec::new();
    for (id, dir) in folders_of(config, root) {
        let version = match crate::storage::version::read(&dir) {
            // A newer release's folder: this one cannot know what it holds.
            Err(crate::storage::version::VersionError::Newer(e)) => anyhow::bail!(e),
            Err(crate::storage::version::VersionError::Unreadable(e)) => Some(e),
            Ok(_) => None,
        };
        let mut found = inspect::inspect(&fs as &dyn Fs, &dir).map_err(|e| anyhow::anyhow!("reading {}: {e}", dir.display()))?;
        found.damage.extend(version);
        let mut other_epoch = false;
        if !found.empty {
            let held = match std::fs::read_to_string(dir.join(crate::storage::version::EPOCH_FILE)) {
                Ok(text) => crate::storage::version::parse_epoch(&text).ok_or(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((0, None)),
                Err(_) => Err(()),
            };
            match held {
                Ok((_, Some(other))) if other != config.cluster_id => {
                    anyhow::bail!("{} holds data of another cluster (id {other}), not of {}'s (id {})", dir.display(), "this cluster.toml", config.cluster_id)
                }
                Ok((e, _)) if e > epoch => anyhow::bail!(
                    "{} was re-seeded by a reset to epoch {e}, but this cluster.toml is at reset epoch {epoch}: use the cluster.toml that reset wrote",
                    dir.display()
                ),
                Ok((e, _)) if e == epoch => {}
                Ok((e, _)) => {
                    other_epoch = true;
                    found.damage.push(format!("holds data of reset epoch {e}, not {epoch} (left out of the last reset)"));
                }
                Err(()) => found.damage.push(format!("{} is not a reset epoch", crate::storage::version::EPOCH_FILE)),
            }
        }
        let mut folder = Folder { id, dir, found, bad_signatures: Vec::new(), proofs: Vec::new() };
        check_signatures(&mut folder, config, &current, epoch, base.0, &keys, other_epoch);
        folders.push(folder);
    }
    let index = Index::of(&folders);
    // Every valid proof, from every folder: (signer, height, hash).
    let proofs: BTreeSet<(usize, Height, Hash)> = folders.iter().flat_map(|f| f.proofs.iter().copied()).collect();
    let certs: Vec<(Height, Hash)> = folders
        .iter()
        .flat_map(|f| f.found.images.iter().filter(|i| i.cert.is_some()).map(|i| (i.height, i.block.hash)))
        .collect();

    // Each folder's proven tip on its own chain.
    let mut proven: Vec<Option<(Height, Hash, String)>> = Vec::new();
    for f in &folders {
        let Some(tip) = f.found.tip() else {
            proven.push(None);
            continue;
        };
        let on_chain = |height: Height, hash: &Hash| -> Option<Height> {
            if height <= tip.height {
                (index.ancestor(&tip.hash, height) == Some(*hash)).then_some(height)
            } else {
                (index.ancestor(hash, tip.height) == Some(tip.hash)).then_some(tip.height)
            }
        };
        let mut reach: BTreeMap<usize, Height> = BTreeMap::new();
        for (signer, height, hash) in &proofs {
            if let Some(h) = on_chain(*height, hash) {
                let r = reach.entry(*signer).or_default();
                *r = (*r).max(h);
            }
        }
        let mut heights: Vec<Height> = reach.values().copied().collect();
        heights.sort_unstable_by(|a, b| b.cmp(a));
        let mut best: Option<(Height, String)> = heights.get(q - 1).map(|h| {
            let who: Vec<&str> = reach.iter().filter(|(_, r)| **r >= *h).map(|(s, _)| config.replicas[*s].id.as_str()).collect();
            (*h, format!("CHECKPOINTs signed by {}", who.join(", ")))
        });
        for (height, hash) in &certs {
            if let Some(h) = on_chain(*height, hash)
                && best.as_ref().is_none_or(|(b, _)| h > *b)
            {
                best = Some((h, "a state certificate".into()));
            }
        }
        if base.0 > 0
            && on_chain(base.0, &base.1).is_some()
            && best.as_ref().is_none_or(|(b, _)| base.0 > *b)
        {
            best = Some((base.0, format!("the last reset (epoch {epoch})")));
        }
        proven.push(best.and_then(|(h, how)| index.ancestor(&tip.hash, h).map(|hash| (h, hash, how))));
    }

    // Conflicting proven histories: neither proven block extends the other, or no folder
    // holds the blocks that would tell (then the operator must choose: an honest replica
    // that is merely behind is told from a diverged one only by those blocks).
    let related = |a: &(Height, Hash, String), b: &(Height, Hash, String)| -> Option<bool> {
        let ((low, low_hash, _), (_, high_hash, _)) = if a.0 <= b.0 { (a, b) } else { (b, a) };
        index.ancestor(high_hash, *low).map(|x| x == *low_hash)
    };
    // How many folders' proven histories a proven tip is part of.
    let support = |p: &(Height, Hash, String)| proven.iter().flatten().filter(|o| related(o, p) == Some(true) && o.0 >= p.0).count();
    let mut conflict = None;
    for (i, a) in proven.iter().enumerate() {
        for (j, b) in proven.iter().enumerate().skip(i + 1) {
            let (Some(pa), Some(pb)) = (a, b) else { continue };
            let relation = related(pa, pb);
            // A lone lower history that cannot be compared with one q folders hold is
            // taken as behind (a folder restored from an old backup), not as a conflict.
            let (low, high) = if pa.0 <= pb.0 { (pa, pb) } else { (pb, pa) };
            if relation.is_none() && support(high) >= q && support(low) < q {
                continue;
            }
            if conflict.is_none() && relation != Some(true) {
                let low = pa.0.min(pb.0);
                let (high_hash, low_hash) = if pa.0 <= pb.0 { (&pb.1, &pa.1) } else { (&pa.1, &pb.1) };
                let at = index.ancestor(high_hash, low).map(|_| first_difference(&index, high_hash, low_hash, low));
                conflict = Some(Conflict { sides: [(i, pa.0, pa.1, pa.2.clone()), (j, pb.0, pb.1, pb.2.clone())], at });
            }
        }
    }
    let chosen = match &choice.keep {
        Some(id) => {
            let i = folders.iter().position(|f| &f.id == id).ok_or_else(|| anyhow::anyhow!("--keep {id}: no such replica in the config"))?;
            anyhow::ensure!(proven[i].is_some() || choice.unproven, "--keep {id}: replica {id} holds no proven history (--unproven keeps its committed chain anyway)");
            conflict = None;
            // The highest proven history that X's proven tip belongs to (X's own with
            // --unproven: its chain goes on from there).
            match &proven[i] {
                Some(mine) if !choice.unproven => {
                    let related_to_mine: Vec<usize> = (0..folders.len()).filter(|j| proven[*j].as_ref().is_some_and(|p| related(mine, p) == Some(true))).collect();
                    for (x, a) in related_to_mine.iter().enumerate() {
                        for b in &related_to_mine[x + 1..] {
                            let (pa, pb) = (proven[*a].as_ref().expect("filtered"), proven[*b].as_ref().expect("filtered"));
                            anyhow::ensure!(
                                related(pa, pb) == Some(true),
                                "--keep {id}: replica {id}'s history is the common part of two that conflict, {}'s (height {}) and {}'s (height {}): keep one of those",
                                folders[*a].id,
                                pa.0,
                                folders[*b].id,
                                pb.0
                            );
                        }
                    }
                    related_to_mine.into_iter().max_by_key(|j| (proven[*j].as_ref().map(|p| p.0), *j == i))
                }
                _ => Some(i),
            }
        }
        None if conflict.is_some() => None,
        None => (0..folders.len()).filter(|i| proven[*i].is_some()).max_by_key(|i| (proven[*i].as_ref().map(|p| p.0), std::cmp::Reverse(*i))),
    };
    let mut history = chosen.and_then(|i| {
        let (height, hash, how) = proven[i].clone()?;
        let block = index.0.get(&hash)?.clone();
        debug_assert_eq!(block.height, height);
        Some(History { block, from: i, proof: how })
    });
    // --unproven: the kept replica's whole committed chain, when it reaches higher.
    if choice.unproven {
        let id = choice.keep.as_deref().ok_or_else(|| anyhow::anyhow!("--unproven needs --keep REPLICA: whose committed chain to keep"))?;
        let i = folders.iter().position(|f| f.id == id).expect("checked above");
        let tip = folders[i].found.tip().ok_or_else(|| anyhow::anyhow!("--keep {id}: replica {id} holds no blocks"))?;
        if let Some(h) = history.as_ref().filter(|h| tip.height > h.block.height && index.ancestor(&tip.hash, h.block.height) != Some(h.block.hash)) {
            anyhow::bail!(
                "--unproven --keep {id}: replica {id}'s committed chain does not extend the proven history at height {} (from {})",
                h.block.height,
                folders[h.from].id
            );
        }
        if history.as_ref().is_none_or(|h| tip.height > h.block.height) {
            let proof = format!("nothing above height {}: replica {id}'s committed chain, kept unproven (--unproven)", proven[i].as_ref().map_or(0, |p| p.0));
            history = Some(History { block: tip.clone(), from: i, proof });
        }
    }

    let mut rows = Vec::new();
    // A history that ends below the last reset's block cannot be kept as it is (the replicas
    // would refuse to start under the config's `[reset]`): re-seed.
    let mut changes = history.as_ref().is_some_and(|h| h.block.height < base.0) || choice.unproven;
    for (i, f) in folders.iter().enumerate() {
        let tip = f.found.tip();
        let height = tip.map_or(0, |t| t.height);
        let finding = match (&history, tip) {
            (_, None) => Finding::Empty,
            (None, Some(_)) => Finding::Undecided,
            (Some(h), Some(t)) => {
                let p = h.block.height;
                let agrees = |at: Height| match index.ancestor(&t.hash, at).or_else(|| f.found.hash_at(at)) {
                    Some(x) => index.ancestor(&h.block.hash, at).is_none_or(|y| x == y),
                    None => true,
                };
                let own_proven_above = proven[i].as_ref().is_some_and(|o| o.0 > p);
                if t.height >= p && !agrees(p) {
                    Finding::DivergedAt(first_difference(&index, &t.hash, &h.block.hash, p))
                } else if own_proven_above && index.ancestor(&t.hash, p) != Some(h.block.hash) {
                    Finding::Unrelated
                } else if t.height < p && !agrees(t.height) {
                    Finding::DivergedAt(first_difference(&index, &h.block.hash, &t.hash, t.height))
                } else if t.height < p {
                    Finding::Behind
                } else if t.height > p {
                    Finding::Unprovable(t.height - p)
                } else {
                    Finding::UpToDate
                }
            }
        };
        let damage: Vec<String> = f.found.damage.iter().chain(&f.bad_signatures).cloned().collect();
        // What the cluster does not repair by itself: damage, divergence, and a folder that
        // cannot start (an empty one or one behind the reset's block, after a reset).
        changes |= !damage.is_empty()
            || matches!(finding, Finding::DivergedAt(_) | Finding::Unrelated);
        rows.push(Row {
            id: f.id.clone(),
            height,
            proven: proven[i].as_ref().map(|p| p.0),
            image: f.found.images.last().map(|im| (im.height, im.image_hash)),
            finding,
            damage,
        });
    }
    // Blocks above the history that two folders hold differently: neither is proven, and
    // started as they are, one would be taken and the other's holder stuck (and accused).
    let mut notes = Vec::new();
    if let Some(h) = &history {
        let tips: Vec<(usize, (Height, Hash, String))> = folders
            .iter()
            .enumerate()
            .filter_map(|(i, f)| f.found.tip().filter(|t| t.height > h.block.height).map(|t| (i, (t.height, t.hash, String::new()))))
            .collect();
        'pairs: for (x, (a, ta)) in tips.iter().enumerate() {
            for (b, tb) in &tips[x + 1..] {
                if related(ta, tb) == Some(false) {
                    let low = ta.0.min(tb.0);
                    let (high_hash, low_hash) = if ta.0 <= tb.0 { (&tb.1, &ta.1) } else { (&ta.1, &tb.1) };
                    notes.push(format!(
                        "{}'s and {}'s blocks above the kept history differ from height {}: neither is proven, so neither can win \
                         by itself; the re-seed keeps the proven history (both stay in the backup)",
                        folders[*a].id,
                        folders[*b].id,
                        first_difference(&index, high_hash, low_hash, low)
                    ));
                    changes = true;
                    break 'pairs;
                }
            }
        }
    }
    // Fewer than q folders hold the history: the others cannot catch up from them.
    let holders = rows.iter().filter(|r| matches!(r.finding, Finding::UpToDate | Finding::Unprovable(_))).count();
    if history.is_some() && holders < q {
        changes = true;
    }
    // Folders that cannot start after a reset (empty, or below its block): when nothing
    // else needs a reset, they are re-seeded in place, in the same epoch.
    let cannot_start: Vec<usize> = rows
        .iter()
        .enumerate()
        .filter(|(_, r)| base.0 > 0 && matches!(r.finding, Finding::Empty | Finding::Behind) && r.height < base.0)
        .map(|(i, _)| i)
        .collect();
    let refill = if !changes && history.is_some() { cannot_start } else { Vec::new() };
    let unproven = rows.iter().enumerate().filter_map(|(i, r)| if let Finding::Unprovable(n) = r.finding { Some((i, n)) } else { None }).collect();
    Ok(Plan { folders, rows, history, conflict, changes, unproven, refill, notes })
}

