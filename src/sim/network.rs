//! The simulated network: replies to clients, message encoding through the real codec,
//! delays (within Δ once synchronous, with stragglers before), loss, duplication,
//! partitions and the scenario hooks that drop or delay chosen messages.

use super::faults::Behaviour;
use super::world::{Event, World};
use crate::consensus::{Message, ReplicaId};
use crate::pb;

impl World {
    /// A relayed request (S10) that never reaches the core: a censor ignores the censored
    /// user's, and the replica's driver drops what the core says it would
    /// (`Core::admit_relay`) before checking a signature.
    pub(super) fn relay_dropped(&mut self, from: ReplicaId, to: ReplicaId, message: &Message) -> bool {
        let Message::Relay(bytes) = message else { return false };
        if self.nodes[to as usize].behaviour == Some(Behaviour::Censor)
            && super::node::decode(bytes).is_some_and(|(request, _)| request.user == super::client::user_name(0))
        {
            self.stats.byzantine_actions += 1;
            return true;
        }
        let core = self.nodes[to as usize].core.as_ref();
        core.is_some_and(|c| c.admit_relay(from, &crate::consensus::digest(bytes)) == crate::consensus::RelayAdmission::Drop)
    }

    pub(super) fn reply(&mut self, from: ReplicaId, user: &str, digest: [u8; 32], height: u64, mut outcome: pb::Outcome) {
        let Some(client) = self.clients.iter().position(|c| c.user == user) else { return };
        let coalition_lies = self.coalition.as_ref().is_some_and(|c| c.member(from) && c.plan.lie);
        if self.nodes[from as usize].behaviour == Some(Behaviour::Lie) || coalition_lies {
            self.stats.byzantine_actions += 1;
            outcome = crate::byzantine::lie(&outcome);
        }
        let delay = self.delay();
        self.at(self.now + delay, Event::Reply { client, from, digest, height, outcome });
    }

    /// Encodes a replica message for the simulated network; in test builds also checks that
    /// an honest replica's message decodes back to itself (a Byzantine one's block may carry
    /// a hash that does not match it: the wire carries no hash, so that garbage is lost).
    pub(super) fn encode(&self, from: ReplicaId, message: &Message) -> std::rc::Rc<[u8]> {
        let bytes = crate::wire::peer::encode_message(message);
        if cfg!(debug_assertions) && self.faults.is_byzantine(from).is_none() {
            assert_eq!(crate::wire::peer::decode_message(&bytes).as_ref(), Ok(message), "codec round trip");
        }
        bytes.into()
    }

    pub(super) fn delay(&mut self) -> u64 {
        let max = if self.synchronous { self.faults.delay_max_ms.min(self.cfg.delta_ms) } else { self.faults.delay_max_ms };
        let mut d = 1 + self.rng.below(max.max(1));
        if !self.synchronous && self.rng.chance(1, 100) {
            d += self.rng.below(50 * self.cfg.delta_ms); // a straggler far past Δ
        }
        d
    }

    pub(super) fn transmit(&mut self, from: ReplicaId, to: ReplicaId, message: &Message, bytes: std::rc::Rc<[u8]>) {
        self.stats.messages += 1;
        if let Some(schedule) = &mut self.schedule {
            let released = schedule.release(from, message);
            let pass = matches!(schedule.route(from, to, message, &bytes), super::schedule::Route::Pass);
            for (from, to, bytes) in released {
                self.at(self.now + 1, Event::Deliver { from, to, bytes });
            }
            if !pass {
                self.stats.dropped += 1;
                return;
            }
        }
        if let Some(drop_if) = &mut self.drop_if
            && drop_if(from, to, message)
        {
            self.stats.dropped += 1;
            return;
        }
        if let Some(groups) = &self.partition
            && groups[from as usize] != groups[to as usize]
        {
            self.stats.dropped += 1;
            return;
        }
        if !self.synchronous && self.rng.chance(self.faults.loss_pct, 100) {
            self.stats.dropped += 1;
            return;
        }
        let honest_link = self.faults.slow_honest_links
            && self.nodes[from as usize].behaviour.is_none()
            && self.nodes[to as usize].behaviour.is_none();
        if self.rng.chance(self.faults.dup_pct, 100) {
            self.stats.duplicated += 1;
            let delay = if honest_link { self.cfg.delta_ms } else { self.delay() };
            self.at(self.now + delay, Event::Deliver { from, to, bytes: bytes.clone() });
        }
        let fixed = self.delay_if.as_mut().and_then(|f| f(from, to, message));
        let delay = match fixed {
            Some(d) => d,
            None if honest_link => self.cfg.delta_ms,
            None => self.delay(),
        };
        self.at(self.now + delay, Event::Deliver { from, to, bytes });
    }
}

/// One trace line's worth of a replica message: its kind, and for a proposal the block's
/// view, height and hash and its parent's; for a FETCH or a block, the hash.
pub(super) fn summary(message: &Message) -> String {
    match message {
        Message::Propose(p) => format!(
            "propose v{} h{} {} over v{} h{} {}",
            p.block.view,
            p.block.height,
            crate::crypto::encode_hex(&p.block.hash[..3]),
            p.block.parent_qc.view,
            p.block.parent_qc.height,
            crate::crypto::encode_hex(&p.block.parent[..3])
        ),
        Message::Fetch(hash) => format!("fetch {}", crate::crypto::encode_hex(&hash[..3])),
        Message::Block(b) => format!("block v{} h{} {}", b.view, b.height, crate::crypto::encode_hex(&b.hash[..3])),
        _ => message.kind().to_string(),
    }
}
