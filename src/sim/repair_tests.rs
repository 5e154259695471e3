//! Damaged disks in the simulator: a crash may flip one byte of one file of the replica's
//! disk, which it repairs when it starts again (storage/replica_store/open.rs). The repair
//! loses the blocks and images that were damaged; the others give them back.

use super::*;
use crate::consensus::Planted;
use crate::sim::world::Event;

fn crash_runs(planted: Planted) -> SimOptions {
    SimOptions { mode: Some(Mode::Crash), planted, ..SimOptions::default() }
}

#[test]
fn replicas_that_repaired_damaged_disks_catch_up_and_stay_safe() {
    let mut summary = Summary::default();
    // Seeds after those of the crash sweep (`tests::crash_faults_…`, 0..120), which damages
    // disks too.
    for seed in 120..320 {
        let r = run(seed, &crash_runs(Planted::default()));
        if r.faults.damage_pct > 0 {
            summary.add(&r);
        }
    }
    println!("{summary}");
    assert_eq!(summary.first_violation, None);
    assert!(summary.runs > 50 && summary.stats.damaged > 200 && summary.stats.repaired > 200, "{:?}", summary.stats);
}

/// Three of five replicas lose their state images (a flipped byte in each one's messages)
/// while down: each sets them aside, with the chain after them, and starts from nothing. Only two
/// replicas then repeat a state CHECKPOINT, fewer than a certificate needs. Returns whether
/// every client finished, and the world. (Before 2026-12-02 a replica behind asked for an
/// image only with a stable certificate in hand; the crash sweep's seed 103 stalled so.)
fn three_images_damaged(planted: Planted) -> (bool, World) {
    let mut faults = Faults::quiet(5, 2, 500);
    faults.checkpoint_every = 4;
    let mut w = World::new(1, faults, planted, false);
    // Far enough that consensus.qlog was compacted (it no longer holds the first blocks).
    let end = w.now + 300_000;
    w.run_until(end, |w| w.committed(0) >= 600);
    assert!(w.committed(0) >= 600, "progress before the damage");
    for id in [2, 3, 4] {
        w.after(0, Event::Crash(id));
    }
    w.run_for(1);
    for id in [2usize, 3, 4] {
        let fs = &w.nodes[id].fs;
        let images: Vec<_> = fs.paths().into_iter().filter(|p| p.ends_with("messages.csv")).collect();
        assert!(!images.is_empty(), "replica {id} kept images");
        images.iter().for_each(|image| fs.corrupt(image, 10));
        w.after(0, Event::Restart(id as u8));
    }
    let end = w.now + 120_000;
    w.run_until(end, |w| w.clients.iter().all(|c| c.done()));
    (w.clients.iter().all(|c| c.done()), w)
}

#[test]
fn story_three_replicas_lose_their_state_images_and_get_them_back_from_the_two_others() {
    let (done, mut w) = three_images_damaged(Planted::default());
    assert!(done, "every operation completes");
    assert_eq!(w.checker.violations, Vec::<String>::new());
    assert!(w.stats.repaired >= 3 && w.stats.state_transfers >= 1, "{:?}", w.stats);
    w.run_for(2_000);
    let digest = |id: usize| w.nodes[id].chat.digest();
    assert!((2..5).all(|id| digest(id) == digest(0)), "the repaired replicas hold the same chat state");
}
