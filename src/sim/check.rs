//! What the simulator checks.
//! - After every commit: honest replicas never commit different blocks at one height.
//! - After every step: no honest core found a certified block conflicting with its own
//!   committed chain, and no honest replica **holds** a QC that the commits rule out: when an
//!   honest replica commits a block A by S4 (its *anchor*; the blocks below it are committed
//!   as ancestors, and a checkpoint certificate or state image commits what some S4 commit
//!   already covered), every QC that ranks at least as high as A — (view, height) ≥ A's —
//!   certifies a block that extends A. This is exactly what the safety
//!   argument proves (NOTEBOOK, QOP v2), so a fork shows up as a safety violation as soon
//!   as a forking QC exists, not later as "no progress". (Ancestors committed through a
//!   later anchor carry no such promise: a Byzantine leader's view may certify two chains,
//!   and the next views pick one.) Checked when the QC is learned and again at the end.
//! - Whenever a core reports a proof of misbehaviour: it accuses a Byzantine replica.
//! - At the end: no request took effect that no client sent (a Byzantine leader cannot
//!   order "send as alice" in alice's name).
//! - After every state transfer: the installed chat state equals the state the one committed
//!   history gives at that height.
//! - At the end: every result a client accepted (q matching replies) is exactly what the one
//!   committed history gives for that request, at that height (so no accepted request was
//!   lost, and the client-visible history is linearizable: it respects real-time order);
//!   and, after the liveness phase, every client operation completed.

use std::collections::{BTreeMap, BTreeSet};

use super::client::Accepted;
use super::node::Node;
use crate::consensus::{Action, Block, Hash, Height, ReplicaId};

pub struct Checker {
    honest: Vec<bool>,
    /// height -> (the block, first honest replica that committed it): the one history.
    agreed: BTreeMap<Height, (Block, ReplicaId)>,
    /// Every block any replica stored: hash -> (height, parent), to walk QCs' chains.
    registry: BTreeMap<Hash, (Height, Hash)>,
    /// QCs honest replicas learned: hash -> (view, height, first holder).
    held: BTreeMap<Hash, (u64, Height, ReplicaId)>,
    /// Blocks honest replicas committed by S4: (view, height) -> hash.
    anchors: BTreeMap<(u64, Height), Hash>,
    /// Digests of every request a client sent.
    pub sent: BTreeSet<[u8; 32]>,
    /// Planted bug: the reference replay executes unchecked requests, as the replicas do.
    pub unchecked_requests: bool,
    pub violations: Vec<String>,
    /// Proofs cores found against Byzantine replicas, and how many of them needed the
    /// view's blocks between the two proposals.
    pub proofs: u64,
    pub chain_proofs: u64,
}

fn short(hash: &Hash) -> String {
    crate::crypto::encode_hex(&hash[..4])
}

impl Checker {
    pub fn new(honest: Vec<bool>, unchecked_requests: bool) -> Self {
        Checker {
            honest,
            agreed: BTreeMap::new(),
            registry: BTreeMap::new(),
            held: BTreeMap::new(),
            anchors: BTreeMap::new(),
            sent: BTreeSet::new(),
            unchecked_requests,
            violations: Vec::new(),
            proofs: 0,
            chain_proofs: 0,
        }
    }

    /// What one input to replica `id`'s core produced: the blocks it stored, committed or
    /// installed (for the registry), and the QCs it learned.
    pub fn observe(&mut self, id: ReplicaId, actions: &[Action], learned: Vec<(u64, Height, Hash)>) {
        for action in actions {
            match action {
                Action::StoreBlock(b) | Action::Commit(b) => self.on_block(b),
                Action::InstallState(t) => self.on_block(&t.block),
                Action::Evidence(e) => self.on_evidence(id, e),
                _ => {}
            }
        }
        self.on_qcs(id, learned);
    }

    /// A proof a core found (checked there): it must accuse a Byzantine replica.
    fn on_evidence(&mut self, id: ReplicaId, e: &crate::consensus::Evidence) {
        let accused = e.accused();
        if self.honest.get(accused as usize).copied().unwrap_or(false) {
            self.violations.push(format!("evidence: replica {id} holds a proof ({}) against honest replica {accused}", e.kind()));
        } else {
            self.proofs += 1;
            self.chain_proofs += u64::from(matches!(e, crate::consensus::Evidence::ChainEquivocation(_)));
        }
    }

    /// Replica `id`'s S4 commits (anchors) that took effect.
    pub fn on_s4_commits(&mut self, id: ReplicaId, s4_commits: Vec<(u64, Height, Hash)>) {
        for (view, height, hash) in s4_commits {
            self.on_anchor(id, view, height, hash);
        }
    }

    /// A block some replica stored (its links let QCs be walked).
    fn on_block(&mut self, block: &Block) {
        self.registry.entry(block.hash).or_insert((block.height, block.parent));
    }

    /// An honest replica learned these QCs.
    fn on_qcs(&mut self, id: ReplicaId, qcs: Vec<(u64, Height, Hash)>) {
        if !self.honest[id as usize] {
            return;
        }
        for (view, height, hash) in qcs {
            if self.held.contains_key(&hash) {
                continue;
            }
            self.held.insert(hash, (view, height, id));
            self.check_qc(view, height, hash);
        }
    }

    /// The ancestor of `hash` at `height`, walking the registry; `None` if a link is unknown.
    fn ancestor(&self, mut hash: Hash, mut at: Height, height: Height) -> Option<Hash> {
        while at > height {
            let (h, parent) = self.registry.get(&hash)?;
            if *h != at {
                return None;
            }
            hash = *parent;
            at -= 1;
        }
        Some(hash)
    }

    /// An honest replica committed this block by S4 (QC, same-view descendant QC, 2Δ).
    fn on_anchor(&mut self, id: ReplicaId, view: u64, height: Height, hash: Hash) {
        if self.honest[id as usize] {
            self.anchors.insert((view, height), hash);
        }
    }

    /// A QC (view, height, hash) against the anchors (see the top of the file).
    fn check_qc(&mut self, view: u64, height: Height, hash: Hash) {
        if self.violations.iter().any(|v| v.starts_with("safety")) {
            return;
        }
        let Some((&(aview, aheight), &anchor)) = self.anchors.range(..=(view, height)).next_back() else { return };
        let fine = height >= aheight && self.ancestor(hash, height, aheight).is_none_or(|a| a == anchor);
        if !fine {
            let holder = self.held.get(&hash).map_or(255, |h| h.2);
            self.violations.push(format!(
                "safety: replica {holder} holds a QC for {} (view {view}, height {height}) that does not extend the block committed at height {aheight} in view {aview} ({})",
                short(&hash),
                short(&anchor)
            ));
        }
    }

    /// At the end: every QC held by an honest replica against the final history.
    pub fn check_held_qcs(&mut self) {
        let held: Vec<(Hash, u64, Height)> = self.held.iter().map(|(h, (v, ht, _))| (*h, *v, *ht)).collect();
        for (hash, view, height) in held {
            self.check_qc(view, height, hash);
        }
    }

    pub fn on_commit(&mut self, id: ReplicaId, block: &Block, now: u64) {
        if !self.honest[id as usize] {
            return;
        }
        // A block is named by its hash: contents that do not hash to the name are another
        // block under a stolen name (an honest replica must have checked, S9 and S11).
        if block.compute_hash() != block.hash {
            self.violations.push(format!(
                "agreement: at height {} replica {id} committed contents that do not hash to {} (t={now})",
                block.height,
                short(&block.hash)
            ));
        }
        match self.agreed.get(&block.height) {
            None => {
                self.agreed.insert(block.height, (block.clone(), id));
            }
            Some((agreed, first)) if agreed.hash != block.hash => self.violations.push(format!(
                "agreement: at height {} replica {first} committed {} but replica {id} committed {} (t={now})",
                block.height,
                short(&agreed.hash),
                short(&block.hash)
            )),
            Some(_) => {}
        }
    }

    pub fn on_conflicts(&mut self, id: ReplicaId, conflicts: u64) {
        if conflicts > 0 && self.honest[id as usize] && !self.violations.iter().any(|v| v.starts_with("conflict")) {
            self.violations.push(format!("conflict: replica {id} holds a certified block that forks its committed chain"));
        }
    }

    /// The block the history holds at `height`.
    pub fn block_at(&self, height: Height) -> Option<&Block> {
        self.agreed.get(&height).map(|(b, _)| b)
    }

    pub fn agreed_height(&self) -> Height {
        self.agreed.keys().next_back().copied().unwrap_or(0)
    }

    /// Executes the one committed history through `height` on a fresh replica; `None` (and
    /// a violation) if a height is missing from it.
    fn replay(&mut self, height: Height) -> Option<(Node, Vec<super::node::Executed>)> {
        let mut reference = Node::new(255, None);
        reference.unchecked_requests = self.unchecked_requests;
        let mut executed = Vec::new();
        for h in 1..=height {
            let Some((block, _)) = self.agreed.get(&h) else {
                self.violations.push(format!("history: no honest replica committed height {h}"));
                return None;
            };
            executed.extend(reference.execute(&block.clone()));
        }
        Some((reference, executed))
    }

    /// A replica installed a state image at `height`: it must be the history's state there.
    pub fn on_install(&mut self, id: ReplicaId, height: Height, state: &crate::chat::ChatState) {
        if !self.honest[id as usize] {
            return;
        }
        let Some((reference, _)) = self.replay(height) else { return };
        if reference.chat.digest() != state.digest() {
            self.violations.push(format!("state transfer: replica {id} installed a state at height {height} that the history does not give"));
        }
    }

    /// Checks accepted results against the one committed history, executed afresh.
    pub fn check_accepted(&mut self, accepted: &[Accepted]) {
        let top = self.agreed_height();
        let Some((_, executed)) = self.replay(top) else { return };
        let mut results: BTreeMap<[u8; 32], (u64, Vec<u8>)> = BTreeMap::new();
        for e in executed {
            use prost::Message as _;
            if e.applied && !self.sent.contains(&e.digest) && !self.violations.iter().any(|v| v.starts_with("forged")) {
                self.violations.push(format!(
                    "forged: a request in {}'s name that no client sent took effect at height {}",
                    e.user, e.height
                ));
            }
            results.entry(e.digest).or_insert((e.height, e.outcome.encode_to_vec()));
        }
        for a in accepted {
            match results.get(&a.digest) {
                None => self.violations.push(format!(
                    "lost: client {} accepted a result at height {} that the committed history (height {}) does not hold",
                    a.client,
                    a.height,
                    top
                )),
                Some((height, outcome)) if *height != a.height || *outcome != a.outcome => self.violations.push(format!(
                    "linearizability: client {} accepted height {} but the history gives height {height} or another result",
                    a.client, a.height
                )),
                Some(_) => {}
            }
        }
        // Real-time order: an operation accepted before another was submitted comes first.
        let mut by_accept: Vec<&Accepted> = accepted.iter().collect();
        by_accept.sort_by_key(|a| a.accepted_ms);
        for b in accepted {
            if let Some(a) = by_accept.iter().find(|a| a.accepted_ms < b.submitted_ms && a.height >= b.height) {
                self.violations.push(format!(
                    "real-time order: client {}'s result at height {} was accepted before client {}'s request (height {}) was sent",
                    a.client, a.height, b.client, b.height
                ));
                break;
            }
        }
    }
}
