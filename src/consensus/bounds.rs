//! The two shapes every per-peer bound takes (NOTEBOOK "Choosing Δ", what one peer can make
//! a replica do): a set of one signer's entries that keeps only its highest, and a budget
//! that renews every period.

use std::collections::BTreeSet;

/// Adds `key` to one signer's entries and keeps at most `max` of them, the highest. Returns
/// the entry that had to go, if one did (it may be `key` itself).
pub(super) fn keep_highest<K: Ord>(entries: &mut BTreeSet<K>, key: K, max: usize) -> Option<K> {
    entries.insert(key);
    if entries.len() > max { entries.pop_first() } else { None }
}

/// A budget renewed every period: the current period's start and what it used.
#[derive(Clone, Copy, Debug, Default)]
pub struct Window {
    start: u64,
    used: u64,
}

impl Window {
    /// A window whose first period starts at `now`.
    pub fn starting(now: u64) -> Window {
        Window { start: now, used: 0 }
    }

    /// What is left of `cap` at `now`; a new period begins `period` after the last one did.
    pub fn left(&mut self, now: u64, period: u64, cap: u64) -> u64 {
        if now >= self.start + period {
            *self = Window::starting(now);
        }
        cap.saturating_sub(self.used)
    }

    pub fn spend(&mut self, amount: u64) {
        self.used += amount;
    }

    /// Whether nothing was spent in the current period.
    pub fn unused(&self) -> bool {
        self.used == 0
    }
}
