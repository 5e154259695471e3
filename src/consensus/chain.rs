//! Walking the tree of known blocks: ancestry, the first missing link, heights, and how
//! two blocks relate (S2, S5a, S9). Unknown links are reported, never guessed.

use super::core::Core;
use super::types::*;

/// How two blocks relate.
pub(super) enum Link {
    Linked,
    Conflict,
    /// This block is needed to tell.
    Unknown(Hash),
}

impl Core {
    /// True when `block` is `ancestor` or descends from it, as far as known blocks tell.
    /// Unknown links count as "no": callers fetch and retry.
    pub(super) fn extends(&self, block: &Hash, ancestor: &Hash) -> bool {
        let Some(target_height) = self.height_of(ancestor) else { return false };
        let mut at = *block;
        loop {
            if at == *ancestor {
                return true;
            }
            let Some(b) = self.blocks.get(&at) else { return false };
            if b.height <= target_height {
                return false;
            }
            at = b.parent;
        }
    }

    /// The first unknown block met walking down from `child`'s parent to the committed
    /// height, if any. Nothing at or below that height is ever missing: a block there is
    /// the committed one or conflicts with it (never voted for), and the others may have
    /// pruned it, so it is never asked for.
    pub(super) fn first_gap(&self, child: &Block) -> Option<Hash> {
        let (mut at, mut height) = (child.parent, child.height.saturating_sub(1));
        while height > self.committed_height && at != GENESIS {
            let Some(b) = self.blocks.get(&at) else { return Some(at) };
            (at, height) = (b.parent, b.height.saturating_sub(1));
        }
        None
    }

    pub(super) fn height_of(&self, hash: &Hash) -> Option<Height> {
        if *hash == GENESIS { Some(0) } else { self.blocks.get(hash).map(|b| b.height) }
    }

    /// How blocks `a` and `b` relate, as far as the known blocks tell: the higher one is
    /// walked down to the other's height.
    pub(super) fn link(&self, a: &Hash, b: &Hash) -> Link {
        let (Some(ha), Some(hb)) = (self.known_height(a), self.known_height(b)) else {
            return Link::Unknown(if self.known_height(a).is_none() { *a } else { *b });
        };
        let (mut at, low, low_height) = if ha >= hb { (*a, *b, hb) } else { (*b, *a, ha) };
        loop {
            if at == low {
                return Link::Linked;
            }
            let Some(block) = self.blocks.get(&at) else { return Link::Unknown(at) };
            if block.height <= low_height {
                return Link::Conflict;
            }
            at = block.parent;
        }
    }

    /// A block's height, the committed block's included (it may be pruned from `blocks`).
    pub(super) fn known_height(&self, hash: &Hash) -> Option<Height> {
        if *hash == self.committed_hash { Some(self.committed_height) } else { self.height_of(hash) }
    }
}
