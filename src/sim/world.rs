//! The simulated world: replicas, clients, a network with delays, loss, duplication and
//! partitions, crashes (also between two actions of one batch), Byzantine behaviours, and
//! simulated time. Everything is driven by one seeded generator, so a seed replays exactly.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use super::check::Checker;
pub use super::stats::Stats;
use super::client::SimClient;
use super::faults::{Behaviour, Faults, Mode};
use super::node::{Effect, Node};
use crate::consensus::{self, Action, Config, Input, Message, Planted, ReplicaId};
use crate::pb;
use crate::rng::Rng;

/// Simulated wall clock at the start (sessions are checked against it).
pub const T0_MS: u64 = 1_800_000_000_000;

pub enum Event {
    /// Replica messages travel as bytes through the real codec (`wire::peer`).
    Deliver { from: ReplicaId, to: ReplicaId, bytes: std::rc::Rc<[u8]> },
    Request { to: ReplicaId, bytes: Vec<u8> },
    Reply { client: usize, from: ReplicaId, digest: [u8; 32], height: u64, outcome: pb::Outcome },
    Tick(ReplicaId),
    ClientWake(usize),
    Crash(ReplicaId),
    Restart(ReplicaId),
    Partition(Vec<u8>),
    Heal,
    /// Start of the liveness phase: heal, restart every crashed replica, synchrony.
    Liveness,
    /// A replica's state image lands (`images.rs`).
    PlaceImage(ReplicaId),
}

pub struct World {
    pub now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    events: BTreeMap<u64, Event>,
    pub nodes: Vec<Node>,
    pub clients: Vec<SimClient>,
    pub faults: Faults,
    pub cfg: Config,
    pub(super) rng: Rng,
    pub(super) partition: Option<Vec<u8>>,
    /// After the liveness phase starts: delays within Δ, no loss, no crashes mid-batch.
    pub(super) synchronous: bool,
    pub liveness_from: u64,
    pub checker: Checker,
    pub stats: Stats,
    pub trace: Option<Vec<String>>,
    pub(super) fork: Option<super::fork::Fork>,
    pub(super) coalition: Option<super::adversary::Coalition>,
    pub(super) honest_views: super::honest_views::HonestViews,
    /// The crash runs' hidden-QC network schedule (schedule.rs).
    pub(super) schedule: Option<super::schedule::StaleQc>,
    /// Scenario hook: messages for which this returns true are lost.
    pub drop_if: Option<Box<dyn FnMut(ReplicaId, ReplicaId, &Message) -> bool>>,
    /// Scenario hook: messages for which this returns a delay take exactly that long.
    pub delay_if: Option<Box<dyn FnMut(ReplicaId, ReplicaId, &Message) -> Option<u64>>>,
    /// Scenario hook: this replica crashes right after sending its vote at this height.
    pub crash_after_vote: Option<(ReplicaId, u64)>,
}

impl World {
    pub fn new(seed: u64, faults: Faults, planted: Planted, trace: bool) -> Self {
        let mut cfg = Config::new(faults.n, faults.delta_ms);
        cfg.planted = planted;
        cfg.record_qcs = true;
        cfg.checkpoint_every = faults.checkpoint_every;
        let nodes = (0..faults.n as ReplicaId)
            .map(|id| {
                let mut node = Node::new(id, faults.is_byzantine(id));
                node.diverge_from = faults.diverge.filter(|(who, _)| *who == id).map(|(_, h)| h);
                node.unchecked_requests = planted.unchecked_requests;
                node
            })
            .collect();
        let clients = (0..faults.clients).map(|c| SimClient::new(c, faults.ops_per_client, T0_MS)).collect();
        let honest = (0..faults.n as ReplicaId).map(|id| faults.is_byzantine(id).is_none()).collect();
        let mut world = World {
            now: T0_MS,
            seq: 0,
            queue: BinaryHeap::new(),
            events: BTreeMap::new(),
            nodes,
            clients,
            cfg,
            rng: Rng::new(seed ^ 0x005e_ed0f_5eed),
            partition: None,
            synchronous: faults.mode == Mode::Byzantine,
            liveness_from: u64::MAX,
            checker: Checker::new(honest, planted.unchecked_requests),
            faults,
            stats: Stats::default(),
            trace: trace.then(Vec::new),
            fork: None,
            coalition: None,
            honest_views: Default::default(),
            schedule: None,
            drop_if: None,
            delay_if: None,
            crash_after_vote: None,
        };
        let coalition: Vec<ReplicaId> =
            world.faults.byzantine.iter().filter(|(_, b)| *b == Behaviour::Fork).map(|(id, _)| *id).collect();
        if coalition.len() >= 2 {
            let honest = (0..world.faults.n as ReplicaId).filter(|id| world.faults.is_byzantine(*id).is_none()).collect();
            world.fork = Some(super::fork::Fork::new(coalition[0], coalition[1], honest, world.cfg.quorum()));
        }
        let members: Vec<ReplicaId> =
            world.faults.byzantine.iter().filter(|(_, b)| *b == Behaviour::Coalition).map(|(id, _)| *id).collect();
        if !members.is_empty() {
            let plan = super::adversary::Plan::draw(&mut world.rng, world.cfg.delta_ms);
            world.note(|| format!("coalition {members:?}, plan {plan:?}"));
            let (n, q, delta) = (world.faults.n, world.cfg.quorum(), world.cfg.delta_ms);
            world.coalition = Some(super::adversary::Coalition::new(members, n, q, delta, plan));
        }
        if let Some(committer) = world.faults.stale_qc_schedule {
            world.note(|| format!("hidden-QC schedule, committer {committer}"));
            world.schedule = Some(super::schedule::StaleQc::new(committer));
        }
        for id in 0..world.nodes.len() {
            world.nodes[id].boot(&world.cfg).expect("an empty disk opens");
            world.at(T0_MS + 1 + id as u64, Event::Tick(id as ReplicaId));
        }
        for c in 0..world.clients.len() {
            world.at(T0_MS + 10 + c as u64, Event::ClientWake(c));
        }
        world
    }

    /// Schedules `event` this many milliseconds from now (scenarios).
    pub fn after(&mut self, ms: u64, event: Event) {
        self.at(self.now + ms, event);
    }

    /// Runs the next `ms` milliseconds (scenarios).
    pub fn run_for(&mut self, ms: u64) {
        let until = self.now + ms;
        self.run_until(until, |_| false);
    }

    /// The committed height of a replica (0 while it is down).
    pub fn committed(&self, id: ReplicaId) -> u64 {
        self.nodes[id as usize].core.as_ref().map_or(0, |c| c.committed_height())
    }

    pub fn accepted(&self) -> usize {
        self.clients.iter().map(|c| c.accepted.len()).sum()
    }

    pub fn at(&mut self, time: u64, event: Event) {
        self.seq += 1;
        self.queue.push(Reverse((time, self.seq)));
        self.events.insert(self.seq, event);
    }

    pub(super) fn note(&mut self, line: impl FnOnce() -> String) {
        if let Some(trace) = &mut self.trace {
            trace.push(format!("{:>8} {}", self.now - T0_MS, line()));
        }
    }

    /// Runs events until `until` or until `stop` says so (checked between events).
    pub fn run_until(&mut self, until: u64, stop: impl Fn(&World) -> bool) {
        while let Some(Reverse((time, seq))) = self.queue.peek().copied() {
            if time > until || stop(self) {
                break;
            }
            self.queue.pop();
            let event = self.events.remove(&seq).expect("queued event");
            self.now = time;
            self.stats.events += 1;
            self.step(event);
        }
        self.now = self.now.max(until.min(self.queue.peek().map_or(until, |r| r.0.0)));
    }

    fn step(&mut self, event: Event) {
        match event {
            Event::Deliver { from, to, bytes } => {
                if !self.nodes[to as usize].is_up() {
                    return;
                }
                let message = match crate::wire::peer::decode_message(&bytes) {
                    Ok(message) => message,
                    Err(e) => {
                        self.note(|| format!("{to} <- {from} refused: {e}"));
                        self.stats.refused += 1;
                        if self.faults.is_byzantine(from).is_none() {
                            self.checker.violations.push(format!("codec: replica {to} could not decode replica {from}'s message: {e}"));
                        }
                        return;
                    }
                };
                self.note(|| format!("{to} <- {from} {}", super::network::summary(&message)));
                if let Some(fork) = self.fork.as_mut().filter(|f| f.member(to)) {
                    let (pass, extra) = fork.on_receive(&message, self.now);
                    self.perform(to, extra);
                    if !pass {
                        return;
                    }
                }
                if let Some(coalition) = self.coalition.as_mut().filter(|c| c.member(to)) {
                    let (pass, crafted) = coalition.on_receive(to, from, &message, self.now, &mut self.rng);
                    self.send_crafted(crafted);
                    if !pass {
                        return;
                    }
                }
                if self.relay_dropped(from, to, &message) {
                    return;
                }
                let extra = self.byzantine_on_receive(to, &message);
                self.input(to, Input::Message(from, message));
                self.perform(to, extra);
            }
            Event::Request { to, bytes } => {
                let node = &self.nodes[to as usize];
                if !node.is_up() {
                    return;
                }
                let Some((request, body)) = super::node::decode(&bytes) else { return };
                if let Some(coalition) = self.coalition.as_mut().filter(|c| c.member(to)) {
                    coalition.on_request(&bytes);
                }
                if node.behaviour == Some(Behaviour::Censor) && request.user == super::client::user_name(0) {
                    self.stats.byzantine_actions += 1;
                    return;
                }
                if let Some((height, outcome)) = node.cached(&request, &body) {
                    let digest = consensus::digest(&bytes);
                    self.reply(to, &request.user, digest, height, outcome);
                    return;
                }
                self.input(to, Input::Request(bytes));
            }
            Event::Reply { client, from, digest, height, outcome } => {
                if self.clients[client].on_reply(from as usize, digest, height, outcome, self.now) {
                    let accepted = self.clients[client].accepted.last().expect("just accepted").clone();
                    self.note(|| format!("client {client} accepted height {}", accepted.height));
                    let think = 1 + self.rng.below(50);
                    self.at(self.now + think, Event::ClientWake(client));
                }
            }
            Event::Tick(id) => {
                if self.nodes[id as usize].is_up() {
                    self.input(id, Input::Tick);
                    self.check_pools(id);
                    let extra = self.byzantine_on_tick(id);
                    self.perform(id, extra);
                    self.coalition_tick(id);
                }
                self.at(self.now + self.cfg.delta_ms / 4, Event::Tick(id));
            }
            Event::ClientWake(c) => self.client_wake(c),
            Event::Crash(id) => self.crash(id),
            Event::Restart(id) => self.restart(id),
            Event::Partition(groups) => {
                self.note(|| format!("partition {groups:?}"));
                self.stats.partitions += 1;
                self.partition = Some(groups);
                self.network_fault();
            }
            Event::Heal => {
                self.partition = None;
                self.network_fault();
            }
            Event::PlaceImage(id) => self.place_image(id),
            Event::Liveness => {
                self.note(|| "liveness phase: heal, restart, synchrony".into());
                self.partition = None;
                self.synchronous = true;
                self.liveness_from = self.now;
                for id in 0..self.nodes.len() as ReplicaId {
                    if !self.nodes[id as usize].is_up() {
                        self.at(self.now, Event::Restart(id));
                    }
                }
            }
        }
    }

    pub(super) fn input(&mut self, id: ReplicaId, input: Input) {
        let now = self.now;
        let Some(core) = self.nodes[id as usize].core.as_mut() else { return };
        let actions = core.handle(now, input);
        let conflicts = core.conflicts;
        let (learned, s4_commits) = core.take_observed();
        let view = core.view();
        self.checker.on_conflicts(id, conflicts);
        self.checker.observe(id, &actions, learned);
        (self.stats.proofs, self.stats.chain_proofs) = (self.checker.proofs, self.checker.chain_proofs);
        self.check_honest_view_blame(id, view, &actions);
        let actions = self.byzantine_outputs(id, actions);
        let commits: Vec<_> = actions.iter().filter_map(|a| if let Action::Commit(b) = a { Some(b.hash) } else { None }).collect();
        let performed = self.perform(id, actions);
        // An S4 commit counts once it took effect: its Commit action was carried out (a
        // crash between two actions of the batch can land before it; the decision, which
        // may rest on this replica's own vote not yet persisted, then never happened).
        let took_effect = |(_, _, hash): &(u64, u64, consensus::Hash)| !commits.contains(hash) || performed.contains(hash);
        let anchors = s4_commits.into_iter().filter(took_effect).collect();
        self.checker.on_s4_commits(id, anchors);
    }

    /// Carries out a batch in order; in crash runs a crash may land between two actions.
    /// Returns the blocks whose Commit was carried out.
    fn perform(&mut self, id: ReplicaId, actions: Vec<Action>) -> Vec<consensus::Hash> {
        let mut committed = Vec::new();
        // A kept proof is evidence for the operator, not protocol state: no crash is drawn
        // before it (the draws, and so every seed's run, are those of the code before it).
        let proof = |a: &Action| matches!(a, Action::KeepProof(_));
        let mid_batch = !self.synchronous && self.faults.crash_mid_batch_pct > 0 && actions.iter().filter(|a| !proof(a)).count() > 1;
        for action in actions {
            if !self.nodes[id as usize].is_up() {
                return committed;
            }
            if mid_batch && !proof(&action) && self.rng.chance(self.faults.crash_mid_batch_pct, 1000) {
                self.stats.mid_batch_crashes += 1;
                self.crash(id);
                let downtime = 1 + self.rng.below(20 * self.cfg.delta_ms);
                self.at(self.now + downtime, Event::Restart(id));
                return committed;
            }
            let vote_height = match &action {
                Action::Broadcast(Message::Vote(v)) | Action::Send(_, Message::Vote(v)) if v.voter == id => Some(v.height),
                _ => None,
            };
            let commit = if let Action::Commit(b) = &action { Some(b.hash) } else { None };
            let effects = match self.nodes[id as usize].perform(action) {
                Ok(effects) => effects,
                Err(e) => {
                    self.storage_failed(id, e);
                    return committed;
                }
            };
            committed.extend(commit);
            for effect in effects {
                self.effect(id, effect);
            }
            if vote_height.is_some() && self.crash_after_vote == vote_height.map(|h| (id, h)) {
                self.crash_after_vote = None;
                self.crash(id);
                return committed;
            }
        }
        committed
    }

    fn effect(&mut self, id: ReplicaId, effect: Effect) {
        match effect {
            Effect::Send(to, message) => {
                let bytes = self.encode(id, &message);
                self.transmit(id, to, &message, bytes)
            }
            Effect::Broadcast(message) => {
                let bytes = self.encode(id, &message);
                for to in 0..self.nodes.len() as ReplicaId {
                    if to != id {
                        self.transmit(id, to, &message, bytes.clone());
                    }
                }
            }
            Effect::Committed(block, executed) => {
                self.note(|| format!("{id} commits height {} ({} requests)", block.height, block.requests.len()));
                self.checker.on_commit(id, &block, self.now);
                for e in executed {
                    self.reply(id, &e.user, e.digest, e.height, e.outcome);
                }
            }
            Effect::Installed(height) => {
                self.note(|| format!("{id} installs a state image at height {height}"));
                self.stats.state_transfers += 1;
                self.checker.on_install(id, height, &self.nodes[id as usize].chat);
            }
            Effect::Input(input) => self.input(id, input),
            Effect::ImageWritten => self.image_written(id),
        }
    }

    fn client_wake(&mut self, c: usize) {
        let (clients, quorum, now) = (self.clients.len(), self.cfg.quorum(), self.now);
        let quorum = self.cfg.planted.client_quorum.unwrap_or(quorum);
        let Some(pending) = self.clients[c].next_op(&mut self.rng, clients, quorum, now) else { return };
        let bytes = pending.bytes.clone();
        self.checker.sent.insert(pending.digest);
        for to in 0..self.nodes.len() as ReplicaId {
            let delay = self.delay();
            self.at(self.now + delay, Event::Request { to, bytes: bytes.clone() });
        }
        // Resend after a while if no quorum answered (same bytes: applied once at most).
        let resend = 30 * self.cfg.delta_ms;
        self.at(self.now + resend, Event::ClientWake(c));
    }
}
