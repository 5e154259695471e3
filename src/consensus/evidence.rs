//! Proofs of misbehaviour the ordering protocol can see (NOTEBOOK, "Evidence"): signed
//! messages of one replica that no honest replica ever signs together. Anyone holding the
//! cluster's public keys can check one; a signature that does not verify is never part of
//! a proof (anyone can make one), it is only counted per link (`Core::unverifiable`).
//!
//! The core reports what it finds as `Action::Evidence`; the replica keeps the proofs and
//! the simulator checks that none accuses an honest replica. Both, and `quintet evidence`,
//! decide what is a proof with [`Checker::evidence`] alone.

use super::types::*;
use super::verify::{Checked, Checker};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Evidence {
    /// Two proposals of one view by its leader that an honest leader never both signs
    /// (S5a; [`Checker::equivocation`]).
    Equivocation(Box<(Proposal, Proposal)>),
    /// One replica's votes for two blocks at one height of one view. An honest replica's
    /// votes of a view form one chain (S2.2), persisted before they are sent, so it never
    /// signs two at a height.
    DoubleVote(Box<(Vote, Vote)>),
    /// Two proposals of one view by its leader whose conflict shows only through the
    /// view's blocks between them (S5a's deep case): [`Checker::chain_equivocation`].
    ChainEquivocation(Box<(Proposal, Proposal, Vec<Block>)>),
}

/// Blocks a chain proof may carry.
pub const BETWEEN_MAX: usize = 64;

impl Evidence {
    /// The replica the proof is against.
    pub fn accused(&self) -> ReplicaId {
        match self {
            Evidence::Equivocation(pair) => pair.0.block.proposer,
            Evidence::DoubleVote(pair) => pair.0.voter,
            Evidence::ChainEquivocation(proof) => proof.0.block.proposer,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Evidence::Equivocation(_) | Evidence::ChainEquivocation(_) => "equivocation",
            Evidence::DoubleVote(_) => "double vote",
        }
    }
}

impl Checker<'_> {
    /// Whether `e` proves that its accused replica misbehaved.
    pub fn evidence(&self, e: &Evidence) -> Checked {
        match e {
            Evidence::Equivocation(pair) => self.equivocation(&pair.0, &pair.1),
            Evidence::DoubleVote(pair) => self.double_vote(&pair.0, &pair.1),
            Evidence::ChainEquivocation(proof) => self.chain_equivocation(&proof.0, &proof.1, &proof.2),
        }
    }

    /// Two valid proposals `a`, `b` of one view v by its leader, and view-v blocks that
    /// link `b` down through view-v QCs: a proof when that chain has a view-v QC at `a`'s
    /// height for another block, or (when `a` is the view's first block) a view-v block
    /// below `a`. A view-v QC holds an honest vote (at most f are faulty), and honest
    /// replicas vote only for blocks the view's leader signed, so the leader signed two
    /// blocks that no honest leader's one chain of the view holds. Either order is tried.
    pub fn chain_equivocation(&self, a: &Proposal, b: &Proposal, between: &[Block]) -> Checked {
        if between.len() > BETWEEN_MAX {
            return Err("too many blocks between");
        }
        self.proposal_block(a)?;
        self.proposal_block(b)?;
        let view = a.block.view;
        if b.block.view != view || a.block.hash == b.block.hash {
            return Err("not an equivocation");
        }
        if self.chain_below(&b.block, &a.block, between)? || self.chain_below(&a.block, &b.block, between)? {
            Ok(())
        } else {
            Err("the blocks between show no conflict")
        }
    }

    /// Walks `top`'s view-v parent QCs down (through `between`) to `other`'s height: true
    /// when they conflict with it.
    fn chain_below(&self, top: &Block, other: &Block, between: &[Block]) -> Result<bool, &'static str> {
        let view = top.view;
        let first = |b: &Block| b.parent_qc.view < b.view || b.parent_qc.is_genesis();
        let mut qc = &top.parent_qc;
        for _ in 0..=BETWEEN_MAX {
            if qc.view != view || qc.is_genesis() {
                return Ok(false);
            }
            if qc.height == other.height {
                return Ok(qc.hash != other.hash);
            }
            if qc.height < other.height {
                // A view-v block below the view's first block.
                return Ok(first(other));
            }
            let Some(next) = between.iter().find(|b| b.hash == qc.hash) else { return Ok(false) };
            if next.compute_hash() != next.hash || next.view != view || next.height != qc.height {
                return Err("a block between that is not the one its QC names");
            }
            if next.parent != next.parent_qc.hash || next.height != next.parent_qc.height + 1 {
                return Err("a block between that does not extend its parent QC");
            }
            self.qc(&next.parent_qc)?;
            qc = &next.parent_qc;
        }
        Ok(false)
    }

    fn double_vote(&self, a: &Vote, b: &Vote) -> Checked {
        if a.voter != b.voter || a.view != b.view || a.hash == b.hash {
            return Err("not two votes of one replica for two blocks of one view");
        }
        // Planted bug: votes at two heights of a view "conflict" (an honest replica's
        // chain of votes then accuses it).
        if a.height != b.height && !self.votes_any_height {
            return Err("votes at two heights of one view: one chain is allowed");
        }
        self.vote(a)?;
        self.vote(b)
    }
}
