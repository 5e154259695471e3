//! What one seed's coalition does: each move switched on and timed by the seed, or one
//! attack's moves set to fit together (a recipe).

use crate::rng::Rng;

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
    /// With narrow votes, a chain's later blocks go to its vote recipient only: the others
    /// learn the QCs they carry only when that replica forwards them, Δ later.
    pub narrow_chain: bool,
    /// "Leave now" shows a twin of the chain's first block (which carries no QC of the
    /// chain) rather than of its latest one.
    pub twin_first: bool,
    /// The members report a QC they formed but never showed (a chain's last QC) to an honest
    /// replica that does not hold it, just before that replica reports its STATUS for a view
    /// the coalition leads.
    pub stale_qc: bool,
    /// "Leave now" timed from the chain's first block (see `maybe_leave`).
    pub leave_after_first: bool,
    /// Its members report forged QCs in their statuses to honest leaders (`forge.rs`).
    pub forged_qcs: bool,
    /// FETCHes of honest blocks answered with other contents first (`wrong.rs`).
    pub wrong_blocks: bool,
    /// Genuine state certificates sent with a wrong image (`wrong.rs`).
    pub wrong_images: bool,
    /// Signed junk: votes and CHECKPOINTs for made-up blocks above the committed height.
    pub junk_flood: bool,
    /// Requests of its own to honest non-leaders only, in honest views (`private.rs`).
    pub private_requests: bool,
    /// With private requests, the members' blames go to the leader first, to the others
    /// 6Δ later (`private.rs`).
    pub staggered_blames: bool,
}

impl Plan {
    pub fn draw(rng: &mut Rng, delta_ms: u64) -> Plan {
        let mut plan = Plan {
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
            // Half of the time just under Δ after the block: the moment its vote recipient's
            // commit wait is about to end, while the others do not hold its QC yet.
            leave: rng.chance(3, 4).then(|| {
                let after = if rng.chance(1, 2) { delta_ms / 2 + rng.below(delta_ms / 2) } else { rng.below(3 * delta_ms) };
                (1 + rng.below(3) as usize, after)
            }),
            narrow_votes: rng.chance(1, 3),
            fast_lead: rng.chance(1, 2),
            stagger_ms: if rng.chance(1, 2) { 0 } else { rng.below(delta_ms) },
            narrow_chain: rng.chance(1, 2),
            twin_first: rng.chance(1, 2),
            stale_qc: rng.chance(1, 3),
            leave_after_first: false,
            forged_qcs: false,
            wrong_blocks: false,
            wrong_images: false,
            junk_flood: false,
            private_requests: false,
            staggered_blames: false,
        };
        // A third of the plans, chosen by the step delay's residue rather than by a new draw:
        // every seed's other moves stay what they were when the controls' seed counts were
        // measured.
        plan.forged_qcs = plan.step_delay_ms % 3 == 0;
        // Half of the plans each, chosen the same way.
        plan.wrong_blocks = plan.shadow_delay_ms % 2 == 0;
        plan.wrong_images = plan.step_delay_ms % 2 == 1;
        plan.junk_flood = plan.shadow_delay_ms % 3 == 2;
        plan.private_requests = (plan.step_delay_ms / 2) % 3 == 1;
        plan.staggered_blames = (plan.shadow_delay_ms / 2) % 2 == 1;
        // A quarter of the plans follow a recipe: the moves of one attack, made coherent.
        match rng.below(8) {
            0 => plan.commit_first(delta_ms, rng),
            1 => plan.stale_qc = true,
            _ => {}
        }
        plan
    }

    /// The attack S6's 2Δ wait before STATUS stops: one replica holds a 2-chain and commits,
    /// the others leave the view before they hold its first QC, and the coalition, leading
    /// the next view at once, extends their lower QCs.
    fn commit_first(&mut self, delta_ms: u64, rng: &mut Rng) {
        self.split = false;
        self.hide_qc = false;
        self.silent_first = false;
        self.narrow_votes = true;
        self.narrow_chain = true;
        self.twin_first = true;
        self.fast_lead = true;
        self.stagger_ms = delta_ms / 2 + rng.below(delta_ms / 2);
        self.step_delay_ms = self.stagger_ms + rng.below(delta_ms);
        self.leave = Some((2, 0));
        self.leave_after_first = true;
    }
}
