//! Private requests (the second review's finding 1): in a view an honest replica leads,
//! the coalition, as a client with accounts of its own, sends a validly signed request to
//! honest non-leaders only (one of them, or all of them: the single-client attack needs no
//! replica at all), never to the leader, and its members blame the view once that
//! request's timer would have run out. Without S10's relay the honest holders blame too,
//! and the view ends; with it, the leader orders the request and no honest replica blames.
//! The world checks the second (`World::check_honest_view_blame`). Staggered (half of
//! these plans): the blames go to the leader alone first and to the others 6Δ later, so
//! the leader's nudge is spent before the others start watching for progress (S5).

use super::{Coalition, Crafted};
use crate::consensus::View;

/// The key of the coalition's accounts (the simulator's request signatures are keyed
/// hashes of it).
const KEY: [u8; 32] = [0xC0; 32];

/// A request the coalition sends as a client: to one replica, now.
pub struct PrivateRequest {
    pub to: crate::consensus::ReplicaId,
    pub bytes: Vec<u8>,
}

impl Coalition {
    /// Once per honest view, Δ after it was first seen: a request (a new account of the
    /// coalition's) to honest non-leaders only; its members' blames follow one request
    /// timeout (12Δ at the base) plus Δ later.
    pub(super) fn private_requests(&mut self, view: View, now: u64, out: &mut Vec<Crafted>) {
        if !self.plan.private_requests || self.leads(view) {
            return;
        }
        let since = self.view_seen[&view];
        if now >= since + self.delta_ms && self.private_sent.insert(view) {
            let leader = self.leader(view);
            let holders: Vec<_> = self.honest.iter().copied().filter(|h| *h != leader).collect();
            // One holder in odd views, every honest non-leader in even ones.
            let chosen = if view % 2 == 1 { vec![holders[(view as usize / 2) % holders.len()]] } else { holders };
            let bytes = self.private_request(view);
            for to in chosen {
                self.private_out.push(PrivateRequest { to, bytes: bytes.clone() });
            }
            self.private_blame_at.insert(view, now + 13 * self.delta_ms);
        }
        let leader = self.leader(view);
        if let Some(at) = self.private_blame_at.get(&view).copied()
            && now >= at
        {
            self.private_blame_at.remove(&view);
            // Staggered: to the leader alone first (its nudge is spent while others wait
            // for nothing), to the others 6Δ later, when nothing new is being ordered.
            let first: Vec<_> = if self.plan.staggered_blames { vec![leader] } else { self.honest.clone() };
            self.blame_honest(view, &first, out);
            if self.plan.staggered_blames {
                self.private_rest_at.insert(view, now + 6 * self.delta_ms);
            }
        }
        if let Some(at) = self.private_rest_at.get(&view).copied()
            && now >= at
        {
            self.private_rest_at.remove(&view);
            let rest: Vec<_> = self.honest.iter().copied().filter(|h| *h != leader).collect();
            self.blame_honest(view, &rest, out);
        }
    }

    /// Every member's blame of `view`, to each of `to`.
    fn blame_honest(&self, view: View, to: &[crate::consensus::ReplicaId], out: &mut Vec<Crafted>) {
        let entered_by = view.checked_sub(1).and_then(|w| self.certificates.get(&w).cloned());
        for &to in to {
            for m in self.members.clone() {
                out.push(Crafted { from: m, to, message: Self::blame(m, view, entered_by.clone()), delay_ms: 1 });
            }
        }
    }

    /// A new account of the coalition's, created in `view`'s name.
    fn private_request(&self, view: View) -> Vec<u8> {
        let op = crate::chat::Op::CreateAccount { public_key: KEY };
        crate::sim::client::signed_request(&format!("zc{view}"), 1, 1, &op, &KEY)
    }

    /// The requests the coalition sent as a client since the last call.
    pub fn take_private_requests(&mut self) -> Vec<PrivateRequest> {
        std::mem::take(&mut self.private_out)
    }
}
