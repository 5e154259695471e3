//! S13, recovery: a replica that restarts has lost what it held in memory only, the
//! proposals it received but did not vote for among them. Before the crash it would have
//! refused a block that conflicts with one of them (S2.1, S5a); after it, it would not know.
//! Two Byzantine replicas could then win its vote for a conflicting block and, with theirs,
//! certify it, while honest replicas commit the other (the second review's finding 6). So a
//! restarted replica first asks every peer for what it knows and waits for the answers, as
//! Viewstamped Replication's recovering replicas do, before it votes, proposes or reports
//! its STATUS.
//!
//! It asks (RECOVER, numbered by this start: the time of its first input after it) at that
//! first input and again every 4Δ, and recovers once more than 2Δ have passed since the
//! first ask and q − 1 peers answered this start. Each answer (RECOVERED) carries the
//! peer's `high_qc`, the certificate that took the peer into its view and the leader-signed
//! proposals of that view the peer holds: its lowest and highest, and an equivocation pair.
//! The `high_qc` matters when the views the replica missed are over: their proposals are no
//! longer anyone's current view, but every honest `high_qc` extends what they committed, and
//! the replica's next STATUS must report as much.
//!
//! What the wait stands on is that every honest peer that is up answers every start within
//! 2Δ (the q − 1 answers alone prove nothing: two liars can send them). So a peer answers
//! each new start of an asker at once — a replica restarted twice within 2Δ is answered
//! twice (a helper's attack on the first version, which answered once per 2Δ per asker,
//! whatever the start) — and repeats of one start once per 2Δ. New starts are answered at
//! most `FRESH_MAX` per 4Δ per asker: an honest replica never restarts that often, and a
//! Byzantine one gets that many answers of at most four proposals for its trouble. Answers
//! go through the usual checks (S3, S8, S2, S5a), so a Byzantine answer can show only real
//! certificates, or a real equivocation.

use super::core::{Action, Core};
use super::types::*;

/// New starts of one asker answered per 4Δ (see the top).
const FRESH_MAX: u32 = 4;

/// A restarted replica's recovery (S13).
#[derive(Debug, Default)]
pub struct Recovery {
    /// When it first asked (its first input after the restart: also this start's number)
    /// and last asked.
    asked: Option<(u64, u64)>,
    /// Peers that answered this start.
    answered: std::collections::BTreeSet<ReplicaId>,
}

/// What one asker's RECOVERs were answered with: its start last answered and when, and the
/// new starts answered in the current 4Δ window (from `window`).
#[derive(Debug, Default)]
pub struct Served {
    start: u64,
    at: u64,
    window: u64,
    fresh: u32,
}

impl Core {
    /// Whether this replica is still recovering (S13): it neither votes nor proposes.
    pub(super) fn recovering(&self) -> bool {
        self.recovery.is_some()
    }

    /// The first ask, at the first input after a restart.
    pub(super) fn start_recovery(&mut self, now: u64) {
        if let Some(r) = &mut self.recovery {
            r.asked = Some((now, now));
            self.out.push(Action::Broadcast(Message::Recover(now)));
        }
    }

    /// Asks again every 4Δ; ends once 2Δ passed since the first ask and q − 1 answered.
    pub(super) fn recover_on_tick(&mut self, now: u64) {
        let delta = self.cfg.delta_ms;
        let needed = self.cfg.quorum() - 1;
        let Some(r) = &mut self.recovery else { return };
        let Some((first, last)) = r.asked else { return };
        // Strictly after 2Δ: an answer may take exactly 2Δ (ask Δ, answer Δ) and must be in.
        if now > first + 2 * delta && r.answered.len() >= needed {
            self.recovery = None;
            return;
        }
        if now >= last + 4 * delta {
            r.asked = Some((first, now));
            self.out.push(Action::Broadcast(Message::Recover(first)));
        }
    }

    /// A peer restarted: what this replica knows, for each new start of it at once (at most
    /// `FRESH_MAX` per 4Δ), and again for one start once per 2Δ.
    pub(super) fn on_recover(&mut self, now: u64, from: ReplicaId, start: u64) {
        if from == self.me {
            return;
        }
        let delta = self.cfg.delta_ms;
        let served = self.recovery_served.entry(from).or_default();
        let once_per_asker = self.cfg.planted.recovery_once_per_asker;
        let answer = if served.at > 0 && (start == served.start || once_per_asker) {
            now >= served.at + 2 * delta
        } else {
            if now >= served.window + 4 * delta {
                (served.window, served.fresh) = (now, 0);
            }
            served.fresh += 1;
            served.fresh <= FRESH_MAX
        };
        if !answer {
            return;
        }
        (served.start, served.at) = (start, now.max(1));
        let view = self.view;
        let in_view = || self.seen.range((view, 0)..=(view, Height::MAX)).map(|(_, p)| p);
        let mut proposals: Vec<Proposal> = in_view().next().into_iter().chain(in_view().next_back()).cloned().collect();
        if let Some((a, b)) = &self.equivocation_proof {
            proposals.extend([a.clone(), b.clone()]);
        }
        proposals.dedup_by(|a, b| a.block.hash == b.block.hash);
        let blame_cert = self.entering.as_ref().map(|e| e.blame_cert.clone()).filter(|bc| bc.view + 1 == view);
        let high_qc = self.high_qc.clone();
        let answer = Recovered { blame_cert, proposals, high_qc, start };
        self.out.push(Action::Send(from, Message::Recovered(Box::new(answer))));
    }

    /// An answer: learned through the usual checks; it counts towards recovering.
    pub(super) fn on_recovered(&mut self, now: u64, from: ReplicaId, answer: Recovered) {
        if from == self.me {
            return;
        }
        let answer_start = answer.start;
        if let Some(bc) = answer.blame_cert {
            self.on_blame_cert(now, bc);
        }
        if !self.cfg.planted.recovery_without_high_qc {
            self.on_qc(now, answer.high_qc);
        }
        // At most the four an honest peer sends.
        for p in answer.proposals.into_iter().take(4) {
            self.on_proposal(now, from, p);
        }
        if let Some(r) = &mut self.recovery
            && r.asked.is_some_and(|(first, _)| first == answer_start)
        {
            r.answered.insert(from);
        }
    }
}
