//! A liveness check for synchronous runs (the second review's finding 1): an honest
//! replica never blames, on a timer, a view whose leader is honest and has been up since
//! before the view began, while no honest replica crashed or restarted since shortly
//! before it. Under R2 such a leader orders every valid request it hears of (S10 relays
//! each request a replica holds to it) and makes progress within the timers, so a timeout
//! blame there means an honest view was ended, as private requests did before the relay.
//! A replica behind the others' commits is checked too: its relay of a request the
//! leader committed already makes the leader nudge (S10), so it follows before its timer
//! runs out (without that, seed 655 of `--mode byzantine`: a restarted replica behind, the
//! Byzantine pair withholding CHECKPOINTs, clients waiting 6 s for its reply).

use std::collections::{BTreeMap, BTreeSet};

use super::faults::Mode;
use super::world::World;
use crate::consensus::{Action, BlameReason, Message, ReplicaId, View};

#[derive(Default)]
pub struct HonestViews {
    /// When the first honest replica entered each view.
    entered: BTreeMap<View, u64>,
    /// The last crash or restart of an honest replica, or partition or heal.
    last_fault_ms: Option<u64>,
    /// Views already reported, and each replica's first blame of a view (a blame is
    /// resent every 4Δ; only the first one is judged).
    reported: BTreeSet<View>,
    judged: BTreeSet<(ReplicaId, View)>,
}

impl World {
    /// An honest replica crashed or restarted now.
    pub(super) fn honest_fault(&mut self, id: ReplicaId) {
        if self.faults.is_byzantine(id).is_none() {
            self.honest_views.last_fault_ms = Some(self.now);
        }
    }

    /// A partition began or healed now: the links were not synchronous.
    pub(super) fn network_fault(&mut self) {
        self.honest_views.last_fault_ms = Some(self.now);
    }

    /// What honest replica `id` sent after one input, while in `view`.
    pub(super) fn check_honest_view_blame(&mut self, id: ReplicaId, view: View, actions: &[Action]) {
        if self.faults.mode != Mode::Byzantine || self.faults.is_byzantine(id).is_some() {
            return;
        }
        let now = self.now;
        let entered = *self.honest_views.entered.entry(view).or_insert(now);
        for action in actions {
            let Action::Broadcast(Message::Blame(b)) = action else { continue };
            let leader = (b.view % self.nodes.len() as u64) as ReplicaId;
            let entered_blamed = self.honest_views.entered.get(&b.view).copied().unwrap_or(entered);
            // A fault within 8Δ before the view: a restarted replica (or leader) may still
            // be catching up when the view begins.
            let quiet = self.honest_views.last_fault_ms.is_none_or(|t| t + 8 * self.cfg.delta_ms < entered_blamed);
            if b.voter == id
                && self.honest_views.judged.insert((id, b.view))
                && matches!(b.reason, BlameReason::Timeout)
                && self.faults.is_byzantine(leader).is_none()
                && self.nodes[leader as usize].is_up()
                && quiet
                && self.honest_views.reported.insert(b.view)
            {
                self.checker.violations.push(format!(
                    "liveness: replica {id} blamed view {} (honest leader {leader}, up, no honest fault since before the view) at {now} ms",
                    b.view
                ));
            }
        }
    }
}
