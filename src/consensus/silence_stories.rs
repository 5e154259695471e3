//! S5's blame heard, driven through five cores: a view whose leader crashed is left even
//! when only one replica still waits. Found by a five-process test (2026-12-07): after
//! three replicas were killed and one restarted, the restarted one was still waiting for
//! a commit the other two had made when the view changed to a leader that was down; its
//! blame was one, and the other two, with nothing pending, never blamed. The client's
//! login got two replies of three for as long as it waited.

use super::relay_stories::{DELTA, Event, Five};
use super::*;

/// Replicas 1 and 3 crashed (no cores). A forged-for-the-story BC(0) takes 0, 2 and 4 to
/// view 1, whose leader (1) is down. At 10Δ a request reaches replica 2 only (the others
/// had it committed already, or never got it). Returns (highest view, whether every honest
/// replica committed the request) at `until`.
fn one_waits_under_a_crashed_leader(planted: Planted, until: u64) -> (View, bool) {
    let mut five = Five::new(&[1, 3], planted);
    let blames = [1u8, 3, 4].iter().map(|&r| (r, SimCrypto { me: r }.sign(&signed::blame(0)))).collect();
    let bc = BlameCert { view: 0, blames };
    for to in [0u8, 2, 4] {
        five.at(1, Event::Message(4, to, Message::BlameCert(bc.clone())));
    }
    let request = b"a request only replica 2 still waits for".to_vec();
    five.at(10 * DELTA, Event::Request(2, request.clone()));
    five.run_until(until);
    (five.highest_view(), five.committed_everywhere(&[request]) == 1)
}

#[test]
fn s5_a_view_whose_leader_crashed_is_left_when_one_replica_waits_and_the_others_do_not() {
    let (view, committed) = one_waits_under_a_crashed_leader(Planted::default(), 150 * DELTA);
    eprintln!("one replica waiting under a crashed leader, 150Δ: view {view}, committed everywhere {committed}");
    assert!(view >= 2 && committed, "view {view}, committed everywhere {committed}");
    // The control: without the rule the view is never left, however long it runs.
    let planted = Planted { no_blame_heard: true, ..Planted::default() };
    let (view, committed) = one_waits_under_a_crashed_leader(planted, 400 * DELTA);
    eprintln!("the same without a blame heard, 400Δ: view {view}, committed everywhere {committed}");
    assert_eq!((view, committed), (1, false), "the control must stay stuck");
}

#[test]
fn s5_two_replicas_blaming_an_idle_honest_leader_do_not_end_its_view() {
    // A blame heard makes every honest replica watch the leader: the honest leader answers
    // with blocks (the nudge), a QC of the view forms, and nobody else blames. The pair
    // blames view 0 every Δ for 100Δ with no request anywhere.
    let mut five = Five::new(&[3, 4], Planted::default());
    five.blame_every_delta(&[3, 4], 0, 0, 100);
    five.run_until(120 * DELTA);
    eprintln!("a pair blaming idle view 0 for 100Δ: view {}", five.highest_view());
    assert_eq!(five.highest_view(), 0, "the honest leader 0 lost its view");
}
