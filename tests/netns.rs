//! Five replicas as five hosts: each in its own network namespace with its own address,
//! joined by bridges (`scripts/netns-cluster.sh`). Kill two, and partition the leader with
//! one follower away from the other three, then heal. Needs root; without it the test says
//! it is skipped and passes.
//!
//! A second test follows the README's "Several machines" steps through
//! `netns-cluster.sh demo`: a key made on each host, `init --from`, `quintet up` on each.
//!
//! The first test makes the namespaces, then runs itself again inside the clients' namespace
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

const README_TEST: &str = "the_readme_steps_for_several_machines_make_a_cluster_of_five_hosts";

/// Stops the demo (its `up` processes, by PID) and removes its namespaces when dropped.
struct Demo(PathBuf);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = netns(&["stop", &self.0.display().to_string()]);
    }
}

#[test]
fn the_readme_steps_for_several_machines_make_a_cluster_of_five_hosts() {
    if let Ok(dir) = std::env::var("QUINTET_NETNS_DEMO") {
        return chat_across_hosts(&PathBuf::from(dir));
    }
    let uid = Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).ok();
    if uid.as_deref() != Some("0") {
        eprintln!("skipped: network namespaces need root (run the tests as root to include this one)");
        return;
    }
    let dir = common::TempDir::new("netns-demo");
    let out = Command::new("bash").arg(script()).args(["demo"]).arg(&dir.0).env("QUINTET_BIN", common::bin()).output().unwrap();
    if !out.status.success() {
        let _ = netns(&["destroy", &std::fs::read_to_string(dir.0.join("tag")).unwrap_or_default().trim().to_string()]);
        eprintln!("skipped: network namespaces cannot be made here: {}", String::from_utf8_lossy(&out.stderr));
        return;
    }
    let demo = Demo(dir.0.clone());
    let tag = std::fs::read_to_string(dir.0.join("tag")).unwrap().trim().to_string();
    // Each host has its own key and nothing of the others'; the config names all five.
    for id in IDS {
        let host = dir.0.join(format!("host-{id}"));
        let keys: Vec<String> = std::fs::read_dir(&host).unwrap().filter_map(|e| e.ok()?.file_name().into_string().ok()).filter(|f| f.ends_with(".key")).collect();
        assert_eq!(keys, [format!("{id}.key")], "host {id}'s folder");
    }
    let status = Command::new("ip")
        .args(["netns", "exec", &format!("{tag}-client")])
        .arg(std::env::current_exe().unwrap())
        .args([README_TEST, "--exact", "--nocapture", "--test-threads", "1"])
        .env("QUINTET_NETNS_DEMO", &dir.0)
        .status()
        .expect("run the test inside the clients' namespace");
    // Each host's `up` started only its own replica and named the others as elsewhere.
    for id in IDS {
        let log = std::fs::read_to_string(dir.0.join(format!("host-{id}/up.log"))).unwrap_or_default();
        let started: Vec<&str> = log.lines().filter(|l| l.starts_with("started replica")).collect();
        assert!(started.len() == 1 && started[0].starts_with(&format!("started replica {id} ")), "host {id}'s up: {log}");
        assert!(log.contains("run on other hosts"), "host {id}'s up: {log}");
    }
    drop(demo);
    assert!(status.success(), "the run inside the namespaces failed (its output is above)");
}

/// In the clients' namespace: two users chat through the five hosts, and status sees five.
fn chat_across_hosts(dir: &std::path::Path) {
    // A client's copy of cluster.toml with a cheap password hash (the replicas never hash).
    let config = dir.join("client.toml");
    let text = std::fs::read_to_string(dir.join("cluster.toml")).unwrap().replace("memory_kib = 65536", "memory_kib = 64");
    std::fs::write(&config, text).unwrap();
    // The five `up`s start their replicas at their own pace: wait for all five.
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = || {
        let out = Command::new(common::bin()).args(["status", "--config"]).arg(dir.join("cluster.toml")).output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).to_string())
    };
    loop {
        let (ok, said) = status();
        if ok && said.contains("5 of 5 replicas up") {
            break;
        }
        assert!(Instant::now() < deadline, "the five hosts did not all come up: {said}");
        std::thread::sleep(Duration::from_millis(500));
    }
    let mut alice = common::Chat::start(&config, "alice", "pw", &["--timeout-ms", "20000"]);
    let mut bob = common::Chat::start(&config, "bob", "pw", &["--timeout-ms", "20000"]);
    assert_eq!(alice.run("create")["type"], "result");
    assert_eq!(bob.run("create")["type"], "result");
    for k in 0..3 {
        assert_eq!(alice.run(&format!("send bob across-{k}"))["type"], "result");
    }
    let history = bob.run("history alice");
    let texts: Vec<&str> = history["messages"].as_array().unwrap().iter().filter_map(|m| m["text"].as_str()).collect();
    assert_eq!(texts, ["across-0", "across-1", "across-2"], "{history}");
    let (ok, said) = status();
    assert!(ok && said.contains("5 of 5 replicas up"), "{said}");
    for (i, id) in IDS.iter().enumerate() {
        assert!(said.lines().any(|l| l.starts_with(id) && l.contains(&format!("10.77.0.{}:7101", i + 1))), "{said}");
    }
}
