//! What the core shows its drivers and tests, without changing anything: the view and its
//! leader, the committed tip, what it remembers of requests, and a line for traces.

use super::core::Core;
use super::{Digest32, Hash, Height, QuorumCert, ReplicaId, View};

impl Core {
    /// Δ, as configured.
    pub fn delta_ms(&self) -> u64 {
        self.cfg.delta_ms
    }

    pub fn leader(&self, view: View) -> ReplicaId {
        (view % self.cfg.n as u64) as ReplicaId
    }

    pub fn view(&self) -> View {
        self.view
    }

    /// Whether this replica has entered its view (its STATUS is out, S6).
    pub fn is_entered(&self) -> bool {
        self.entered()
    }

    /// Whether this replica is still recovering after a restart (S13).
    pub fn is_recovering(&self) -> bool {
        self.recovering()
    }

    pub fn committed_height(&self) -> Height {
        self.committed_height
    }

    /// The height of this replica's stable checkpoint (S11), if it has one.
    pub fn stable_height(&self) -> Option<Height> {
        self.stable.as_ref().map(|s| s.height)
    }

    /// Whether a request with this digest was committed recently (the core drops it if it
    /// comes again: the driver must answer it itself).
    pub fn committed_recently(&self, digest: &Digest32) -> bool {
        self.recent_set.contains(digest)
    }

    /// The hash of the block committed at `committed_height` (it names the whole chain).
    pub fn committed_hash(&self) -> Hash {
        self.committed_hash
    }

    pub fn high_qc(&self) -> &QuorumCert {
        &self.high_qc
    }

    /// Signed votes and CHECKPOINTs pooled above the committed height, when one signer has
    /// more than its bound (finding 2 of the second review): what the simulator checks while
    /// the coalition floods junk. `None` within the bounds.
    pub fn pools_over_bounds(&self) -> Option<String> {
        let mut votes = std::collections::BTreeMap::<ReplicaId, usize>::new();
        for (voter, _) in self.vote_pool.values().flatten() {
            *votes.entry(*voter).or_default() += 1;
        }
        let mut checkpoints = std::collections::BTreeMap::<ReplicaId, usize>::new();
        for voter in self.checkpoints.values().flatten() {
            *checkpoints.entry(*voter).or_default() += 1;
        }
        let (vote_max, checkpoint_max) = (super::steady::VOTES_PER_SIGNER, super::checkpoints::CHECKPOINTS_PER_SIGNER);
        let most = |counts: &std::collections::BTreeMap<ReplicaId, usize>| counts.iter().max_by_key(|(_, c)| **c).map(|(who, c)| (*who, *c));
        let (votes, checkpoints) = (most(&votes).unwrap_or((0, 0)), most(&checkpoints).unwrap_or((0, 0)));
        (votes.1 > vote_max || checkpoints.1 > checkpoint_max)
            .then(|| format!("{} pooled votes of {} and {} CHECKPOINTs of {} (bounds {vote_max} and {checkpoint_max} a signer)", votes.1, votes.0, checkpoints.1, checkpoints.0))
    }

    /// One line of state for traces.
    pub fn describe(&self) -> String {
        format!(
            "view {} entered {} blamed {:?} committed {} high_qc {:?} pending {} votes {} proposals {} statuses {} justified {} timeout {}ms stable {:?} blocks {} fetching {} certified {:?} orphans {}",
            self.view,
            self.entered(),
            self.blamed,
            self.committed_height,
            self.high_qc.rank(),
            self.pending.len(),
            self.votes.len(),
            self.proposals.len(),
            self.statuses.len(),
            self.justification.is_some(),
            self.timeout_ms(),
            self.stable.as_ref().map(|s| s.height),
            self.blocks.len(),
            self.fetching.len(),
            self.certified_commits.iter().next_back().map(|(h, _)| *h),
            self.orphans.len(),
        )
    }

    /// The QCs learned, and the blocks committed by S4, since the last call, each as
    /// (view, height, block hash); always empty unless `Config::record_qcs` (the simulator
    /// checks every QC against every S4 commit: what the safety argument promises).
    pub fn take_observed(&mut self) -> (Vec<(View, Height, Hash)>, Vec<(View, Height, Hash)>) {
        (std::mem::take(&mut self.learned_qcs), std::mem::take(&mut self.s4_commits))
    }

    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

}
