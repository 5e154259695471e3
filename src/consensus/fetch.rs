//! S9: missing blocks asked for, answered within a per-asker budget, and accepted only if
//! they hash to what was asked for.

use super::core::{Action, BLOCK_OVERHEAD, Core, FETCH_BYTES_PER_PERIOD};
use super::types::*;

impl Core {
    /// S9: asks for a missing block, of `from` first (of everyone when asked before, or
    /// when this replica itself needs it), at most once per hash per 2Δ.
    pub(super) fn fetch(&mut self, now: u64, hash: Hash, from: ReplicaId) {
        let last = self.fetching.get(&hash).copied();
        if last.is_some_and(|t| now < t + self.cfg.delta_ms * 2) || hash == GENESIS {
            return;
        }
        self.fetching.insert(hash, now);
        let expiry = self.cfg.delta_ms * 20;
        self.fetching.retain(|_, t| now < *t + expiry);
        if last.is_some() || from == self.me {
            self.out.push(Action::Broadcast(Message::Fetch(hash)));
        } else {
            self.out.push(Action::Send(from, Message::Fetch(hash)));
        }
    }

    /// S9: a block asked for, sent while the asker's budget for this period allows
    /// (`FETCH_BYTES_PER_PERIOD` of blocks per 4Δ per peer): an honest replica asks once per
    /// hash per 2Δ, so a thousand FETCHes of one large block are not a thousand replies.
    pub(super) fn on_fetch(&mut self, now: u64, from: ReplicaId, hash: Hash) {
        let Some(block) = self.blocks.get(&hash) else { return };
        let size = (block.requests.iter().map(Vec::len).sum::<usize>() + BLOCK_OVERHEAD) as u64;
        let served = self.fetch_served.entry(from).or_insert(super::Window::starting(now));
        // One block always goes in a period, however large.
        if served.left(now, 4 * self.cfg.delta_ms, FETCH_BYTES_PER_PERIOD) < size && !served.unused() {
            return;
        }
        served.spend(size);
        self.out.push(Action::Send(from, Message::Block(Box::new(block.clone()))));
    }

    /// S9: a fetched block is accepted only if its hash matches what was asked for.
    pub(super) fn on_fetched(&mut self, now: u64, block: Block) {
        let hash = block.hash;
        // The request stays on record until it expires (see `fetch`): four replies to one
        // broadcast FETCH must not each start a new one.
        if !self.fetching.contains_key(&hash) || block.compute_hash() != hash || self.blocks.contains_key(&hash) {
            return;
        }
        if block.height <= self.committed_height {
            // Below what is committed and not part of it: an abandoned fork. Proposals that
            // wait for it can never be voted for.
            self.orphans.remove(&hash);
            return;
        }
        let parent = block.parent;
        let parent_qc = block.parent_qc.clone();
        self.store_block(&block);
        self.on_qc(now, parent_qc);
        if parent != GENESIS && !self.blocks.contains_key(&parent) && self.height_of(&hash).unwrap_or(0) > self.committed_height + 1 {
            self.fetch(now, parent, self.me);
        }
        if let Some(children) = self.orphans.remove(&hash) {
            for (sender, child) in children {
                self.on_proposal(now, sender, child);
            }
        }
        self.on_certified(hash);
        self.try_commit(now);
        self.try_certified_commits(now);
    }
}
