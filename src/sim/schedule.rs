//! A network schedule for crash runs (any timing, requirement R1): the hidden-QC recipe.
//!
//! Random delays almost never line up the eight or so deliveries that a `high_qc` moving
//! backwards needs before it forks (NOTEBOOK, "the stale QC under asynchrony"), so a
//! quarter of the five-replica crash runs follow this schedule. It only drops, holds and
//! later delivers messages, which asynchrony allows; every replica stays honest.
//! - View 0: every view-0 vote reaches only the leader (replica 0), which alone forms
//!   QC(Y) for its first block Y. Its later blocks, which carry QC(Y), are held back, and
//!   so are the votes; its statuses are lost. The view fails.
//! - View 1: its leader, on statuses that report genesis, proposes B over genesis (B
//!   conflicts with Y). The votes for B's descendants, and the blocks carrying QC(B′),
//!   reach only the committer `c` (3 or 4), which commits B; the others hold QC(B) and
//!   time out. The committer's view-2 status is lost.
//! - As each other replica enters view 2 (it forwards BC(1)), it gets what was held for it,
//!   QC(Y) among it, before its STATUS.
//!
//! An honest core ignores QC(Y) (it ranks below QC(B)), reports QC(B), and view 2 extends
//! B. With `high-qc-backwards` planted, replicas 1, 2 and the other one report QC(Y),
//! view 2 extends Y, and three of them certify a block that conflicts with B.

use std::collections::BTreeSet;
use std::rc::Rc;

use crate::consensus::{Message, ReplicaId};

/// What happens to one message on one link.
pub enum Route {
    Pass,
    Drop,
    /// Kept, to be delivered when its recipient enters view 2.
    Held,
}

pub struct StaleQc {
    /// The replica that commits B in view 1.
    pub committer: ReplicaId,
    held: Vec<(ReplicaId, ReplicaId, Rc<[u8]>)>,
    released: BTreeSet<ReplicaId>,
}

/// View 0's leader, the only holder of QC(Y).
const HOLDER: ReplicaId = 0;

impl StaleQc {
    pub fn new(committer: ReplicaId) -> Self {
        assert!(committer == 3 || committer == 4, "the committer leads none of views 0, 1, 2");
        StaleQc { committer, held: Vec::new(), released: BTreeSet::new() }
    }

    /// Where a message from `from` to `to` goes.
    pub fn route(&mut self, from: ReplicaId, to: ReplicaId, message: &Message, bytes: &Rc<[u8]>) -> Route {
        let c = self.committer;
        let route = match message {
            // View 0: QC(Y) forms at its leader only, and whatever carries it waits.
            Message::Vote(v) if v.view == 0 && to != HOLDER => Route::Held,
            Message::Propose(p) if p.block.view == 0 && p.block.parent_qc.height >= 1 && to != HOLDER => Route::Held,
            Message::Block(b) if b.view == 0 && b.parent_qc.height >= 1 && to != HOLDER => Route::Drop,
            Message::Status(s) if from == HOLDER && s.view <= 2 => Route::Drop,
            // View 1: QC(B′) forms at the committer only.
            Message::Vote(v) if v.view == 1 && v.height >= 2 && to != c => Route::Drop,
            Message::Propose(p) if p.block.view == 1 && p.block.height >= 3 && to != c => Route::Drop,
            Message::Block(b) if b.view == 1 && b.height >= 3 && to != c => Route::Drop,
            Message::Status(s) if from == c && s.view == 2 => Route::Drop,
            _ => Route::Pass,
        };
        if let Route::Held = route {
            if self.released.contains(&to) {
                return Route::Drop;
            }
            self.held.push((from, to, bytes.clone()));
        }
        route
    }

    /// When `from` enters view 2 (it forwards BC(1)), what was held for it.
    pub fn release(&mut self, from: ReplicaId, message: &Message) -> Vec<(ReplicaId, ReplicaId, Rc<[u8]>)> {
        let entering = matches!(message, Message::BlameCert(bc) if bc.view == 1);
        if !entering || from == HOLDER || from == self.committer || !self.released.insert(from) {
            return Vec::new();
        }
        let (mine, rest) = std::mem::take(&mut self.held).into_iter().partition(|(_, to, _)| *to == from);
        self.held = rest;
        mine
    }
}
