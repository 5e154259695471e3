//! The deterministic simulator (`quintet sim`): drives the real consensus core, the real
//! chat state machine and the real client voting rule through seeded faults, with
//! simulated time, and checks safety after every step and liveness at the end.
//!
//! One run = a safety phase (the seed's faults: delays, loss, duplication, partitions,
//! crashes also between two actions of one batch, or up to f Byzantine replicas under
//! synchrony) followed by a liveness phase (partitions healed, crashed replicas restarted,
//! synchrony; at most f faulty) in which every client operation must complete.

mod byzantine;
mod check;
mod client;
mod faults;
mod fork;
mod network;
mod node;
mod world;

#[cfg(test)]
mod tests;

pub use faults::{BEHAVIOURS, Behaviour, Faults, Mode};
pub use world::{Event, Stats, T0_MS, World};

use crate::consensus::Planted;
use crate::rng::Rng;

#[derive(Clone, Debug)]
pub struct SimOptions {
    pub n: usize,
    pub mode: Option<Mode>,
    pub planted: Planted,
    pub safety_ms: u64,
    pub liveness_ms: u64,
    pub trace: bool,
    /// Crash runs with far more crashes between two actions of a batch (see Faults::draw).
    pub hostile: bool,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            n: 5,
            mode: None,
            planted: Planted::default(),
            safety_ms: 6_000,
            liveness_ms: 60_000,
            trace: false,
            hostile: false,
        }
    }
}

pub struct Report {
    pub seed: u64,
    pub faults: Faults,
    pub violations: Vec<String>,
    pub stats: Stats,
    pub committed_height: u64,
    pub accepted_ops: usize,
    pub max_view: u64,
    pub trace: Vec<String>,
}

/// Draws the seed's faults and schedules the safety-phase crashes and partitions.
pub fn build(seed: u64, options: &SimOptions) -> World {
    let mut rng = Rng::new(seed);
    let faults = Faults::draw(&mut rng, options.n, options.mode, options.hostile);
    let mut world = World::new(seed, faults.clone(), options.planted, options.trace);
    let span = options.safety_ms.max(1);
    for _ in 0..faults.partitions {
        let start = T0_MS + rng.below(span);
        let groups: Vec<u8> = (0..faults.n).map(|_| rng.below(2) as u8).collect();
        world.at(start, Event::Partition(groups));
        world.at(start + 1 + rng.below(span / 2 + 1), Event::Heal);
    }
    for _ in 0..faults.crashes {
        let id = rng.below(faults.n as u64) as u8;
        if faults.is_byzantine(id).is_some() {
            continue;
        }
        let start = T0_MS + rng.below(span);
        world.at(start, Event::Crash(id));
        world.at(start + 1 + rng.below(span / 2 + 1), Event::Restart(id));
    }
    world.at(T0_MS + span, Event::Liveness);
    world
}

pub fn run(seed: u64, options: &SimOptions) -> Report {
    let mut world = build(seed, options);
    let end = T0_MS + options.safety_ms + options.liveness_ms;
    world.run_until(end, |w| w.now > w.liveness_from && w.clients.iter().all(|c| c.done()));
    finish(seed, world)
}

pub fn finish(seed: u64, mut world: World) -> Report {
    if let Some(trace) = &mut world.trace {
        for n in &world.nodes {
            trace.push(match &n.core {
                Some(c) => format!("final: replica {} {}", n.id, c.describe()),
                None => format!("final: replica {} down", n.id),
            });
        }
    }
    let accepted: Vec<_> = world.clients.iter().flat_map(|c| c.accepted.clone()).collect();
    world.checker.check_accepted(&accepted);
    for c in world.clients.iter().filter(|c| !c.done()) {
        let since = c.current.as_ref().map_or(0, |p| p.submitted_ms - T0_MS);
        world.checker.violations.push(format!(
            "liveness: client {} still has {} operation(s) to do (current one sent at t={since}ms)",
            c.id,
            c.ops_left + c.current.is_some() as usize
        ));
    }
    Report {
        seed,
        committed_height: world.checker.agreed_height(),
        accepted_ops: accepted.len(),
        max_view: world.nodes.iter().filter_map(|n| n.core.as_ref().map(|c| c.view())).max().unwrap_or(0),
        violations: std::mem::take(&mut world.checker.violations),
        stats: world.stats.clone(),
        faults: world.faults.clone(),
        trace: world.trace.take().unwrap_or_default(),
    }
}

/// Totals over many seeds: runs, faults injected by kind, violations.
#[derive(Default)]
pub struct Summary {
    pub runs: u64,
    pub crash_mode: u64,
    pub byzantine_mode: u64,
    pub violating_seeds: u64,
    pub first_violation: Option<(u64, String)>,
    pub stats: Stats,
    pub behaviours: std::collections::BTreeMap<String, u64>,
    pub ops: u64,
    pub view_changes: u64,
}

impl Summary {
    pub fn add(&mut self, r: &Report) {
        self.runs += 1;
        match r.faults.mode {
            Mode::Crash => self.crash_mode += 1,
            Mode::Byzantine => self.byzantine_mode += 1,
        }
        if let Some(v) = r.violations.first() {
            self.violating_seeds += 1;
            self.first_violation.get_or_insert((r.seed, v.clone()));
        }
        self.stats.add(&r.stats);
        for (_, b) in &r.faults.byzantine {
            *self.behaviours.entry(format!("{b:?}")).or_default() += 1;
        }
        self.ops += r.accepted_ops as u64;
        self.view_changes += r.max_view;
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.stats;
        writeln!(f, "runs: {} ({} crash/async, {} byzantine/sync)", self.runs, self.crash_mode, self.byzantine_mode)?;
        writeln!(
            f,
            "faults: {} messages dropped, {} duplicated, {} crashes ({} between two actions of a batch), {} restarts, {} partitions, {} byzantine actions ({} garbage messages refused by the codec)",
            s.dropped, s.duplicated, s.crashes, s.mid_batch_crashes, s.restarts, s.partitions, s.byzantine_actions, s.refused
        )?;
        writeln!(f, "byzantine replicas by behaviour: {:?}", self.behaviours)?;
        writeln!(f, "work: {} client operations accepted, {} view changes, {} messages, {} events", self.ops, self.view_changes, s.messages, s.events)?;
        writeln!(f, "checkpoints: {} state images taken, {} state transfers installed", s.images, s.state_transfers)?;
        match &self.first_violation {
            None => writeln!(f, "violations: none"),
            Some((seed, v)) => writeln!(f, "violations: {} seed(s); first: seed {seed}: {v}", self.violating_seeds),
        }
    }
}
