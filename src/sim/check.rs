//! What the simulator checks.
//! - After every commit: honest replicas never commit different blocks at one height.
//! - After every step: no honest core found a certified block conflicting with its own
//!   committed chain.
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
    /// height -> (block hash, first honest replica that committed it)
    agreed: BTreeMap<Height, (Hash, ReplicaId)>,
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
                self.agreed.insert(block.height, (block.hash, id));
            }
            Some((hash, first)) if *hash != block.hash => self.violations.push(format!(
                "agreement: at height {} replica {first} committed {} but replica {id} committed {} (t={now})",
                block.height,
                short(hash),
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

    pub fn agreed_height(&self) -> Height {
        self.agreed.keys().next_back().copied().unwrap_or(0)
    }

    /// Checks accepted results against the longest honest committed chain, executed afresh.
    pub fn check_accepted(&mut self, nodes: &[Node], accepted: &[Accepted]) {
        let Some(longest) = nodes
            .iter()
            .filter(|n| self.honest[n.id as usize])
            .max_by_key(|n| n.disk.committed.len())
        else {
            return;
        };
        let mut reference = Node::new(255, None);
        let mut results: BTreeMap<[u8; 32], (u64, Vec<u8>)> = BTreeMap::new();
        for block in &longest.disk.committed {
            for e in reference.execute(block) {
                use prost::Message as _;
                results.entry(e.digest).or_insert((e.height, e.outcome.encode_to_vec()));
            }
        }
        for a in accepted {
            match results.get(&a.digest) {
                None => self.violations.push(format!(
                    "lost: client {} accepted a result at height {} that the committed history (height {}) does not hold",
                    a.client,
                    a.height,
                    longest.disk.committed.len()
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
