//! Steady-state transitions: S2 receive/forward/vote, S3 certify, S4 commit,
//! S9 fetch. Each function names the step it implements.

use super::core::{Action, Core};
use super::types::*;
use super::verify::highest_qc;

/// Proposals held while their parent is being fetched (beyond this they are dropped; the
/// chain is fetched again from later proposals).
const ORPHANS_MAX: usize = 1_024;
/// Distinct missing blocks proposals are held for (each is asked for again every 2Δ).
const ORPHAN_GAPS_MAX: usize = 64;
/// How far up the chain one newly certified block looks for commit candidates (S4a).
const ANCESTOR_WALK: usize = 64;

/// Pooled votes kept per signer (`room_for_vote`).
pub(super) const VOTES_PER_SIGNER: usize = 1_024;


/// Double votes this replica reports per voter (above the committed height).
const PROVEN_VOTES_PER_VOTER: usize = 4;
impl Core {
    /// S2: validate, detect equivocation, forward on first receipt, learn the parent QC,
    /// then vote if the voting rule allows.
    pub(super) fn on_proposal(&mut self, now: u64, from: ReplicaId, p: Proposal) {
        if !self.valid_proposal(&p) {
            // Honest replicas forward only proposals that verify: this link sent it.
            return self.unverifiable_from(from);
        }
        let (hash, view, height) = (p.block.hash, p.block.view, p.block.height);
        if view > self.view
            && let Some(j) = &p.justification
        {
            self.enter_view(now, j.blame_cert.clone()); // S8
        }
        let conflicting = match self.seen.get(&(view, height)) {
            Some(other) if other.block.hash != hash => {
                if self.equivocation_news(view) {
                    let other = other.clone();
                    self.on_equivocation(now, other, p.clone());
                }
                true
            }
            Some(_) => false,
            None => {
                self.seen.insert((view, height), p.clone());
                false
            }
        };
        // A second block of one view at one height, or any new block of a view proven to
        // equivocate, is evidence, not work: neither stored nor forwarded (the blame carries
        // the pair), so an equivocating leader's many blocks cost each replica one signature
        // check apiece and nothing on disk or on the links. If one of them is certified
        // anyway, its QC is learned here and the block fetched from a replica that voted.
        if conflicting || (self.equivocation == Some(view) && !self.blocks.contains_key(&hash)) {
            self.learn_qc(now, p.block.parent_qc.clone());
            return;
        }
        // Not below the committed height: nobody votes there, and a replica that just came
        // back must not echo old proposals to everyone (NOTEBOOK, the fetch storm).
        let fresh = height > self.committed_height && self.forwarded.insert(hash, height).is_none();
        if fresh && view + 1 >= self.view && !self.cfg.planted.no_forward {
            self.out.push(Action::Broadcast(Message::Propose(p.clone())));
        }
        self.store_block(&p.block);
        self.learn_qc(now, p.block.parent_qc.clone());
        self.on_certified(hash);
        self.track_view_block(now, &p); // S5a
        // S9: every link down to the committed block must be known before the voting rule
        // can be checked. A crash can lose stored blocks from the middle of the chain, and a
        // lost FETCH reply leaves a gap that nothing else asks for again, so each receipt of
        // the proposal asks for the lowest-reaching missing link it finds.
        if let Some(gap) = self.first_gap(&p.block) {
            self.fetch(now, gap, from);
            if self.orphans.len() < ORPHAN_GAPS_MAX || self.orphans.contains_key(&gap) {
                let waiting = self.orphans.entry(gap).or_default();
                if waiting.len() < ORPHANS_MAX && !waiting.iter().any(|(_, q)| q.block.hash == hash) {
                    waiting.push((from, p));
                }
            }
            return;
        }
        self.try_vote(now, &p);
        if let Some(children) = self.orphans.remove(&hash) {
            for (sender, child) in children {
                self.on_proposal(now, sender, child);
            }
        }
    }

    /// S2's validity check, done once per distinct proposal and once per justification:
    /// the forwarded copies of a proposal, and the justification that every proposal of a
    /// view carries, are not verified again (they are compared instead).
    fn valid_proposal(&mut self, p: &Proposal) -> bool {
        if self.seen.get(&(p.block.view, p.block.height)).is_some_and(|first| first == p) {
            return true;
        }
        let checker = self.checker();
        if checker.proposal_block(p).is_err() {
            return false;
        }
        let Some(j) = &p.justification else { return checker.proposal_justification(p).is_ok() };
        if self.verified_justification.as_ref().is_some_and(|(view, known)| *view == p.block.view && known == j) {
            return true;
        }
        if checker.proposal_justification(p).is_err() {
            return false;
        }
        self.verified_justification = Some((p.block.view, j.clone()));
        true
    }

    /// S2, the voting rule (conditions 1–6 of the notebook).
    pub(super) fn try_vote(&mut self, now: u64, p: &Proposal) {
        let b = &p.block;
        // S2.1: in the view, entered, no equivocation, no view block of unknown link (S5a).
        let in_view = b.view == self.view || (self.cfg.planted.vote_below_view && b.view < self.view);
        if !in_view || !self.entered() || self.equivocation == Some(self.view) || !self.view_unlinked.is_empty() {
            return;
        }
        // S13: not before a restarted replica has re-learned its view.
        if self.recovering() {
            return;
        }
        // S2.6: a block within the batch limits (a Byzantine leader's huge block is refused).
        let bytes: usize = b.requests.iter().map(Vec::len).sum();
        if b.requests.len() > self.cfg.batch_max || bytes > self.cfg.batch_bytes_max {
            return;
        }
        if self.votes.iter().any(|v| v.hash == b.hash) {
            // A repeated proposal means the leader still lacks votes: send ours again.
            if !self.qcs.contains_key(&b.hash) {
                let vote = self.own_vote(b);
                self.send_vote(vote);
            }
            return;
        }
        if !self.extends(&b.hash, &self.committed_hash) {
            return;
        }
        // S2.2: one chain per view.
        if self.cfg.planted.vote_per_height {
            if self.votes.iter().any(|v| v.height == b.height) {
                return;
            }
        } else if self.votes.iter().any(|v| !self.extends(&b.hash, &v.hash) && !self.extends(&v.hash, &b.hash)) {
            return;
        }
        // S2.3: the lock.
        if b.parent_qc.rank() < self.high_qc.rank() && !self.extends(&b.hash, &self.high_qc.hash) {
            return;
        }
        // S2.4: a view's first block extends the highest QC of its justification, which
        // ranks at least as high as what this replica reported.
        if b.parent_qc.view < b.view && b.view > 0 {
            let Some(j) = &p.justification else { return };
            let Some(highest) = highest_qc(j) else { return };
            let reported = self.reported.unwrap_or(self.high_qc.rank());
            let extends_highest = b.parent_qc.rank() == highest.rank() && b.parent == highest.hash;
            if (!extends_highest && !self.cfg.planted.first_block_any_qc) || highest.rank() < reported {
                return;
            }
        }
        // S2.5: the block's time (the chat state's clock: message times, session windows)
        // never goes back and stays near this replica's own clock. Keeping the parent's time
        // is always allowed: after the replicas' clocks step back (or restart behind the
        // committed time), blocks keep ordering with the time standing still until the
        // clocks catch up, instead of every vote being refused.
        let parent_time = self.blocks.get(&b.parent).map_or(0, |parent| parent.time_ms);
        let slack = self.cfg.clock_skew_ms;
        let moves_clock = b.time_ms > parent_time;
        if b.time_ms < parent_time
            || (moves_clock && b.time_ms > now + slack)
            || b.time_ms + slack + self.cfg.timeout_cap_ms < now
        {
            return;
        }
        let vote = self.own_vote(b);
        self.votes.push(b.named());
        self.persist();
        self.send_vote(vote.clone());
        self.vote_time.insert(b.hash, now);
        self.on_vote(now, vote);
    }

    /// Votes go to every replica, so no leader can hide the QCs they form (NOTEBOOK, "Why
    /// the traps do not apply").
    fn send_vote(&mut self, vote: Vote) {
        if self.cfg.planted.votes_to_leader {
            self.out.push(Action::Send(self.leader(vote.view), Message::Vote(vote)));
        } else {
            self.out.push(Action::Broadcast(Message::Vote(vote)));
        }
    }

    /// This replica's signed vote for `b`.
    fn own_vote(&self, b: &Block) -> Vote {
        let signature = self.crypto.sign(&signed::vote(b.view, b.height, &b.hash));
        Vote { view: b.view, height: b.height, hash: b.hash, voter: self.me, signature }
    }

    /// This replica's signed proposal of `block` (its own), with the view's justification.
    pub(super) fn own_proposal(&self, block: Block) -> Proposal {
        let justification = if self.view > 0 { self.justification.clone() } else { None };
        let signature = self.crypto.sign(&signed::proposal(&block.hash, justification.as_ref()));
        Proposal { block, signature, justification }
    }

    /// S3: count a vote; q of them form a QC. False when its signature does not verify.
    pub(super) fn on_vote(&mut self, now: u64, vote: Vote) -> bool {
        if vote.height <= self.committed_height {
            return true;
        }
        if self.checker().vote(&vote).is_err() {
            return false;
        }
        let key = (vote.view, vote.height, vote.hash);
        if !self.cfg.planted.duplicate_votes && self.vote_pool.get(&key).is_some_and(|pool| pool.iter().any(|(who, _)| *who == vote.voter)) {
            return true;
        }
        self.double_votes(&vote);
        if !self.room_for_vote(&vote) {
            return true;
        }
        let pool = self.vote_pool.entry(key).or_default();
        pool.push((vote.voter, vote.signature));
        if pool.len() == self.cfg.qc_size() {
            let votes = pool.clone();
            let qc = QuorumCert { view: vote.view, height: vote.height, hash: vote.hash, votes };
            self.learn_qc(now, qc);
        }
        true
    }

    /// Evidence: `vote` (verified) and a pooled vote of its signer for another block of its
    /// view. Only votes still pooled are compared (above the committed height, at most
    /// `VOTES_PER_SIGNER` a signer), so finding one costs no more than pooling.
    fn double_votes(&mut self, vote: &Vote) {
        let key = (vote.voter, vote.view, vote.height);
        // One proof per (voter, view, height), and a few per voter are plenty: past that a
        // Byzantine voter's pairs cost nothing (no checks, no memory).
        let of_voter = self.proven_votes.range((vote.voter, 0, 0)..=(vote.voter, View::MAX, Height::MAX)).count();
        if self.proven_votes.contains(&key) || of_voter >= PROVEN_VOTES_PER_VOTER {
            return;
        }
        let Some(mine) = self.votes_by_signer.get(&vote.voter) else { return };
        let (low, high) = match self.cfg.planted.votes_any_height {
            false => (vote.height, vote.height),
            true => (0, Height::MAX),
        };
        let others: Vec<(View, Height, Hash)> =
            mine.range((vote.view, low, [0; 32])..=(vote.view, high, [0xff; 32])).filter(|(_, _, hash)| *hash != vote.hash).copied().collect();
        // The first pooled vote for another block is enough (both were verified when they
        // came; the check below only confirms the pair is a proof).
        let earlier = others.into_iter().find_map(|(view, height, hash)| {
            let pool = self.vote_pool.get(&(view, height, hash))?;
            let (_, signature) = pool.iter().find(|(who, _)| *who == vote.voter)?;
            Some(Vote { view, height, hash, voter: vote.voter, signature: signature.clone() })
        });
        let Some(earlier) = earlier else { return };
        let proof = super::Evidence::DoubleVote(Box::new((earlier, vote.clone())));
        if self.checker().evidence(&proof).is_ok() {
            self.out.push(Action::Evidence(proof));
            self.proven_votes.insert(key);
        }
    }

    /// Keeps at most `VOTES_PER_SIGNER` pooled votes of one signer (signed junk at heights
    /// above the committed one would otherwise stay until those heights commit, for ever):
    /// past that, the signer's vote of the lowest (view, height) goes, which may be this
    /// one. What makes progress is always the newest votes: under any timing more than
    /// that many heights can be certified and not committed when a view ends, and keeping
    /// the lowest would then drop every later vote everywhere (found by review). A replica
    /// far behind catches up by the QCs in blocks and by checkpoints (S9, S11), not by
    /// pooled votes. Returns false when this vote is not kept.
    fn room_for_vote(&mut self, vote: &Vote) -> bool {
        if self.cfg.planted.unbounded_pools {
            return true;
        }
        let mine = self.votes_by_signer.entry(vote.voter).or_default();
        let Some((view, height, hash)) = super::bounds::keep_highest(mine, (vote.view, vote.height, vote.hash), VOTES_PER_SIGNER) else {
            return true;
        };
        if (view, height, hash) == (vote.view, vote.height, vote.hash) {
            return false;
        }
        if let Some(pool) = self.vote_pool.get_mut(&(view, height, hash)) {
            pool.retain(|(who, _)| *who != vote.voter);
            if pool.is_empty() {
                self.vote_pool.remove(&(view, height, hash));
            }
        }
        true
    }

    /// S3: learn a QC not checked yet (the parent QC of a fetched block).
    pub(super) fn on_qc(&mut self, now: u64, qc: QuorumCert) {
        if self.knows_qc(&qc) || self.checker().qc(&qc).is_err() {
            return;
        }
        self.learn_qc(now, qc);
    }

    fn knows_qc(&self, qc: &QuorumCert) -> bool {
        qc.is_genesis() || qc.height <= self.committed_height || self.qcs.contains_key(&qc.hash)
    }

    /// S3: learn a valid QC (formed here from checked votes, or carried in a proposal or
    /// status that was checked with it). `high_qc` only rises.
    pub(super) fn learn_qc(&mut self, now: u64, qc: QuorumCert) {
        if self.knows_qc(&qc) {
            return;
        }
        if qc.rank() > self.high_qc.rank() || self.cfg.planted.high_qc_backwards {
            self.high_qc = qc.clone();
            self.persist();
        }
        let hash = qc.hash;
        if self.cfg.record_qcs {
            self.learned_qcs.push((qc.view, qc.height, hash));
        }
        self.qcs.insert(hash, qc);
        if !self.blocks.contains_key(&hash) {
            self.fetch(now, hash, self.me);
        }
        self.on_certified(hash);
        self.try_commit(now);
    }

    /// S4a, incrementally: once both block `x` and QC(x) are known, its certified ancestors
    /// from the same view (within `ANCESTOR_WALK`) have a certified descendant and become
    /// commit candidates. A block's QC always reaches a replica no later than its
    /// children's blocks do (each child carries it), so walking up from each newly
    /// certified block finds every candidate.
    pub(super) fn on_certified(&mut self, x: Hash) {
        let (Some(top), true) = (self.blocks.get(&x), self.qcs.contains_key(&x)) else { return };
        if self.cfg.planted.single_qc_commit {
            self.candidates.insert((top.height, x));
        }
        let view = top.view;
        let mut at = top.parent;
        for _ in 0..ANCESTOR_WALK {
            let Some(b) = self.blocks.get(&at) else { break };
            if b.height <= self.committed_height || (b.view != view && !self.cfg.planted.cross_view_chain) {
                break;
            }
            if self.qcs.contains_key(&at) {
                self.candidates.insert((b.height, at));
            }
            at = b.parent;
        }
    }

    /// S4b, then commit the highest candidate that qualifies (with its ancestors).
    pub(super) fn try_commit(&mut self, now: u64) {
        let wait = if self.cfg.planted.no_delta_wait { 0 } else { 2 * self.cfg.delta_ms };
        let cross_view = self.cfg.planted.cross_view_chain || self.cfg.planted.keep_commit_timer;
        let unlinked = !self.view_unlinked.is_empty() && !self.cfg.planted.commit_with_unlinked;
        let planted_at_wait = self.cfg.planted.commit_at_two_delta;
        let ready = self.candidates.iter().rev().find(|(_, hash)| {
            let Some(b) = self.blocks.get(hash) else { return false };
            (cross_view || (b.view == self.view && self.entered() && !unlinked))
                && self.equivocation != Some(b.view)
                // Strictly after 2Δ: a conflicting block forwarded to this replica may arrive
                // at exactly vote + 2Δ (Δ bounds a delay inclusively), and must be seen first
                // (found by the 100,000-seed coalition run, seed 52499).
                && self.vote_time.get(hash).is_some_and(|t| now > t + wait || (planted_at_wait && now == t + wait))
        });
        if let Some(&(height, hash)) = ready {
            if self.cfg.record_qcs
                && let Some(b) = self.blocks.get(&hash)
            {
                self.s4_commits.push((b.view, height, hash));
            }
            self.commit_through(now, hash);
        }
    }

    /// Commits `hash` and every uncommitted ancestor, in height order.
    pub(super) fn commit_through(&mut self, now: u64, hash: Hash) {
        let mut chain = Vec::new();
        let mut at = hash;
        while at != self.committed_hash {
            let Some(b) = self.blocks.get(&at) else {
                self.fetch(now, at, self.me);
                return;
            };
            if b.height <= self.committed_height {
                // Not an extension of what this replica committed: never commit it.
                self.conflicts += 1;
                self.candidates.retain(|(_, h)| *h != hash);
                return;
            }
            chain.push(b.clone());
            at = b.parent;
        }
        for block in chain.into_iter().rev() {
            assert_eq!(block.height, self.committed_height + 1, "commits are contiguous");
            self.committed_height = block.height;
            self.committed_hash = block.hash;
            for r in &block.requests {
                self.remember_committed(super::digest(r));
            }
            let (height, hash) = (block.height, block.hash);
            self.out.push(Action::Commit(block));
            if height % self.cfg.checkpoint_every == 0 {
                self.out.push(Action::TakeSnapshot { height, hash });
            }
        }
        self.last_progress_ms = now;
        self.failures = 0;
        self.prune();
        self.after_commit();
    }

    pub(super) fn prune(&mut self) {
        let h = self.committed_height;
        self.candidates.retain(|(height, _)| *height > h);
        self.votes.retain(|b| b.height > h);
        self.proposals.retain(|b| b.height > h);
        self.vote_pool.retain(|(_, height, _), _| *height > h);
        self.proven_votes.retain(|(_, _, height)| *height > h);
        for mine in self.votes_by_signer.values_mut() {
            mine.retain(|(_, height, _)| *height > h);
        }
        for mine in self.checkpoints_by_signer.values_mut() {
            *mine = mine.split_off(&(h + 1, [0; 32]));
        }
        self.qcs.retain(|_, qc| qc.height > h);
        self.seen.retain(|(_, height), _| *height + 1 > h);
        self.checkpoints.retain(|(height, _), _| *height > h);
        self.forwarded.retain(|_, height| *height > h);
        self.orphans.retain(|_, children| {
            children.retain(|(_, p)| p.block.height > h);
            !children.is_empty()
        });
    }
}
