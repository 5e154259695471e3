//! The coalition adversary: up to f Byzantine replicas that share what they hear and, per
//! seed, choose and combine legal Byzantine moves. They sign only with their own keys and
//! reuse honest messages they received; what they cannot do is forge an honest signature.
//!
//! Moves (each switched on per seed by [`Plan`], and timed by the seed):
//! - **split leadership**: in a view a member leads, the coalition proposes by itself: the
//!   honest replicas are split into groups, each shown its own chain, from a first block
//!   over a parent QC chosen for it (different QCs, so different heights), with a
//!   justification assembled from the statuses the coalition holds (its members sign
//!   statuses reporting whatever QC suits); the groups' first blocks go out at different
//!   moments; the coalition votes for each chain only towards its group, and grows each
//!   chain over the QCs it forms from the group's votes;
//! - **hidden QC**: when the view it leads is being left, it shows one honest replica a
//!   block (and then a child) with the coalition's votes, so that replica alone holds a QC
//!   (a 2-chain) its peers never see;
//! - **selective and early blames**: its blames go only to some honest replicas, who leave
//!   the view first; it may blame its own view early;
//! - **leave now**: at a chosen moment after showing a block, it shows some honest replicas
//!   a twin of it (an equivocation they blame at once) and sends them its own blames, so
//!   they hold BC(v) exactly then, while the others learn it Δ later; its members' votes
//!   may go to one honest replica only (the others must gather each other's), and as the
//!   next leader it may propose on the first status it gets; a chain's later blocks may go
//!   to that one replica only, and the twin may be of the chain's first block (so it
//!   carries no QC the leavers lack);
//! - **stale QC**: a QC it formed and never showed a replica reaches that replica just
//!   before its STATUS for a view the coalition leads (a lower QC learned late);
//! - **far-future blames** (validly self-signed, without certificate), **replays** of honest
//!   messages it heard, delivered up to 10Δ late (votes, proposals, statuses across view
//!   changes), **coalition certificates**: CHECKPOINTs and a state transfer signed by its
//!   members only, for a block and an image it made up;
//! - **forged requests**: requests in other users' names, with signatures it cannot make
//!   properly, put into the blocks it proposes;
//! - **forged QCs**: STATUSes its members sign, reporting a QC that names honest voters
//!   whose signatures the coalition made with its own keys (`forge.rs`);
//! - **lying replies** to clients, the same made-up result from every member;
//! - **shown after a restart**: an honest replica that restarted (the coalition sees its
//!   connections drop and come back) is shown, in a view the coalition leads, a first
//!   block of its own, conflicting with the chain its peers were shown, with the
//!   members' votes; the chain grows on the QCs its vote makes (finding 6, S13);
//! - **empty recoveries**: a restarted honest replica's RECOVER is answered at once with
//!   nothing, so the members' two answers are in before any honest one;
//! - **wrong contents** (`wrong.rs`): a FETCH for an honest block answered first with other
//!   contents under its name; a genuine state certificate (an honest replica's state
//!   CHECKPOINT and the members') sent with an image it does not certify; signed junk
//!   (votes and CHECKPOINTs for made-up blocks above the committed height).
//! - **private requests** (`private.rs`): in an honest view, a request of its own to honest
//!   non-leaders only, and the members' blames once its timer would have run out.
//! The honest links take exactly Δ when the seed says so (`slow_honest_links`).

mod forge;
mod lead;
mod plan;
mod private;
mod wrong;

pub use private::PrivateRequest;

pub use plan::Plan;

use std::collections::{BTreeMap, BTreeSet};

use crate::consensus::{
    self, Block, BlameCert, BlameReason, Crypto, Hash, Height, Justification, Message, QuorumCert,
    ReplicaId, SimCrypto, Status, View, Vote,
};
use crate::rng::Rng;

/// Blocks one group's chain grows to in one view.
const CHAIN_MAX: usize = 4;
/// Honest messages kept for replays, and client requests kept for forgeries.
const HEARD_MAX: usize = 300;

/// A message the coalition sends on its own, `delay_ms` from now.
pub struct Crafted {
    pub from: ReplicaId,
    pub to: ReplicaId,
    pub message: Message,
    pub delay_ms: u64,
}

/// A QC the coalition formed and showed no one outside `holders` (the stale-QC move).
struct Stale {
    qc: QuorumCert,
    tip: Block,
    justification: Option<Justification>,
    holders: Vec<ReplicaId>,
    sent: Vec<ReplicaId>,
}

/// One group's chain in a view the coalition leads.
struct Chain {
    group: Vec<ReplicaId>,
    justification: Option<Justification>,
    first: Block,
    first_shown_ms: u64,
    tip: Block,
    length: usize,
}

pub struct Coalition {
    pub members: Vec<ReplicaId>,
    honest: Vec<ReplicaId>,
    n: usize,
    quorum: usize,
    delta_ms: u64,
    pub plan: Plan,
    statuses: BTreeMap<View, BTreeMap<ReplicaId, Status>>,
    /// BC(v) by v.
    certificates: BTreeMap<View, BlameCert>,
    qcs: BTreeMap<Hash, QuorumCert>,
    /// Blocks the coalition made (it answers FETCH for them) and their votes.
    crafted: BTreeMap<Hash, Block>,
    votes: BTreeMap<Hash, BTreeMap<ReplicaId, Vec<u8>>>,
    chains: BTreeMap<View, Vec<Chain>>,
    stale: Vec<Stale>,
    /// Per view: the honest replicas its blames go to, and the hidden QC's victim.
    blame_targets: BTreeMap<View, Vec<ReplicaId>>,
    victims: BTreeMap<View, ReplicaId>,
    /// Views led, blamed early, and hidden-QC'd already; when each view was first seen.
    led: BTreeSet<View>,
    blamed: BTreeSet<View>,
    hidden: BTreeSet<View>,
    view_seen: BTreeMap<View, u64>,
    /// When the first honest status for each view came.
    status_seen: BTreeMap<View, u64>,
    heard: Vec<(ReplicaId, Message)>,
    requests: Vec<Vec<u8>>,
    /// A block and a state image made up, signed by the members only (certificates move).
    fake_height: Height,
    /// Honest proposals' blocks, and the views a forged QC was reported for (forged QCs).
    seen_blocks: BTreeMap<Hash, Block>,
    forged: BTreeSet<View>,
    /// Honest replicas that restarted, and when; those shown a chain of their own, by view.
    restarted: Vec<(ReplicaId, u64)>,
    shown_restarted: BTreeSet<(View, ReplicaId)>,
    /// Honest signers of a state CHECKPOINT per height, and the heights sent a wrong image.
    state_signers: BTreeMap<Height, BTreeSet<ReplicaId>>,
    imaged: BTreeSet<Height>,
    /// Rounds of signed junk sent (`wrong.rs`).
    junk_rounds: u64,
    /// Honest views sent a private request; when the members blame each (`private.rs`).
    private_sent: BTreeSet<View>,
    private_blame_at: BTreeMap<View, u64>,
    private_rest_at: BTreeMap<View, u64>,
    private_out: Vec<PrivateRequest>,
}

impl Coalition {
    pub fn new(members: Vec<ReplicaId>, n: usize, quorum: usize, delta_ms: u64, plan: Plan) -> Self {
        let honest = (0..n as ReplicaId).filter(|id| !members.contains(id)).collect();
        Coalition {
            members,
            honest,
            n,
            quorum,
            delta_ms,
            plan,
            statuses: BTreeMap::new(),
            certificates: BTreeMap::new(),
            qcs: BTreeMap::new(),
            crafted: BTreeMap::new(),
            votes: BTreeMap::new(),
            chains: BTreeMap::new(),
            stale: Vec::new(),
            blame_targets: BTreeMap::new(),
            victims: BTreeMap::new(),
            led: BTreeSet::new(),
            blamed: BTreeSet::new(),
            hidden: BTreeSet::new(),
            view_seen: BTreeMap::new(),
            status_seen: BTreeMap::new(),
            heard: Vec::new(),
            requests: Vec::new(),
            fake_height: 0,
            seen_blocks: BTreeMap::new(),
            forged: BTreeSet::new(),
            restarted: Vec::new(),
            shown_restarted: BTreeSet::new(),
            state_signers: BTreeMap::new(),
            imaged: BTreeSet::new(),
            junk_rounds: 0,
            private_sent: BTreeSet::new(),
            private_blame_at: BTreeMap::new(),
            private_rest_at: BTreeMap::new(),
            private_out: Vec::new(),
        }
    }

    pub fn member(&self, id: ReplicaId) -> bool {
        self.members.contains(&id)
    }

    fn leader(&self, view: View) -> ReplicaId {
        (view % self.n as u64) as ReplicaId
    }

    fn leads(&self, view: View) -> bool {
        self.member(self.leader(view))
    }

    /// True when the coalition proposes by itself in this view (its member's core does not).
    fn crafts(&self, view: View) -> bool {
        self.leads(view) && (self.plan.split || self.plan.hide_qc || self.plan.forge_requests || self.plan.leave_after_first || self.plan.stale_qc)
    }

    fn silent(&self, view: View) -> bool {
        self.plan.silent_first && (0..view).all(|w| !self.leads(w))
    }

    /// The honest replica a view's hidden QC is for (its blames never reach it, so it
    /// leaves last).
    fn victim(&mut self, view: View, rng: &mut Rng) -> ReplicaId {
        let honest = &self.honest;
        *self.victims.entry(view).or_insert_with(|| honest[rng.below(honest.len() as u64) as usize])
    }

    fn blame_targets(&mut self, view: View, rng: &mut Rng) -> Vec<ReplicaId> {
        let victim = self.plan.hide_qc.then(|| self.victim(view, rng));
        let honest: Vec<ReplicaId> = self.honest.iter().copied().filter(|h| Some(*h) != victim).collect();
        if !self.plan.selective_blames {
            return honest;
        }
        self.blame_targets
            .entry(view)
            .or_insert_with(|| {
                let picked: Vec<ReplicaId> = honest.iter().copied().filter(|_| rng.chance(1, 2)).collect();
                if picked.is_empty() { vec![honest[rng.below(honest.len() as u64) as usize]] } else { picked }
            })
            .clone()
    }

    fn sign_vote(who: ReplicaId, b: &Block) -> Vote {
        let signature = SimCrypto { me: who }.sign(&consensus::signed::vote(b.view, b.height, &b.hash));
        Vote { view: b.view, height: b.height, hash: b.hash, voter: who, signature }
    }

    fn blame(who: ReplicaId, view: View, entered_by: Option<BlameCert>) -> Message {
        let signature = SimCrypto { me: who }.sign(&consensus::signed::blame(view));
        Message::Blame(consensus::Blame { view, voter: who, reason: BlameReason::Timeout, signature, entered_by })
    }

    // ------------------------------------------------------------------ the members' own outputs

    /// Rewrites what a member's core sends: no proposals of its own in views the coalition
    /// crafts or keeps silent, blames only to the chosen replicas.
    pub fn outputs(&mut self, id: ReplicaId, actions: Vec<consensus::Action>, rng: &mut Rng) -> Vec<consensus::Action> {
        use consensus::Action;
        let mut out = Vec::new();
        for action in actions {
            match action {
                Action::Broadcast(Message::Propose(p)) if p.block.proposer == id => {
                    let view = p.block.view;
                    // Its own core's proposals go out only in views it neither crafts nor keeps silent.
                    if !self.crafts(view) && !self.silent(view) {
                        out.push(Action::Broadcast(Message::Propose(p)));
                    }
                }
                Action::Broadcast(message @ (Message::Blame(_) | Message::BlameCert(_))) => {
                    let view = match &message {
                        // In views it leads, the coalition blames when it chooses (early
                        // blames, "leave now"), never on its cores' timers.
                        Message::Blame(b) if self.leads(b.view) => continue,
                        Message::Blame(b) => b.view,
                        Message::BlameCert(bc) => bc.view,
                        _ => unreachable!("matched above"),
                    };
                    for to in self.blame_targets(view, rng) {
                        out.push(Action::Send(to, message.clone()));
                    }
                    for m in self.members.clone() {
                        if m != id {
                            out.push(Action::Send(m, message.clone()));
                        }
                    }
                }
                other => out.push(other),
            }
        }
        out
    }

    // ------------------------------------------------------------------ what members hear

    /// A member received `message` from `from`. Returns whether its core gets it, and the
    /// coalition's reactions.
    pub fn on_receive(&mut self, to: ReplicaId, from: ReplicaId, message: &Message, now: u64, rng: &mut Rng) -> (bool, Vec<Crafted>) {
        let mut out = Vec::new();
        if !self.member(from) && self.heard.len() < HEARD_MAX {
            self.heard.push((from, message.clone()));
        }
        match message {
            Message::Status(s) => {
                self.qcs.insert(s.high_qc.hash, s.high_qc.clone());
                self.certificates.insert(s.blame_cert.view, s.blame_cert.clone());
                if !self.member(s.voter) {
                    self.statuses.entry(s.view).or_default().insert(s.voter, s.clone());
                    self.status_seen.entry(s.view).or_insert(now);
                }
            }
            Message::Propose(p) => {
                self.qcs.insert(p.block.parent_qc.hash, p.block.parent_qc.clone());
                if let Some(j) = &p.justification {
                    self.certificates.insert(j.blame_cert.view, j.blame_cert.clone());
                }
                self.view_seen.entry(p.block.view).or_insert(now);
                self.keep_block(&p.block);
                if self.crafted.contains_key(&p.block.hash) {
                    return (false, out);
                }
            }
            Message::BlameCert(bc) => {
                self.certificates.insert(bc.view, bc.clone());
                self.view_seen.entry(bc.view + 1).or_insert(now);
                self.hide_qc(bc.view, now, rng, &mut out);
                self.stale_qc(from, bc.view, rng, &mut out);
            }
            Message::Blame(b) => {
                if let Some(bc) = &b.entered_by {
                    self.certificates.insert(bc.view, bc.clone());
                }
                if !self.member(b.voter) {
                    self.hide_qc(b.view, now, rng, &mut out);
                }
            }
            Message::Vote(v) if self.crafted.contains_key(&v.hash) => {
                self.votes.entry(v.hash).or_default().insert(v.voter, v.signature.clone());
                self.extend_chains(v.hash, now, rng, &mut out);
                return (false, out);
            }
            Message::Fetch(hash) if self.crafted.contains_key(hash) => {
                let block = self.crafted[hash].clone();
                out.push(Crafted { from: to, to: from, message: Message::Block(Box::new(block)), delay_ms: 1 });
                return (false, out);
            }
            Message::Fetch(hash) => self.wrong_block(to, from, hash, &mut out),
            // A restarted honest replica asks: the member answers at once, with nothing,
            // so that two answers (q − 1) are in before any honest one (S13).
            Message::Recover(start) if !self.member(from) => {
                let nothing = consensus::Recovered { blame_cert: None, proposals: Vec::new(), high_qc: QuorumCert::genesis(), start: *start };
                out.push(Crafted { from: to, to: from, message: Message::Recovered(Box::new(nothing)), delay_ms: 1 });
                return (false, out);
            }
            Message::Checkpoint(c) => self.wrong_image(c, &mut out),
            _ => {}
        }
        (true, out)
    }

    /// A client request a member received (kept for forgeries).
    pub fn on_request(&mut self, bytes: &[u8]) {
        if self.requests.len() < HEARD_MAX {
            self.requests.push(bytes.to_vec());
        }
    }

    /// An honest replica restarted at `now` (its connections came back).
    pub fn on_restart(&mut self, id: ReplicaId, now: u64) {
        if !self.member(id) {
            self.restarted.push((id, now));
        }
    }

    // ------------------------------------------------------------------ on its own

    /// Every tick of the coalition's first member: start views it leads, blame early,
    /// far-future blames, replays, coalition certificates.
    pub fn on_tick(&mut self, view: View, committed: Height, now: u64, rng: &mut Rng) -> Vec<Crafted> {
        let mut out = Vec::new();
        self.view_seen.entry(view).or_insert(now);
        let since = self.view_seen[&view];
        if self.crafts(view) && !self.silent(view) && !self.led.contains(&view) {
            let statuses = self.statuses.get(&view).map_or(0, |s| s.len());
            let patience = if self.plan.fast_lead { 0 } else { 4 * self.delta_ms };
            // It waits for the status of the replica it hid a QC with, if any.
            let hidden = view.checked_sub(1).and_then(|w| self.hidden.contains(&w).then(|| self.victims.get(&w).copied()).flatten());
            let victim_in = hidden.is_none_or(|v| self.statuses.get(&view).is_some_and(|s| s.contains_key(&v)));
            let first_status = self.status_seen.get(&view).copied().unwrap_or(u64::MAX);
            let ready = view == 0
                || statuses >= self.honest.len()
                || (victim_in && now >= first_status.saturating_add(patience))
                || now >= first_status.saturating_add(4 * self.delta_ms);
            if ready && (now >= since + self.delta_ms || self.plan.fast_lead) {
                self.led.insert(view);
                self.view_seen.insert(view, now); // early blames count from here
                self.lead(view, now, rng, &mut out);
            }
        }
        if self.crafts(view) && self.led.contains(&view) {
            self.show_restarted(view, now, rng, &mut out);
        }
        let started = if self.crafts(view) && !self.silent(view) { self.led.contains(&view) } else { true };
        if let Some(after) = self.plan.early_blame_ms
            && self.leads(view)
            && started
            && now >= self.view_seen[&view] + after
            && self.blamed.insert(view)
        {
            let entered_by = view.checked_sub(1).and_then(|w| self.certificates.get(&w).cloned());
            for to in self.blame_targets(view, rng) {
                for m in self.members.clone() {
                    out.push(Crafted { from: m, to, message: Self::blame(m, view, entered_by.clone()), delay_ms: 1 });
                }
            }
        }
        self.forged_statuses(view, &mut out);
        self.junk(view, committed, &mut out);
        self.private_requests(view, now, &mut out);
        let victim = self.honest[rng.below(self.honest.len() as u64) as usize];
        let me = self.members[0];
        if self.plan.far_future && rng.chance(1, 4) {
            out.push(Crafted { from: me, to: victim, message: Self::blame(me, view + 1_000, None), delay_ms: 1 });
        }
        if self.plan.replay && rng.chance(1, 4) && !self.heard.is_empty() {
            let (_, message) = self.heard[rng.below(self.heard.len() as u64) as usize].clone();
            if !matches!(message, Message::State(_)) {
                let delay_ms = 1 + rng.below(10 * self.delta_ms);
                out.push(Crafted { from: me, to: victim, message, delay_ms });
            }
        }
        if self.plan.certificates && rng.chance(1, 16) {
            self.fake_certificates(committed, victim, now, rng, &mut out);
        }
        out
    }
}
