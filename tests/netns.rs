//! Five replicas as five hosts: each in its own network namespace with its own address,
//! joined by bridges (`scripts/netns-cluster.sh`). Kill two, and partition the leader with
//! one follower away from the other three, then heal. Needs root; without it the test says
//! it is skipped and passes.
//!
//! The test makes the namespaces, then runs itself again inside the clients' namespace
//! (`QUINTET_NETNS_TAG` set), where the cluster, the chat clients and the status calls all
//! see the replicas at their own addresses. The namespaces are removed afterwards, whatever
//! the inner run did.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::five::{Cluster, IDS};

const TEST: &str = "five_hosts_survive_two_kills_and_a_partition_of_the_leader_with_a_follower";

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/netns-cluster.sh")
}

fn netns(args: &[&str]) -> Result<(), String> {
    let out = Command::new("bash").arg(script()).args(args).output().map_err(|e| e.to_string())?;
    if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) }
}

/// Removes the namespaces when dropped.
struct Namespaces(String);

impl Drop for Namespaces {
    fn drop(&mut self) {
        let _ = netns(&["destroy", &self.0]);
    }
}

#[test]
fn five_hosts_survive_two_kills_and_a_partition_of_the_leader_with_a_follower() {
    if let Ok(tag) = std::env::var("QUINTET_NETNS_TAG") {
        return inside(&tag);
    }
    let uid = Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).ok();
    if uid.as_deref() != Some("0") {
        eprintln!("skipped: network namespaces need root (run the tests as root to include this one)");
        return;
    }
    let tag = format!("qt{}", std::process::id());
    let namespaces = Namespaces(tag.clone());
    if let Err(e) = netns(&["create", &tag]) {
        eprintln!("skipped: network namespaces cannot be made here: {e}");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let status = Command::new("ip")
        .args(["netns", "exec", &format!("{tag}-client")])
        .arg(exe)
        .args([TEST, "--exact", "--nocapture", "--test-threads", "1"])
        .env("QUINTET_NETNS_TAG", &tag)
        .status()
        .expect("run the test inside the clients' namespace");
    drop(namespaces);
    assert!(status.success(), "the run inside the namespaces failed (its output is above)");
}

/// Sends `count` numbered messages to bob, each acknowledged by a quorum.
fn send(alice: &mut common::Chat, tag: &str, count: usize) {
    for k in 0..count {
        let r = alice.run(&format!("send bob {tag}-{k}"));
        assert_eq!(r["type"], "result", "send {tag}-{k}: {r}");
    }
}

fn inside(tag: &str) {
    let addresses = (1..=5).map(|i| format!("10.77.0.{i}:7101")).collect();
    let mut cluster = Cluster::start_placed("netns", 50, &[], addresses, Some(tag.to_string()));
    let mut alice = cluster.alice_and_bob();
    send(&mut alice, "start", 3);
    let mut expected: Vec<String> = (0..3).map(|k| format!("start-{k}")).collect();

    // Kill two: the leader and the replica after it.
    let leader = cluster.leader().expect("a leader");
    let other = (leader + 1) % 5;
    cluster.kill(leader);
    cluster.kill(other);
    let t = Instant::now();
    send(&mut alice, "two-down", 1);
    eprintln!("{} and {} killed: first send acknowledged after {:?}", IDS[leader], IDS[other], t.elapsed());
    send(&mut alice, "two-down-more", 4);
    cluster.start_replica(leader);
    cluster.start_replica(other);
    send(&mut alice, "back", 3);
    expected.extend(["two-down-0".to_string()]);
    expected.extend((0..4).map(|k| format!("two-down-more-{k}")));
    expected.extend((0..3).map(|k| format!("back-{k}")));
    cluster.wait_converged(Duration::from_secs(60));

    // Partition: the leader and one follower on one side (they still reach each other),
    // the other three and the clients on the other.
    let leader = cluster.leader().expect("a leader");
    let follower = (leader + 2) % 5;
    netns(&["partition", tag, IDS[leader], IDS[follower]]).expect("partition");
    let t = Instant::now();
    send(&mut alice, "cut", 1);
    eprintln!("{} and {} cut off: first send acknowledged after {:?}", IDS[leader], IDS[follower], t.elapsed());
    send(&mut alice, "cut-more", 4);
    let during = cluster.digests();
    assert!(during[leader].is_none() && during[follower].is_none(), "the cut-off replicas answered: {during:?}");
    netns(&["heal", tag]).expect("heal");
    send(&mut alice, "healed", 3);
    expected.extend(["cut-0".to_string()]);
    expected.extend((0..4).map(|k| format!("cut-more-{k}")));
    expected.extend((0..3).map(|k| format!("healed-{k}")));
    let t = Instant::now();
    let (height, _) = cluster.wait_converged(Duration::from_secs(60));
    eprintln!("healed: all five at height {height} with one digest after {:?}", t.elapsed());
    assert_eq!(alice.run("logout")["type"], "result");
    drop(alice);
    assert_eq!(cluster.unread("bob"), expected, "bob's mail");
}
