//! Forged QCs: certificates that carry an honest replica's vote the coalition cannot make.
//! Each member reports one in a signed STATUS to an honest next leader; every honest
//! replica must verify the status, and the QC inside it, before it learns anything from it.

use super::{Coalition, Crafted};
use crate::consensus::{self, Block, Crypto, Message, QuorumCert, SimCrypto, Status, View};

/// Proposals' blocks kept to build siblings of.
const SEEN_MAX: usize = 64;

impl Coalition {
    /// A proposal's block a member received (its own chains' blocks come back forwarded):
    /// kept, bounded, so that a forged QC can certify a sibling of a block honest replicas
    /// certify and commit.
    pub(super) fn keep_block(&mut self, block: &Block) {
        if self.seen_blocks.len() >= SEEN_MAX {
            let lowest = self.seen_blocks.iter().min_by_key(|(_, b)| (b.view, b.height)).map(|(h, _)| *h);
            if let Some(hash) = lowest {
                self.seen_blocks.remove(&hash);
            }
        }
        self.seen_blocks.insert(block.hash, block.clone());
    }

    /// On entering a view led by an honest replica: every member sends that leader a
    /// STATUS of the view, signed by itself, reporting a QC of the view before for a sibling
    /// X of the highest block it saw with a certified child of its own view (a block S4
    /// commits once the 2Δ wait ends). The QC holds the members' genuine votes and, for the
    /// rest of the quorum, honest replicas' names with signatures the coalition made with
    /// its own keys. A leader that learned it would rank X above the blocks it should
    /// extend: it proposes over X, which no honest voter accepts, and the cluster stalls
    /// (or, if that block was committed in the view before, holds a QC the commits rule
    /// out). Once per view, no random draws: the seeds' other moves are unchanged.
    pub(super) fn forged_statuses(&mut self, view: View, out: &mut Vec<Crafted>) {
        if !self.plan.forged_qcs || view == 0 || self.leads(view) || self.forged.contains(&view) {
            return;
        }
        let Some(bc) = self.certificates.get(&(view - 1)).cloned() else { return };
        // Certified blocks with a certified child of their view: one pass over the children
        // (this runs on every tick until the view's statuses are out).
        let committable = self.seen_blocks.values().filter(|c| self.qcs.contains_key(&c.hash)).filter_map(|c| {
            self.seen_blocks.get(&c.parent).filter(|b| b.view == c.view && self.qcs.contains_key(&b.hash))
        });
        let Some(b) = committable.max_by_key(|b| (b.view, b.height)).cloned() else { return };
        self.forged.insert(view);
        let mut x = Block { view: view - 1, time_ms: b.time_ms + 1, requests: Vec::new(), hash: [0; 32], ..b };
        x.hash = x.compute_hash();
        self.crafted.insert(x.hash, x.clone());
        let vote = consensus::signed::vote(x.view, x.height, &x.hash);
        let mut votes: Vec<_> = self.members.iter().map(|m| (*m, SimCrypto { me: *m }.sign(&vote))).collect();
        let forger = SimCrypto { me: self.members[0] };
        for h in self.honest.iter().take(self.quorum.saturating_sub(votes.len())) {
            votes.push((*h, forger.sign(&vote)));
        }
        let qc = QuorumCert { view: x.view, height: x.height, hash: x.hash, votes };
        let leader = self.leader(view);
        for m in self.members.clone() {
            let signature = SimCrypto { me: m }.sign(&consensus::signed::status(view, &qc));
            let status = Status { view, high_qc: qc.clone(), voter: m, signature, blame_cert: bc.clone() };
            out.push(Crafted { from: m, to: leader, message: Message::Status(status), delay_ms: 1 });
        }
    }
}
