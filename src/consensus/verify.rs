//! Validity of what other replicas send: certificates, statuses, justifications and
//! proposals. Every check is total (no panics on any input) and returns a reason.

use std::collections::BTreeSet;

use super::types::*;

/// What verification needs to know about the cluster.
pub struct Checker<'a> {
    pub n: usize,
    /// Signatures that make a QC (q; lowered only by a planted bug).
    pub qc_size: usize,
    /// Blames that make a BC, and statuses a justification needs (q).
    pub quorum: usize,
    /// Signatures in a state certificate (q; lowered only by a planted bug).
    pub certificate_size: usize,
    /// Planted bug: a repeated signer counts again.
    pub repeats_count: bool,
    /// Planted bug: two votes of one view at different heights count as a double vote.
    pub votes_any_height: bool,
    /// The block the chain starts from (`Config::base`): its QC has no votes.
    pub base: (Height, Hash),
    pub crypto: &'a dyn Crypto,
}

pub type Checked = Result<(), &'static str>;

impl Checker<'_> {
    pub fn leader(&self, view: View) -> ReplicaId {
        (view % self.n as u64) as ReplicaId
    }

    fn distinct_valid(&self, sigs: &[(ReplicaId, Vec<u8>)], bytes: &[u8], needed: usize) -> Checked {
        let mut seen = BTreeSet::new();
        for (who, sig) in sigs {
            if (*who as usize) >= self.n || (!seen.insert(*who) && !self.repeats_count) {
                return Err("unknown or repeated signer");
            }
            if !self.crypto.verify(*who, bytes, sig) {
                return Err("bad signature in certificate");
            }
        }
        let counted = if self.repeats_count { sigs.len() } else { seen.len() };
        if counted < needed {
            return Err("too few signatures");
        }
        Ok(())
    }

    pub fn qc(&self, qc: &QuorumCert) -> Checked {
        if qc.votes.is_empty() {
            return if qc.view == 0 && (qc.height, qc.hash) == self.base { Ok(()) } else { Err("a QC without votes that is not the chain's start") };
        }
        if qc.height <= self.base.0 {
            return Err("QC at or below the chain's start");
        }
        self.distinct_valid(&qc.votes, &signed::vote(qc.view, qc.height, &qc.hash), self.qc_size)
    }

    /// A stable checkpoint (S11): q distinct valid CHECKPOINT signatures naming this state.
    pub fn state_cert(&self, cert: &StateCert) -> Checked {
        if cert.height == 0 {
            return Err("state certificate for height 0");
        }
        self.distinct_valid(&cert.signatures, &signed::checkpoint(cert.height, &cert.hash, Some(&cert.state)), self.certificate_size)
    }

    /// A state transfer: a valid certificate, its block, and an image that hashes to it.
    pub fn state_transfer(&self, t: &StateTransfer) -> Checked {
        self.state_transfer_but_image(t)?;
        if super::digest(&t.image) != t.cert.state {
            return Err("state image does not hash to the certified state");
        }
        Ok(())
    }

    /// The certificate and the block of a state transfer, not its image (the
    /// `unchecked_image` plant uses this alone).
    pub(super) fn state_transfer_but_image(&self, t: &StateTransfer) -> Checked {
        self.state_cert(&t.cert)?;
        if t.block.height != t.cert.height || t.block.hash != t.cert.hash || t.block.compute_hash() != t.block.hash {
            return Err("state transfer block does not match its certificate");
        }
        Ok(())
    }

    pub fn blame_cert(&self, bc: &BlameCert) -> Checked {
        self.distinct_valid(&bc.blames, &signed::blame(bc.view), self.quorum)
    }

    pub fn vote(&self, vote: &Vote) -> Checked {
        if (vote.voter as usize) >= self.n {
            return Err("unknown voter");
        }
        let bytes = signed::vote(vote.view, vote.height, &vote.hash);
        if self.crypto.verify(vote.voter, &bytes, &vote.signature) { Ok(()) } else { Err("bad vote signature") }
    }

    pub fn blame(&self, blame: &Blame) -> Checked {
        if (blame.voter as usize) >= self.n {
            return Err("unknown blamer");
        }
        if !self.crypto.verify(blame.voter, &signed::blame(blame.view), &blame.signature) {
            return Err("bad blame signature");
        }
        if let BlameReason::Equivocation(pair) = &blame.reason {
            self.equivocation(&pair.0, &pair.1)?;
        }
        Ok(())
    }

    /// Two valid proposals of one view from its leader that an honest leader never both
    /// signs (S5a): the pair alone shows that the view's blocks do not form one chain.
    /// An honest leader's view-v blocks are one chain: one first block (parent QC from an
    /// earlier view, or genesis), then each block over a view-v QC of the one below. So
    /// any of these is a proof:
    /// - two blocks at one height;
    /// - two first blocks;
    /// - a block whose view-v parent QC names another block at the other one's height (a
    ///   view-v QC holds an honest vote, and honest replicas vote only for leader-signed
    ///   blocks, so the leader signed that other block too);
    /// - a first block, and a block whose view-v parent lies below it.
    pub fn equivocation(&self, a: &Proposal, b: &Proposal) -> Checked {
        self.proposal_block(a)?;
        self.proposal_block(b)?;
        let (x, y) = (&a.block, &b.block);
        if x.view != y.view || x.hash == y.hash {
            return Err("not an equivocation");
        }
        if shows_conflict(x, y) || shows_conflict(y, x) { Ok(()) } else { Err("not an equivocation") }
    }

    pub fn status(&self, status: &Status) -> Checked {
        if (status.voter as usize) >= self.n {
            return Err("unknown status sender");
        }
        if !self.crypto.verify(status.voter, &signed::status(status.view, &status.high_qc), &status.signature) {
            return Err("bad status signature");
        }
        if status.view == 0 || status.blame_cert.view + 1 != status.view {
            return Err("status without the blame certificate of the previous view");
        }
        self.qc(&status.high_qc)?;
        self.blame_cert(&status.blame_cert)
    }

    /// The leader's signature, the hash, and the parent QC's shape.
    pub fn proposal_signature(&self, p: &Proposal) -> Checked {
        let b = &p.block;
        if b.proposer != self.leader(b.view) {
            return Err("proposer is not the view's leader");
        }
        if b.compute_hash() != b.hash {
            return Err("block hash does not match its contents");
        }
        if !self.crypto.verify(b.proposer, &signed::proposal(&b.hash, p.justification.as_ref()), &p.signature) {
            return Err("bad proposal signature");
        }
        Ok(())
    }

    pub fn proposal(&self, p: &Proposal) -> Checked {
        self.proposal_block(p)?;
        self.proposal_justification(p)
    }

    /// The leader's signature, the hash, and the parent QC.
    pub fn proposal_block(&self, p: &Proposal) -> Checked {
        self.proposal_signature(p)?;
        let b = &p.block;
        if b.parent != b.parent_qc.hash || b.height != b.parent_qc.height + 1 || b.parent_qc.view > b.view {
            return Err("block does not extend its parent QC");
        }
        self.qc(&b.parent_qc)
    }

    pub fn proposal_justification(&self, p: &Proposal) -> Checked {
        match (&p.justification, p.block.view) {
            (None, 0) => Ok(()),
            (None, _) => Err("proposal after view 0 without a justification"),
            (Some(j), view) => self.justification(j, view),
        }
    }

    /// BC(view − 1) and ≥ q valid statuses for `view` from distinct replicas.
    pub fn justification(&self, j: &Justification, view: View) -> Checked {
        if view == 0 || j.blame_cert.view + 1 != view {
            return Err("justification for the wrong view");
        }
        self.blame_cert(&j.blame_cert)?;
        let mut senders = BTreeSet::new();
        for s in &j.statuses {
            if s.view != view || !senders.insert(s.voter) {
                return Err("status for another view, or repeated");
            }
            self.status(s)?;
        }
        if senders.len() < self.quorum { Err("too few statuses") } else { Ok(()) }
    }
}

/// One direction of [`Checker::equivocation`]'s cases, for two blocks of one view.
fn shows_conflict(x: &Block, y: &Block) -> bool {
    let first = |b: &Block| b.parent_qc.view < b.view || b.parent_qc.is_genesis();
    if x.height == y.height || (first(x) && first(y)) {
        return true;
    }
    if !first(y) && y.height == x.height + 1 && y.parent != x.hash {
        return true;
    }
    first(x) && !first(y) && y.height < x.height
}

/// The highest-ranked QC among a justification's statuses.
pub fn highest_qc(j: &Justification) -> Option<&QuorumCert> {
    j.statuses.iter().map(|s| &s.high_qc).max_by_key(|qc| qc.rank())
}
