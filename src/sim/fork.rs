//! The forking coalition: a Byzantine leader and its accomplice build two chains at once,
//! one for each half of the honest replicas, and hide each chain from the other half. It is
//! the attack the 2Δ wait of S4b exists for: without the wait, both halves can commit
//! before the honest replicas' forwarding reveals the equivocation (which the network may
//! delay by up to Δ, as synchrony allows).

use std::collections::{BTreeMap, BTreeSet};

use crate::consensus::{
    self, Action, Block, Crypto, Hash, Justification, Message, Proposal, QuorumCert, ReplicaId, SimCrypto, Vote,
};

/// Blocks the shadow chain grows to (enough for a 2-chain and a commit).
const SHADOW_MAX: usize = 4;

pub struct Fork {
    pub leader: ReplicaId,
    pub partner: ReplicaId,
    /// Honest replicas shown the leader's real chain.
    pub group_a: Vec<ReplicaId>,
    /// Honest replicas shown the shadow chain.
    pub group_b: Vec<ReplicaId>,
    quorum: usize,
    shadow: BTreeMap<Hash, Block>,
    shadow_justification: Option<Justification>,
    tip: Option<(Block, QuorumCert)>,
    votes: BTreeMap<Hash, BTreeMap<ReplicaId, Vec<u8>>>,
    certified: BTreeSet<Hash>,
}

impl Fork {
    pub fn new(leader: ReplicaId, partner: ReplicaId, honest: Vec<ReplicaId>, quorum: usize) -> Self {
        let group_a = honest[..1].to_vec();
        let group_b = honest[1..].to_vec();
        Fork {
            leader,
            partner,
            group_a,
            group_b,
            quorum,
            shadow: BTreeMap::new(),
            shadow_justification: None,
            tip: None,
            votes: BTreeMap::new(),
            certified: BTreeSet::new(),
        }
    }

    pub fn member(&self, id: ReplicaId) -> bool {
        id == self.leader || id == self.partner
    }

    fn coalition_vote(&mut self, block: &Block, out: &mut Vec<Action>) {
        for voter in [self.leader, self.partner] {
            let signature = SimCrypto { me: voter }.sign(&consensus::signed::vote(block.view, block.height, &block.hash));
            let vote = Vote { view: block.view, height: block.height, hash: block.hash, voter, signature: signature.clone() };
            self.votes.entry(block.hash).or_default().insert(voter, signature);
            for to in &self.group_b {
                out.push(Action::Send(*to, Message::Vote(vote.clone())));
            }
        }
    }

    fn propose_shadow(&mut self, parent: Hash, parent_qc: QuorumCert, view: u64, time_ms: u64, out: &mut Vec<Action>) {
        if self.shadow.len() >= SHADOW_MAX {
            return;
        }
        let mut block = Block {
            view,
            height: parent_qc.height + 1,
            parent,
            parent_qc,
            proposer: self.leader,
            time_ms,
            requests: Vec::new(),
            hash: [0; 32],
        };
        block.hash = block.compute_hash();
        let signature = SimCrypto { me: self.leader }.sign(&consensus::signed::proposal(&block.hash, self.shadow_justification.as_ref()));
        let proposal = Proposal { block: block.clone(), signature, justification: self.shadow_justification.clone() };
        self.shadow.insert(block.hash, block.clone());
        for to in &self.group_b {
            out.push(Action::Send(*to, Message::Propose(proposal.clone())));
        }
        self.coalition_vote(&block, out);
    }

    /// Rewrites a coalition member's outputs: the real chain goes to group A (and the other
    /// member) only; each real proposal of the leader gets a shadow twin for group B.
    pub fn outputs(&mut self, id: ReplicaId, actions: Vec<Action>) -> Vec<Action> {
        let mut out = Vec::new();
        let other = if id == self.leader { self.partner } else { self.leader };
        for action in actions {
            match action {
                Action::Broadcast(Message::Propose(p)) if id == self.leader && p.block.proposer == id => {
                    let b = &p.block;
                    if self.tip.is_none() && self.shadow.is_empty() {
                        self.shadow_justification = p.justification.clone();
                        self.propose_shadow(b.parent, b.parent_qc.clone(), b.view, b.time_ms + 1, &mut out);
                    }
                    for to in self.group_a.iter().chain([&other]) {
                        out.push(Action::Send(*to, Message::Propose(p.clone())));
                    }
                }
                Action::Broadcast(message) => {
                    for to in self.group_a.iter().chain([&other]) {
                        out.push(Action::Send(*to, message.clone()));
                    }
                }
                Action::Send(to, message) if self.group_b.contains(&to) => {
                    // Group B sees nothing of the real chain.
                    if !matches!(message, Message::Propose(_) | Message::Vote(_) | Message::Block(_)) {
                        out.push(Action::Send(to, message));
                    }
                }
                other_action => out.push(other_action),
            }
        }
        out
    }

    /// Filters what a coalition member's core gets, collecting group B's shadow votes.
    /// Returns (pass the message on, extra actions).
    pub fn on_receive(&mut self, message: &Message, now: u64) -> (bool, Vec<Action>) {
        let mut out = Vec::new();
        match message {
            Message::Propose(p) if self.shadow.contains_key(&p.block.hash) => return (false, out),
            Message::Blame(b) if matches!(b.reason, consensus::BlameReason::Equivocation(_)) => return (false, out),
            Message::Vote(v) if self.shadow.contains_key(&v.hash) => {
                let votes = self.votes.entry(v.hash).or_default();
                votes.insert(v.voter, v.signature.clone());
                if votes.len() >= self.quorum && self.certified.insert(v.hash) {
                    let block = self.shadow[&v.hash].clone();
                    let qc = QuorumCert {
                        view: block.view,
                        height: block.height,
                        hash: block.hash,
                        votes: votes.iter().map(|(r, s)| (*r, s.clone())).collect(),
                    };
                    let higher = self.tip.as_ref().is_none_or(|(t, _)| block.height > t.height);
                    if higher {
                        self.tip = Some((block.clone(), qc.clone()));
                        self.propose_shadow(block.hash, qc, block.view, now, &mut out);
                    }
                }
                return (false, out);
            }
            Message::Fetch(hash) if self.shadow.contains_key(hash) => return (false, out),
            _ => {}
        }
        (true, out)
    }
}
