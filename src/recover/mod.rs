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

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::config::{ClusterConfig, signing_id};
use crate::consensus::{Block, Crypto, Hash, Height, signed};
use crate::crypto::PeerKeys;
use crate::storage::inspect::{self, Inspected};
use crate::storage::{Fs, RealFs};

pub use apply::{Done, apply, wipe};

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
    /// Two proven histories that conflict: (folder, folder, height), when no `--keep`
    /// chose between them.
    pub conflict: Option<(usize, usize, Height)>,
    /// Whether anything must change.
    pub changes: bool,
}

/// Every block any folder holds, by hash (each one's hash checked when read).
struct Index(BTreeMap<Hash, Block>);

impl Index {
    fn of(folders: &[Folder]) -> Index {
        let mut all = BTreeMap::new();
        for f in folders {
            let blocks = f.found.chain.values().chain(f.found.images.iter().map(|i| &i.block)).chain(&f.found.stored);
            for b in blocks.filter(|b| b.compute_hash() == b.hash) {
                all.insert(b.hash, b.clone());
            }
        }
        Index(all)
    }

    /// The hash of `hash`'s ancestor at `height` (itself at its own height), if the blocks
    /// between are known.
    fn ancestor(&self, hash: &Hash, height: Height) -> Option<Hash> {
        let mut at = self.0.get(hash)?;
        loop {
            if at.height == height {
                return Some(at.hash);
            }
            if at.height < height {
                return None;
            }
            if at.height == height + 1 {
                return Some(at.parent);
            }
            at = self.0.get(&at.parent)?;
        }
    }
}

/// The data folders of a config: `ROOT/ID` for every replica.
pub fn folders_of(config: &ClusterConfig, root: &Path) -> Vec<(String, PathBuf)> {
    config.replicas.iter().map(|r| (r.id.clone(), root.join(&r.id))).collect()
}

/// A running process that holds the cluster: a replica (its folder's LOCK) or `quintet up`
/// (the root's up.lock). Returns what holds it, for the refusal.
pub fn running(config: &ClusterConfig, root: &Path) -> Option<String> {
    let locks = folders_of(config, root).into_iter().map(|(id, dir)| (format!("replica {id}"), dir.join("LOCK")));
    for (what, lock) in locks.chain([("`quintet up`".to_string(), root.join("up.lock"))]) {
        if !lock.exists() {
            continue;
        }
        if let Err(crate::storage::pidlock::LockError::Held(pid)) = crate::storage::pidlock::lock(&lock) {
            return Some(format!("{what} is running{} ({} is locked)", pid.map_or(String::new(), |p| format!(" as pid {p}")), lock.display()));
        }
    }
    None
}

/// Reads and checks every folder; decides what to keep. Changes nothing.
pub fn plan(config: &ClusterConfig, root: &Path, keep: Option<&str>) -> anyhow::Result<Plan> {
    let fs = RealFs;
    let keys: Vec<_> = config.replicas.iter().map(|r| r.verifying_key()).collect();
    let epoch = config.epoch();
    let current = PeerKeys::new(keys.clone(), &config.signing_id());
    let q = config.quorum();
    let base = config.base();
    let mut folders = Vec::new();
    for (id, dir) in folders_of(config, root) {
        crate::storage::version::read(&dir).map_err(|e| anyhow::anyhow!(e))?;
        let found = inspect::inspect(&fs as &dyn Fs, &dir).map_err(|e| anyhow::anyhow!("reading {}: {e}", dir.display()))?;
        let mut folder = Folder { id, dir, found, bad_signatures: Vec::new(), proofs: Vec::new() };
        check_signatures(&mut folder, config, &current, epoch, base.0, &keys);
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

    // Conflicting proven histories: neither proven block extends the other.
    let mut conflict = None;
    for (i, a) in proven.iter().enumerate() {
        for (j, b) in proven.iter().enumerate().skip(i + 1) {
            let (Some((ha, xa, _)), Some((hb, xb, _))) = (a, b) else { continue };
            let (low, low_hash, high_hash) = if ha <= hb { (*ha, xa, xb) } else { (*hb, xb, xa) };
            if index.ancestor(high_hash, low).is_some_and(|x| x != *low_hash) {
                conflict.get_or_insert((i, j, low));
            }
        }
    }
    let chosen = match keep {
        Some(id) => {
            let i = folders.iter().position(|f| f.id == id).ok_or_else(|| anyhow::anyhow!("--keep {id}: no such replica in the config"))?;
            anyhow::ensure!(proven[i].is_some(), "--keep {id}: replica {id} holds no proven history");
            conflict = None;
            Some(i)
        }
        None if conflict.is_some() => None,
        None => (0..folders.len()).filter(|i| proven[*i].is_some()).max_by_key(|i| (proven[*i].as_ref().map(|p| p.0), std::cmp::Reverse(*i))),
    };
    let history = chosen.and_then(|i| {
        let (height, hash, how) = proven[i].clone()?;
        let block = index.0.get(&hash)?.clone();
        debug_assert_eq!(block.height, height);
        Some(History { block, from: i, proof: how })
    });

    let mut rows = Vec::new();
    let mut changes = false;
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
                if t.height >= p && !agrees(p) {
                    Finding::DivergedAt(first_difference(&index, &t.hash, &h.block.hash, p))
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
        changes |= finding != Finding::UpToDate || !damage.is_empty();
        if plan_base_mismatch(&history, base) {
            changes = true;
        }
        rows.push(Row {
            id: f.id.clone(),
            height,
            proven: proven[i].as_ref().map(|p| p.0),
            image: f.found.images.last().map(|im| (im.height, im.image_hash)),
            finding,
            damage,
        });
    }
    Ok(Plan { folders, rows, history, conflict, changes })
}

/// A history that ends below the last reset's block cannot be kept as it is (the replicas
/// would refuse to start under the config's `[reset]`): re-seed.
fn plan_base_mismatch(history: &Option<History>, base: (Height, Hash)) -> bool {
    history.as_ref().is_some_and(|h| h.block.height < base.0)
}

/// The lowest height at which two chains that differ at `at` are known to differ.
fn first_difference(index: &Index, a: &Hash, b: &Hash, at: Height) -> Height {
    let mut height = at;
    while height > 1 {
        match (index.ancestor(a, height - 1), index.ancestor(b, height - 1)) {
            (Some(x), Some(y)) if x != y => height -= 1,
            _ => break,
        }
    }
    height
}

/// Verifies the signatures a folder holds: its proofs (kept when they verify in the current
/// epoch), its images' certificates, the QCs of its chain above the reset's block, and its
/// vote record's QC.
fn check_signatures(f: &mut Folder, config: &ClusterConfig, current: &PeerKeys, epoch: u64, base: Height, keys: &[crate::crypto::VerifyingKey]) {
    let n = config.replicas.len();
    let q = config.quorum();
    let mut bad_proofs = 0;
    for p in &f.found.proofs {
        let c = &p.checkpoint;
        if p.epoch != epoch {
            continue; // signed before the last reset: the reset's block is proven already
        }
        let ok = (c.voter as usize) < n && current.verify(c.voter, &signed::checkpoint(c.height, &c.hash, c.state.as_ref()), &c.signature);
        if ok {
            f.proofs.push((c.voter as usize, c.height, c.hash));
        } else {
            bad_proofs += 1;
        }
    }
    if bad_proofs > 0 {
        f.bad_signatures.push(format!("{bad_proofs} kept CHECKPOINTs whose signatures do not verify"));
    }
    let epochs: Vec<PeerKeys> = (0..=epoch).map(|e| PeerKeys::new(keys.to_vec(), &signing_id(&config.cluster_id, e))).collect();
    let mut uncertified = Vec::new();
    for image in &mut f.found.images {
        let Some(cert) = &image.cert else { continue };
        let valid = |keys: &PeerKeys| {
            let mut signers = BTreeSet::new();
            cert.signatures.iter().all(|(who, sig)| {
                (*who as usize) < n
                    && signers.insert(*who)
                    && keys.verify(*who, &signed::checkpoint(cert.height, &cert.hash, Some(&cert.state)), sig)
            }) && signers.len() >= q
        };
        let ok = if cert.height > base { valid(current) } else { epochs.iter().any(valid) };
        if !ok {
            uncertified.push(image.height);
            image.cert = None;
        }
    }
    for h in uncertified {
        f.bad_signatures.push(format!("the state certificate of the image at height {h} does not verify"));
    }
    let checker = crate::consensus::Checker {
        n,
        qc_size: q,
        quorum: q,
        certificate_size: q,
        repeats_count: false,
        votes_any_height: false,
        base: config.base(),
        crypto: current,
    };
    let bad_qcs: Vec<Height> = f
        .found
        .chain
        .values()
        .filter(|b| b.parent_qc.height > base && (b.parent_qc.hash != b.parent || checker.qc(&b.parent_qc).is_err()))
        .map(|b| b.height)
        .collect();
    if let Some(first) = bad_qcs.first() {
        f.bad_signatures.push(format!("{} committed blocks from height {first} whose QC does not verify", bad_qcs.len()));
        // Not to be trusted as history: dropped from what this folder offers.
        f.found.chain.retain(|h, _| h < first);
    }
    if let Some(p) = &f.found.persistent
        && p.high_qc.height > base
        && checker.qc(&p.high_qc).is_err()
    {
        f.bad_signatures.push("the vote record's QC does not verify".into());
    }
}

/// The report: one row per replica, then the history kept.
pub fn table(plan: &Plan) -> String {
    let mut out = format!("{:<8} {:>8} {:>8}  {:<24} {}\n", "REPLICA", "HEIGHT", "PROVEN", "IMAGE (HEIGHT: SHA256)", "FOUND");
    for r in &plan.rows {
        let proven = r.proven.map_or("-".to_string(), |p| p.to_string());
        let image = r.image.map_or("-".to_string(), |(h, d)| format!("{h}: {}…", &crate::crypto::encode_hex(&d)[..12]));
        let mut found = match &r.finding {
            Finding::UpToDate => "up to date".to_string(),
            Finding::Undecided => "holds a proven history".to_string(),
            Finding::Empty => "no data".to_string(),
            Finding::Behind => "behind".to_string(),
            Finding::Unprovable(n) => format!("{n} unprovable block{} above the history", if *n == 1 { "" } else { "s" }),
            Finding::DivergedAt(h) => format!("diverged at height {h}"),
        };
        if !r.damage.is_empty() {
            found.push_str(&format!("; damaged: {}", r.damage.join("; ")));
        }
        out.push_str(&format!("{:<8} {:>8} {:>8}  {:<24} {found}\n", r.id, r.height, proven, image));
    }
    match (&plan.history, plan.conflict) {
        (Some(h), _) => out.push_str(&format!(
            "history kept: height {}, block {}…, from {}, proven by {}\n",
            h.block.height,
            &crate::crypto::encode_hex(&h.block.hash)[..16],
            plan.folders[h.from].id,
            h.proof
        )),
        (None, Some((a, b, height))) => out.push_str(&format!(
            "two proven histories conflict at height {height}: {}'s and {}'s (more than two replicas failed or lied); \
             choose one with --keep {} or --keep {} (the other stays in the backup)\n",
            plan.folders[a].id, plan.folders[b].id, plan.folders[a].id, plan.folders[b].id
        )),
        (None, None) => out.push_str("no proven history: no folder holds a block that q replicas signed CHECKPOINTs for\n"),
    }
    out
}
