//! State images as the replica writes them (S11), and a replica whose state diverged.
//! The replica writes an image on another thread, one at a time, so its own image may
//! land after the others made its height stable (`Faults::late_images_ms`). In a quarter
//! of the crash runs one replica's state diverges (`Faults::diverge`: a non-deterministic
//! execution, or a disk that lies): S11 must stop it the moment its image and a stable
//! certificate at one height both exist, in either order (the second review's finding 4).
//! The check: once an image lands, a replica whose core handed a stable certificate of
//! that height naming another state to its store must no longer be running.

use super::world::{Event, World};
use crate::chat::{ChatState, Context, Op, Request};
use crate::consensus::ReplicaId;

/// The account only a diverged replica has.
pub const DIVERGED: &str = "diverged";

/// Makes `chat` differ from every other replica's: an account no request created.
pub fn diverge(chat: &mut ChatState) {
    let ctx = Context { height: chat.height(), position: 1 << 40, time_ms: chat.time_ms() };
    let session = chat.time_ms() * 1000; // a session starts near the state's clock
    let request = Request { user: DIVERGED.into(), session, seq: 1, op: Op::CreateAccount { public_key: [0xD1; 32] } };
    let applied = chat.apply(&request, ctx);
    debug_assert!(!matches!(applied.reply.outcome, crate::chat::Outcome::Failed(_)), "{:?}", applied.reply);
}

impl World {
    /// Replica `id` wrote a state image: placed now, or after up to `late_images_ms`.
    pub(super) fn image_written(&mut self, id: ReplicaId) {
        let late = self.faults.late_images_ms;
        if late == 0 {
            return self.place_image(id);
        }
        let delay = self.rng.below(late + 1);
        self.at(self.now + delay, Event::PlaceImage(id));
    }

    pub(super) fn place_image(&mut self, id: ReplicaId) {
        let node = &mut self.nodes[id as usize];
        if !node.is_up() {
            return;
        }
        let input = match node.place_image() {
            Ok(Some(input)) => input,
            Ok(None) => return,
            Err(e) => return self.storage_failed(id, e),
        };
        let crate::consensus::Input::Snapshot { height, state, .. } = &input else { unreachable!("place_image gives a snapshot") };
        let (height, state) = (*height, *state);
        self.stats.images += 1;
        self.input(id, input);
        let node = &self.nodes[id as usize];
        if node.is_up()
            && self.faults.is_byzantine(id).is_none()
            && node.stable_seen.get(&height).is_some_and(|certified| *certified != state)
            && node.core.as_ref().is_some_and(|c| c.stable_height() == Some(height))
        {
            self.checker.violations.push(format!(
                "divergence: replica {id} runs on with a state image at height {height} that differs from the stable certificate it holds"
            ));
        }
    }

    /// A storage error of replica `id` that is its diverged state found out: the stop S11
    /// asks for. The replica stays down (an operator re-seeds it, outside the run).
    pub(super) fn diverged_stop(&mut self, id: ReplicaId, e: &crate::storage::StorageError) -> bool {
        let node = &mut self.nodes[id as usize];
        if !(node.diverged && matches!(e, crate::storage::StorageError::Diverged { .. })) {
            return false;
        }
        node.halted = true;
        self.stats.diverged_stops += 1;
        self.note(|| format!("{id} stops: its state diverged ({e})"));
        true
    }
}
