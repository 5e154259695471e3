//! Five real replica processes on loopback ordering requests with the consensus core: any
//! two killed (SIGKILL, by PID) while people chat, restarted, and nothing acknowledged lost;
//! the five state digests equal at the end.

mod common;

use std::time::{Duration, Instant};

use common::five::Cluster;

/// Sends `count` messages from alice to bob, numbered from `from`; each must be acknowledged.
fn send(alice: &mut common::Chat, from: usize, count: usize) {
    for i in from..from + count {
        let v = alice.run(&format!("send bob m{i}"));
        assert_eq!(v["type"], "result", "send m{i}: {v}");
    }
}

/// Bob's whole mailbox, in id order.
fn mailbox(cluster: &Cluster) -> Vec<String> {
    let mut bob = cluster.chat("bob");
    assert_eq!(bob.run("login")["command"], "login");
    let mut texts = Vec::new();
    for _ in 0..20 {
        let read = bob.run("read 100");
        let messages = read["messages"].as_array().unwrap_or_else(|| panic!("read failed: {read}")).clone();
        texts.extend(messages.iter().map(|m| m["text"].as_str().unwrap().to_owned()));
        if read["unread_left"] == 0 {
            break;
        }
    }
    texts
}

#[test]
fn five_replicas_keep_chatting_with_any_two_killed_and_lose_nothing() {
    let mut cluster = Cluster::start("five", 50);
    let mut bob = cluster.chat("bob");
    assert_eq!(bob.run("create")["type"], "result", "create bob");
    assert_eq!(bob.run("logout")["type"], "result");
    drop(bob);
    let mut alice = cluster.chat("alice");
    assert_eq!(alice.run("create")["type"], "result");
    send(&mut alice, 0, 5);

    // Two followers die; the leader and two others carry on.
    cluster.kill(2);
    cluster.kill(4);
    send(&mut alice, 5, 5);
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
    assert_eq!(mailbox(&cluster), expected, "every acknowledged message, once, in order");
}
