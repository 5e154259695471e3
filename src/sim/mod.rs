//! The deterministic simulator (`quintet sim`): drives the real consensus core, the real
//! chat state machine and the real client voting rule through seeded faults, with
//! simulated time, and checks safety after every step and liveness at the end.
//!
//! One run = a safety phase (the seed's faults: delays, loss, duplication, partitions,
//! crashes also between two actions of one batch, or up to f Byzantine replicas under
//! synchrony) followed by a liveness phase (partitions healed, crashed replicas restarted,
//! synchrony; at most f faulty) in which every client operation must complete.

mod adversary;
mod byzantine;
mod check;
mod client;
mod faults;
mod fork;
mod honest_views;
mod images;
mod network;
mod node;
mod restarts;
mod schedule;
mod stats;
mod world;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod repair_tests;

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
    /// Byzantine runs with the coalition adversary in every run (adversary.rs).
    pub coalition: bool,
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
            coalition: false,
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
    /// Submit-to-accept times (simulated ms) of the operations submitted under synchrony:
    /// all of them in Byzantine runs, those submitted once faults healed in crash runs.
    pub latencies_ms: Vec<u64>,
    pub trace: Vec<String>,
}

/// Draws the seed's faults and schedules the safety-phase crashes and partitions.
pub fn build(seed: u64, options: &SimOptions) -> World {
    let mut rng = Rng::new(seed);
    let mode = if options.coalition { Some(Mode::Byzantine) } else { options.mode };
    let mut faults = Faults::draw(&mut rng, options.n, mode, options.hostile, options.coalition);
    if !options.hostile {
        faults.draw_schedule(seed);
    }
    faults.draw_damage(seed);
    faults.draw_honest_restart(seed, options.safety_ms);
    faults.draw_images(seed);
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
    if let Some((id, down, up)) = faults.honest_restart {
        world.at(down, Event::Crash(id));
        world.at(up, Event::Restart(id));
        if let Some((down, up)) = faults.honest_restart_again {
            world.at(down, Event::Crash(id));
            world.at(up, Event::Restart(id));
        }
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
    world.checker.check_held_qcs();
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
        latencies_ms: accepted
            .iter()
            .filter(|a| world.faults.mode == Mode::Byzantine || a.submitted_ms >= world.liveness_from)
            .map(|a| a.accepted_ms - a.submitted_ms)
            .collect(),
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
    /// Latencies under synchrony (see `Report::latencies_ms`) by mode: crash, byzantine.
    pub latency: [Histogram; 2],
}

/// Counts of values in 10 ms buckets; percentiles are read off the buckets' upper ends.
#[derive(Default)]
pub struct Histogram {
    buckets: std::collections::BTreeMap<u64, u64>,
    count: u64,
}

impl Histogram {
    pub fn add(&mut self, ms: u64) {
        *self.buckets.entry(ms / 10).or_default() += 1;
        self.count += 1;
    }

    /// The smallest bucket end at or below which a fraction `p` of the values lie.
    pub fn percentile(&self, p: f64) -> Option<u64> {
        let target = ((self.count as f64) * p).ceil().max(1.0) as u64;
        let mut seen = 0;
        self.buckets.iter().find_map(|(bucket, n)| {
            seen += n;
            (seen >= target).then_some((bucket + 1) * 10)
        })
    }
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
        let histogram = &mut self.latency[matches!(r.faults.mode, Mode::Byzantine) as usize];
        for ms in &r.latencies_ms {
            histogram.add(*ms);
        }
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
        writeln!(f, "evidence: {} proofs found by cores ({} through the blocks between two proposals), every one against a Byzantine replica", s.proofs, s.chain_proofs)?;
        writeln!(f, "work: {} client operations accepted, {} view changes, {} messages, {} events", self.ops, self.view_changes, s.messages, s.events)?;
        writeln!(
            f,
            "checkpoints: {} state images taken, {} state transfers installed, {} replicas stopped on a diverged state",
            s.images, s.state_transfers, s.diverged_stops
        )?;
        writeln!(f, "disks: {} damaged at a crash, {} starts that repaired damage", s.damaged, s.repaired)?;
        let kinds = [("crash runs once healed", &self.latency[0]), ("byzantine runs", &self.latency[1])];
        for (name, h) in kinds {
            if let (Some(p50), Some(p99), Some(max)) = (h.percentile(0.5), h.percentile(0.99), h.percentile(1.0)) {
                writeln!(f, "latency, {name} ({} operations): p50 <= {p50} ms, p99 <= {p99} ms, max <= {max} ms", h.count)?;
            }
        }
        match &self.first_violation {
            None => writeln!(f, "violations: none"),
            Some((seed, v)) => writeln!(f, "violations: {} seed(s); first: seed {seed}: {v}", self.violating_seeds),
        }
    }
}
