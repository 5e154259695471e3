//! The ordering protocol (NOTEBOOK "QOP v1"): a sans-IO core that orders client requests
//! into blocks, safe under crash faults with any timing and under f Byzantine replicas with
//! synchrony, for n = 2f + 1 replicas.
//!
//! No async runtime, no clock, no files, no unseeded randomness here: inputs (messages, requests,
//! ticks with the current time) go in, actions (persist, send, broadcast, commit) come out.
//! Signing goes through the [`Crypto`] trait.

mod bounds;
mod chain;
mod checkpoints;
mod core;
mod evidence;
mod fetch;
mod inspect;
mod interface;
mod propose;
mod recovery;
mod requests;
mod steady;
mod types;
mod verify;
mod view_chain;
mod view_change;

#[cfg(test)]
mod checkpoint_tests;
#[cfg(test)]
mod proof_tests;
#[cfg(test)]
mod hardening_tests;
#[cfg(test)]
mod relay_stories;
#[cfg(test)]
mod restart_stories;
#[cfg(test)]
mod review_tests;
#[cfg(test)]
mod silence_stories;
#[cfg(test)]
mod stories;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod verify_tests;

pub use self::core::{Action, Core, Input, Persistent, Restored};
pub use types::*;
pub use bounds::Window;
pub use evidence::Evidence;
pub use requests::RelayAdmission;
pub use verify::Checker;

pub type Digest32 = [u8; 32];

pub fn digest(bytes: &[u8]) -> Digest32 {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

/// Bugs planted on purpose, each off by default: the simulator's negative controls turn one
/// on and must then find a safety violation. Never set outside tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Planted {
    /// Commit without the 2Δ wait of S4b.
    pub no_delta_wait: bool,
    /// QCs of this many votes instead of q.
    pub qc_size: Option<usize>,
    /// Commit a block on its own QC (no descendant QC, S4a).
    pub single_qc_commit: bool,
    /// Accept a 2-chain whose QCs come from different views (S4a), and so also drop S4b's
    /// "still in the block's view" (a cross-view chain always spans a view change).
    pub cross_view_chain: bool,
    /// Send votes (and every other message of a batch) before persisting (S2, S3).
    pub vote_before_persist: bool,
    /// Install any state transfer without checking its certificate, block or image (S11).
    pub unchecked_state: bool,
    /// A new leader proposes on the first q STATUS, without the 4Δ wait (S7).
    pub first_statuses: bool,
    /// Bug 1 of the 2026-11-22 review put back: equivocation only between two blocks of one
    /// view at one height; no view chain (S5a).
    pub same_height_equivocation: bool,
    /// Bug 2 of the review put back: blames kept relative to the incoming blame's view, and
    /// counted for any view, so a far-future blame wipes the current tally (S5).
    pub blame_prune_incoming: bool,
    /// A view's first block need not extend its justification's highest QC (S2.4).
    pub first_block_any_qc: bool,
    /// Commit timers survive a view change and S4b does not require still being in the
    /// block's view.
    pub keep_commit_timer: bool,
    /// Votes are counted per message, not per signer: one signer's repeated vote counts twice.
    pub duplicate_votes: bool,
    /// Commit and state certificates (CHECKPOINTs) of this many signatures instead of q (S11).
    pub certificate_size: Option<usize>,
    /// `high_qc` becomes whatever QC was learned last, even a lower one (S3).
    pub high_qc_backwards: bool,
    /// Proposals are not forwarded on first receipt (S2).
    pub no_forward: bool,
    /// Clients accept this many matching replies instead of q (read by the simulator's clients).
    pub client_quorum: Option<usize>,
    /// STATUS is sent at once on leaving a view, without the 2Δ wait (S6).
    pub no_status_wait: bool,
    /// Votes for proposals of views below `cur_view` (S2.1).
    pub vote_below_view: bool,
    /// One vote per height instead of one chain per view (S2.2).
    pub vote_per_height: bool,
    /// Committed requests execute without checking their client signature (execution).
    pub unchecked_requests: bool,
    /// Votes go to the block's leader only, instead of to every replica (S2).
    pub votes_to_leader: bool,
    /// A STATUS of the current or a later view is taken without verifying it, so its QC
    /// is learned unchecked (S7; a mutation survivor of 2026-12-01 put back).
    pub unchecked_status: bool,
    /// Requests are never relayed to the leader before a blame (S10): a request sent to
    /// non-leaders only ends the view (the second review's finding 1 put back).
    pub no_relay: bool,
    /// A leader that gets a relay of a request it committed already does not nudge (S10):
    /// a restarted replica behind the others, whose missing blocks no certificate proves
    /// (Byzantine replicas withhold their CHECKPOINTs), follows only once it blames.
    pub no_relay_nudge: bool,
    /// The relay's nudge counts against the relayer's blame nudge (the first version of
    /// it): a Byzantine pair relays a committed request, then blames, and the blame no
    /// longer makes the leader nudge while every replica's watch for progress runs out
    /// (found by the 100,000-seed coalition run, seed 27648).
    pub relay_nudge_shares_blames: bool,
    /// S5 as before the second review of this session: a replica that starts watching for
    /// progress on another's blame does not pass the blame on to the leader, and the
    /// leader nudges once per blame's voter: one Byzantine replica blames to the leader
    /// alone first and to the others later, and an idle honest view ends.
    pub no_blame_forward: bool,
    /// Another replica's blame of the view is not taken as a reason to watch the leader
    /// (S5's blame heard): a view whose leader crashed, where one replica waits and the
    /// others wait for nothing, is never left (found by a five-process test, 2026-12-07).
    pub no_blame_heard: bool,
    /// A restarted replica votes at once, without S13's recovery: it may vote for a block
    /// that conflicts with one it received before the crash (the second review's finding 6).
    pub no_recovery: bool,
    /// S13's answers teach no `high_qc` (the first version of S13, found by the 100,000-seed
    /// coalition run): a replica that was down while a view committed and ended reports
    /// a stale QC in its next STATUS.
    pub recovery_without_high_qc: bool,
    /// S13 answers each asker at most once per 2Δ whatever its start (the first version,
    /// broken by a helper with a replica restarted twice within 2Δ).
    pub recovery_once_per_asker: bool,
    /// Pooled votes and CHECKPOINTs above the committed height are kept without the
    /// per-signer bounds (the second review's finding 2 put back).
    pub unbounded_pools: bool,
    /// S4b commits at exactly vote + 2Δ instead of strictly after it (the boundary the
    /// 100,000-seed coalition run crossed at seed 52499).
    pub commit_at_two_delta: bool,
    /// S5a: a conflict found by walking down the view's chain (the two blocks at different
    /// heights) is not taken as equivocation; only one at the tip's own height is (the
    /// second review's seeded-search plant 1).
    pub deep_conflict_unseen: bool,
    /// S4b: a replica commits while it holds a view block it cannot link yet (plant 2).
    pub commit_with_unlinked: bool,
    /// S11: a state transfer's image is installed without checking that it hashes to the
    /// certified state (the certificate and block are still checked; plant 4).
    pub unchecked_image: bool,
    /// S11: an own image that lands after a stable certificate of its height and differs
    /// from it is dropped silently (the second review's finding 4 put back).
    pub late_image_unseen: bool,
    /// Evidence: an honest replica's votes at two heights of one view (its one chain) are
    /// taken as a double vote, so honest replicas are accused.
    pub votes_any_height: bool,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub n: usize,
    /// Δ: message delay plus processing bound.
    pub delta_ms: u64,
    /// Base of T_req/T_prog (S10); doubles per failed view.
    pub timeout_base_ms: u64,
    pub timeout_cap_ms: u64,
    /// Most requests, and bytes, per block.
    pub batch_max: usize,
    pub batch_bytes_max: usize,
    /// Most requests pooled at once (beyond: dropped; clients resend).
    pub pending_max: usize,
    /// Blocks between state checkpoints (S11): the driver keeps a state image at every
    /// multiple of this height, and the log below a stable one may be deleted.
    pub checkpoint_every: u64,
    /// How far a block's time may lie ahead of a voter's clock (S2.5); behind it, this plus
    /// the longest view timeout.
    pub clock_skew_ms: u64,
    pub planted: Planted,
    /// The committed block the chain starts from: genesis, or after a reset (`quintet
    /// recover`) the block every replica was re-seeded at. Its QC is the one with no votes
    /// (`QuorumCert::base`), valid only for this block.
    pub base: (Height, Hash),
    /// Keep a list of every QC this replica learns and every block it commits by S4, for
    /// the simulator's safety checker ([`Core::take_observed`]); off in the product.
    pub record_qcs: bool,
}

impl Config {
    pub fn new(n: usize, delta_ms: u64) -> Self {
        Config {
            n,
            delta_ms,
            timeout_base_ms: 12 * delta_ms,
            timeout_cap_ms: 120 * delta_ms,
            batch_max: 256,
            batch_bytes_max: 1 << 20,
            pending_max: 100_000,
            checkpoint_every: 1_000,
            clock_skew_ms: 2_000,
            planted: Planted::default(),
            base: (0, GENESIS),
            record_qcs: false,
        }
    }

    /// q = f + 1.
    pub fn quorum(&self) -> usize {
        self.n / 2 + 1
    }

    pub fn qc_size(&self) -> usize {
        self.planted.qc_size.unwrap_or(self.quorum())
    }

    /// Signatures in a commit or state certificate (S11): q.
    pub fn certificate_size(&self) -> usize {
        self.planted.certificate_size.unwrap_or(self.quorum())
    }
}

/// A cheap keyed-hash "signature" for tests and the simulator: replica i signs with secret i,
/// and the verifier knows every secret. Fast, deterministic, and unforgeable for replicas
/// that do not hold the secret (the simulator never hands one out).
pub struct SimCrypto {
    pub me: ReplicaId,
}

impl SimCrypto {
    fn tag(signer: ReplicaId, bytes: &[u8]) -> Vec<u8> {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(b"quintet/sim-signature\0");
        h.update([signer]);
        h.update(bytes);
        h.finalize()[..16].to_vec()
    }
}

impl Crypto for SimCrypto {
    fn sign(&self, bytes: &[u8]) -> Vec<u8> {
        Self::tag(self.me, bytes)
    }
    fn verify(&self, signer: ReplicaId, bytes: &[u8], signature: &[u8]) -> bool {
        Self::tag(signer, bytes) == signature
    }
}
