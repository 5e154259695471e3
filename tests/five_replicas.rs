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
    let login = alice.run("login");
    assert_eq!(login["type"], "result", "{login}");
    send(&mut alice, 7, 1);
    drop(alice);
    cluster.start_replica(1);
    cluster.start_replica(3);
    cluster.wait_converged(Duration::from_secs(60));
    let expected: Vec<String> = (0..8).map(|i| format!("m{i}")).collect();
    assert_eq!(cluster.unread("bob"), expected);
}

/// Flips one byte of a file, as a failing disk does.
fn flip(path: &std::path::Path, offset: usize) {
    let mut bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let at = offset.min(bytes.len() - 1);
    bytes[at] ^= 0xff;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_replica_with_a_damaged_disk_repairs_itself_from_the_others_and_loses_nothing() {
    let (mut cluster, mut alice) = Cluster::with_alice_and_bob("repair", 50);
    // Past a stable checkpoint (every 100 blocks here), so C keeps a state image.
    send(&mut alice, 0, 130);
    cluster.wait_converged(Duration::from_secs(60));
    cluster.kill(2);
    let data = cluster.dir.0.join("C");
    let names = |dir: &std::path::Path| -> Vec<String> {
        let mut n: Vec<String> = std::fs::read_dir(dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        n.sort();
        n
    };
    // First the middle of the chain and the newest vote record, then the state image.
    let segment = names(&data).into_iter().rfind(|n| n.starts_with("chain-")).expect("a chain segment");
    let chain_len = std::fs::metadata(data.join(&segment)).unwrap().len() as usize;
    flip(&data.join(&segment), chain_len / 2);
    let votes_len = std::fs::metadata(data.join("consensus.qlog")).unwrap().len() as usize;
    flip(&data.join("consensus.qlog"), votes_len - 1);
    send(&mut alice, 130, 10);
    cluster.start_replica(2);
    let mut repaired = cluster.log(2);
    send(&mut alice, 140, 5);
    cluster.wait_converged(Duration::from_secs(60));
    cluster.kill(2);
    let image = names(&data).into_iter().rfind(|n| n.starts_with("snap-")).expect("C kept a state image");
    flip(&data.join(&image).join("messages.csv"), 40);
    send(&mut alice, 145, 10);
    cluster.start_replica(2);
    repaired += &cluster.log(2);
    let repaired: Vec<&str> = repaired.lines().filter(|l| l.contains("repaired:")).collect();
    repaired.iter().for_each(|l| println!("{l}"));
    for damaged in [segment.as_str(), "consensus.qlog", image.as_str()] {
        assert!(repaired.iter().any(|l| l.contains(damaged)), "C says it repaired {damaged}: {repaired:#?}");
    }
    assert!(names(&data.join("damaged")).len() >= 3, "the damaged files are kept aside: {:?}", names(&data.join("damaged")));
    send(&mut alice, 155, 5);
    cluster.wait_converged(Duration::from_secs(60));

    // C holds everything again: with A and B gone, C, D and E still serve all of it.
    cluster.kill(0);
    cluster.kill(1);
    send(&mut alice, 160, 2);
    drop(alice);
    let expected: Vec<String> = (0..162).map(|i| format!("m{i}")).collect();
    assert_eq!(cluster.unread("bob"), expected, "every acknowledged message, once, in order");
    cluster.start_replica(0);
    cluster.start_replica(1);

    // Both copies of C's vote record damaged: it could vote twice, so it refuses, and says so.
    cluster.kill(2);
    flip(&data.join("consensus.qlog"), 12);
    flip(&data.join("consensus.mirror.qlog"), 12);
    let refused = cluster.try_start_replica(2).expect_err("C must refuse to start");
    assert!(refused.contains("both copies") && refused.contains("reset.sh"), "{refused}");
}
