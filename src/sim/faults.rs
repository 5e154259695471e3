//! What one simulated run may do wrong, drawn from its seed and printed with it.

use std::fmt;

use crate::consensus::ReplicaId;
use crate::rng::Rng;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Crash faults only, any timing: delays past Δ, loss, partitions (requirement R1).
    Crash,
    /// Up to f Byzantine replicas (plus crashes within f), network synchronous within Δ (R2).
    Byzantine,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Behaviour {
    /// As leader, sends different blocks to different halves of the replicas.
    Equivocate,
    /// Votes for every proposal it sees, whatever the rules say.
    DoubleVote,
    /// Sends votes and blames in other replicas' names with made-up signatures.
    Forge,
    /// Never sends its votes.
    Withhold,
    /// As leader, never orders the first client's requests.
    Censor,
    /// Sends old messages again, at random.
    Replay,
    /// Sends proposals whose contents do not match their hash, and votes for made-up blocks.
    Garbage,
    /// Answers clients with made-up results.
    Lie,
    /// Sends nothing at all.
    Mute,
    /// With the other Byzantine replica, as leader: two hidden chains, one per half of the
    /// honest replicas (see fork.rs). Needs f Byzantine replicas.
    Fork,
    /// The coalition adversary (adversary.rs): f replicas that choose and combine legal
    /// Byzantine moves per seed.
    Coalition,
}

pub const BEHAVIOURS: [Behaviour; 11] = [
    Behaviour::Equivocate,
    Behaviour::DoubleVote,
    Behaviour::Forge,
    Behaviour::Withhold,
    Behaviour::Censor,
    Behaviour::Replay,
    Behaviour::Garbage,
    Behaviour::Lie,
    Behaviour::Mute,
    Behaviour::Fork,
    Behaviour::Coalition,
];

#[derive(Clone, Debug)]
pub struct Faults {
    pub mode: Mode,
    pub n: usize,
    pub delta_ms: u64,
    /// Largest message delay in the safety phase (≤ Δ when synchronous).
    pub delay_max_ms: u64,
    pub loss_pct: u64,
    pub dup_pct: u64,
    /// Partitions that heal, during the safety phase.
    pub partitions: u32,
    /// Crash-and-restart events during the safety phase.
    pub crashes: u32,
    /// Byzantine runs with f liars: an honest replica that crashes and restarts during the
    /// safety phase (down from the first time to the second), the case S13 is for.
    pub honest_restart: Option<(ReplicaId, u64, u64)>,
    /// Half of those: the same replica crashes again while its first recovery's answers are
    /// on their way, and is back within 2Δ of its first start (a helper's attack on S13).
    pub honest_restart_again: Option<(u64, u64)>,
    /// Chance that a crash lands between two actions of one batch.
    pub crash_mid_batch_pct: u64,
    pub byzantine: Vec<(ReplicaId, Behaviour)>,
    /// Messages between two honest replicas take exactly Δ (the slowest synchrony allows),
    /// the adversary's favourite schedule.
    pub slow_honest_links: bool,
    pub clients: usize,
    pub ops_per_client: usize,
    /// Blocks between state images (S11); small, so images, stable checkpoints, log
    /// truncation and state transfer happen in every run.
    pub checkpoint_every: u64,
    /// Crash runs only: the hidden-QC network schedule (schedule.rs), with this committer.
    pub stale_qc_schedule: Option<ReplicaId>,
    /// Chance (%) that a crash also damages one byte of one file of the replica's disk,
    /// which it must repair when it starts again (storage/replica_store/open.rs).
    pub damage_pct: u64,
    /// A replica's own state image lands up to this long after its block commits (the
    /// replica writes it on another thread), so stable certificates may come first.
    pub late_images_ms: u64,
    /// Crash runs: this replica's state diverges once it has executed this height (a
    /// non-deterministic execution or a disk that lies); S11 must stop it (`images.rs`).
    pub diverge: Option<(ReplicaId, u64)>,
}

impl Faults {
    pub fn draw(rng: &mut Rng, n: usize, mode: Option<Mode>, hostile: bool, coalition: bool) -> Faults {
        let f = n / 2;
        let delta_ms = 100;
        let mode = mode.unwrap_or(if rng.chance(1, 2) { Mode::Crash } else { Mode::Byzantine });
        let mut faults = Faults {
            mode,
            n,
            delta_ms,
            delay_max_ms: delta_ms,
            loss_pct: 0,
            dup_pct: rng.below(6),
            partitions: 0,
            crashes: 0,
            honest_restart: None,
            honest_restart_again: None,
            crash_mid_batch_pct: 0,
            byzantine: Vec::new(),
            slow_honest_links: false,
            clients: 2 + rng.below(3) as usize,
            ops_per_client: 4 + rng.below(8) as usize,
            checkpoint_every: 16,
            stale_qc_schedule: None,
            damage_pct: 0,
            late_images_ms: 0,
            diverge: None,
        };
        match mode {
            Mode::Crash => {
                faults.delay_max_ms = *rng.pick(&[delta_ms / 2, 2 * delta_ms, 10 * delta_ms]);
                faults.loss_pct = rng.below(11);
                faults.partitions = rng.below(4) as u32;
                faults.crashes = rng.below(7) as u32;
                faults.crash_mid_batch_pct = rng.below(31);
                if hostile {
                    // For hunting persistence bugs: crashes between two actions of a batch
                    // are ten times likelier, with more partitions and loss around them.
                    faults.delay_max_ms = *rng.pick(&[delta_ms / 2, 2 * delta_ms]);
                    faults.loss_pct = 5 + rng.below(11);
                    faults.partitions = 2 + rng.below(4) as u32;
                    faults.crashes = 4 + rng.below(7) as u32;
                    faults.crash_mid_batch_pct = 100 + rng.below(201);
                }
            }
            Mode::Byzantine => {
                faults.delay_max_ms = 1 + rng.below(delta_ms);
                let byzantine = 1 + rng.below(f as u64) as usize;
                // Replica 0 leads view 0: make it Byzantine half the time, so faulty leaders
                // are exercised from the start.
                let mut ids: Vec<ReplicaId> = (0..n as ReplicaId).collect();
                if !rng.chance(1, 2) {
                    ids.rotate_left(1 + rng.below(n as u64 - 1) as usize);
                }
                for id in ids.iter().copied().take(byzantine) {
                    faults.byzantine.push((id, *rng.pick(&BEHAVIOURS)));
                }
                // A fork needs the whole coalition, led by the view-0 leader.
                if faults.byzantine.iter().any(|(_, b)| *b == Behaviour::Fork) {
                    faults.byzantine = (0..f as ReplicaId).map(|id| (id, Behaviour::Fork)).collect();
                }
                // The coalition adversary: in a third of Byzantine runs (always with
                // `coalition`), f members, mostly from replica 0 and leaders of consecutive views.
                if coalition || rng.chance(1, 3) || faults.byzantine.iter().any(|(_, b)| *b == Behaviour::Coalition) {
                    let first = if rng.chance(3, 4) { 0 } else { rng.below(n as u64) };
                    let step = if rng.chance(3, 4) { 1 } else { 2 };
                    faults.byzantine =
                        (0..f as u64).map(|i| (((first + i * step) % n as u64) as ReplicaId, Behaviour::Coalition)).collect();
                }
                faults.slow_honest_links = rng.chance(1, 2);
                if faults.byzantine.iter().any(|(_, b)| *b == Behaviour::Coalition) && rng.chance(1, 2) {
                    faults.slow_honest_links = true;
                }
                // Crashes count against f too.
                faults.crashes = if faults.byzantine.len() < f { rng.below(3) as u32 } else { 0 };
            }
        }
        faults.checkpoint_every = *rng.pick(&[4, 16, 64]);
        faults
    }

    /// No faults at all (scenarios add their own): synchronous, delays up to Δ/2.
    pub fn quiet(n: usize, clients: usize, ops_per_client: usize) -> Faults {
        Faults {
            mode: Mode::Byzantine,
            n,
            delta_ms: 100,
            delay_max_ms: 50,
            loss_pct: 0,
            dup_pct: 0,
            partitions: 0,
            crashes: 0,
            honest_restart: None,
            honest_restart_again: None,
            crash_mid_batch_pct: 0,
            byzantine: Vec::new(),
            slow_honest_links: false,
            clients,
            ops_per_client,
            checkpoint_every: 16,
            stale_qc_schedule: None,
            damage_pct: 0,
            late_images_ms: 0,
            diverge: None,
        }
    }

    /// A quarter of the five-replica crash runs follow the hidden-QC schedule (drawn from
    /// its own generator, so the other crash runs keep their faults): no partitions,
    /// crashes or loss, short delays, so the schedule's timing holds.
    pub fn draw_schedule(&mut self, seed: u64) {
        let mut rng = Rng::new(seed ^ 0x5ca1_ed00_57a1_e0c0);
        if self.mode != Mode::Crash || self.n != 5 || !rng.chance(1, 4) {
            return;
        }
        self.stale_qc_schedule = Some(3 + rng.below(2) as ReplicaId);
        self.partitions = 0;
        self.crashes = 0;
        self.loss_pct = 0;
        self.crash_mid_batch_pct = 0;
        self.delay_max_ms = self.delta_ms / 2;
    }

    /// Half the runs damage disks at crashes (drawn from their own generator, so the other
    /// faults of a seed stay what they were).
    pub fn draw_damage(&mut self, seed: u64) {
        let mut rng = Rng::new(seed ^ 0xda3a_6e0d_d15c_0000);
        if self.crashes > 0 && rng.chance(1, 2) {
            self.damage_pct = 25 + rng.below(76);
        }
    }

    /// With f liars, half the runs also restart one honest replica: down for 1 to 10Δ,
    /// from a moment in the first 15Δ of the safety phase (`span_ms`). Drawn from its own generator, so the other
    /// faults of a seed stay what they were. A restart is not counted against f: operators
    /// restart healthy replicas, and S13 makes that safe with two liars.
    pub fn draw_honest_restart(&mut self, seed: u64, span_ms: u64) {
        let mut rng = Rng::new(seed ^ 0x4e57_a27e_d0c0_0001);
        let f = self.n / 2;
        if self.mode != Mode::Byzantine || self.byzantine.len() < f || !rng.chance(1, 2) {
            return;
        }
        let honest: Vec<ReplicaId> = (0..self.n as ReplicaId).filter(|id| self.is_byzantine(*id).is_none()).collect();
        let id = *rng.pick(&honest);
        // Early in the run, where the views (and the coalition's leadership) change.
        let down = super::T0_MS + rng.below(span_ms.clamp(1, 15 * self.delta_ms));
        let up = down + self.delta_ms + rng.below(9 * self.delta_ms);
        self.honest_restart = Some((id, down, up));
        if rng.chance(1, 2) {
            let again = up + self.delta_ms / 4 + rng.below(self.delta_ms);
            self.honest_restart_again = Some((again, again + 10 + rng.below(self.delta_ms / 2)));
        }
    }

    /// Half the runs write state images late; a quarter of the crash runs make one
    /// replica's state diverge. Drawn from their own generator, so the other faults of a
    /// seed stay what they were.
    pub fn draw_images(&mut self, seed: u64) {
        let mut rng = Rng::new(seed ^ 0x1a7e_1a6e_5d17_0000);
        if rng.chance(1, 2) {
            self.late_images_ms = 1 + rng.below(4 * self.delta_ms);
        }
        if self.mode == Mode::Crash && rng.chance(1, 4) {
            self.diverge = Some((rng.below(self.n as u64) as ReplicaId, 1 + rng.below(2 * self.checkpoint_every)));
        }
    }

    pub fn is_byzantine(&self, id: ReplicaId) -> Option<Behaviour> {
        self.byzantine.iter().find(|(b, _)| *b == id).map(|(_, behaviour)| *behaviour)
    }
}

impl fmt::Display for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "mode={:?} n={} delta={}ms delay_max={}ms loss={}% dup={}% partitions={} crashes={} honest_restart={:?}{} crash_mid_batch={}% byzantine={:?} slow_honest_links={} clients={}x{} checkpoint_every={} stale_qc_schedule={:?} damage={}% late_images={}ms diverge={:?}",
            self.mode,
            self.n,
            self.delta_ms,
            self.delay_max_ms,
            self.loss_pct,
            self.dup_pct,
            self.partitions,
            self.crashes,
            self.honest_restart,
            self.honest_restart_again.map_or(String::new(), |(down, up)| format!(" and again {down}..{up}")),
            self.crash_mid_batch_pct,
            self.byzantine,
            self.slow_honest_links,
            self.clients,
            self.ops_per_client,
            self.checkpoint_every,
            self.stale_qc_schedule,
            self.damage_pct,
            self.late_images_ms,
            self.diverge
        )
    }
}
