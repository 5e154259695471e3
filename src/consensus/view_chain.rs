//! S5a: the current view's leader-signed blocks must form one chain.
//!
//! An honest leader's blocks of one view form a single chain (one first block, then each
//! block over the QC of the one before). So any two leader-signed blocks of view v that
//! conflict (neither extends the other), **at any heights**, prove that the leader
//! equivocated. A replica keeps the highest known block of the view's chain (`view_tip`);
//! every new view-v proposal above the committed height is linked to it by walking down
//! the known blocks:
//! - linked: it extends the tip (and becomes the tip) or the tip extends it;
//! - conflicting: equivocation (S5): stop voting and committing in v, blame with a proof
//!   when two proposals show it by themselves ([`Checker::equivocation`]);
//! - unknown (a link is missing): fetched (S9); until it is linked the replica neither votes
//!   (S2.1) nor commits (S4b) in v — an unlinked block counts as conflicting until it is not.
//!
//! Blocks at or below the committed height are not linked (only a second first block of
//! the view is looked for among them): one that does not lie on the
//! committed chain can never be voted for (S2) and conflicts with a committed block, which
//! no QC can (the safety argument), so it cannot stand in the way of a later commit.

use super::chain::Link;
use super::core::Core;
use super::types::*;

/// Unlinked view blocks kept at once. A leader whose view needs more is treated as an
/// equivocator (no vote, no commit in its view): it can only be a Byzantine leader or a
/// replica that lost much of its block store, and the cost is a view change.
const UNLINKED_MAX: usize = 16;

impl Core {
    /// True for the first block of a view: its parent QC is from an earlier view (or the
    /// genesis QC). An honest leader makes exactly one per view.
    pub(super) fn is_first_block(b: &Block) -> bool {
        b.parent_qc.view < b.view || b.parent_qc.is_genesis()
    }

    /// The reference the view's blocks are linked to: the view's tip if it lies above the
    /// committed height, else the committed block.
    fn view_reference(&self) -> Hash {
        match self.view_tip {
            Some(tip) if self.height_of(&tip).is_some_and(|h| h > self.committed_height) => tip,
            _ => self.committed_hash,
        }
    }

    /// After a restart: the view's chain is known again from this replica's own votes.
    pub(super) fn restore_view_tip(&mut self) {
        self.view_tip = self.votes.iter().max_by_key(|b| b.height).map(|b| b.hash);
    }

    /// Entering a new view: nothing of the old view's chain matters any more.
    pub(super) fn reset_view_chain(&mut self) {
        self.view_tip = None;
        self.view_first = None;
        self.view_first_low = None;
        self.view_unlinked.clear();
    }

    /// S5a: a valid proposal of the current view arrived (its block is stored).
    pub(super) fn track_view_block(&mut self, now: u64, p: &Proposal) {
        let b = &p.block;
        if self.cfg.planted.same_height_equivocation || b.view != self.view || self.equivocation == Some(self.view) {
            return;
        }
        if b.height <= self.committed_height {
            self.low_first_block(p);
            return;
        }
        // Two different first blocks are a proof by themselves.
        if Self::is_first_block(b) {
            match &self.view_first {
                Some(first) if first.block.hash != b.hash => {
                    let first = first.clone();
                    self.on_equivocation(now, first, p.clone());
                    return;
                }
                Some(_) => {}
                None => {
                    self.view_first = Some(p.clone());
                    if let Some(low) = self.view_first_low.clone() {
                        self.report_equivocation(low, p.clone());
                    }
                }
            }
        }
        self.link_view_block(now, b.hash);
    }

    /// Evidence only: a first block of the view at or below the committed height (an
    /// equivocating leader's first block over an older QC, `crate::byzantine::twin`) and
    /// another first block of the view make a proof. Nothing else changes: such a block
    /// can never be voted for, so the view goes on as S5a says.
    fn low_first_block(&mut self, p: &Proposal) {
        if !Self::is_first_block(&p.block) {
            return;
        }
        match (&self.view_first, &self.view_first_low) {
            (Some(first), _) if first.block.hash != p.block.hash => {
                let first = first.clone();
                self.report_equivocation(first, p.clone());
            }
            (None, None) => self.view_first_low = Some(p.clone()),
            _ => {}
        }
    }

    /// Links one view block to the view's chain, or records why it cannot be yet.
    fn link_view_block(&mut self, now: u64, hash: Hash) {
        if self.known_height(&hash).is_some_and(|h| h <= self.committed_height) {
            self.view_unlinked.remove(&hash); // not tracked (see the top of this file)
            return;
        }
        let reference = self.view_reference();
        match self.link(&hash, &reference) {
            Link::Linked => {
                self.view_unlinked.remove(&hash);
                if self.known_height(&hash) > self.known_height(&reference) {
                    self.view_tip = Some(hash);
                }
            }
            Link::Conflict if reference == self.committed_hash => {
                // It does not extend the committed chain: never voted for, harmless (above).
                self.view_unlinked.remove(&hash);
            }
            Link::Conflict => {
                self.view_unlinked.remove(&hash);
                let deep = self.known_height(&hash) != self.known_height(&reference);
                if !(deep && self.cfg.planted.deep_conflict_unseen) {
                    self.conflict_in_view(now, hash);
                }
            }
            Link::Unknown(missing) => {
                if !self.view_unlinked.contains(&hash) && self.view_unlinked.len() >= UNLINKED_MAX {
                    self.conflict_in_view(now, hash);
                    return;
                }
                self.view_unlinked.insert(hash);
                self.fetch(now, missing, self.me);
            }
        }
    }

    /// Re-links the view's unlinked blocks (every input).
    pub(super) fn relink_view_blocks(&mut self, now: u64) {
        if self.view_unlinked.is_empty() {
            return;
        }
        let unlinked: Vec<Hash> = self.view_unlinked.iter().copied().collect();
        for hash in unlinked {
            if self.equivocation == Some(self.view) {
                self.view_unlinked.clear();
                return;
            }
            self.link_view_block(now, hash);
        }
        if self.view_unlinked.is_empty() {
            // Proposals held back while a block was unlinked get their vote now.
            let held: Vec<Proposal> = self
                .seen
                .iter()
                .filter(|((v, _), p)| *v == self.view && !self.votes.iter().any(|b| b.hash == p.block.hash))
                .map(|(_, p)| p.clone())
                .collect();
            for p in held {
                if self.first_gap(&p.block).is_none() {
                    self.try_vote(now, &p);
                }
            }
        }
    }

    /// Two leader-signed blocks of the view conflict: equivocation, with a proof if two
    /// proposals this replica holds show it by themselves.
    fn conflict_in_view(&mut self, now: u64, hash: Hash) {
        let view = self.view;
        let mine: Vec<&Proposal> = self.seen.iter().filter(|((v, _), _)| *v == view).map(|(_, p)| p).collect();
        let checker = self.checker();
        let proof = mine.iter().find_map(|a| {
            mine.iter()
                .find(|b| (a.block.hash == hash || b.block.hash == hash) && checker.equivocation(a, b).is_ok())
                .map(|b| ((*a).clone(), (*b).clone()))
        });
        match proof {
            Some((a, b)) => self.on_equivocation(now, a, b),
            None => {
                self.report_chain_equivocation(hash);
                self.equivocation = Some(view);
                self.blame(now, BlameReason::Timeout);
            }
        }
    }

    /// Evidence only: the view's tip and `hash` conflict, but no two proposals show it by
    /// themselves; the view's blocks between them (from the higher one down to the lower
    /// one's height) make the proof (`Checker::chain_equivocation`).
    fn report_chain_equivocation(&mut self, hash: Hash) {
        let view = self.view;
        let reference = self.view_reference();
        if self.proven_views.contains(&view) || reference == hash {
            return;
        }
        let proposal = |h: &Hash| self.seen.values().find(|p| p.block.view == view && p.block.hash == *h).cloned();
        let (Some(x), Some(y)) = (proposal(&hash), proposal(&reference)) else { return };
        let (low, high) = if x.block.height <= y.block.height { (x, y) } else { (y, x) };
        let mut between = Vec::new();
        let mut parent = high.block.parent;
        while let Some(b) = self.blocks.get(&parent) {
            if b.view != view || b.height <= low.block.height || between.len() >= super::evidence::BETWEEN_MAX {
                break;
            }
            between.push(b.clone());
            parent = b.parent;
        }
        if self.checker().chain_equivocation(&low, &high, &between).is_ok() {
            self.report_proof(super::Evidence::ChainEquivocation(Box::new((low, high, between))));
        }
    }
}
