//! Five real replica processes on loopback ordering requests with the consensus core: any
//! two killed (SIGKILL, by PID) while people chat, restarted, and nothing acknowledged lost;
//! the five state digests equal at the end.

mod common;

use std::time::{Duration, Instant};

use common::five::Cluster;
use serde_json::json;

/// Sends `count` messages from alice to bob, numbered from `from`; each must be acknowledged.
fn send(alice: &mut common::Chat, from: usize, count: usize) {
    for i in from..from + count {
        let v = alice.run(&format!("send bob m{i}"));
        assert_eq!(v["type"], "result", "send m{i}: {v}");
    }
}

#[test]
fn five_replicas_keep_chatting_with_any_two_killed_and_lose_nothing() {
    let (mut cluster, mut alice) = Cluster::with_alice_and_bob("five", 50);
    send(&mut alice, 0, 5);

    // Two followers die; the leader and two others carry on.
    cluster.kill(2);
    cluster.kill(4);
    send(&mut alice, 5, 4);
    // The result says who agreed: the three alive, with C and E silent.
    let v = alice.run("send bob m9");
    assert_eq!((v["agreed"].clone(), v["differed"].clone(), v["silent"].clone()), (json!(["A", "B", "D"]), json!([]), json!(["C", "E"])), "{v}");
    cluster.start_replica(2);
    cluster.start_replica(4);

    // The view-0 leader and the next view's leader die: two view changes, then C leads.
    cluster.kill(0);
    cluster.kill(1);
    let t = Instant::now();
    send(&mut alice, 10, 1);
    println!("first commit after the leader and the next one were killed: {} ms", t.elapsed().as_millis());
    send(&mut alice, 11, 4);
    cluster.start_replica(0);
    cluster.start_replica(1);
    send(&mut alice, 15, 5);
    drop(alice);

    let (height, digest) = cluster.wait_converged(Duration::from_secs(60));
    println!("converged at height {height}, state {:02x?}", &digest[..4]);
    let expected: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
    assert_eq!(cluster.unread("bob"), expected, "every acknowledged message, once, in order");
}

#[test]
fn every_ordered_pair_killed_one_after_the_other_then_restarted_loses_nothing() {
    // For each of the 20 ordered pairs (first, second): kill the first, chat, kill the
    // second, chat, restart both, chat. One cluster for all of them (each pair starts
    // from five running replicas), so a pair also meets what the ones before it left.
    let (mut cluster, mut alice) = Cluster::with_alice_and_bob("pairs", 50);
    let mut sent = 0;
    for first in 0..5 {
        for second in (0..5).filter(|s| *s != first) {
            cluster.kill(first);
            send(&mut alice, sent, 1);
            cluster.kill(second);
            send(&mut alice, sent + 1, 1);
            cluster.start_replica(first);
            cluster.start_replica(second);
            send(&mut alice, sent + 2, 1);
            sent += 3;
        }
    }
    drop(alice);
    cluster.wait_converged(Duration::from_secs(60));
    let expected: Vec<String> = (0..sent).map(|i| format!("m{i}")).collect();
    assert_eq!(cluster.unread("bob"), expected);
}

#[test]
fn all_five_killed_and_restarted_keep_everything_and_three_down_stops_clients_clearly() {
    let (mut cluster, mut alice) = Cluster::with_alice_and_bob("allfive", 50);
    send(&mut alice, 0, 5);
    drop(alice);
    for i in 0..5 {
        cluster.kill(i);
    }
    for i in (0..5).rev() {
        cluster.start_replica(i);
    }
    let mut alice = cluster.chat("alice");
    assert_eq!(alice.run("login")["type"], "result");
    send(&mut alice, 5, 2);
    drop(alice);

    // Three down: no quorum. The client says so in one line and exits with status 2.
    for i in [1, 2, 3] {
        cluster.kill(i);
    }
    let mut alice = common::Chat::start(cluster.config(), "alice", "alice-pw", &["--timeout-ms", "1500"]);
    let refused = alice.run("login");
    assert_eq!(refused["type"], "fatal", "{refused}");
    assert!(refused["message"].as_str().unwrap_or_default().contains("no quorum"), "{refused}");
    let (code, _) = alice.finish();
    assert_eq!(code, Some(2));
    // One comes back: service resumes, nothing lost.
    cluster.start_replica(2);
    let mut alice = cluster.chat("alice");
    assert_eq!(alice.run("login")["type"], "result");
    send(&mut alice, 7, 1);
    drop(alice);
    cluster.start_replica(1);
    cluster.start_replica(3);
    cluster.wait_converged(Duration::from_secs(60));
    let expected: Vec<String> = (0..8).map(|i| format!("m{i}")).collect();
    assert_eq!(cluster.unread("bob"), expected);
}
