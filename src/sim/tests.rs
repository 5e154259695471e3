//! Simulator runs kept as tests: seed sweeps in both modes, the negative controls (planted
//! bugs the checkers must catch), and scenarios that read like stories.

use super::*;
use crate::consensus::{Message, Planted};

fn sweep(seeds: std::ops::Range<u64>, options: &SimOptions) -> Summary {
    let mut summary = Summary::default();
    for seed in seeds {
        summary.add(&run(seed, options));
    }
    println!("{summary}");
    summary
}

fn mode(mode: Mode) -> SimOptions {
    SimOptions { mode: Some(mode), ..SimOptions::default() }
}

#[test]
fn crash_faults_with_any_timing_are_safe_and_then_live() {
    let s = sweep(0..120, &mode(Mode::Crash));
    assert_eq!(s.first_violation, None);
    let (st, disks) = (&s.stats, s.stats.damaged > 50 && s.stats.repaired > 50);
    assert!(st.crashes > 100 && st.dropped > 1000 && st.partitions > 50 && disks, "faults injected, disks damaged: {st:?}");
}

#[test]
fn byzantine_replicas_under_synchrony_are_safe_and_live() {
    // A few hundred seeds of the simulator's Byzantine behaviours, one to f replicas each
    // (lie and equivocate are the definitions `--byzantine` uses, `crate::byzantine`).
    let s = sweep(0..300, &mode(Mode::Byzantine));
    assert_eq!(s.first_violation, None);
    assert!(s.behaviours.len() >= 8, "most behaviours were drawn: {:?}", s.behaviours);
    assert!(s.stats.refused > 0, "garbage bytes reached the codec");
    assert!(s.stats.images > 100 && s.stats.state_transfers > 0, "state checkpoints and transfers happened");
    // Equivocating leaders and double voters leave proofs, every one against a Byzantine
    // replica (a proof against an honest one is a violation, `check.rs`).
    assert!(s.stats.proofs > 100, "proofs found: {}", s.stats.proofs);
}

#[test]
fn hostile_crash_runs_and_three_replicas() {
    let hostile = SimOptions { hostile: true, ..mode(Mode::Crash) };
    assert_eq!(sweep(0..40, &hostile).first_violation, None);
    let three = SimOptions { n: 3, ..SimOptions::default() };
    assert_eq!(sweep(0..60, &three).first_violation, None);
}

#[test]
fn the_coalition_adversary_under_synchrony_gets_nowhere() {
    let options = SimOptions { coalition: true, ..SimOptions::default() };
    let s = sweep(0..240, &options);
    assert_eq!(s.first_violation, None);
    assert_eq!(s.behaviours.get("Coalition"), Some(&480), "every run had a coalition of two");
    assert!(s.stats.byzantine_actions > 20_000, "the coalition acted: {}", s.stats.byzantine_actions);
    assert!(s.view_changes > 200, "views changed: {}", s.view_changes);
}

/// Seeds the long runs found unlive, kept once fixed (see NOTEBOOK.md, the long runs).
/// (Since the coalition adversary joined the draw on 2026-11-22 they are other runs; kept as
/// three more seeds that must stay clean.)
#[test]
fn seeds_found_by_long_runs_stay_fixed() {
    for seed in [19230, 84459, 86605] {
        assert_eq!(run(seed, &SimOptions::default()).violations, Vec::<String>::new(), "seed {seed}");
    }
}

#[test]
fn a_seed_replays_exactly() {
    let options = SimOptions { trace: true, ..SimOptions::default() };
    let (a, b) = (run(7, &options), run(7, &options));
    assert_eq!(a.trace, b.trace);
    assert!(a.trace.len() > 100);
}

// ------------------------------------------------------------------ negative controls

/// The first seed below `bound` whose run reports a safety violation (liveness aside).
fn first_unsafe(options: &SimOptions, bound: u64) -> Option<(u64, String)> {
    (0..bound).find_map(|seed| {
        let r = run(seed, options);
        r.violations.into_iter().find(|v| !v.starts_with("liveness")).map(|v| (seed, v))
    })
}

fn planted(mode: Mode, hostile: bool, planted: Planted) -> SimOptions {
    SimOptions { mode: Some(mode), hostile, planted, ..SimOptions::default() }
}

/// A planted bug the seeded search must report as a safety violation within `bound` seeds
/// of `options` (the bounds are about twice the first seed found; NOTEBOOK has the counts).
fn control(options: SimOptions, bound: u64) {
    let found = first_unsafe(&options, bound);
    let (seed, violation) = found.unwrap_or_else(|| panic!("{:?}: no safety violation in {bound} seeds", options.planted));
    println!("{:?} caught at seed {seed}: {violation}", options.planted);
}

fn coalition(planted: Planted) -> SimOptions {
    SimOptions { coalition: true, planted, ..SimOptions::default() }
}

#[test]
fn negative_control_bug_1_same_height_equivocation_is_found_by_the_coalition() {
    control(coalition(Planted { same_height_equivocation: true, ..Planted::default() }), 500);
}

#[test]
fn negative_control_proposals_not_forwarded() {
    control(coalition(Planted { no_forward: true, ..Planted::default() }), 100);
}

#[test]
fn negative_control_one_signers_repeated_vote_counted_twice() {
    // Crash runs duplicate messages: a vote delivered twice makes a QC of two voters. The
    // fork needs a view change under message loss; since requests are relayed to the
    // leader (S10) crash runs change views less, and with the relay on the plant is first
    // caught at seed 2,250 (at 13 without it). The control runs without the relay, the
    // density of view changes it was calibrated on, and without S13's recovery, which
    // makes a restarted replica learn its view before it votes and so hides most forks
    // that a crash helps (NOTEBOOK, fourteenth session).
    control(planted(Mode::Crash, false, Planted { duplicate_votes: true, no_relay: true, no_recovery: true, ..Planted::default() }), 200);
}

#[test]
fn negative_control_high_qc_moving_backwards() {
    // The crash runs' hidden-QC schedule (schedule.rs): a stale QC delivered in the status
    // wait lowers the lock of three replicas that hold QC(B) but did not commit B.
    control(planted(Mode::Crash, false, Planted { high_qc_backwards: true, ..Planted::default() }), 100);
}

#[test]
fn negative_control_no_two_delta_wait_before_status() {
    // The coalition's commit-first recipe: one replica commits while the others leave the
    // view before they hold the QC, and report without it at once.
    control(coalition(Planted { no_status_wait: true, ..Planted::default() }), 100);
}

#[test]
fn negative_control_commit_timer_surviving_a_view_change() {
    control(coalition(Planted { keep_commit_timer: true, ..Planted::default() }), 100);
}

#[test]
fn negative_control_requests_executed_without_their_signature_check() {
    control(coalition(Planted { unchecked_requests: true, ..Planted::default() }), 100);
}

#[test]
fn negative_control_certificates_of_two_signatures() {
    control(coalition(Planted { certificate_size: Some(2), ..Planted::default() }), 100);
}

#[test]
fn negative_control_statuses_learned_unchecked_let_forged_qcs_stall_the_cluster() {
    // The coalition's forged QCs (adversary/forge.rs), learned unchecked, rank a block no
    // voter accepts above the real ones: the view stalls, so any violation counts.
    let options = coalition(Planted { unchecked_status: true, ..Planted::default() });
    // First found at seed 47 since requests are relayed (S10), which shortened the stalls.
    let found = (0..100).find_map(|seed| run(seed, &options).violations.into_iter().next().map(|v| (seed, v)));
    let (seed, violation) = found.expect("forged QCs in statuses learned unchecked: no violation in 100 seeds");
    println!("unchecked status caught at seed {seed}: {violation}");
}

#[test]
fn negative_control_clients_accepting_two_matching_replies() {
    control(coalition(Planted { client_quorum: Some(2), ..Planted::default() }), 100);
}

#[test]
fn negative_control_no_delta_wait_forks_under_a_byzantine_coalition() {
    let options = planted(Mode::Byzantine, false, Planted { no_delta_wait: true, ..Planted::default() });
    let found = first_unsafe(&options, 100).expect("the checker must catch commits without the 2Δ wait");
    println!("no-delta-wait caught at seed {}: {}", found.0, found.1);
}

#[test]
fn negative_control_cross_view_two_chain_forks() {
    let options = planted(Mode::Byzantine, false, Planted { cross_view_chain: true, ..Planted::default() });
    let found = first_unsafe(&options, 100).expect("the checker must catch a 2-chain across views");
    println!("cross-view caught at seed {}: {}", found.0, found.1);
}

#[test]
fn negative_control_quorum_of_two_forks_under_partitions() {
    // Without S13's recovery, the density it was calibrated on: with it, the first fork
    // comes at seed 482 (restarted replicas learn the other side's blocks before voting).
    let options = planted(Mode::Crash, false, Planted { qc_size: Some(2), no_recovery: true, ..Planted::default() });
    let found = first_unsafe(&options, 400).expect("the checker must catch QCs of 2 votes");
    println!("qc2 caught at seed {}: {}", found.0, found.1);
}

#[test]
fn negative_control_a_state_transfer_installed_unchecked_is_caught() {
    let options = planted(Mode::Byzantine, false, Planted { unchecked_state: true, ..Planted::default() });
    let found = first_unsafe(&options, 100).expect("the checker must catch a forged state installed unchecked");
    println!("unchecked-state caught at seed {}: {}", found.0, found.1);
}

#[test]
fn negative_control_commit_on_a_single_qc_forks() {
    let options = planted(Mode::Crash, false, Planted { single_qc_commit: true, ..Planted::default() });
    let found = first_unsafe(&options, 1000).expect("the checker must catch a commit on one QC");
    println!("single-qc caught at seed {}: {}", found.0, found.1);
}

/// The trap behind "persist before sending": a replica votes for B′ (learning QC(B) from it
/// in the same step), crashes before its state is on disk, restarts with an older lock, and
/// with the replicas that never saw QC(B) elects a leader that forks away from committed B.
fn vote_then_crash_story(seed: u64, planted: Planted) -> Report {
    let faults = Faults::quiet(5, 1, 3);
    let mut w = World::new(seed, faults, planted, false);
    w.after(0, Event::Partition(vec![0, 0, 0, 1, 1]));
    w.drop_if = Some(Box::new(|_, to, m| to == 2 && matches!(m, Message::Vote(v) if v.height == 1)));
    w.crash_after_vote = Some((2, 2));
    w.after(500, Event::Restart(2));
    w.after(800, Event::Partition(vec![0, 0, 1, 1, 1]));
    w.run_for(20_000);
    finish(seed, w)
}

#[test]
fn negative_control_vote_sent_before_it_is_persisted_forks_after_a_crash() {
    // Without S13's recovery: it is what defeats this story (replica 2 learns B′ from the
    // others before it votes again). The seeded search still finds the plant with recovery
    // on (crash mode, seed 28).
    let bug = Planted { vote_before_persist: true, no_recovery: true, ..Planted::default() };
    let found = (0..20).find(|seed| vote_then_crash_story(*seed, bug).violations.iter().any(|v| v.starts_with("agreement")));
    assert!(found.is_some(), "the checker must catch votes sent before they are durable");
    for seed in 0..20 {
        let r = vote_then_crash_story(seed, Planted::default());
        assert!(r.violations.iter().all(|v| v.starts_with("liveness")), "seed {seed}: {:?}", r.violations);
    }
}

// ------------------------------------------------------------------ stories

fn story(byzantine: Vec<(u8, Behaviour)>, clients: usize, ops: usize) -> World {
    let mut faults = Faults::quiet(5, clients, ops);
    faults.byzantine = byzantine;
    World::new(1, faults, Planted::default(), false)
}

fn run_to_completion(w: &mut World, limit_ms: u64) {
    let end = w.now + limit_ms;
    w.run_until(end, |w| w.clients.iter().all(|c| c.done()));
    assert!(w.clients.iter().all(|c| c.done()), "every operation completes");
    assert_eq!(w.checker.violations, Vec::<String>::new());
}

fn view_of(w: &World, id: u8) -> u64 {
    w.nodes[id as usize].core.as_ref().map_or(0, |c| c.view())
}

#[test]
fn story_the_leader_crashes_and_the_next_one_takes_over() {
    let mut w = story(vec![], 3, 12);
    w.run_for(1_000);
    let before = w.accepted();
    assert!(before > 3);
    w.after(0, Event::Crash(0));
    run_to_completion(&mut w, 60_000);
    assert!(view_of(&w, 1) >= 1, "a view change happened");
    assert_eq!(w.accepted(), 36);
}

#[test]
fn story_two_followers_crash_and_nobody_notices() {
    let mut w = story(vec![], 3, 12);
    w.after(5, Event::Crash(3));
    w.after(5, Event::Crash(4));
    run_to_completion(&mut w, 60_000);
    assert_eq!(view_of(&w, 0), 0, "crashed followers never cause a view change");
    w.after(0, Event::Restart(3));
    w.after(0, Event::Restart(4));
    w.run_for(3_000);
    assert_eq!(w.committed(3), w.committed(0), "restarted followers catch up");
}

#[test]
fn story_an_equivocating_leader_is_caught_and_replaced() {
    let mut w = story(vec![(0, Behaviour::Equivocate)], 3, 10);
    run_to_completion(&mut w, 60_000);
    assert!(view_of(&w, 1) >= 1);
}

#[test]
fn story_a_forking_coalition_with_the_slowest_honest_links_gets_nowhere() {
    let mut w = story(vec![(0, Behaviour::Fork), (1, Behaviour::Fork)], 3, 10);
    w.faults.slow_honest_links = true;
    run_to_completion(&mut w, 60_000);
}

#[test]
fn story_a_censoring_leader_is_blamed_and_the_censored_client_gets_through() {
    let mut w = story(vec![(0, Behaviour::Censor)], 3, 10);
    run_to_completion(&mut w, 60_000);
    assert!(view_of(&w, 2) >= 1, "the censor lost the lead");
    assert_eq!(w.clients[0].accepted.len(), 10);
}

#[test]
fn story_the_leader_and_two_followers_are_cut_off_from_the_other_two() {
    let mut w = story(vec![], 3, 30);
    w.after(200, Event::Partition(vec![0, 0, 0, 1, 1]));
    w.run_for(3_000);
    let during = w.accepted();
    assert!(during > 20, "the majority side with the leader keeps going");
    assert_eq!(w.committed(3), w.committed(4));
    w.after(0, Event::Heal);
    run_to_completion(&mut w, 60_000);
    w.run_for(2_000);
    assert_eq!(w.committed(3), w.committed(0), "the cut-off replicas catch up after the heal");
    assert_eq!(view_of(&w, 0), 0);
}

#[test]
fn story_a_replica_that_missed_ten_thousand_requests_catches_up() {
    let mut w = story(vec![], 20, 500);
    w.after(1, Event::Crash(4));
    run_to_completion(&mut w, 600_000);
    assert_eq!(w.accepted(), 10_000);
    w.after(0, Event::Restart(4));
    let target = w.committed(0);
    let end = w.now + 120_000;
    w.run_until(end, |w| w.committed(4) >= target);
    assert!(w.committed(4) >= target, "replica 4 reached height {} of {target}", w.committed(4));
    let digest = |id: usize| w.nodes[id].chat.digest();
    assert_eq!(digest(4), digest(0), "the caught-up replica has the same chat state");
    assert_eq!(w.checker.violations, Vec::<String>::new());
    // The others truncated their logs behind stable checkpoints, so replica 4 came back by a
    // certified state image, not block by block from height 1.
    assert!(w.stats.state_transfers >= 1, "replica 4 installed a state image");
    let first_segment = std::path::Path::new("/replica/chain-00000000000000000001.qlog");
    assert!(w.nodes[0].fs.file_len(first_segment).is_none(), "replica 0 deleted its first chain segment");
}

/// The force-locking trap (NOTEBOOK, "Why the traps do not apply"): only replica 4 holds the highest QC (QC of height
/// 2, view 0); the view-0 leader crashes; replica 3 is Byzantine and withholds its votes;
/// replica 4's STATUS reaches each new leader a full Δ after the others. A leader that
/// proposes on the first q STATUS builds on height 1, which replica 4 refuses (S2.4: below
/// what it reported), and with only two other voters nothing is certified. Returns the view
/// of the committed block at height 2 and the highest view any replica reached.
fn force_locking_story(planted: Planted) -> (u64, u64, Vec<String>) {
    let mut faults = Faults::quiet(5, 1, 6);
    faults.byzantine = vec![(3, Behaviour::Withhold)];
    let mut w = World::new(1, faults, planted, false);
    w.drop_if = Some(Box::new(|_, to, m| to != 4 && matches!(m, Message::Vote(v) if v.height == 2 && v.view == 0)));
    w.delay_if = Some(Box::new(|from, _, m| match m {
        Message::Status(_) if from == 4 => Some(100),
        _ => Some(1),
    }));
    w.crash_after_vote = Some((0, 2));
    let end = w.now + 60_000;
    w.run_until(end, |w| w.clients.iter().all(|c| c.done()));
    let views: Vec<u64> = (0..5).map(|id| view_of(&w, id)).collect();
    let at2 = w.checker.block_at(2).map_or(u64::MAX, |b| b.view);
    (at2, views.into_iter().max().unwrap_or(0), w.checker.violations.clone())
}

#[test]
fn story_force_locking_a_new_leader_waits_four_deltas_for_the_hidden_qc() {
    let (view_at_2, top, violations) = force_locking_story(Planted::default());
    println!("with the 4Δ wait: height 2 from view {view_at_2}, highest view {top}");
    let (bad_at_2, bad_top, bad) = force_locking_story(Planted { first_statuses: true, ..Planted::default() });
    println!("first q STATUS: height 2 from view {bad_at_2}, highest view {bad_top}, {bad:?}");
    assert_eq!(violations, Vec::<String>::new());
    assert_eq!((view_at_2, top), (0, 1), "view 1 extends the hidden QC and succeeds");
    // The trap, planted: the hidden QC's block is abandoned and view 1 fails.
    assert!(bad_at_2 != 0 && bad_top >= 2, "first-q leader: height 2 from view {bad_at_2}, views to {bad_top}");
}

/// "Only the leader collects votes" lets a leader hide a QC (NOTEBOOK, "Why the traps do not apply"). Here the view-0
/// leader proposes height 1, votes, and falls silent for good: it never passes a QC on. As
/// votes are broadcast, every other replica forms QC(1) itself before any view change, and
/// the next leader extends it: height 1 of the history is the view-0 block.
#[test]
fn story_a_leader_that_never_shares_a_qc_cannot_hide_it() {
    let w = never_shared_qc_story(Planted::default());
    assert_eq!(w.checker.block_at(1).map(|b| b.view), Some(0), "the view-0 block was extended");
    assert!(view_of(&w, 1) >= 1);
    // Planted: votes go to the leader only, and the leader hides what it collected. No other
    // replica holds QC(1); the view-0 block is abandoned and height 1 comes from a later view.
    let w = never_shared_qc_story(Planted { votes_to_leader: true, ..Planted::default() });
    assert!(w.checker.block_at(1).is_some_and(|b| b.view > 0), "planted: height 1 from view {:?}", w.checker.block_at(1).map(|b| b.view));
}

fn never_shared_qc_story(planted: Planted) -> World {
    let mut w = World::new(1, Faults::quiet(5, 1, 4), planted, false);
    w.crash_after_vote = Some((0, 1));
    let end = w.now + 3_000;
    w.run_until(end, |w| view_of(w, 1) > 0);
    for id in 1..5u8 {
        let core = w.nodes[id as usize].core.as_ref().expect("up");
        if !planted.votes_to_leader {
            assert!(core.high_qc().height >= 1, "replica {id} formed QC(1) from broadcast votes");
        } else {
            assert_eq!(core.high_qc().height, 0, "planted: replica {id} never saw the votes for height 1: {:?}", (core.high_qc().view, core.high_qc().height, &core.high_qc().votes.iter().map(|v| v.0).collect::<Vec<_>>()));
        }
    }
    if planted.votes_to_leader {
        // Votes to the leader only slow every view: honest views end on timers, which the
        // liveness check reports; only safety is asked of the plant here.
        let end = w.now + 60_000;
        w.run_until(end, |w| w.clients.iter().all(|c| c.done()));
        assert!(w.checker.violations.iter().all(|v| v.starts_with("liveness")), "{:?}", w.checker.violations);
    } else {
        run_to_completion(&mut w, 60_000);
    }
    w
}

#[test]
fn latency_percentiles_read_off_ten_millisecond_buckets() {
    let mut h = Histogram::default();
    assert_eq!(h.percentile(0.5), None);
    for ms in [5, 15, 15, 25, 305] {
        h.add(ms);
    }
    assert_eq!(h.percentile(0.5), Some(20));
    assert_eq!(h.percentile(0.8), Some(30));
    assert_eq!(h.percentile(0.99), Some(310));
    assert_eq!(h.percentile(1.0), Some(310));
}

// ------------------------------------------------- the second review's controls

#[path = "review_controls.rs"]
mod review_controls;
