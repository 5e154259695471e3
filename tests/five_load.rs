//! Five replicas under concurrent clients: many users sending to each other while the
//! recipients read, the leader killed again and again, and a replica that was down while
//! thousands of messages were sent catching up by itself.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::five::Cluster;

/// Creates the accounts (each logged out at the end).
fn create(cluster: &Cluster, names: impl IntoIterator<Item = String>) {
    for name in names {
        let mut c = cluster.chat(&name);
        assert_eq!(c.run("create")["type"], "result", "create {name}");
        assert_eq!(c.run("logout")["type"], "result");
    }
}

/// `from` sends `count` messages to `to` (and reads its own mail every five sends when
/// `reads`), then logs out; returns the texts acknowledged. Every command must get a quorum. The first
/// `BIG` of a sender's messages are 60 KB when `big` (to make a state image larger than a
/// peer frame).
fn sender(config: std::path::PathBuf, from: String, to: String, count: usize, reads: bool, big: bool) -> Vec<String> {
    let mut c = common::Chat::start(&config, &from, &format!("{from}-pw"), &["--timeout-ms", "30000"]);
    assert_eq!(c.run("login")["type"], "result");
    let mut acked = Vec::new();
    for i in 0..count {
        let text = if big && i < BIG { format!("{from}-{i}-{}", "x".repeat(60_000)) } else { format!("{from}-{i}") };
        let v = c.run(&format!("send {to} {text}"));
        assert_eq!(v["type"], "result", "{from} send {i}: {v}");
        acked.push(text);
        if reads && i % 5 == 4 {
            let v = c.run("read 50");
            assert_eq!(v["type"], "result", "{from} read: {v}");
        }
    }
    // Logged out, so that no heartbeat or read mark of this client is still being ordered
    // when the test compares the replicas (a killed client's last request can commit later).
    assert_eq!(c.run("logout")["type"], "result", "{from} logout");
    acked
}

/// Senders u0..u{users} at once, each to `to(u)`; the acknowledged texts per sender.
const BIG: usize = 12;

fn run_senders(cluster: &Cluster, users: usize, count: usize, to: fn(usize, usize) -> String, reads: bool, big: bool) -> Vec<Vec<String>> {
    let handles: Vec<_> = (0..users)
        .map(|u| {
            let config = cluster.config().to_path_buf();
            std::thread::spawn(move || sender(config, format!("u{u}"), to(u, users), count, reads, big))
        })
        .collect();
    handles.into_iter().map(|h| h.join().expect("a sender thread")).collect()
}

fn users(n: usize) -> Vec<String> {
    (0..n).map(|u| format!("u{u}")).collect()
}

fn recipients(n: usize) -> Vec<String> {
    (0..n).map(|u| format!("r{u}")).collect()
}

#[test]
fn many_clients_send_and_read_concurrently_and_the_five_agree() {
    let cluster = Cluster::start("concurrent", 20);
    let n = 8;
    create(&cluster, users(n));
    let t = Instant::now();
    let acked: Vec<String> = run_senders(&cluster, n, 20, |u, n| format!("u{}", (u + 1) % n), true, false).concat();
    let elapsed = t.elapsed();
    println!("{} sends and {} reads by {n} concurrent clients in {:.1} s", acked.len(), acked.len() / 5, elapsed.as_secs_f64());
    assert_eq!(acked.len(), n * 20);
    let (height, _) = cluster.wait_converged(Duration::from_secs(60));
    assert!(cluster.digests().iter().all(|s| s.as_ref().is_some_and(|(h, _)| *h == height)));
}

#[test]
fn a_replica_down_while_thousands_were_sent_catches_up_by_itself() {
    let mut cluster = Cluster::start("catchup", 20);
    let n = 8;
    create(&cluster, users(n).into_iter().chain(recipients(n)));
    cluster.kill(4);
    // 96 of them of 60 KB: the state image is larger than a peer frame, so it travels in parts.
    let acked = run_senders(&cluster, n, 250, |u, _| format!("r{u}"), false, true);
    assert_eq!(acked.concat().len(), 2_000);
    // Catching up fetches one block per round trip today (NOTEBOOK: about 30 blocks/s on a
    // loaded machine), hence the long bound.
    let t = Instant::now();
    cluster.start_replica(4);
    let (height, _) = cluster.wait_converged(Duration::from_secs(240));
    println!("replica E caught up 2,000 messages (height {height}) in {:.1} s", t.elapsed().as_secs_f64());
    // Its state is the others' (height and digest equal above), with every message.
    let status = cluster.digests();
    assert!(status.iter().all(|s| s.as_ref().is_some_and(|(h, _)| *h == height)), "{status:?}");
    let messages = cluster.message_counts();
    assert_eq!(messages, vec![Some(2_000); 5]);
    // It got there by a state transfer (the others keep no blocks below their stable image).
    let log = cluster.log(4);
    assert!(log.contains("installed a certified state image"), "E's log:\n{log}");
    assert!(log.contains("state transfer received in parts"), "E's log:\n{log}");
    // Right after the catch-up, the two first leaders die: the three left (E among them)
    // must go on serving at once.
    cluster.kill(0);
    cluster.kill(1);
    let t = Instant::now();
    let mut c = cluster.chat("u0");
    assert_eq!(c.run("login")["type"], "result");
    assert_eq!(c.run("send r0 after-the-catch-up")["type"], "result");
    let read = cluster.unread("r0");
    println!("with A and B killed after the catch-up: login, send and read in {:.1} s", t.elapsed().as_secs_f64());
    assert_eq!(read.len(), 251);
    assert_eq!(read.last().map(String::as_str), Some("after-the-catch-up"));
}

#[test]
fn the_leader_killed_again_and_again_while_eight_clients_work_loses_nothing() {
    let mut cluster = Cluster::start("leaderkill", 20);
    let n = 8;
    create(&cluster, users(n).into_iter().chain(recipients(n)));
    let handles: Vec<_> = (0..n)
        .map(|u| {
            let config = cluster.config().to_path_buf();
            std::thread::spawn(move || sender(config, format!("u{u}"), format!("r{u}"), 25, true, false))
        })
        .collect();
    // Kill whoever leads, every 1.5 s, restarting the previous victim first: never more
    // than one replica down at a time from this loop.
    let mut victims = BTreeSet::new();
    let mut down: Option<usize> = None;
    let mut kills = 0;
    while handles.iter().any(|h| !h.is_finished()) && kills < 8 {
        std::thread::sleep(Duration::from_millis(1500));
        if let Some(d) = down.take() {
            cluster.start_replica(d);
        }
        let leader = cluster.leader();
        if let Some(l) = leader {
            cluster.kill(l);
            down = Some(l);
            victims.insert(l);
            kills += 1;
        }
    }
    let acked: Vec<Vec<String>> = handles.into_iter().map(|h| h.join().expect("a sender thread")).collect();
    if let Some(d) = down {
        cluster.start_replica(d);
    }
    println!("{kills} leaders killed ({victims:?}); {} sends acknowledged", acked.concat().len());
    assert!(kills >= 2, "the loop killed leaders while clients worked");
    cluster.wait_converged(Duration::from_secs(60));
    // Every acknowledged message is in its recipient's mailbox exactly once, in order.
    for u in 0..n {
        assert_eq!(cluster.unread(&format!("r{u}")), acked[u], "r{u}'s mail");
    }
}
