//! What the simulator checks.
//! - After every commit: honest replicas never commit different blocks at one height.
//! - After every step: no honest core found a certified block conflicting with its own
//!   committed chain.
//! - After every state transfer: the installed chat state equals the state the one committed
//!   history gives at that height.
//! - At the end: every result a client accepted (q matching replies) is exactly what the one
//!   committed history gives for that request, at that height (so no accepted request was
//!   lost, and the client-visible history is linearizable: it respects real-time order);
//!   and, after the liveness phase, every client operation completed.

use std::collections::BTreeMap;

use super::client::Accepted;
use super::node::Node;
use crate::consensus::{Block, Hash, Height, ReplicaId};

pub struct Checker {
    honest: Vec<bool>,
    /// height -> (the block, first honest replica that committed it): the one history.
    agreed: BTreeMap<Height, (Block, ReplicaId)>,
    pub violations: Vec<String>,
}

fn short(hash: &Hash) -> String {
    crate::crypto::encode_hex(&hash[..4])
}

impl Checker {
    pub fn new(honest: Vec<bool>) -> Self {
        Checker { honest, agreed: BTreeMap::new(), violations: Vec::new() }
    }

    pub fn on_commit(&mut self, id: ReplicaId, block: &Block, now: u64) {
        if !self.honest[id as usize] {
            return;
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
