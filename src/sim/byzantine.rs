//! Byzantine behaviours (faults.rs lists them): how a Byzantine replica's outputs are
//! rewritten, what it does on receiving a message, and what it sends on its own.

use super::faults::Behaviour;
use super::world::World;
use crate::consensus::{self, Action, Message, ReplicaId, Vote};

impl World {
    pub(super) fn byzantine_outputs(&mut self, id: ReplicaId, actions: Vec<Action>) -> Vec<Action> {
        let Some(behaviour) = self.nodes[id as usize].behaviour else { return actions };
        if let Some(fork) = self.fork.as_mut().filter(|f| f.member(id)) {
            self.stats.byzantine_actions += 1;
            return fork.outputs(id, actions);
        }
        if let Some(coalition) = self.coalition.as_mut().filter(|c| c.member(id)) {
            return coalition.outputs(id, actions, &mut self.rng);
        }
        let mut out = Vec::new();
        for action in actions {
            match (behaviour, action) {
                // What a replica does to its own disk and state is not a message: it passes.
                (
                    _,
                    a @ (Action::Persist(_)
                    | Action::StoreBlock(_)
                    | Action::Commit(_)
                    | Action::TakeSnapshot { .. }
                    | Action::Stable(_)
                    | Action::InstallState(_)
                    | Action::Evidence(_)
                    | Action::KeepProof(_)),
                ) => out.push(a),
                (Behaviour::Mute, _) => self.stats.byzantine_actions += 1,
                (Behaviour::Withhold, Action::Broadcast(Message::Vote(_))) => self.stats.byzantine_actions += 1,
                (Behaviour::Equivocate, Action::Broadcast(Message::Propose(p))) if p.block.proposer == id => {
                    self.stats.byzantine_actions += 1;
                    let twin = crate::byzantine::twin(&p, &consensus::SimCrypto { me: id });
                    for to in 0..self.nodes.len() as ReplicaId {
                        if to != id {
                            let which = if (to as usize) * 2 < self.nodes.len() { p.clone() } else { twin.clone() };
                            out.push(Action::Send(to, Message::Propose(which)));
                        }
                    }
                }
                (Behaviour::Garbage, Action::Broadcast(Message::Propose(mut p))) => {
                    self.stats.byzantine_actions += 1;
                    p.block.time_ms += 1; // the hash no longer matches
                    out.push(Action::Broadcast(Message::Propose(p)));
                }
                (_, a) => out.push(a),
            }
        }
        out
    }

    pub(super) fn byzantine_on_receive(&mut self, id: ReplicaId, message: &Message) -> Vec<Action> {
        let Some(behaviour) = self.nodes[id as usize].behaviour else { return Vec::new() };
        let node = &mut self.nodes[id as usize];
        if node.heard.len() < 200 {
            node.heard.push(message.clone());
        }
        match (behaviour, message) {
            (Behaviour::DoubleVote, Message::Propose(p)) => {
                self.stats.byzantine_actions += 1;
                let b = &p.block;
                let crypto = consensus::SimCrypto { me: id };
                let signature = consensus::Crypto::sign(&crypto, &consensus::signed::vote(b.view, b.height, &b.hash));
                vec![Action::Broadcast(Message::Vote(Vote { view: b.view, height: b.height, hash: b.hash, voter: id, signature }))]
            }
            _ => Vec::new(),
        }
    }

    pub(super) fn byzantine_on_tick(&mut self, id: ReplicaId) -> Vec<Action> {
        let Some(behaviour) = self.nodes[id as usize].behaviour else { return Vec::new() };
        if !self.rng.chance(1, 4) {
            return Vec::new();
        }
        let view = self.nodes[id as usize].core.as_ref().map_or(0, |c| c.view());
        let victim = self.rng.below(self.nodes.len() as u64) as ReplicaId;
        let mut junk = [0u8; 32];
        junk[..8].copy_from_slice(&self.rng.next_u64().to_le_bytes());
        let action = match behaviour {
            Behaviour::Forge if self.rng.chance(1, 8) => {
                // A state transfer far ahead, with forged signatures and an empty state.
                let committed = self.nodes[id as usize].core.as_ref().map_or(0, |c| c.committed_height());
                let mut block = consensus::Block {
                    view,
                    height: committed + 1 + self.rng.below(100),
                    parent: junk,
                    parent_qc: consensus::QuorumCert::genesis(),
                    proposer: id,
                    time_ms: self.now,
                    requests: Vec::new(),
                    hash: [0; 32],
                };
                block.hash = block.compute_hash();
                let Ok(image) = crate::storage::image_of(&crate::chat::ChatState::new()) else { return Vec::new() };
                let signatures = (0..self.cfg.quorum() as ReplicaId).map(|who| (who, junk[..16].to_vec())).collect();
                let cert = consensus::StateCert { height: block.height, hash: block.hash, state: consensus::digest(&image), signatures };
                Action::Send(victim, Message::State(Box::new(consensus::StateTransfer { cert, block, image })))
            }
            Behaviour::Forge => {
                let vote = Vote { view, height: 1 + self.rng.below(50), hash: junk, voter: victim, signature: junk[..16].to_vec() };
                Action::Broadcast(Message::Vote(vote))
            }
            Behaviour::Garbage if self.rng.chance(1, 2) => {
                // Bytes, not a message: random ones, or a message heard, cut short or with
                // bytes flipped. The codec must refuse or decode them without harm.
                let heard = &self.nodes[id as usize].heard;
                let mut bytes = match heard.is_empty() || self.rng.chance(1, 3) {
                    true => (0..self.rng.below(200)).map(|_| self.rng.next_u64() as u8).collect::<Vec<u8>>(),
                    false => crate::wire::peer::encode_message(&heard[self.rng.below(heard.len() as u64) as usize]),
                };
                if !bytes.is_empty() {
                    for _ in 0..1 + self.rng.below(4) {
                        let at = self.rng.below(bytes.len() as u64) as usize;
                        bytes[at] ^= 1 << self.rng.below(8);
                    }
                    if self.rng.chance(1, 2) {
                        bytes.truncate(self.rng.below(bytes.len() as u64) as usize);
                    }
                }
                self.stats.byzantine_actions += 1;
                let delay = self.delay();
                self.after(delay, super::world::Event::Deliver { from: id, to: victim, bytes: bytes.into() });
                return Vec::new();
            }
            Behaviour::Garbage => {
                let crypto = consensus::SimCrypto { me: id };
                let height = 1 + self.rng.below(50);
                let signature = consensus::Crypto::sign(&crypto, &consensus::signed::vote(view, height, &junk));
                Action::Broadcast(Message::Vote(Vote { view, height, hash: junk, voter: id, signature }))
            }
            Behaviour::Replay => {
                let heard = &self.nodes[id as usize].heard;
                if heard.is_empty() {
                    return Vec::new();
                }
                let message = heard[self.rng.below(heard.len() as u64) as usize].clone();
                Action::Send(victim, message)
            }
            _ => return Vec::new(),
        };
        self.stats.byzantine_actions += 1;
        vec![action]
    }

    /// The coalition acts on the ticks of its first member.
    pub(super) fn coalition_tick(&mut self, id: ReplicaId) {
        let Some(coalition) = self.coalition.as_mut().filter(|c| c.members[0] == id) else { return };
        let (view, committed) = self.nodes[id as usize].core.as_ref().map_or((0, 0), |c| (c.view(), c.committed_height()));
        let crafted = coalition.on_tick(view, committed, self.now, &mut self.rng);
        let private = coalition.take_private_requests();
        self.send_crafted(crafted);
        for request in private {
            self.stats.byzantine_actions += 1;
            self.checker.sent.insert(consensus::digest(&request.bytes));
            let delay = self.delay();
            self.note(|| format!("coalition request to {} only (in {delay} ms)", request.to));
            self.at(self.now + delay, super::world::Event::Request { to: request.to, bytes: request.bytes });
        }
    }

    /// Messages the coalition sends on its own, each after its chosen delay.
    pub(super) fn send_crafted(&mut self, crafted: Vec<super::adversary::Crafted>) {
        for c in crafted {
            self.stats.byzantine_actions += 1;
            let bytes = crate::wire::peer::encode_message(&c.message);
            self.note(|| format!("{} -> {} crafted {} (in {} ms)", c.from, c.to, c.message.kind(), c.delay_ms));
            self.at(self.now + c.delay_ms, super::world::Event::Deliver { from: c.from, to: c.to, bytes: bytes.into() });
        }
    }

    /// Finding 2 of the second review: an honest replica's pools of signed votes and
    /// CHECKPOINTs stay within their per-signer bounds, whatever junk the coalition sends.
    pub(super) fn check_pools(&mut self, id: ReplicaId) {
        if self.faults.is_byzantine(id).is_some() || self.checker.violations.iter().any(|v| v.starts_with("memory")) {
            return;
        }
        if let Some(over) = self.nodes[id as usize].core.as_ref().and_then(|c| c.pools_over_bounds()) {
            self.checker.violations.push(format!("memory: replica {id} holds {over}"));
        }
    }
}
