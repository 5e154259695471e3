//! S13, recovery: a replica that restarts has lost what it held in memory only, the
//! proposals it received but did not vote for among them. Before the crash it would have
//! refused a block that conflicts with one of them (S2.1, S5a); after it, it would not know.
//! Two Byzantine replicas could then win its vote for a conflicting block and, with theirs,
//! certify it, while honest replicas commit the other (the second review's finding 6). So a
//! restarted replica first asks every peer for what it knows of its view and waits for the
//! answers, as Viewstamped Replication's recovering replicas do, before it votes or proposes.
//!
//! It asks (RECOVER) at its first input and again every 4Δ, and recovers once more than 2Δ
//! have passed since the first ask and q − 1 peers answered. Each answer (RECOVERED) carries
//! the peer's `high_qc`, the certificate that took the peer into its view and the
//! leader-signed proposals of that view the peer holds: its lowest and highest, and an
//! equivocation pair. The `high_qc` matters when the views the replica missed are over:
//! their proposals are no longer anyone's current view, but every honest `high_qc` extends
//! what they committed, and the replica's next STATUS must report as much. They go through the
//! usual checks (S8, S2, S5a), so a Byzantine answer can only show a real certificate, or a
//! real equivocation, and costs one answer per asker per 2Δ.

use super::core::{Action, Core};
use super::types::*;

/// A restarted replica's recovery (S13).
#[derive(Debug, Default)]
pub struct Recovery {
    /// When it first asked (its first input after the restart) and last asked.
    asked: Option<(u64, u64)>,
    /// Peers that answered.
    answered: std::collections::BTreeSet<ReplicaId>,
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
            self.out.push(Action::Broadcast(Message::Recover(self.view)));
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
            self.out.push(Action::Broadcast(Message::Recover(self.view)));
        }
    }

    /// A peer restarted: what this replica knows of its view, once per 2Δ per asker.
    pub(super) fn on_recover(&mut self, now: u64, from: ReplicaId, _view: View) {
        if from == self.me || self.recovery_served.get(&from).is_some_and(|t| now < t + 2 * self.cfg.delta_ms) {
            return;
        }
        self.recovery_served.insert(from, now);
        let view = self.view;
        let in_view = || self.seen.range((view, 0)..=(view, Height::MAX)).map(|(_, p)| p);
        let mut proposals: Vec<Proposal> = in_view().next().into_iter().chain(in_view().next_back()).cloned().collect();
        if let Some((a, b)) = &self.equivocation_proof {
            proposals.extend([a.clone(), b.clone()]);
        }
        proposals.dedup_by(|a, b| a.block.hash == b.block.hash);
        let blame_cert = self.entering.as_ref().map(|e| e.blame_cert.clone()).filter(|bc| bc.view + 1 == view);
        let high_qc = self.high_qc.clone();
        self.out.push(Action::Send(from, Message::Recovered(Box::new(Recovered { blame_cert, proposals, high_qc }))));
    }

    /// An answer: learned through the usual checks; it counts towards recovering.
    pub(super) fn on_recovered(&mut self, now: u64, from: ReplicaId, answer: Recovered) {
        if from == self.me {
            return;
        }
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
        if let Some(r) = &mut self.recovery {
            r.answered.insert(from);
        }
    }
}
