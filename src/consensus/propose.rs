//! S1, the leader's proposals: which requests go into the next block, and when an empty
//! block is worth proposing.

use super::core::{Action, Core};
use super::types::*;
use super::verify::highest_qc;

impl Core {
    /// S1: the leader extends the block of its `high_qc` (S7 decides a view's first block).
    pub(super) fn propose(&mut self, now: u64) {
        if self.leader(self.view) != self.me || !self.entered() || self.equivocation == Some(self.view) || self.recovering() {
            return;
        }
        // S1/S7: a view's first block extends the highest QC of the justification (which,
        // refreshed, ranks at least as high as this leader's own `high_qc`); every later
        // block extends the QC of this leader's previous block. An honest leader so makes
        // one chain per view, with one first block (S5a), whatever late QCs of older views
        // it learns meanwhile.
        let tip = if self.high_qc.view == self.view {
            self.high_qc.clone()
        } else if !self.proposals.is_empty() {
            return; // waiting for the first block's QC
        } else if self.view == 0 {
            self.high_qc.clone()
        } else {
            self.refresh_own_status();
            match &self.justification {
                None => return,
                Some(j) => highest_qc(j).cloned().expect("a justification holds statuses"),
            }
        };
        if tip.height < self.committed_height || self.proposals.iter().any(|b| b.height > tip.height) {
            return; // waiting for the last proposal's QC
        }
        if !tip.is_genesis() && !self.blocks.contains_key(&tip.hash) {
            self.fetch(now, tip.hash, self.me);
            return;
        }
        // Only hash the chain's requests when there are pooled ones to filter (this runs on
        // every input at the leader).
        if self.pending.is_empty() {
            self.chain_digests = None;
        } else {
            self.chain_request_digests(&tip.hash);
        }
        let empty = std::collections::BTreeSet::new();
        let in_chain = self.chain_digests.as_ref().map_or(&empty, |(_, _, digests)| digests);
        let mut requests = Vec::new();
        let mut bytes = 0;
        // Oldest first (S1).
        for (_, digest) in &self.pending_order {
            if requests.len() >= self.cfg.batch_max {
                break;
            }
            let Some((_, r)) = self.pending.get(digest) else { continue };
            // Voters refuse a block over the limits (S2.6).
            if !in_chain.contains(digest) && bytes + r.len() <= self.cfg.batch_bytes_max {
                bytes += r.len();
                requests.push(r.clone());
            }
        }
        let nudged = self.nudge_to.is_some_and(|h| tip.height < h);
        if !nudged {
            self.nudge_to = None;
        }
        if requests.is_empty() && !nudged && !self.needs_empty_block(&tip.hash) {
            return;
        }
        let parent_time = self.blocks.get(&tip.hash).map_or(0, |b| b.time_ms);
        let mut block = Block {
            view: self.view,
            height: tip.height + 1,
            parent: tip.hash,
            parent_qc: tip,
            proposer: self.me,
            time_ms: now.max(parent_time),
            requests,
            hash: GENESIS,
        };
        block.hash = block.compute_hash();
        let proposal = self.own_proposal(block.clone());
        // Stored before the record that names it (a restart must know the block it proposed).
        self.store_block(&block);
        self.proposals.push(block.named());
        self.persist();
        self.forwarded.insert(proposal.block.hash, proposal.block.height);
        self.out.push(Action::Broadcast(Message::Propose(proposal.clone())));
        self.on_proposal(now, self.me, proposal);
    }

    /// Keeps in `chain_digests` the digests of the requests in the uncommitted blocks of the
    /// chain ending at `tip`. The leader asks on every input while it waits for a commit, so
    /// the set is computed once per (tip, committed height).
    fn chain_request_digests(&mut self, tip: &Hash) {
        let key = (*tip, self.committed_height);
        if self.chain_digests.as_ref().is_some_and(|(t, h, _)| (*t, *h) == key) {
            return;
        }
        let mut out = std::collections::BTreeSet::new();
        let mut at = *tip;
        while let Some(b) = self.blocks.get(&at).filter(|b| b.height > self.committed_height) {
            out.extend(b.requests.iter().map(|r| super::digest(r)));
            at = b.parent;
        }
        // A chain with a gap (a block still being fetched) is not kept: asked again, it is
        // walked again.
        let complete = at == GENESIS || self.blocks.contains_key(&at);
        self.chain_digests = Some(if complete { (key.0, key.1, out) } else { (GENESIS, u64::MAX, out) });
    }

    /// An empty block is worth proposing while some uncommitted block with requests lacks the
    /// two certified blocks of the current view above it that its commit needs (S1, S4a).
    fn needs_empty_block(&self, tip: &Hash) -> bool {
        let mut current_view_blocks = 0;
        let mut at = *tip;
        while let Some(b) = self.blocks.get(&at).filter(|b| b.height > self.committed_height) {
            if b.view == self.view {
                current_view_blocks += 1;
            }
            if !b.requests.is_empty() {
                return current_view_blocks < 2;
            }
            at = b.parent;
        }
        false
    }
}
