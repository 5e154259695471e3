//! Damaged disks in the simulator: a crash may flip one byte of one file of the replica's
//! disk, which it repairs when it starts again (storage/replica_store/open.rs). The repair
//! loses the blocks and images that were damaged; the others give them back.

use super::*;
use crate::consensus::Planted;

fn crash_runs(planted: Planted) -> SimOptions {
    SimOptions { mode: Some(Mode::Crash), planted, ..SimOptions::default() }
}

#[test]
fn replicas_that_repaired_damaged_disks_catch_up_and_stay_safe() {
    let mut summary = Summary::default();
    for seed in 0..200 {
        let r = run(seed, &crash_runs(Planted::default()));
        if r.faults.damage_pct > 0 {
            summary.add(&r);
        }
    }
    println!("{summary}");
    assert_eq!(summary.first_violation, None);
    assert!(summary.runs > 50 && summary.stats.damaged > 200 && summary.stats.repaired > 200, "{:?}", summary.stats);
}

/// The negative control: before a replica without a stable certificate could ask for a
/// state image, runs where damage set aside most replicas' images stalled.
#[test]
fn negative_control_state_fetch_only_with_a_certificate_stalls_after_damage() {
    let planted = Planted { state_fetch_needs_cert: true, ..Planted::default() };
    let stalled = (0..400).find_map(|seed| {
        let r = run(seed, &crash_runs(planted));
        r.violations.into_iter().find(|v| v.starts_with("liveness")).map(|v| (seed, v))
    });
    let (seed, violation) = stalled.expect("the planted bug stalls some damaged run within 400 seeds");
    println!("caught at seed {seed}: {violation}");
}
