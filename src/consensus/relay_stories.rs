//! S10's relay, driven through five cores (second review, finding 1): a request that only
//! non-leaders hold used to end the view, an honest leader's included, when their request
//! timers expired. Two ways to do it: a Byzantine pair acting as a client, sending a fresh
//! signed request to one honest non-leader each time and blaming every view, and one
//! ordinary account sending its requests to the three non-leaders only. Every honest link
//! takes exactly Δ, as synchrony allows. Each story runs on the core with the relay and on
//! the core with it planted away (`Planted::no_relay`), which must lose the view.

use std::collections::BTreeMap;

use super::*;

pub(super) const DELTA: u64 = 100;

pub(super) enum Event {
    Message(ReplicaId, ReplicaId, Message),
    Request(ReplicaId, Vec<u8>),
}

/// Five replicas; the `byzantine` ones have no core (they only do what the story says).
pub(super) struct Five {
    now: u64,
    cores: BTreeMap<ReplicaId, Core>,
    queue: BTreeMap<(u64, u64), Event>,
    seq: u64,
    /// Requests each honest replica committed.
    committed: BTreeMap<ReplicaId, Vec<Vec<u8>>>,
}

impl Five {
    pub(super) fn new(byzantine: &[ReplicaId], planted: Planted) -> Five {
        let mut cfg = Config::new(5, DELTA);
        cfg.planted = planted;
        let cores = (0..5u8)
            .filter(|id| !byzantine.contains(id))
            .map(|id| (id, Core::new(cfg.clone(), id, Box::new(SimCrypto { me: id }), Restored::default())))
            .collect();
        Five { now: 0, cores, queue: BTreeMap::new(), seq: 0, committed: BTreeMap::new() }
    }

    pub(super) fn at(&mut self, at: u64, event: Event) {
        self.seq += 1;
        self.queue.insert((at, self.seq), event);
    }

    fn perform(&mut self, id: ReplicaId, actions: Vec<Action>) {
        for action in actions {
            let (targets, message): (Vec<ReplicaId>, Message) = match action {
                Action::Send(to, m) => (vec![to], m),
                Action::Broadcast(m) => ((0..5).filter(|r| *r != id).collect(), m),
                Action::Commit(b) => {
                    self.committed.entry(id).or_default().extend(b.requests);
                    continue;
                }
                _ => continue,
            };
            let targets: Vec<ReplicaId> = targets.into_iter().filter(|to| self.cores.contains_key(to)).collect();
            for to in targets {
                let at = self.now + DELTA;
                self.at(at, Event::Message(id, to, message.clone()));
            }
        }
    }

    pub(super) fn run_until(&mut self, until: u64) {
        let quarter = DELTA / 4;
        while self.now < until {
            let next_tick = (self.now / quarter + 1) * quarter;
            if let Some((&(at, seq), _)) = self.queue.iter().next()
                && at <= next_tick
            {
                let event = self.queue.remove(&(at, seq)).expect("present");
                self.now = at;
                let (to, input) = match event {
                    Event::Message(from, to, m) => (to, Input::Message(from, m)),
                    Event::Request(to, bytes) => (to, Input::Request(bytes)),
                };
                if let Some(core) = self.cores.get_mut(&to) {
                    let actions = core.handle(at, input);
                    self.perform(to, actions);
                }
                continue;
            }
            self.now = next_tick;
            let ids: Vec<ReplicaId> = self.cores.keys().copied().collect();
            for id in ids {
                let actions = self.cores.get_mut(&id).expect("present").handle(next_tick, Input::Tick);
                self.perform(id, actions);
            }
        }
    }

    /// The `byzantine` replicas blame `view` every Δ from `start`, `times` times (their
    /// blames alone are two, short of q).
    pub(super) fn blame_every_delta(&mut self, byzantine: &[ReplicaId], view: View, start: u64, times: u64) {
        for t in 0..times {
            for &b in byzantine {
                let signature = SimCrypto { me: b }.sign(&signed::blame(view));
                let blame = Blame { view, voter: b, reason: BlameReason::Timeout, signature, entered_by: None };
                for to in self.cores.keys().copied().collect::<Vec<_>>() {
                    self.at(start + t * DELTA + 2, Event::Message(b, to, Message::Blame(blame.clone())));
                }
            }
        }
    }

    /// How many of `sent` every honest replica committed.
    pub(super) fn committed_everywhere(&self, sent: &[Vec<u8>]) -> usize {
        sent.iter().filter(|r| self.committed.len() == self.cores.len() && self.committed.values().all(|c| c.contains(*r))).count()
    }

    pub(super) fn highest_view(&self) -> View {
        self.cores.values().map(|c| c.view()).max().unwrap_or(0)
    }
}

/// What a story did over its run: views entered, requests sent, requests every honest
/// replica committed.
#[derive(Debug)]
struct Outcome {
    views: View,
    sent: usize,
    committed_everywhere: usize,
}

/// Runs 100Δ of an attack: every 10Δ a fresh request goes to `targets(view, k)` (the
/// current view's replicas the story picks); the `byzantine` replicas blame every view.
fn attack(byzantine: &[ReplicaId], planted: Planted, targets: impl Fn(View, usize) -> Vec<ReplicaId>) -> Outcome {
    let mut five = Five::new(byzantine, planted);
    let mut sent = Vec::new();
    for k in 0..10 {
        let start = k as u64 * 10 * DELTA;
        five.run_until(start);
        let view = five.highest_view();
        let request = format!("private request {k}").into_bytes();
        for to in targets(view, k) {
            five.at(start + 1, Event::Request(to, request.clone()));
        }
        sent.push(request);
        five.blame_every_delta(byzantine, view, start, 10);
    }
    five.run_until(130 * DELTA);
    let committed_everywhere = five.committed_everywhere(&sent);
    Outcome { views: five.highest_view(), sent: sent.len(), committed_everywhere }
}

/// The two Byzantine replicas are 3 and 4; the honest leader of view 0 is 0.
fn two_replicas(planted: Planted) -> Outcome {
    attack(&[3, 4], planted, |view, k| {
        let leader = (view % 5) as ReplicaId;
        let honest_non_leaders: Vec<ReplicaId> = [0, 1, 2].into_iter().filter(|r| *r != leader).collect();
        vec![honest_non_leaders[k % honest_non_leaders.len()]]
    })
}

/// One account, no Byzantine replica: each request to the three replicas after the leader.
fn one_client(planted: Planted) -> Outcome {
    attack(&[], planted, |view, _| (1..=3).map(|i| ((view + i) % 5) as ReplicaId).collect())
}

/// The attack with the relay keeps view 0 and commits every request; without it
/// (`Planted::no_relay`, the control) it loses views.
fn the_relay_defeats(what: &str, run: fn(Planted) -> Outcome) {
    let fixed = run(Planted::default());
    let planted = run(Planted { no_relay: true, ..Planted::default() });
    eprintln!("{what}, 100Δ: with the relay {fixed:?}; without {planted:?}");
    assert_eq!(fixed.views, 0, "{fixed:?}");
    assert_eq!(fixed.committed_everywhere, fixed.sent, "{fixed:?}");
    assert!(planted.views >= 3, "the control must lose views: {planted:?}");
}

#[test]
fn s10_a_request_sent_to_one_honest_non_leader_by_a_byzantine_pair_is_relayed_and_the_view_stays() {
    the_relay_defeats("two Byzantine replicas", two_replicas);
}

#[test]
fn s10_one_account_sending_to_the_non_leaders_only_no_longer_ends_views() {
    the_relay_defeats("one client", one_client);
}

// Attacks on the relay's bounds and on the vote bound, found by review (2026-12-07), each
// of which failed on the first version of this change: relays dropped by the leader and
// never sent again, relays pooled by a non-leader, and pooled votes that kept the lowest.

/// `count` distinct requests to each of `holders` at 1 ms (disjoint sets per holder); the
/// `byzantine` replicas blame view 0 every Δ. Returns (highest view, requests committed by
/// every honest replica, requests sent).
fn burst(byzantine: &[ReplicaId], holders: &[ReplicaId], count: usize, until: u64) -> (View, usize, usize) {
    let mut five = Five::new(byzantine, Planted::default());
    let mut sent = Vec::new();
    for &h in holders {
        for i in 0..count {
            let request = format!("burst to {h}, request {i}").into_bytes();
            five.at(1, Event::Request(h, request.clone()));
            sent.push(request);
        }
    }
    five.blame_every_delta(byzantine, 0, 0, until / DELTA);
    five.run_until(until);
    let everywhere = five.committed_everywhere(&sent);
    (five.highest_view(), everywhere, sent.len())
}

#[test]
fn a_burst_past_the_relayers_share_at_one_honest_non_leader_keeps_the_honest_leaders_view() {
    // 1,100 requests to honest replica 1 only: it relays them at T/2; the leader pools
    // 1,024 (RELAYED_PER_PEER) and drops the rest, which replica 1 relays again 4Δ later.
    // (The first version relayed once: replica 1 blamed at relay + T and, with the pair's
    // two blames, that was BC(0).)
    let (view, everywhere, sent) = burst(&[3, 4], &[1], 1_100, 40 * DELTA);
    eprintln!("burst of 1,100 at replica 1, pair blaming: view {view}, committed everywhere {everywhere}/{sent}");
    assert_eq!(view, 0, "the honest leader 0 lost its view");
}

#[test]
fn a_burst_within_the_relayers_share_keeps_the_view_and_commits_everything() {
    let (view, everywhere, sent) = burst(&[3, 4], &[1], 1_000, 40 * DELTA);
    eprintln!("burst of 1,000 at replica 1, pair blaming: view {view}, committed everywhere {everywhere}/{sent}");
    assert_eq!(view, 0);
    assert_eq!(everywhere, sent);
}

#[test]
fn one_client_bursting_three_non_leaders_within_the_leaders_capacity_keeps_the_view() {
    // 3 × 250 requests: fewer than the leader commits within a request timeout (256 a
    // block, a block every 2Δ), so the relay, not the load, decides.
    let (view, everywhere, sent) = burst(&[], &[1, 2, 3], 250, 40 * DELTA);
    eprintln!("bursts of 250 at replicas 1, 2, 3, all honest: view {view}, committed everywhere {everywhere}/{sent}");
    assert_eq!(view, 0, "the honest leader 0 lost its view");
    assert_eq!(everywhere, sent);
}

/// R1 (crash faults, any timing): a network that delays chosen messages, then heals.
/// `delay(now, from, to, message)` gives the arrival time of each message.
struct Async {
    now: u64,
    cores: Vec<Core>,
    queue: BTreeMap<(u64, u64), (ReplicaId, ReplicaId, Message)>,
    seq: u64,
    committed: Vec<Height>,
}

impl Async {
    fn new(cfg: Config) -> Async {
        let cores = (0..5u8).map(|id| Core::new(cfg.clone(), id, Box::new(SimCrypto { me: id }), Restored::default())).collect();
        Async { now: 0, cores, queue: BTreeMap::new(), seq: 0, committed: vec![0; 5] }
    }

    fn perform(&mut self, id: ReplicaId, actions: Vec<Action>, delay: &dyn Fn(u64, ReplicaId, ReplicaId, &Message) -> u64) {
        for action in actions {
            let (targets, message): (Vec<ReplicaId>, Message) = match action {
                Action::Send(to, m) => (vec![to], m),
                Action::Broadcast(m) => ((0..5).filter(|r| *r != id).collect(), m),
                Action::Commit(b) => {
                    self.committed[id as usize] = b.height;
                    continue;
                }
                _ => continue,
            };
            for to in targets {
                let at = delay(self.now, id, to, &message);
                self.seq += 1;
                self.queue.insert((at, self.seq), (id, to, message.clone()));
            }
        }
    }

    fn run_until(&mut self, until: u64, tick: u64, delay: &dyn Fn(u64, ReplicaId, ReplicaId, &Message) -> u64) {
        while self.now < until {
            let next_tick = (self.now / tick + 1) * tick;
            if let Some((&(at, seq), _)) = self.queue.iter().next()
                && at <= next_tick
            {
                let (from, to, m) = self.queue.remove(&(at, seq)).expect("present");
                self.now = at;
                let actions = self.cores[to as usize].handle(at, Input::Message(from, m));
                self.perform(to, actions, delay);
                continue;
            }
            self.now = next_tick;
            for id in 0..5u8 {
                let actions = self.cores[id as usize].handle(next_tick, Input::Tick);
                self.perform(id, actions, delay);
            }
        }
    }
}

/// Leader 0 is cut off (its messages, both ways, wait) until `heal`; blames wait until
/// `heal + 1.5Δ`; everything else takes 1 ms. `requests` go to every replica at 1 ms, one
/// per block (`batch_max` 1 so that heights pile up quickly; any steady load does the
/// same at one block per round trip). Returns (view, highest committed height) at 80Δ.
fn pile_of_certified_heights(requests: usize) -> (View, Height) {
    const D: u64 = 2_000;
    let mut cfg = Config::new(5, D);
    cfg.batch_max = 1;
    let mut net = Async::new(cfg);
    let heal = 19 * D;
    let blames_at = heal + 3 * D / 2;
    let delay = move |now: u64, from: ReplicaId, to: ReplicaId, m: &Message| -> u64 {
        let mut at = now + 1;
        if now < heal && (from == 0 || to == 0) {
            at = at.max(heal);
        }
        if now < blames_at && matches!(m, Message::Blame(_)) {
            at = at.max(blames_at);
        }
        at
    };
    for i in 0..requests {
        let bytes = format!("steady load {i}").into_bytes();
        for id in 0..5u8 {
            let actions = net.cores[id as usize].handle(1, Input::Request(bytes.clone()));
            net.now = 1;
            net.perform(id, actions, &delay);
        }
    }
    net.run_until(80 * D, 50, &delay);
    let view = net.cores.iter().map(|c| c.view()).max().unwrap_or(0);
    (view, *net.committed.iter().max().expect("five"))
}

#[test]
fn r1_more_certified_uncommitted_heights_than_the_vote_bound_do_not_stall_the_cluster() {
    // 1,100: every replica pools more than 1,024 votes per signer above its committed
    // height. Keeping the lowest (the first version) dropped every later vote everywhere,
    // and no QC formed in any later view; the newest are kept.
    let (view, committed) = pile_of_certified_heights(1_100);
    eprintln!("1,100 requests: view {view}, committed height {committed}");
    assert!(committed >= 1_000, "stalled for 60Δ after the network healed: view {view}, highest committed height {committed}");
}

#[test]
fn relays_to_a_non_leader_are_not_pooled_so_a_byzantine_pair_cannot_start_its_timers() {
    // Replicas 3 and 4 RELAY 600 requests each to honest non-leader 1. The first version
    // pooled them there, replica 1's own timers then ran for them, and with the pair's
    // blames that was BC(0). Only a leader pools a relay now.
    let mut five = Five::new(&[3, 4], Planted::default());
    for b in [3u8, 4] {
        for i in 0..600 {
            five.at(1, Event::Message(b, 1, Message::Relay(format!("relayed by {b}, {i}").into_bytes())));
        }
    }
    five.blame_every_delta(&[3, 4], 0, 0, 40);
    five.run_until(40 * DELTA);
    eprintln!("1,200 relayed to replica 1 by the pair: view {}", five.highest_view());
    assert_eq!(five.highest_view(), 0, "the honest leader 0 lost its view");
}

/// A replica behind (after a restart, say) relays a request the leader committed already:
/// the leader nudges (proposes blocks in its view) at once, so the relayer gets a 2-chain
/// to follow through, before its timer would make it blame an honest leader. Measured on
/// the leader's committed height 10Δ after the relay; planted away (`no_relay_nudge`),
/// nothing new commits.
fn after_a_stale_relay(planted: Planted) -> (Height, Height) {
    let mut five = Five::new(&[], planted);
    let request = b"committed before the relay".to_vec();
    for to in 0..5 {
        five.at(1, Event::Request(to, request.clone()));
    }
    five.run_until(20 * DELTA);
    let before = five.cores[&0].committed_height();
    five.at(20 * DELTA + 1, Event::Message(3, 0, Message::Relay(request)));
    five.run_until(30 * DELTA);
    (before, five.cores[&0].committed_height())
}

#[test]
fn s10_a_relay_of_a_committed_request_makes_the_leader_nudge() {
    let (before, after) = after_a_stale_relay(Planted::default());
    assert!(before >= 1 && after > before, "the leader must propose and commit after the relay: {before} -> {after}");
    let (before, after) = after_a_stale_relay(Planted { no_relay_nudge: true, ..Planted::default() });
    assert_eq!(after, before, "the control commits nothing new");
}
