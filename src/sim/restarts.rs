//! Crashes, restarts and the disk: a crash may damage one byte of the replica's disk
//! (`Faults::damage_pct`), which the next start repairs (storage/replica_store/open.rs).

use super::world::World;
use crate::consensus::ReplicaId;

impl World {
    pub(super) fn restart(&mut self, id: ReplicaId) {
        if !self.nodes[id as usize].is_up() && !self.nodes[id as usize].halted {
            self.note(|| format!("{id} restarts"));
            self.honest_fault(id);
            self.stats.restarts += 1;
            let cfg = self.cfg.clone();
            match self.nodes[id as usize].boot(&cfg) {
                Err(e) => self.storage_failed(id, e),
                Ok(repairs) if !repairs.is_empty() => {
                    self.stats.repaired += 1;
                    self.note(|| format!("{id} repaired: {}", repairs.join(" | ")));
                }
                Ok(_) => {}
            }
            if let Some(coalition) = self.coalition.as_mut() {
                coalition.on_restart(id, self.now);
            }
        }
    }

    pub(super) fn crash(&mut self, id: ReplicaId) {
        if self.nodes[id as usize].is_up() {
            self.note(|| format!("{id} crashes"));
            self.honest_fault(id);
            self.stats.crashes += 1;
            self.nodes[id as usize].crash();
            if self.faults.damage_pct > 0 && self.rng.chance(self.faults.damage_pct, 100) {
                let rng = &mut self.rng;
                if let Some(what) = self.nodes[id as usize].damage(&mut |n| rng.below(n)) {
                    self.stats.damaged += 1;
                    self.note(|| format!("{id}'s disk damaged: {what}"));
                }
            }
        }
    }

    /// A storage error in the simulator is a bug (or a replica whose state diverged): it is
    /// reported, and the replica stops as a real one would.
    pub(super) fn storage_failed(&mut self, id: ReplicaId, e: crate::storage::StorageError) {
        if self.faults.is_byzantine(id).is_none() && !self.diverged_stop(id, &e) {
            self.checker.violations.push(format!("storage: replica {id}: {e}"));
        }
        self.nodes[id as usize].crash();
    }
}
