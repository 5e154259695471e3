//! View change: S5 blame, S6 leave on a blame certificate, S7 the new leader's wait, S8 enter
//! a view from a message that carries its certificate, S10 timers.

use super::core::{Action, Core, Entering};
use super::types::*;


/// Views whose equivocation this replica remembers having reported.
const PROVEN_VIEWS_MAX: usize = 64;
impl Core {
    /// Runs on every input: status after the 2Δ wait (S6), the new leader's wait (S7),
    /// proposing (S1), time-based commits (S4b), timers (S5/S10), fetch retries (S9).
    pub(super) fn on_tick(&mut self, now: u64) {
        let delta = self.cfg.delta_ms;
        let status_wait = if self.cfg.planted.no_status_wait { 0 } else { 2 * delta };
        // A recovering replica reports nothing yet (S13): its STATUS must carry what the
        // answers teach it.
        // Strictly after 2Δ, as S4b's wait: a QC that reaches this replica at exactly 2Δ must
        // be in its STATUS.
        if let Some(e) = &self.entering
            && !e.status_sent
            && (now > e.since_ms + status_wait || (status_wait == 0 && now >= e.since_ms))
            && !self.recovering()
        {
            self.send_status(now);
        }
        if self.justification.is_none() && self.view > 0 && self.leader(self.view) == self.me {
            let since = self.entering.as_ref().map_or(0, |e| e.since_ms);
            let q = self.cfg.quorum();
            let waited = now >= since + 4 * delta || self.cfg.planted.first_statuses;
            let enough = self.statuses.len() >= q && (waited || self.statuses.len() == self.cfg.n);
            if enough && let Some(e) = &self.entering {
                self.justification = Some(Justification {
                    blame_cert: e.blame_cert.clone(),
                    statuses: self.statuses.values().cloned().collect(),
                });
                self.persist();
            }
        }
        self.relink_view_blocks(now); // S5a
        self.propose(now);
        self.try_commit(now);
        self.relay_waiting(now);
        if self.blamed != Some(self.view)
            && self.entered()
            && self.longest_wait_since().is_some_and(|t| now > t + self.timeout_ms())
        {
            self.blame(now, BlameReason::Timeout); // S5, S10
        }
        self.watch_silence(now);
        self.recover_on_tick(now);
        if now >= self.last_retransmit_ms + 4 * delta {
            self.last_retransmit_ms = now;
            self.retransmit();
            self.release_proofs();
        }
        let missing: Vec<Hash> = self.orphans.keys().copied().collect();
        for hash in missing {
            self.fetch(now, hash, self.me);
        }
    }

    /// S5, a blame heard: another replica blamed this view, so someone waits for its
    /// leader, even when this replica waits for nothing. An honest leader answers a blame
    /// with blocks (the nudge), and a QC of the view forms within a few Δ under synchrony;
    /// if none forms within the request timeout, the leader is taken as silent and blamed.
    /// Without this, a view whose leader crashed is never left when only one replica still
    /// waits (it lags behind the others' commits, or holds a request they lack): its blame
    /// alone is short of q, and the others have no timer running.
    fn watch_silence(&mut self, now: u64) {
        let Some((since, rank)) = self.silence else { return };
        if self.high_qc.view == self.view && self.high_qc.rank() > rank {
            self.silence = None;
        } else if self.entered() && now > since + self.timeout_ms() {
            self.blame(now, BlameReason::Timeout);
        }
    }

    /// S10: links may drop messages, so what this replica is waiting on is sent again: its
    /// blame of the current view, its status (until the view's leader proposes), its latest
    /// uncertified proposal, and its latest checkpoint.
    fn retransmit(&mut self) {
        if let Some(b) = self.last_blame.clone().filter(|b| b.view == self.view) {
            self.out.push(Action::Broadcast(Message::Blame(b)));
        }
        if let Some(s) = self.last_status.clone().filter(|s| s.view == self.view)
            && !self.seen.keys().any(|(v, _)| *v == self.view)
            && self.leader(self.view) != self.me
        {
            self.out.push(Action::Send(self.leader(self.view), Message::Status(s)));
        }
        let last = self.proposals.last().filter(|b| !self.qcs.contains_key(&b.hash));
        if let Some(block) = last.and_then(|b| self.blocks.get(&b.hash)).cloned() {
            let proposal = self.own_proposal(block);
            self.out.push(Action::Broadcast(Message::Propose(proposal)));
        }
        if let Some(c) = self.last_checkpoint.clone() {
            self.out.push(Action::Broadcast(Message::Checkpoint(c)));
        }
        // Also once stable: a replica that restarts far behind learns the stable checkpoint
        // from these, and then asks for its image.
        if let Some(c) = self.last_state_checkpoint.clone() {
            self.out.push(Action::Broadcast(Message::Checkpoint(c)));
        }
        self.maybe_fetch_state();
    }

    fn send_status(&mut self, now: u64) {
        let Some(e) = &mut self.entering else { return };
        e.status_sent = true;
        let blame_cert = e.blame_cert.clone();
        let signature = self.crypto.sign(&signed::status(self.view, &self.high_qc));
        let status = Status { view: self.view, high_qc: self.high_qc.clone(), voter: self.me, signature, blame_cert };
        self.reported = Some(self.high_qc.rank());
        self.persist();
        self.last_status = Some(status.clone());
        let leader = self.leader(self.view);
        if leader == self.me {
            self.on_status(now, status);
        } else {
            self.out.push(Action::Send(leader, Message::Status(status)));
        }
    }

    /// S7: the new leader's first block extends the highest QC among the statuses *and* its
    /// own `high_qc`. Voters check that it extends the justification's highest QC (S2.4),
    /// so when the leader learned a higher QC since its STATUS, it reports it again: its
    /// status in the justification is replaced by a fresh one. Called by `propose` before
    /// the first proposal of the view only.
    pub(super) fn refresh_own_status(&mut self) {
        let Some(j) = &self.justification else { return };
        let highest = super::verify::highest_qc(j).map(|qc| qc.rank());
        if highest.is_some_and(|r| r >= self.high_qc.rank()) {
            return;
        }
        let signature = self.crypto.sign(&signed::status(self.view, &self.high_qc));
        let blame_cert = j.blame_cert.clone();
        let status = Status { view: self.view, high_qc: self.high_qc.clone(), voter: self.me, signature, blame_cert };
        self.reported = Some(self.high_qc.rank());
        if let Some(j) = &mut self.justification {
            j.statuses.retain(|s| s.voter != self.me);
            j.statuses.push(status);
            j.statuses.sort_by_key(|s| s.voter);
        }
        self.persist();
    }

    /// S5: blame the current view, once.
    pub(super) fn blame(&mut self, now: u64, reason: BlameReason) {
        if self.blamed == Some(self.view) {
            return;
        }
        self.blamed = Some(self.view);
        let signature = self.crypto.sign(&signed::blame(self.view));
        let entered_by = self.entering.as_ref().map(|e| e.blame_cert.clone());
        let blame = Blame { view: self.view, voter: self.me, reason, signature, entered_by };
        self.out.push(Action::Broadcast(Message::Blame(blame.clone())));
        self.last_blame = Some(blame.clone());
        self.on_blame(now, self.me, blame);
    }

    /// A blame `from` sent (its voter, or a replica that passes it on to its leader).
    pub(super) fn on_blame(&mut self, now: u64, from: ReplicaId, blame: Blame) {
        if self.checker().blame(&blame).is_err() {
            return;
        }
        if blame.view < self.view {
            // S8: the sender is still in a view this replica left; show it the way out.
            if let Some(e) = &self.entering
                && e.blame_cert.view == blame.view
                && blame.voter != self.me
            {
                self.out.push(Action::Send(blame.voter, Message::BlameCert(e.blame_cert.clone())));
            }
            return;
        }
        if blame.view > self.view
            && let Some(bc) = &blame.entered_by
            && bc.view + 1 == blame.view
        {
            self.on_blame_cert(now, bc.clone()); // S8
        }
        // A blame of a view this replica is not in (a far-future one without the certificate
        // that leads there) is not counted: only the current view's tally exists, so no
        // sender can make this replica keep or forget more than one blame of its own. The
        // planted bug 2 of the 2026-11-22 review counts any later view and prunes relative
        // to the incoming one, so a far-future blame erases the current tally.
        let planted = self.cfg.planted.blame_prune_incoming;
        if blame.view != self.view && !planted {
            return;
        }
        if let BlameReason::Equivocation(pair) = &blame.reason
            && blame.view == self.view
        {
            let (a, b) = (pair.0.clone(), pair.1.clone());
            self.on_equivocation(now, a, b);
        }
        // The leader's nudge: once per replica that made it hear a blame of its view in
        // this view (the blame's voter, or a watcher passing it on, below).
        let old_rule = self.cfg.planted.no_blame_forward;
        let heard_from = if old_rule { blame.voter } else { from };
        if blame.view == self.view
            && blame.voter != self.me
            && heard_from != self.me
            && self.leader(self.view) == self.me
            && self.nudge_to.is_none()
            && self.nudged_by.insert(heard_from)
        {
            self.nudge_to = Some(self.high_qc.height + 2);
        }
        if blame.view == self.view
            && blame.voter != self.me
            && !self.cfg.planted.no_blame_heard
            && self.silence_heard.insert(blame.voter)
            && self.silence.is_none()
        {
            self.silence = Some((now, self.high_qc.rank()));
            // A watch starts here from what this replica holds now: the leader must hear
            // of it now too, or a Byzantine replica could blame to the leader alone first
            // (spending its nudge) and to the others later, when nothing new is ordered.
            let leader = self.leader(self.view);
            if leader != self.me && !old_rule {
                self.out.push(Action::Send(leader, Message::Blame(blame.clone())));
            }
        }
        let view = blame.view;
        let keep_from = if planted { view.saturating_sub(1) } else { view };
        self.blames.retain(|v, _| *v >= keep_from);
        let blames = self.blames.entry(view).or_default();
        blames.insert(blame.voter, blame.signature);
        if blames.len() >= self.cfg.quorum() {
            let blames = blames.iter().map(|(v, s)| (*v, s.clone())).collect();
            self.enter_view(now, BlameCert { view, blames });
        }
    }

    pub(super) fn on_blame_cert(&mut self, now: u64, bc: BlameCert) {
        if bc.view >= self.view && self.checker().blame_cert(&bc).is_ok() {
            self.enter_view(now, bc);
        }
    }

    /// S5: two conflicting proposals from one view's leader: stop voting and committing in
    /// that view, and blame it with the proof.
    pub(super) fn on_equivocation(&mut self, now: u64, a: Proposal, b: Proposal) {
        let view = a.block.view;
        if !self.equivocation_news(view) || self.checker().equivocation(&a, &b).is_err() {
            return;
        }
        if !self.proven_views.contains(&view) {
            self.report(a.clone(), b.clone());
        }
        if view != self.view {
            return;
        }
        self.equivocation = Some(self.view);
        self.equivocation_proof = Some((a.clone(), b.clone()));
        self.blame(now, BlameReason::Equivocation(Box::new((a, b))));
    }

    /// Evidence: a pair already checked as an equivocation, reported once per view.
    fn report(&mut self, a: Proposal, b: Proposal) {
        self.report_proof(super::Evidence::Equivocation(Box::new((a, b))));
    }

    /// Evidence: a checked proof of a view's equivocation, reported once per view.
    pub(super) fn report_proof(&mut self, proof: super::Evidence) {
        let view = match &proof {
            super::Evidence::Equivocation(pair) => pair.0.block.view,
            super::Evidence::ChainEquivocation(p) => p.0.block.view,
            super::Evidence::DoubleVote(pair) => pair.0.view,
        };
        self.proven_views.insert(view);
        while self.proven_views.len() > PROVEN_VIEWS_MAX {
            self.proven_views.pop_first();
        }
        self.out.push(Action::Evidence(proof));
    }

    /// Evidence only (no blame, nothing stops): reports the pair if it proves an
    /// equivocation not reported yet.
    pub(super) fn report_equivocation(&mut self, a: Proposal, b: Proposal) {
        if !self.proven_views.contains(&a.block.view) && self.checker().equivocation(&a, &b).is_ok() {
            self.report(a, b);
        }
    }

    /// S6 (and S8): on the first BC(w) with w ≥ the current view, move to view w + 1.
    pub(super) fn enter_view(&mut self, now: u64, bc: BlameCert) {
        if bc.view < self.view {
            return;
        }
        self.out.push(Action::Broadcast(Message::BlameCert(bc.clone())));
        self.view = bc.view + 1;
        self.votes.clear();
        self.proposals.clear();
        self.reported = None;
        self.reset_view_chain();
        if !self.cfg.planted.cross_view_chain && !self.cfg.planted.keep_commit_timer {
            self.vote_time.clear();
            self.candidates.clear();
        }
        self.equivocation = None;
        self.equivocation_proof = None;
        self.statuses.clear();
        self.justification = None;
        self.nudge_to = None;
        self.nudged_by.clear();
        self.nudged_by_relay.clear();
        self.silence = None;
        self.silence_heard.clear();
        self.failures = self.failures.saturating_add(1);
        self.last_progress_ms = now;
        self.view_since_ms = now;
        self.entering = Some(Entering { blame_cert: bc, since_ms: now, status_sent: false });
        // Persisted with the certificate that entered the view: a replica that restarts
        // before its STATUS is out re-enters properly, and its blames carry the certificate
        // to replicas still in the old view (S8).
        self.persist();
    }

    /// S7: the new leader collects statuses for its view (and learns their QCs, S3).
    pub(super) fn on_status(&mut self, now: u64, status: Status) {
        let checked = self.cfg.planted.unchecked_status || self.checker().status(&status).is_ok();
        if status.view < self.view || !checked {
            return;
        }
        if status.view > self.view {
            self.enter_view(now, status.blame_cert.clone()); // S8
        }
        self.learn_qc(now, status.high_qc.clone()); // checked with the status
        if status.view == self.view && self.leader(self.view) == self.me && self.justification.is_none() {
            self.statuses.insert(status.voter, status);
        }
    }
}
