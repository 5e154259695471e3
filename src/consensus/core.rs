//! The protocol core: a sans-IO state machine (no clock, no I/O, no randomness).
//!
//! Call order: build with [`Core::new`] (fresh, or restored from the last `Persist` and the
//! committed chain), then call [`Core::handle`] with the current time for every input. The
//! driver performs the returned actions **in order**: a `Persist` must be durable before any
//! later `Send`/`Broadcast` of the same batch leaves. `Commit` blocks come in height order,
//! each once. Call `handle(now, Input::Tick)` at least every Δ/4 so timers fire.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

pub use super::interface::{Action, Input, Persistent, Restored};
use super::types::*;
use super::verify::Checker;
use super::{Config, Digest32};

/// Blame bookkeeping of the view being left (S6) or entered (S7).
pub(super) struct Entering {
    /// BC(view − 1), carried in this view's statuses and proposals.
    pub blame_cert: BlameCert,
    /// When BC(view − 1) was received.
    pub since_ms: u64,
    pub status_sent: bool,
}

pub struct Core {
    pub(super) cfg: Config,
    pub(super) me: ReplicaId,
    pub(super) crypto: Box<dyn super::Crypto>,
    // ---- persistent (S-persist)
    pub(super) view: View,
    pub(super) votes: Vec<BlockRef>,
    pub(super) high_qc: QuorumCert,
    pub(super) proposals: Vec<BlockRef>,
    pub(super) reported: Option<Rank>,
    // ---- volatile
    pub(super) blocks: BTreeMap<Hash, Block>,
    pub(super) qcs: BTreeMap<Hash, QuorumCert>,
    pub(super) vote_pool: BTreeMap<(View, Height, Hash), Vec<(ReplicaId, Vec<u8>)>>,
    /// Messages per link whose signatures did not verify (`unverifiable_from`).
    pub(super) unverifiable: BTreeMap<ReplicaId, u64>,
    /// Evidence already reported: views whose leader was proven to equivocate, and
    /// (voter, view, height) proven double votes. One proof each is enough; more would
    /// only let a Byzantine replica make this one check and report the same thing again.
    pub(super) proven_views: BTreeSet<View>,
    pub(super) proven_votes: BTreeSet<(ReplicaId, View, Height)>,
    /// Each signer's entries in `vote_pool` by (view, height): at most `VOTES_PER_SIGNER`.
    pub(super) votes_by_signer: BTreeMap<ReplicaId, BTreeSet<(View, Height, Hash)>>,
    /// vote_time(B) for blocks voted since this start (S4b).
    pub(super) vote_time: BTreeMap<Hash, u64>,
    /// Blocks that meet S4a, waiting on S4b.
    pub(super) candidates: BTreeSet<(Height, Hash)>,
    /// Proposals seen per (view, height) from the view's leader (for equivocation).
    pub(super) seen: BTreeMap<(View, Height), Proposal>,
    /// The last justification found valid, with the view it was checked for.
    pub(super) verified_justification: Option<(View, Justification)>,
    /// The leader's digests of the requests on its uncommitted chain: (tip, committed height, digests).
    pub(super) chain_digests: Option<(Hash, Height, std::collections::BTreeSet<super::Digest32>)>,
    /// Proposals forwarded (S2), with their heights, until committed past.
    pub(super) forwarded: BTreeMap<Hash, Height>,
    pub(super) equivocation: Option<View>,
    /// S5a: the highest known block of the current view's one chain, the view's first
    /// block, and view blocks whose link to that chain is not known yet.
    pub(super) view_tip: Option<Hash>,
    pub(super) view_first: Option<Proposal>,
    /// A first block of the view at or below the committed height (evidence only).
    pub(super) view_first_low: Option<Proposal>,
    pub(super) view_unlinked: BTreeSet<Hash>,
    /// True until the first input after `new`: timers restored from disk restart then
    /// (a restart does not know when it received the certificate that entered its view).
    pub(super) fresh_start: bool,
    pub(super) blames: BTreeMap<View, BTreeMap<ReplicaId, Vec<u8>>>,
    pub(super) blamed: Option<View>,
    pub(super) entering: Option<Entering>,
    /// As leader of `view`: statuses received for it.
    pub(super) statuses: BTreeMap<ReplicaId, Status>,
    pub(super) justification: Option<Justification>,
    /// Proposals waiting for a missing ancestor.
    pub(super) orphans: BTreeMap<Hash, Vec<(ReplicaId, Proposal)>>,
    pub(super) fetching: BTreeMap<Hash, u64>,
    /// FETCH answers per asker: bytes of blocks sent in the current 4Δ.
    pub(super) fetch_served: BTreeMap<ReplicaId, super::Window>,
    pub(super) committed_height: Height,
    pub(super) committed_hash: Hash,
    /// Requests waiting to commit, by digest, with their arrival time.
    pub(super) pending: BTreeMap<Digest32, (u64, Vec<u8>)>,
    /// `pending` by arrival: the leader proposes oldest first, so requests whose digests
    /// happen to sort low (or were ground to) cannot keep others waiting (review).
    pub(super) pending_order: BTreeSet<(u64, Digest32)>,
    /// Pooled requests this replica relayed to a leader (S10): the view, when first in it
    /// (T_req runs from there), and when last.
    pub(super) relayed: BTreeMap<Digest32, (View, u64, u64)>,
    /// Relays sent in the current 4Δ.
    pub(super) relay_budget: super::Window,
    /// Pooled requests that came by relay only, per relaying replica (at most
    /// `RELAYED_PER_PEER` each).
    pub(super) relayed_in: BTreeMap<ReplicaId, BTreeSet<Digest32>>,
    /// CHECKPOINT signers per (height, hash) above the committed height (S11).
    pub(super) checkpoints: BTreeMap<(Height, Hash), BTreeSet<ReplicaId>>,
    /// Each signer's entries in `checkpoints`: at most `CHECKPOINTS_PER_SIGNER`, its newest.
    pub(super) checkpoints_by_signer: BTreeMap<ReplicaId, BTreeSet<(Height, Hash)>>,
    /// Per signer, the height of the newest CHECKPOINT handed to the driver to keep as a
    /// proof of commit, and a newer one held until this replica commits that far
    /// (`keep_proof`).
    /// (its height, the slot it was kept in)
    pub(super) proofs_kept: BTreeMap<ReplicaId, (Height, u64)>,
    pub(super) proof_slot: u64,
    pub(super) proofs_held: BTreeMap<ReplicaId, Checkpoint>,
    /// Blocks proved committed by a checkpoint certificate, waiting for their blocks.
    pub(super) certified_commits: BTreeSet<(Height, Hash)>,
    pub(super) recent: VecDeque<Digest32>,
    pub(super) recent_set: BTreeSet<Digest32>,
    pub(super) last_progress_ms: u64,
    /// When this replica entered its current view (or started): a request's T_req runs from
    /// max(arrival, this), so commits of other requests never hide a censored one (S10).
    pub(super) view_since_ms: u64,
    /// Messages this replica re-sends every retransmission period while they matter (S10).
    pub(super) last_blame: Option<Blame>,
    pub(super) last_status: Option<Status>,
    pub(super) last_checkpoint: Option<Checkpoint>,
    pub(super) last_state_checkpoint: Option<Checkpoint>,
    /// S11 state: this replica's own images (height → block hash, image sha256), signed
    /// state CHECKPOINTs not yet stable, the newest stable checkpoint, and state-fetch pacing.
    pub(super) own_states: BTreeMap<Height, (Hash, Digest32)>,
    pub(super) state_votes: BTreeMap<(Height, Hash, Digest32), BTreeMap<ReplicaId, Vec<u8>>>,
    pub(super) stable: Option<StateCert>,
    pub(super) state_fetch_seen: Option<Height>,
    pub(super) state_fetch_turn: usize,
    pub(super) state_served: BTreeMap<ReplicaId, u64>,
    pub(super) last_retransmit_ms: u64,
    /// As leader: propose (empty) blocks until `high_qc` reaches this height, because some
    /// replica blamed the view while waiting (it lags and needs a same-view 2-chain).
    pub(super) nudge_to: Option<Height>,
    /// Replicas whose blame of this view set off a nudge already: each does once per view
    /// (S10 resends a blame every 4Δ; re-arming on each copy made empty blocks forever).
    pub(super) nudged_by: std::collections::BTreeSet<ReplicaId>,
    /// Replicas whose relay of a request committed already set off a nudge (S10): each
    /// does once per view, apart from its blame's nudge (which a relay must not use up:
    /// the blame also starts every replica's watch for progress, S5).
    pub(super) nudged_by_relay: std::collections::BTreeSet<ReplicaId>,
    /// S5's blame heard (a silent leader): since when another replica's blame of this view
    /// waits for a QC of the view that ranks above `high_qc` as it was then. This replica
    /// blames too if none forms within the request timeout.
    pub(super) silence: Option<(u64, Rank)>,
    /// Replicas whose blame of this view armed `silence` already (each once per view, as
    /// for the nudge: a resent blame does not re-arm it after progress).
    pub(super) silence_heard: std::collections::BTreeSet<ReplicaId>,
    /// S13: while a restarted replica re-learns its view, it neither votes nor proposes.
    pub(super) recovery: Option<super::recovery::Recovery>,
    /// What each peer's RECOVERs were answered with (`recovery::Served`).
    pub(super) recovery_served: BTreeMap<ReplicaId, super::recovery::Served>,
    /// Two proposals that prove this view's leader equivocated, for a restarted peer.
    pub(super) equivocation_proof: Option<(Proposal, Proposal)>,
    /// Consecutive failed views: timeouts double with it (S10).
    pub(super) failures: u32,
    /// Certified blocks found not to extend this replica's committed chain (never committed;
    /// nonzero only if safety broke somewhere, so the simulator reports it).
    pub conflicts: u64,
    /// QCs learned, and blocks committed by S4 (not as ancestors, not by a certificate),
    /// since the last `take_observed` (only with `Config::record_qcs`).
    pub(super) learned_qcs: Vec<(View, Height, Hash)>,
    pub(super) s4_commits: Vec<(View, Height, Hash)>,
    pub(super) out: Vec<Action>,
}

/// Requests remembered as committed (duplicates of them are dropped).
const RECENT_MAX: usize = 100_000;
/// Bytes of blocks sent to one peer per 4Δ in answer to FETCH (S9): four full blocks.
pub(super) const FETCH_BYTES_PER_PERIOD: u64 = 4 << 20;
/// What a block weighs besides its requests, for `FETCH_BYTES_PER_PERIOD`.
pub(super) const BLOCK_OVERHEAD: usize = 512;
/// Pooled requests that one replica alone relayed (S10): a few blocks' worth.
pub(super) const RELAYED_PER_PEER: usize = 1_024;

impl Core {
    pub fn new(cfg: Config, me: ReplicaId, crypto: Box<dyn super::Crypto>, restored: Restored) -> Self {
        assert!(cfg.n % 2 == 1 && (me as usize) < cfg.n, "n must be odd and the id below n");
        let cfg_no_recovery = cfg.planted.no_recovery;
        let base = cfg.base;
        let mut core = Core {
            cfg,
            me,
            crypto,
            view: 0,
            votes: Vec::new(),
            high_qc: QuorumCert::base(base),
            proposals: Vec::new(),
            reported: None,
            blocks: BTreeMap::new(),
            qcs: BTreeMap::new(),
            vote_pool: BTreeMap::new(),
            unverifiable: BTreeMap::new(),
            proven_views: BTreeSet::new(),
            proven_votes: BTreeSet::new(),
            votes_by_signer: BTreeMap::new(),
            vote_time: BTreeMap::new(),
            candidates: BTreeSet::new(),
            seen: BTreeMap::new(),
            forwarded: BTreeMap::new(),
            equivocation: None,
            view_tip: None,
            view_first: None,
            view_first_low: None,
            view_unlinked: BTreeSet::new(),
            fresh_start: true,
            blames: BTreeMap::new(),
            blamed: None,
            entering: None,
            statuses: BTreeMap::new(),
            justification: None,
            orphans: BTreeMap::new(),
            fetching: BTreeMap::new(),
            fetch_served: BTreeMap::new(),
            committed_height: 0,
            committed_hash: GENESIS,
            pending: BTreeMap::new(),
            pending_order: BTreeSet::new(),
            relayed: BTreeMap::new(),
            relay_budget: super::Window::default(),
            relayed_in: BTreeMap::new(),
            checkpoints: BTreeMap::new(),
            checkpoints_by_signer: BTreeMap::new(),
            proofs_kept: BTreeMap::new(),
            proof_slot: 0,
            proofs_held: BTreeMap::new(),
            certified_commits: BTreeSet::new(),
            recent: VecDeque::new(),
            recent_set: BTreeSet::new(),
            last_progress_ms: 0,
            view_since_ms: 0,
            last_blame: None,
            verified_justification: None,
            chain_digests: None,
            last_status: None,
            last_checkpoint: None,
            last_state_checkpoint: None,
            own_states: BTreeMap::new(),
            state_votes: BTreeMap::new(),
            stable: restored.stable,
            state_fetch_seen: None,
            state_fetch_turn: 0,
            state_served: BTreeMap::new(),
            last_retransmit_ms: 0,
            nudge_to: None,
            nudged_by: Default::default(),
            nudged_by_relay: Default::default(),
            silence: None,
            silence_heard: Default::default(),
            recovery: (restored.restarted && !cfg_no_recovery).then(super::recovery::Recovery::default),
            recovery_served: BTreeMap::new(),
            equivocation_proof: None,
            failures: 0,
            conflicts: 0,
            learned_qcs: Vec::new(),
            s4_commits: Vec::new(),
            out: Vec::new(),
        };
        for block in restored.committed {
            core.committed_height = block.height;
            core.committed_hash = block.hash;
            for r in &block.requests {
                core.remember_committed(super::digest(r));
            }
            core.blocks.insert(block.hash, block);
        }
        for block in restored.blocks {
            if block.height > core.committed_height {
                core.blocks.insert(block.hash, block);
            }
        }
        for (height, hash, state) in restored.images {
            core.own_states.insert(height, (hash, state));
        }
        // S11 after a restart: say again what this replica committed and which image it
        // keeps, so a replica behind the stable checkpoint learns it and asks for the image
        // even when every replica restarted since (none would repeat a checkpoint before).
        core.restore_checkpoints();
        if let Some(p) = restored.persistent {
            core.view = p.view;
            core.high_qc = p.high_qc;
            core.reported = p.reported;
            core.justification = p.justification;
            // Re-entering: the status is sent again (S6) unless it was already reported.
            core.entering = p.entered_by.map(|blame_cert| Entering {
                blame_cert,
                since_ms: 0,
                status_sent: p.reported.is_some(),
            });
            // The blocks they name came back with `restored.blocks`, stored before them.
            core.votes = p.votes;
            core.proposals = p.proposals;
            core.restore_view_tip();
        }
        core
    }

    /// Feeds one input; returns what the driver must do, in order.
    pub fn handle(&mut self, now_ms: u64, input: Input) -> Vec<Action> {
        if self.fresh_start {
            self.fresh_start = false;
            self.last_progress_ms = now_ms;
            self.view_since_ms = now_ms;
            // S6/S7 after a restart: the 2Δ before STATUS and the leader's 4Δ count from now.
            if let Some(e) = &mut self.entering {
                e.since_ms = now_ms;
            }
            self.start_recovery(now_ms);
        }
        match input {
            Input::Message(from, message) => self.on_message(now_ms, from, message),
            Input::Request(bytes) => {
                self.on_request(now_ms, bytes);
            }
            Input::Tick => {}
            Input::Snapshot { height, hash, state } => self.on_snapshot(height, hash, state),
        }
        self.on_tick(now_ms);
        let mut out = std::mem::take(&mut self.out);
        if self.cfg.planted.vote_before_persist {
            // Planted bug: everything this batch persists is written after its messages left.
            let (persists, rest): (Vec<_>, Vec<_>) =
                out.into_iter().partition(|a| matches!(a, Action::Persist(_) | Action::StoreBlock(_)));
            out = rest.into_iter().chain(persists).collect();
        }
        out
    }

    fn on_message(&mut self, now: u64, from: ReplicaId, message: Message) {
        if (from as usize) >= self.cfg.n {
            return;
        }
        match message {
            Message::Propose(p) => self.on_proposal(now, from, p),
            Message::Vote(v) => {
                if !self.on_vote(now, v) {
                    self.unverifiable_from(from);
                }
            }
            Message::Blame(b) => self.on_blame(now, from, b),
            Message::BlameCert(bc) => self.on_blame_cert(now, bc),
            Message::Status(s) => self.on_status(now, s),
            Message::Checkpoint(c) => self.on_checkpoint(now, c),
            Message::Fetch(hash) => self.on_fetch(now, from, hash),
            Message::Block(block) => self.on_fetched(now, *block),
            Message::FetchState(height) => self.on_fetch_state(now, from, height),
            Message::State(t) => self.on_state(now, *t),
            Message::Relay(bytes) => self.on_relayed(now, from, bytes),
            Message::Recover(start) => self.on_recover(now, from, start),
            Message::Recovered(r) => self.on_recovered(now, from, *r),
        }
    }

    /// A message on `from`'s link whose signatures did not verify: not a proof (anyone can
    /// send one), only counted.
    pub(super) fn unverifiable_from(&mut self, from: ReplicaId) {
        *self.unverifiable.entry(from).or_insert(0) += 1;
    }

    /// Whether a pair of view `view`'s proposals must be looked at: one of the current view
    /// (S5 acts on each, as it always did), or a proof of that view not reported yet.
    pub(super) fn equivocation_news(&self, view: View) -> bool {
        view == self.view || !self.proven_views.contains(&view)
    }

    /// Messages per link whose signatures did not verify, since this start.
    pub fn unverifiable(&self) -> &BTreeMap<ReplicaId, u64> {
        &self.unverifiable
    }

    pub(super) fn checker(&self) -> Checker<'_> {
        Checker {
            n: self.cfg.n,
            qc_size: self.cfg.qc_size(),
            quorum: self.cfg.quorum(),
            certificate_size: self.cfg.certificate_size(),
            repeats_count: self.cfg.planted.duplicate_votes,
            votes_any_height: self.cfg.planted.votes_any_height,
            base: self.cfg.base,
            crypto: self.crypto.as_ref(),
        }
    }

    /// True once this replica finished entering its view (its STATUS is out, S6).
    pub(super) fn entered(&self) -> bool {
        self.entering.as_ref().is_none_or(|e| e.status_sent)
    }

    pub(super) fn persistent(&self) -> Persistent {
        Persistent {
            view: self.view,
            votes: self.votes.clone(),
            high_qc: self.high_qc.clone(),
            proposals: self.proposals.clone(),
            reported: self.reported,
            entered_by: self.entering.as_ref().map(|e| e.blame_cert.clone()),
            justification: self.justification.clone(),
        }
    }

    /// Keeps a newly learned, valid block, and has the driver store it.
    pub(super) fn store_block(&mut self, block: &Block) {
        if block.height > self.committed_height && !self.blocks.contains_key(&block.hash) {
            self.blocks.insert(block.hash, block.clone());
            self.out.push(Action::StoreBlock(block.clone()));
        }
    }

    pub(super) fn persist(&mut self) {
        let p = self.persistent();
        self.out.push(Action::Persist(p));
    }

    /// The current timeout (S10): doubles per failed view, capped.
    pub(super) fn timeout_ms(&self) -> u64 {
        let factor = 1u64 << self.failures.min(16);
        (self.cfg.timeout_base_ms.saturating_mul(factor)).min(self.cfg.timeout_cap_ms)
    }

    pub(super) fn remember_committed(&mut self, digest: Digest32) {
        if let Some((arrival, _)) = self.pending.remove(&digest) {
            self.pending_order.remove(&(arrival, digest));
        }
        self.relayed.remove(&digest);
        if self.recent_set.insert(digest) {
            self.recent.push_back(digest);
            if self.recent.len() > RECENT_MAX
                && let Some(old) = self.recent.pop_front()
            {
                self.recent_set.remove(&old);
            }
        }
    }
}
