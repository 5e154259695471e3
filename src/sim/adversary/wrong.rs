//! Wrong contents under right names: a FETCH for an honest block answered with other
//! contents under the block's hash, and a genuine state certificate sent with an image it
//! does not certify; and signed junk (votes and CHECKPOINTs for made-up blocks). Honest replicas must check what they receive against the name they
//! asked for (S9) and the certificate (S11); these moves are how the seeded search finds a
//! replica that does not (the `unchecked_fetched_block` and `unchecked_image` plants).
//! Neither draws from the seed's generator, so the seeds' other moves stay as they were.

use super::{Coalition, Crafted};
use crate::consensus::{self, Block, Checkpoint, Crypto, Hash, Height, Message, ReplicaId, SimCrypto, StateCert, StateTransfer, View, Vote};

/// Rounds of junk (one a tick of the first member) and votes per member and round: in all,
/// more than a signer's bound of pooled votes (1,024) and CHECKPOINTs (16).
const JUNK_ROUNDS: u64 = 40;
const JUNK_VOTES: u64 = 32;

impl Coalition {
    /// An honest replica asked a member for an honest block the coalition has seen: the
    /// answer, sent before the member's own (honest) one, keeps the block's name and
    /// changes what it orders.
    pub(super) fn wrong_block(&self, member: ReplicaId, asker: ReplicaId, hash: &Hash, out: &mut Vec<Crafted>) {
        if !self.plan.wrong_blocks || self.member(asker) {
            return;
        }
        let Some(block) = self.seen_blocks.get(hash) else { return };
        let mut wrong: Block = block.clone();
        if !wrong.requests.is_empty() {
            wrong.requests.clear();
        } else if let Some(request) = self.requests.first() {
            wrong.requests.push(request.clone());
        } else {
            return;
        }
        out.push(Crafted { from: member, to: asker, message: Message::Block(Box::new(wrong)), delay_ms: 1 });
    }

    /// An honest replica's state CHECKPOINT came in. Once one honest replica signed a state
    /// at a height, the members' signatures make it a genuine certificate (q signatures,
    /// one honest); every honest replica that has not signed that height yet (it may still
    /// be below it) is sent the certificate, the real block and the image of an empty chat.
    pub(super) fn wrong_image(&mut self, c: &Checkpoint, out: &mut Vec<Crafted>) {
        let Some(state) = c.state else { return };
        if !self.plan.wrong_images || self.member(c.voter) {
            return;
        }
        self.state_signers.entry(c.height).or_default().insert(c.voter);
        if self.imaged.contains(&c.height) {
            return;
        }
        let Some(block) = self.seen_blocks.get(&c.hash).filter(|b| b.height == c.height).cloned() else { return };
        let bytes = consensus::signed::checkpoint(c.height, &c.hash, Some(&state));
        let mut signatures = vec![(c.voter, c.signature.clone())];
        for m in &self.members {
            signatures.push((*m, SimCrypto { me: *m }.sign(&bytes)));
        }
        if signatures.len() < self.quorum {
            return;
        }
        let Ok(image) = crate::storage::image_of(&crate::chat::ChatState::new()) else { return };
        if consensus::digest(&image) == state {
            return;
        }
        self.imaged.insert(c.height);
        let cert = StateCert { height: c.height, hash: c.hash, state, signatures };
        let transfer = StateTransfer { cert, block, image };
        let signed = &self.state_signers[&c.height];
        for to in self.honest.iter().filter(|h| !signed.contains(h)) {
            let message = Message::State(Box::new(transfer.clone()));
            out.push(Crafted { from: self.members[0], to: *to, message, delay_ms: 1 });
        }
    }

    /// Junk flood (finding 2 of the second review): each member signs votes and a
    /// CHECKPOINT for made-up blocks at heights above the committed one and sends them to
    /// every honest replica, a round a tick. An honest replica pools them (the heights may
    /// yet come) within its per-signer bounds; the simulator checks the bounds.
    pub(super) fn junk(&mut self, view: View, committed: Height, out: &mut Vec<Crafted>) {
        if !self.plan.junk_flood || self.junk_rounds >= JUNK_ROUNDS {
            return;
        }
        let round = self.junk_rounds;
        self.junk_rounds += 1;
        for m in self.members.clone() {
            let crypto = SimCrypto { me: m };
            for k in 0..JUNK_VOTES {
                let height = committed + 20 + round * JUNK_VOTES + k;
                let hash = junk_hash(m, height);
                let signature = crypto.sign(&consensus::signed::vote(view, height, &hash));
                let vote = Vote { view, height, hash, voter: m, signature };
                for to in self.honest.clone() {
                    out.push(Crafted { from: m, to, message: Message::Vote(vote.clone()), delay_ms: 1 + k % 4 });
                }
            }
            let height = committed + 20 + round;
            let hash = junk_hash(m, height);
            let signature = crypto.sign(&consensus::signed::checkpoint(height, &hash, None));
            let checkpoint = Checkpoint { height, hash, state: None, voter: m, signature };
            for to in self.honest.clone() {
                out.push(Crafted { from: m, to, message: Message::Checkpoint(checkpoint.clone()), delay_ms: 1 });
            }
        }
    }
}

/// A made-up block name, the same for a member and height every time.
fn junk_hash(member: ReplicaId, height: Height) -> Hash {
    let mut bytes = b"junk".to_vec();
    bytes.push(member);
    bytes.extend(height.to_be_bytes());
    consensus::digest(&bytes)
}
