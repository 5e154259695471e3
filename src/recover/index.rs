//! Every block the folders hold, and where two chains part.

use std::collections::BTreeMap;

use super::Folder;
use crate::consensus::{Block, Hash, Height};

/// Every block any folder holds, by hash (each one's hash checked when read).
pub(super) struct Index(pub(super) BTreeMap<Hash, Block>);

impl Index {
    pub(super) fn of(folders: &[Folder]) -> Index {
        let mut all = BTreeMap::new();
        for f in folders {
            let blocks = f.found.chain.values().chain(f.found.images.iter().map(|i| &i.block)).chain(&f.found.stored);
            for b in blocks.filter(|b| b.compute_hash() == b.hash) {
                all.insert(b.hash, b.clone());
            }
        }
        Index(all)
    }

    /// The hash of `hash`'s ancestor at `height` (itself at its own height), if the blocks
    /// between are known.
    pub(super) fn ancestor(&self, hash: &Hash, height: Height) -> Option<Hash> {
        let mut at = self.0.get(hash)?;
        loop {
            if at.height == height {
                return Some(at.hash);
            }
            if at.height < height {
                return None;
            }
            if at.height == height + 1 {
                return Some(at.parent);
            }
            at = self.0.get(&at.parent)?;
        }
    }
}

/// The lowest height at which two chains that differ at `at` are known to differ.
pub(super) fn first_difference(index: &Index, a: &Hash, b: &Hash, at: Height) -> Height {
    let mut height = at;
    while height > 1 {
        match (index.ancestor(a, height - 1), index.ancestor(b, height - 1)) {
            (Some(x), Some(y)) if x != y => height -= 1,
            _ => break,
        }
    }
    height
}
