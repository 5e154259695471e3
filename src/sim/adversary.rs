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
//!   next leader it may propose on the first status it gets;
//! - **far-future blames** (validly self-signed, without certificate), **replays** of honest
//!   messages it heard, delivered up to 10Δ late (votes, proposals, statuses across view
//!   changes), **coalition certificates**: CHECKPOINTs and a state transfer signed by its
//!   members only, for a block and an image it made up;
//! - **forged requests**: requests in other users' names, with signatures it cannot make
//!   properly, put into the blocks it proposes;
//! - **lying replies** to clients, the same made-up result from every member.
//! The honest links take exactly Δ when the seed says so (`slow_honest_links`).

use std::collections::{BTreeMap, BTreeSet};

use crate::consensus::{
    self, Block, BlameCert, BlameReason, Checkpoint, Crypto, Hash, Height, Justification, Message, Proposal, QuorumCert,
    ReplicaId, SimCrypto, StateCert, StateTransfer, Status, View, Vote,
};
use crate::rng::Rng;

/// Blocks one group's chain grows to in one view.
const CHAIN_MAX: usize = 4;
/// Honest messages kept for replays, and client requests kept for forgeries.
const HEARD_MAX: usize = 300;

/// What this seed's coalition does (drawn once per run).
#[derive(Clone, Debug)]
pub struct Plan {
    pub split: bool,
    pub hide_qc: bool,
    pub selective_blames: bool,
    /// Blame a view the coalition leads this long after it began.
    pub early_blame_ms: Option<u64>,
    /// Delay between the groups' first blocks.
    pub shadow_delay_ms: u64,
    /// Delay before a chain's next block, once the QC it extends is formed.
    pub step_delay_ms: u64,
    /// In the first view it leads it proposes nothing at all (until the hidden QC).
    pub silent_first: bool,
    pub far_future: bool,
    pub replay: bool,
    pub certificates: bool,
    pub forge_requests: bool,
    pub lie: bool,
    /// After showing a chain's block number `.0`, make some replicas leave `.1` ms later.
    pub leave: Option<(usize, u64)>,
    /// The members' votes for a chain block go to one replica of its group only.
    pub narrow_votes: bool,
    /// As leader, propose on the first honest status (no wait at all).
    pub fast_lead: bool,
    /// The i-th replica of a group is shown each block i × this later.
    pub stagger_ms: u64,
}

impl Plan {
    pub fn draw(rng: &mut Rng, delta_ms: u64) -> Plan {
        Plan {
            split: rng.chance(7, 8),
            hide_qc: rng.chance(7, 8),
            selective_blames: rng.chance(2, 3),
            early_blame_ms: rng.chance(1, 2).then(|| delta_ms * (3 + rng.below(10))),
            // Mostly between Δ and 2Δ: the second group's first block then reaches the first
            // group (forwarded) after its 2Δ commit wait, yet before that group's next block
            // reaches the second group.
            shadow_delay_ms: if rng.chance(3, 4) { delta_ms + rng.below(delta_ms) } else { rng.below(2 * delta_ms + 1) },
            step_delay_ms: 1 + rng.below(2 * delta_ms),
            silent_first: rng.chance(3, 4),
            far_future: rng.chance(1, 3),
            replay: rng.chance(1, 2),
            certificates: rng.chance(1, 3),
            forge_requests: rng.chance(1, 2),
            lie: rng.chance(1, 3),
            leave: rng.chance(3, 4).then(|| (1 + rng.below(3) as usize, rng.below(3 * delta_ms))),
            narrow_votes: rng.chance(1, 3),
            fast_lead: rng.chance(1, 2),
            stagger_ms: if rng.chance(1, 2) { 0 } else { rng.below(delta_ms) },
        }
    }
}

/// A message the coalition sends on its own, `delay_ms` from now.
pub struct Crafted {
    pub from: ReplicaId,
    pub to: ReplicaId,
    pub message: Message,
    pub delay_ms: u64,
}

/// One group's chain in a view the coalition leads.
struct Chain {
    group: Vec<ReplicaId>,
    justification: Option<Justification>,
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
        self.leads(view) && (self.plan.split || self.plan.hide_qc || self.plan.forge_requests)
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
                if self.crafted.contains_key(&p.block.hash) {
                    return (false, out);
                }
            }
            Message::BlameCert(bc) => {
                self.certificates.insert(bc.view, bc.clone());
                self.view_seen.entry(bc.view + 1).or_insert(now);
                self.hide_qc(bc.view, now, rng, &mut out);
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

    /// Starts a view the coalition leads: one chain per group (S5a's attack surface).
    fn lead(&mut self, view: View, now: u64, rng: &mut Rng, out: &mut Vec<Crafted>) {
        let reported: BTreeMap<ReplicaId, Status> = self.statuses.get(&view).cloned().unwrap_or_default();
        // Candidate parents: every QC an honest status reported (genesis in view 0).
        let mut parents: Vec<QuorumCert> = reported.values().map(|s| s.high_qc.clone()).collect();
        parents.push(QuorumCert::genesis());
        parents.sort_by_key(|qc| qc.rank());
        parents.dedup_by_key(|qc| qc.hash);
        let groups = if self.plan.split { 2 } else { 1 };
        let mut honest = self.honest.clone();
        // Replicas that reported high QCs go to the high group (they refuse lower parents).
        honest.sort_by_key(|id| reported.get(id).map(|s| s.high_qc.rank()));
        // The cut: the replicas that reported the lowest QC against the rest (the rest refuse
        // a block over it: their lock is higher), or a random cut when all reported alike.
        let rank = |id: &ReplicaId| reported.get(id).map(|s| s.high_qc.rank());
        let lowest = honest.iter().filter(|id| rank(id) == rank(&honest[0])).count();
        let cut = match groups {
            2 if lowest < honest.len() && rng.chance(3, 4) => lowest,
            2 => 1 + rng.below(honest.len() as u64 - 1) as usize,
            _ => honest.len(),
        };
        let plan_groups: Vec<Vec<ReplicaId>> =
            if groups == 2 { vec![honest[..cut].to_vec(), honest[cut..].to_vec()] } else { vec![honest.clone()] };
        for (g, group) in plan_groups.into_iter().enumerate() {
            // The group's parent: mostly the lowest its members accept (the highest QC they
            // reported), else any higher one.
            let floor = group.iter().filter_map(|id| reported.get(id)).map(|s| s.high_qc.rank()).max().unwrap_or((0, 0));
            let fits: Vec<&QuorumCert> = parents.iter().filter(|qc| qc.rank() >= floor).collect();
            let pick = if rng.chance(3, 4) { 0 } else { rng.below(fits.len().max(1) as u64) as usize };
            let Some(parent) = fits.get(pick).map(|qc| (*qc).clone()) else { continue };
            let justification = if view == 0 { None } else { self.justification(view, &parent, &reported) };
            if view > 0 && justification.is_none() {
                continue;
            }
            let delay = 1 + if g == 0 { 0 } else { self.plan.shadow_delay_ms };
            let time_ms = now + g as u64;
            let block = self.block(view, parent, time_ms, rng);
            self.chains.entry(view).or_default().push(Chain { group: group.clone(), justification: justification.clone(), tip: block.clone(), length: 1 });
            self.show(&block, justification.clone(), &group, delay, out);
            self.maybe_leave(&block, 1, justification, &group, rng, out);
        }
    }

    /// BC(v−1) and q statuses whose highest QC is `parent`: the members report `parent` (or
    /// genesis), the honest statuses used report no more than it.
    fn justification(&self, view: View, parent: &QuorumCert, reported: &BTreeMap<ReplicaId, Status>) -> Option<Justification> {
        let blame_cert = self.certificates.get(&(view - 1))?.clone();
        let mut statuses: Vec<Status> = reported.values().filter(|s| s.high_qc.rank() <= parent.rank()).cloned().collect();
        statuses.truncate(self.quorum.saturating_sub(1).max(1));
        for m in &self.members {
            let high_qc = if statuses.iter().any(|s| s.high_qc.hash == parent.hash) { QuorumCert::genesis() } else { parent.clone() };
            let signature = SimCrypto { me: *m }.sign(&consensus::signed::status(view, &high_qc));
            statuses.push(Status { view, high_qc, voter: *m, signature, blame_cert: blame_cert.clone() });
        }
        statuses.sort_by_key(|s| s.voter);
        (statuses.len() >= self.quorum).then_some(Justification { blame_cert, statuses })
    }

    /// A block of `view` over `parent`, with requests it heard (and a forgery, if planned).
    fn block(&mut self, view: View, parent: QuorumCert, time_ms: u64, rng: &mut Rng) -> Block {
        let mut requests = Vec::new();
        if !self.requests.is_empty() {
            requests.push(self.requests[rng.below(self.requests.len() as u64) as usize].clone());
        }
        if self.plan.forge_requests
            && let Some(forged) = self.forged_request(rng)
        {
            requests.push(forged);
        }
        let mut block = Block {
            view,
            height: parent.height + 1,
            parent: parent.hash,
            parent_qc: parent,
            proposer: self.leader(view),
            time_ms,
            requests,
            hash: [0; 32],
        };
        block.hash = block.compute_hash();
        self.crafted.insert(block.hash, block.clone());
        block
    }

    /// A heard request with its operation changed and its signature kept: it claims to be
    /// the user's, but the user never signed it.
    fn forged_request(&self, rng: &mut Rng) -> Option<Vec<u8>> {
        use prost::Message as _;
        if self.requests.is_empty() {
            return None;
        }
        let bytes = &self.requests[rng.below(self.requests.len() as u64) as usize];
        let mut signed = crate::pb::SignedRequest::decode(bytes.as_slice()).ok()?;
        let mut body = crate::pb::RequestBody::decode(signed.body.as_slice()).ok()?;
        body.seq += 1 + rng.below(3);
        body.op = Some(crate::wire::encode_op(&crate::chat::Op::Send { to: body.user.clone(), text: "forged".into() }));
        signed.body = body.encode_to_vec();
        Some(signed.encode_to_vec())
    }

    /// Shows a crafted block to a group, with the members' votes towards it only.
    fn show(&mut self, block: &Block, justification: Option<Justification>, group: &[ReplicaId], delay_ms: u64, out: &mut Vec<Crafted>) {
        let leader = block.proposer;
        let signature = SimCrypto { me: leader }.sign(&consensus::signed::proposal(&block.hash, justification.as_ref()));
        let proposal = Proposal { block: block.clone(), signature, justification };
        for (i, to) in group.iter().enumerate() {
            let delay_ms = delay_ms + i as u64 * self.plan.stagger_ms;
            out.push(Crafted { from: leader, to: *to, message: Message::Propose(proposal.clone()), delay_ms });
            if self.plan.narrow_votes && i > 0 {
                continue;
            }
            for m in &self.members {
                let vote = Self::sign_vote(*m, block);
                self.votes.entry(block.hash).or_default().insert(*m, vote.signature.clone());
                out.push(Crafted { from: *m, to: *to, message: Message::Vote(vote), delay_ms: delay_ms + 1 });
            }
        }
    }

    /// "Leave now" (see the top): after the chain's `.0`-th block, a twin of it and the
    /// members' blames reach a random set of the group's replicas `.1` ms later.
    fn maybe_leave(&mut self, block: &Block, length: usize, justification: Option<Justification>, group: &[ReplicaId], rng: &mut Rng, out: &mut Vec<Crafted>) {
        let Some((at_length, after_ms)) = self.plan.leave else { return };
        if length != at_length || !self.blamed.insert(block.view) {
            return;
        }
        let _ = group;
        let mut twin = block.clone();
        twin.time_ms += 1;
        twin.requests.clear();
        twin.hash = twin.compute_hash();
        self.crafted.insert(twin.hash, twin.clone());
        let signature = SimCrypto { me: twin.proposer }.sign(&consensus::signed::proposal(&twin.hash, justification.as_ref()));
        let proposal = Proposal { block: twin.clone(), signature, justification };
        let entered_by = block.view.checked_sub(1).and_then(|w| self.certificates.get(&w).cloned());
        // A random proper subset of the honest replicas leaves now; the others learn BC(v)
        // Δ later, and one of them may be shown a hidden QC meanwhile.
        let victim = self.plan.hide_qc.then(|| self.victim(block.view, rng));
        let mut leavers: Vec<ReplicaId> = self.honest.iter().copied().filter(|h| Some(*h) != victim && rng.chance(1, 2)).collect();
        if leavers.is_empty() {
            leavers.push(self.honest[rng.below(self.honest.len() as u64) as usize]);
        }
        if leavers.len() == self.honest.len() {
            leavers.remove(rng.below(leavers.len() as u64) as usize);
        }
        self.blame_targets.insert(block.view, leavers.clone());
        for to in leavers {
            out.push(Crafted { from: twin.proposer, to, message: Message::Propose(proposal.clone()), delay_ms: after_ms + 1 });
            for m in self.members.clone() {
                out.push(Crafted { from: m, to, message: Self::blame(m, block.view, entered_by.clone()), delay_ms: after_ms + 2 });
            }
        }
    }

    /// A vote for a crafted block came in: with q of them, grow that block's chain.
    fn extend_chains(&mut self, hash: Hash, now: u64, rng: &mut Rng, out: &mut Vec<Crafted>) {
        let Some(block) = self.crafted.get(&hash).cloned() else { return };
        let votes = self.votes.get(&hash).cloned().unwrap_or_default();
        if votes.len() < self.quorum || self.qcs.contains_key(&hash) {
            return;
        }
        let qc = QuorumCert { view: block.view, height: block.height, hash, votes: votes.into_iter().collect() };
        self.qcs.insert(hash, qc.clone());
        let Some(i) = self.chains.get(&block.view).and_then(|c| c.iter().position(|c| c.tip.hash == hash)) else { return };
        let (group, justification, length) = {
            let chain = &self.chains[&block.view][i];
            (chain.group.clone(), chain.justification.clone(), chain.length)
        };
        if length >= CHAIN_MAX {
            return;
        }
        let delay = self.plan.step_delay_ms;
        let next = self.block(block.view, qc, (now + delay).max(block.time_ms), rng);
        if let Some(chain) = self.chains.get_mut(&block.view).and_then(|c| c.get_mut(i)) {
            chain.tip = next.clone();
            chain.length += 1;
        }
        self.show(&next, justification.clone(), &group, delay, out);
        self.maybe_leave(&next, length + 1, justification, &group, rng, out);
    }

    /// The view `view` is being left (an honest replica blamed it, or its certificate came
    /// by): if the coalition leads it, one honest replica alone is shown a block over the
    /// highest QC the coalition holds, with the coalition's votes, then its child.
    fn hide_qc(&mut self, view: View, now: u64, rng: &mut Rng, out: &mut Vec<Crafted>) {
        if !self.plan.hide_qc || !self.leads(view) || !self.hidden.insert(view) {
            return;
        }
        let victim = self.victim(view, rng);
        let (parent, justification) = match self.chains.get(&view).and_then(|c| c.first()) {
            Some(chain) => (self.qcs.get(&chain.tip.parent).cloned().unwrap_or_else(QuorumCert::genesis), chain.justification.clone()),
            None if view == 0 => (QuorumCert::genesis(), None),
            None => {
                let reported = self.statuses.get(&view).cloned().unwrap_or_default();
                let parent = reported.values().map(|s| s.high_qc.clone()).max_by_key(|qc| qc.rank()).unwrap_or_else(QuorumCert::genesis);
                let justification = self.justification(view, &parent, &reported);
                if justification.is_none() {
                    return;
                }
                (parent, justification)
            }
        };
        let block = self.block(view, parent, now, rng);
        self.chains.entry(view).or_default().push(Chain { group: vec![victim], justification: justification.clone(), tip: block.clone(), length: 1 });
        self.show(&block, justification, &[victim], 1, out);
    }

    /// CHECKPOINTs and a state transfer signed by the members only, for a block and an
    /// image the coalition made up (q − 1 signatures: never enough).
    fn fake_certificates(&mut self, committed: Height, victim: ReplicaId, now: u64, rng: &mut Rng, out: &mut Vec<Crafted>) {
        self.fake_height = self.fake_height.max(committed + 1 + rng.below(3));
        let height = self.fake_height;
        let mut block = Block {
            view: 0,
            height,
            parent: [height as u8; 32],
            parent_qc: QuorumCert::genesis(),
            proposer: self.members[0],
            time_ms: now,
            requests: Vec::new(),
            hash: [0; 32],
        };
        block.hash = block.compute_hash();
        self.crafted.insert(block.hash, block.clone());
        let Ok(image) = crate::storage::image_of(&crate::chat::ChatState::new()) else { return };
        let state = consensus::digest(&image);
        let mut signatures = Vec::new();
        for m in self.members.clone() {
            let crypto = SimCrypto { me: m };
            let plain = crypto.sign(&consensus::signed::checkpoint(height, &block.hash, None));
            let checkpoint = Checkpoint { height, hash: block.hash, state: None, voter: m, signature: plain };
            out.push(Crafted { from: m, to: victim, message: Message::Checkpoint(checkpoint), delay_ms: 1 });
            signatures.push((m, crypto.sign(&consensus::signed::checkpoint(height, &block.hash, Some(&state)))));
        }
        let cert = StateCert { height, hash: block.hash, state, signatures };
        let transfer = StateTransfer { cert, block, image };
        out.push(Crafted { from: self.members[0], to: victim, message: Message::State(Box::new(transfer)), delay_ms: 2 });
    }
}
