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
}

impl Evidence {
    /// The replica the proof is against.
    pub fn accused(&self) -> ReplicaId {
        match self {
            Evidence::Equivocation(pair) => pair.0.block.proposer,
            Evidence::DoubleVote(pair) => pair.0.voter,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Evidence::Equivocation(_) => "equivocation",
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
        }
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
