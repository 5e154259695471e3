//! The coalition's crafted leadership: the chains it shows each group in a view it leads,
//! the hidden QC, "leave now", forged requests, and certificates of its members only.

use std::collections::BTreeMap;

use super::{CHAIN_MAX, Chain, Coalition, Crafted, Stale};
use crate::consensus::{
    self, Block, Checkpoint, Crypto, Hash, Height, Justification, Message, Proposal, QuorumCert, ReplicaId, SimCrypto,
    StateCert, StateTransfer, Status, View,
};
use crate::rng::Rng;

impl Coalition {
    /// Starts a view the coalition leads: one chain per group (S5a's attack surface).
    pub(super) fn lead(&mut self, view: View, now: u64, rng: &mut Rng, out: &mut Vec<Crafted>) {
        let reported: BTreeMap<ReplicaId, Status> = self.statuses.get(&view).cloned().unwrap_or_default();
        // Candidate parents: every QC an honest status reported (genesis in view 0).
        let mut parents: Vec<QuorumCert> = reported.values().map(|s| s.high_qc.clone()).collect();
        parents.push(QuorumCert::genesis());
        parents.sort_by_key(|qc| qc.rank());
        parents.dedup_by_key(|qc| qc.hash);
        let mut honest = self.honest.clone();
        if self.plan.leave_after_first && !reported.is_empty() {
            // Only the replicas that reported are shown the view: the one still committing
            // in the previous view must not be pulled out of it by this view's first block.
            honest.retain(|id| reported.contains_key(id));
        }
        let groups = if self.plan.split && honest.len() >= 2 { 2 } else { 1 };
        // Replicas that reported high QCs go to the high group (they refuse lower parents).
        honest.sort_by_key(|id| reported.get(id).map(|s| s.high_qc.rank()));
        // The cut: the replicas that reported the lowest QC against the rest (the rest refuse
        // a block over it: their lock is higher), or a random cut when all reported alike.
        let rank = |id: &ReplicaId| reported.get(id).map(|s| s.high_qc.rank());
        let lowest = honest.iter().filter(|id| rank(id) == rank(&honest[0])).count();
        let cut = match groups {
            2 if lowest < honest.len() && rng.chance(3, 4) => lowest,
            2 => 1 + rng.below(honest.len() as u64 - 1) as usize,
            _ => honest.len(),
        };
        let plan_groups: Vec<Vec<ReplicaId>> =
            if groups == 2 { vec![honest[..cut].to_vec(), honest[cut..].to_vec()] } else { vec![honest.clone()] };
        for (g, group) in plan_groups.into_iter().enumerate() {
            // The group's parent: mostly the lowest its members accept (the highest QC they
            // reported), else any higher one.
            let floor = group.iter().filter_map(|id| reported.get(id)).map(|s| s.high_qc.rank()).max().unwrap_or((0, 0));
            let fits: Vec<&QuorumCert> = parents.iter().filter(|qc| qc.rank() >= floor).collect();
            let pick = if rng.chance(3, 4) { 0 } else { rng.below(fits.len().max(1) as u64) as usize };
            let Some(parent) = fits.get(pick).map(|qc| (*qc).clone()) else { continue };
            let justification = if view == 0 { None } else { self.justification(view, &parent, &reported) };
            if view > 0 && justification.is_none() {
                continue;
            }
            let delay = 1 + if g == 0 { 0 } else { self.plan.shadow_delay_ms };
            let time_ms = now + g as u64;
            let block = self.block(view, parent, time_ms, rng);
            let chain = Chain { group: group.clone(), justification: justification.clone(), first: block.clone(), first_shown_ms: now + delay, tip: block.clone(), length: 1 };
            let chains = self.chains.entry(view).or_default();
            chains.push(chain);
            let i = chains.len() - 1;
            self.show(&block, justification, &group, delay, out);
            self.maybe_leave(view, i, now, rng, out);
        }
    }

    /// BC(v−1) and q statuses whose highest QC is `parent`: the members report `parent` (or
    /// genesis), the honest statuses used report no more than it.
    fn justification(&self, view: View, parent: &QuorumCert, reported: &BTreeMap<ReplicaId, Status>) -> Option<Justification> {
        let blame_cert = self.certificates.get(&(view - 1))?.clone();
        let mut statuses: Vec<Status> = reported.values().filter(|s| s.high_qc.rank() <= parent.rank()).cloned().collect();
        statuses.truncate(self.quorum.saturating_sub(1).max(1));
        for m in &self.members {
            let high_qc = if statuses.iter().any(|s| s.high_qc.hash == parent.hash) { QuorumCert::genesis() } else { parent.clone() };
            let signature = SimCrypto { me: *m }.sign(&consensus::signed::status(view, &high_qc));
            statuses.push(Status { view, high_qc, voter: *m, signature, blame_cert: blame_cert.clone() });
        }
        statuses.sort_by_key(|s| s.voter);
        (statuses.len() >= self.quorum).then_some(Justification { blame_cert, statuses })
    }

    /// A block of `view` over `parent`, with requests it heard (and a forgery, if planned).
    fn block(&mut self, view: View, parent: QuorumCert, time_ms: u64, rng: &mut Rng) -> Block {
        let mut requests = Vec::new();
        if !self.requests.is_empty() {
            requests.push(self.requests[rng.below(self.requests.len() as u64) as usize].clone());
        }
        if self.plan.forge_requests
            && let Some(forged) = self.forged_request(rng)
        {
            requests.push(forged);
        }
        let mut block = Block {
            view,
            height: parent.height + 1,
            parent: parent.hash,
            parent_qc: parent,
            proposer: self.leader(view),
            time_ms,
            requests,
            hash: [0; 32],
        };
        block.hash = block.compute_hash();
        self.crafted.insert(block.hash, block.clone());
        block
    }

    /// A heard request with its operation changed and its signature kept: it claims to be
    /// the user's, but the user never signed it.
    fn forged_request(&self, rng: &mut Rng) -> Option<Vec<u8>> {
        use prost::Message as _;
        if self.requests.is_empty() {
            return None;
        }
        let bytes = &self.requests[rng.below(self.requests.len() as u64) as usize];
        let mut signed = crate::pb::SignedRequest::decode(bytes.as_slice()).ok()?;
        let mut body = crate::pb::RequestBody::decode(signed.body.as_slice()).ok()?;
        body.seq += 1 + rng.below(3);
        body.op = Some(crate::wire::encode_op(&crate::chat::Op::Send { to: body.user.clone(), text: "forged".into() }));
        signed.body = body.encode_to_vec();
        Some(signed.encode_to_vec())
    }

    /// Shows a crafted block to a group, with the members' votes towards it only.
    fn show(&mut self, block: &Block, justification: Option<Justification>, group: &[ReplicaId], delay_ms: u64, out: &mut Vec<Crafted>) {
        let leader = block.proposer;
        let signature = SimCrypto { me: leader }.sign(&consensus::signed::proposal(&block.hash, justification.as_ref()));
        let proposal = Proposal { block: block.clone(), signature, justification };
        for (i, to) in group.iter().enumerate() {
            let delay_ms = delay_ms + i as u64 * self.plan.stagger_ms;
            out.push(Crafted { from: leader, to: *to, message: Message::Propose(proposal.clone()), delay_ms });
            if self.plan.narrow_votes && i > 0 {
                continue;
            }
            for m in &self.members {
                let vote = Self::sign_vote(*m, block);
                self.votes.entry(block.hash).or_default().insert(*m, vote.signature.clone());
                out.push(Crafted { from: *m, to: *to, message: Message::Vote(vote), delay_ms: delay_ms + 1 });
            }
        }
    }

    /// "Leave now" (see the top): after chain `i`'s `.0`-th block, a twin of it (or of the
    /// chain's first block) and the members' blames reach a random set of the honest
    /// replicas `.1` ms later (or, with `leave_after_first`, within the stagger after Δ from
    /// the first block: its vote recipient is about to commit it, the others lack its QC);
    /// never the one a narrow chain is shown to.
    fn maybe_leave(&mut self, view: View, i: usize, now: u64, rng: &mut Rng, out: &mut Vec<Crafted>) {
        let Some((at_length, after_ms)) = self.plan.leave else { return };
        let chain = &self.chains[&view][i];
        if chain.length != at_length || self.blamed.contains(&view) {
            return;
        }
        self.blamed.insert(view);
        let (block, group, justification) = (chain.tip.clone(), chain.group.clone(), chain.justification.clone());
        let after_ms = if self.plan.leave_after_first {
            let window = self.plan.stagger_ms.max(2);
            (chain.first_shown_ms + self.delta_ms + 1 + rng.below(window - 1)).saturating_sub(now)
        } else {
            after_ms
        };
        let narrow = (self.plan.narrow_votes && self.plan.narrow_chain).then(|| group[0]);
        let mut twin = if self.plan.twin_first { chain.first.clone() } else { block.clone() };
        twin.time_ms += 1;
        twin.requests.clear();
        twin.hash = twin.compute_hash();
        self.crafted.insert(twin.hash, twin.clone());
        let signature = SimCrypto { me: twin.proposer }.sign(&consensus::signed::proposal(&twin.hash, justification.as_ref()));
        let proposal = Proposal { block: twin.clone(), signature, justification };
        let entered_by = block.view.checked_sub(1).and_then(|w| self.certificates.get(&w).cloned());
        // A random proper subset of the honest replicas leaves now; the others learn BC(v)
        // Δ later, and one of them may be shown a hidden QC meanwhile.
        let victim = self.plan.hide_qc.then(|| self.victim(block.view, rng));
        let stays = |h: &ReplicaId| Some(*h) == victim || Some(*h) == narrow;
        let mut leavers: Vec<ReplicaId> = self.honest.iter().copied().filter(|h| !stays(h) && rng.chance(1, 2)).collect();
        if leavers.is_empty() {
            let can: Vec<ReplicaId> = self.honest.iter().copied().filter(|h| !stays(h)).collect();
            let from = if can.is_empty() { &self.honest } else { &can };
            leavers.push(from[rng.below(from.len() as u64) as usize]);
        }
        if leavers.len() == self.honest.len() {
            leavers.remove(rng.below(leavers.len() as u64) as usize);
        }
        self.blame_targets.insert(block.view, leavers.clone());
        for to in leavers {
            out.push(Crafted { from: twin.proposer, to, message: Message::Propose(proposal.clone()), delay_ms: after_ms + 1 });
            for m in self.members.clone() {
                out.push(Crafted { from: m, to, message: Self::blame(m, block.view, entered_by.clone()), delay_ms: after_ms + 2 });
            }
        }
    }

    /// A vote for a crafted block came in: with q of them, grow that block's chain.
    pub(super) fn extend_chains(&mut self, hash: Hash, now: u64, rng: &mut Rng, out: &mut Vec<Crafted>) {
        let Some(block) = self.crafted.get(&hash).cloned() else { return };
        let votes = self.votes.get(&hash).cloned().unwrap_or_default();
        if votes.len() < self.quorum || self.qcs.contains_key(&hash) {
            return;
        }
        let qc = QuorumCert { view: block.view, height: block.height, hash, votes: votes.into_iter().collect() };
        self.qcs.insert(hash, qc.clone());
        let Some(i) = self.chains.get(&block.view).and_then(|c| c.iter().position(|c| c.tip.hash == hash)) else { return };
        let (group, justification, length) = {
            let chain = &self.chains[&block.view][i];
            (chain.group.clone(), chain.justification.clone(), chain.length)
        };
        // Stale QC: the chain may stop here, its last QC shown to no one outside the group.
        if length >= CHAIN_MAX || (self.plan.stale_qc && rng.chance(1, 3)) {
            // A QC nobody outside the group was shown: kept for the stale-QC move.
            let holders = if self.plan.narrow_votes { vec![group[0]] } else { group.clone() };
            self.stale.push(Stale { qc, tip: block, justification, holders, sent: Vec::new() });
            return;
        }
        let delay = self.plan.step_delay_ms;
        let next = self.block(block.view, qc, (now + delay).max(block.time_ms), rng);
        if let Some(chain) = self.chains.get_mut(&block.view).and_then(|c| c.get_mut(i)) {
            chain.tip = next.clone();
            chain.length += 1;
        }
        let shown = if self.plan.narrow_votes && self.plan.narrow_chain { &group[..1] } else { &group[..] };
        self.show(&next, justification, shown, delay, out);
        self.maybe_leave(block.view, i, now, rng, out);
    }

    /// Stale QC (see the top): `to` holds BC(`left`) and the coalition leads the next view:
    /// a proposal carrying a QC the coalition formed and never showed `to` reaches it
    /// before its STATUS (which S6 sends 2Δ after it entered). Honest cores ignore a QC
    /// ranked below what they hold; this is the move that shows why.
    pub(super) fn stale_qc(&mut self, to: ReplicaId, left: View, rng: &mut Rng, out: &mut Vec<Crafted>) {
        if !self.plan.stale_qc || self.member(to) || !self.leads(left + 1) {
            return;
        }
        let Some(i) = self.stale.iter().position(|s| !s.holders.contains(&to) && !s.sent.contains(&to)) else { return };
        self.stale[i].sent.push(to);
        let (qc, tip, justification) = (self.stale[i].qc.clone(), self.stale[i].tip.clone(), self.stale[i].justification.clone());
        let child = self.block(tip.view, qc, tip.time_ms + 1, rng);
        let signature = SimCrypto { me: child.proposer }.sign(&consensus::signed::proposal(&child.hash, justification.as_ref()));
        let proposal = Proposal { block: child, signature, justification };
        let delay_ms = self.delta_ms / 4 + rng.below(self.delta_ms * 3 / 4);
        out.push(Crafted { from: tip.proposer, to, message: Message::Propose(proposal), delay_ms });
    }

    /// The view `view` is being left (an honest replica blamed it, or its certificate came
    /// by): if the coalition leads it, one honest replica alone is shown a block over the
    /// highest QC the coalition holds, with the coalition's votes, then its child.
    pub(super) fn hide_qc(&mut self, view: View, now: u64, rng: &mut Rng, out: &mut Vec<Crafted>) {
        if !self.plan.hide_qc || !self.leads(view) || !self.hidden.insert(view) {
            return;
        }
        let victim = self.victim(view, rng);
        let (parent, justification) = match self.chains.get(&view).and_then(|c| c.first()) {
            Some(chain) => (self.qcs.get(&chain.tip.parent).cloned().unwrap_or_else(QuorumCert::genesis), chain.justification.clone()),
            None if view == 0 => (QuorumCert::genesis(), None),
            None => {
                let reported = self.statuses.get(&view).cloned().unwrap_or_default();
                let parent = reported.values().map(|s| s.high_qc.clone()).max_by_key(|qc| qc.rank()).unwrap_or_else(QuorumCert::genesis);
                let justification = self.justification(view, &parent, &reported);
                if justification.is_none() {
                    return;
                }
                (parent, justification)
            }
        };
        let block = self.block(view, parent, now, rng);
        self.chains.entry(view).or_default().push(Chain { group: vec![victim], justification: justification.clone(), first: block.clone(), first_shown_ms: now + 1, tip: block.clone(), length: 1 });
        self.show(&block, justification, &[victim], 1, out);
    }

    /// "Shown after a restart" (see the top): within 30Δ of its restart, an honest replica
    /// is shown a first block of its own in a view the coalition leads and has shown a chain
    /// in, over that chain's parent, with the same justification and the members' votes.
    /// Without S13 it votes (it forgot the first block it saw), and the votes make a QC.
    pub(super) fn show_restarted(&mut self, view: View, now: u64, rng: &mut Rng, out: &mut Vec<Crafted>) {
        self.restarted.retain(|(_, at)| now < at + 30 * self.delta_ms);
        let Some(chain) = self.chains.get(&view).and_then(|c| c.first()) else { return };
        let (parent, justification) = (chain.first.parent_qc.clone(), chain.justification.clone());
        for (id, _) in self.restarted.clone() {
            if !self.shown_restarted.insert((view, id)) {
                continue;
            }
            let block = self.block(view, parent.clone(), now, rng);
            let chain = Chain { group: vec![id], justification: justification.clone(), first: block.clone(), first_shown_ms: now + 1, tip: block.clone(), length: 1 };
            self.chains.entry(view).or_default().push(chain);
            self.show(&block, justification.clone(), &[id], 1, out);
        }
    }

    /// CHECKPOINTs and a state transfer signed by the members only, for a block and an
    /// image the coalition made up (q − 1 signatures: never enough).
    pub(super) fn fake_certificates(&mut self, committed: Height, victim: ReplicaId, now: u64, rng: &mut Rng, out: &mut Vec<Crafted>) {
        self.fake_height = self.fake_height.max(committed + 1 + rng.below(3));
        let height = self.fake_height;
        let mut block = Block {
            view: 0,
            height,
            parent: [height as u8; 32],
            parent_qc: QuorumCert::genesis(),
            proposer: self.members[0],
            time_ms: now,
            requests: Vec::new(),
            hash: [0; 32],
        };
        block.hash = block.compute_hash();
        self.crafted.insert(block.hash, block.clone());
        let Ok(image) = crate::storage::image_of(&crate::chat::ChatState::new()) else { return };
        let state = consensus::digest(&image);
        let mut signatures = Vec::new();
        for m in self.members.clone() {
            let crypto = SimCrypto { me: m };
            let plain = crypto.sign(&consensus::signed::checkpoint(height, &block.hash, None));
            let checkpoint = Checkpoint { height, hash: block.hash, state: None, voter: m, signature: plain };
            out.push(Crafted { from: m, to: victim, message: Message::Checkpoint(checkpoint), delay_ms: 1 });
            signatures.push((m, crypto.sign(&consensus::signed::checkpoint(height, &block.hash, Some(&state)))));
        }
        let cert = StateCert { height, hash: block.hash, state, signatures };
        let transfer = StateTransfer { cert, block, image };
        out.push(Crafted { from: self.members[0], to: victim, message: Message::State(Box::new(transfer)), delay_ms: 2 });
    }
}
