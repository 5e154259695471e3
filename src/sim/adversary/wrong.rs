//! Wrong contents under right names: a FETCH for an honest block answered with other
//! contents under the block's hash, and a genuine state certificate sent with an image it
//! does not certify. Honest replicas must check what they receive against the name they
//! asked for (S9) and the certificate (S11); these moves are how the seeded search finds a
//! replica that does not (the `unchecked_fetched_block` and `unchecked_image` plants).
//! Neither draws from the seed's generator, so the seeds' other moves stay as they were.

use super::{Coalition, Crafted};
use crate::consensus::{self, Block, Checkpoint, Crypto, Hash, Message, ReplicaId, SimCrypto, StateCert, StateTransfer};

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
}
