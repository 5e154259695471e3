//! Client requests in the core (S12, S10): the pool, the relay that brings a request that
//! non-leaders hold and the leader has not ordered to the leader before anyone blames for
//! it, and the request timer that says when to blame.

use super::Digest32;
use super::core::{Action, Core, RELAYED_PER_PEER};
use super::types::*;

/// What a driver does with a relayed request ([`Core::admit_relay`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelayAdmission {
    Drop,
    Committed,
    Check,
}

impl Core {
    /// Pools a client request; true if it is pooled now (new or already).
    pub(super) fn on_request(&mut self, now: u64, bytes: Vec<u8>) -> bool {
        let digest = super::digest(&bytes);
        // A request no block could hold would wait forever: refused here (S2.6).
        if self.recent_set.contains(&digest) || bytes.len() > self.cfg.batch_bytes_max {
            return false;
        }
        if self.pending.contains_key(&digest) {
            return true;
        }
        if self.pending.len() >= self.cfg.pending_max {
            return false;
        }
        self.pending.insert(digest, (now, bytes));
        self.pending_order.insert((now, digest));
        true
    }

    /// S10: a request another replica relayed because it waited for this leader's order.
    /// Pooled like a client's, but each replica may have at most `RELAYED_PER_PEER` pooled
    /// that came from it alone, so a Byzantine relayer cannot fill the pool. (The driver
    /// drops relayed requests whose client signature does not verify.)
    pub(super) fn on_relayed(&mut self, now: u64, from: ReplicaId, bytes: Vec<u8>) {
        let digest = super::digest(&bytes);
        // Only the leader orders: a non-leader that pooled relays would start its own timer
        // for them, and a Byzantine pair could so make an honest replica blame (review).
        if self.leader(self.view) != self.me || self.pending.contains_key(&digest) {
            return;
        }
        // Committed here already: the relayer is behind, and may have no way to follow
        // while nothing new commits (its missing blocks' CHECKPOINTs need q signers, and
        // Byzantine replicas may withhold theirs). Blocks in this view give it a 2-chain to
        // commit through (S5's nudge, once per relayer and view), long before its timer
        // would make it blame an honest leader.
        if self.recent_set.contains(&digest) {
            let set = if self.cfg.planted.relay_nudge_shares_blames { &mut self.nudged_by } else { &mut self.nudged_by_relay };
            // A relayer's slot is spent only by a nudge that happens (not during another).
            if self.nudge_to.is_none() && !self.cfg.planted.no_relay_nudge && set.insert(from) {
                self.nudge_to = Some(self.high_qc.height + 2);
            }
            return;
        }
        // Forget the share's requests that left the pool, then count what is left.
        let pending = &self.pending;
        if let Some(mine) = self.relayed_in.get_mut(&from).filter(|mine| mine.len() >= RELAYED_PER_PEER) {
            mine.retain(|d| pending.contains_key(d));
        }
        if !self.relay_share_left(from) {
            return;
        }
        if self.on_request(now, bytes) {
            self.relayed_in.entry(from).or_default().insert(digest);
        }
    }

    /// Whether `from` may have one more pooled request that came by its relay alone: its
    /// share holds fewer than `RELAYED_PER_PEER` still pooled.
    fn relay_share_left(&self, from: ReplicaId) -> bool {
        self.relayed_in.get(&from).is_none_or(|mine| mine.len() < RELAYED_PER_PEER || mine.iter().any(|d| !self.pending.contains_key(d)))
    }

    /// What a driver does with a request `from` relayed (S10), before it checks the
    /// request's signature (so a relay that would be dropped costs no verification): drop
    /// it (not the leader, pooled already, or beyond that replica's share), hand it to the
    /// core unchecked (committed already: its digest names bytes checked before they were
    /// ordered, and the core only nudges for it), or check its signature first. Both the
    /// replica and the simulator ask this, so the simulator takes the replica's path.
    pub fn admit_relay(&self, from: ReplicaId, digest: &Digest32) -> RelayAdmission {
        if self.leader(self.view) != self.me || self.pending.contains_key(digest) {
            RelayAdmission::Drop
        } else if self.recent_set.contains(digest) {
            RelayAdmission::Committed
        } else if self.relay_share_left(from) {
            RelayAdmission::Check
        } else {
            RelayAdmission::Drop
        }
    }

    /// When the T_req that expires first started (S10): a request's T_req runs from
    /// max(arrival, entering the view), or, once relayed in this view, from its first
    /// relay. Walked in arrival order, and only past relayed ones: a request that arrived
    /// later than an unrelayed one cannot have started earlier (its relay came at least
    /// T/2 after its own start). Cheap on every input in the common case (nothing relayed).
    pub(super) fn longest_wait_since(&self) -> Option<u64> {
        let mut since = None::<u64>;
        for (arrival, digest) in &self.pending_order {
            match self.relayed.get(digest) {
                Some((v, first, _)) if *v == self.view => since = Some(since.map_or(*first, |s| s.min(*first))),
                _ => {
                    let start = (*arrival).max(self.view_since_ms);
                    return Some(since.map_or(start, |s| s.min(start)));
                }
            }
        }
        since
    }

    /// S10: a replica that is not the leader gives the leader every request it has held for
    /// half the request timeout in this view without seeing it committed (PBFT's backups
    /// relay a request before they suspect the primary): a request sent to some replicas
    /// only, by a client or by Byzantine replicas acting as one, reaches the leader before
    /// any blame for it. Its T_req then runs from the first relay in the view. The leader
    /// may drop a relay (its share for this relayer is full, or it was not leading yet), and
    /// the relayer cannot know, so it relays again every 4Δ while the request waits; at most
    /// `RELAYED_PER_PEER` relays leave per 4Δ, oldest requests first.
    pub(super) fn relay_waiting(&mut self, now: u64) {
        let leader = self.leader(self.view);
        if leader == self.me || !self.entered() || self.pending.is_empty() || self.cfg.planted.no_relay {
            return;
        }
        let period = 4 * self.cfg.delta_ms;
        let room = self.relay_budget.left(now, period, RELAYED_PER_PEER as u64) as usize;
        if room == 0 {
            return;
        }
        let due = self.timeout_ms() / 2;
        let (view, since) = (self.view, self.view_since_ms);
        let relayed = &self.relayed;
        // Oldest first, and only as far as requests are due (the rest arrived later).
        let waiting: Vec<Digest32> = self
            .pending_order
            .iter()
            .take_while(|(arrival, _)| now >= (*arrival).max(since) + due)
            .filter(|(_, d)| relayed.get(d).is_none_or(|(v, _, last)| *v != view || now >= last + period))
            .map(|(_, d)| *d)
            .take(room)
            .collect();
        for digest in waiting {
            let Some((_, bytes)) = self.pending.get(&digest) else { continue };
            let bytes = bytes.clone();
            let first = match self.relayed.get(&digest) {
                Some((v, first, _)) if *v == view => *first,
                _ => now,
            };
            self.relayed.insert(digest, (view, first, now));
            self.relay_budget.spend(1);
            self.out.push(Action::Send(leader, Message::Relay(bytes)));
        }
    }
}
