//! Byzantine replicas for real: five `quintet replica` processes on loopback, one or two of
//! them started with `--byzantine MODE` (each mode alone, and the pairs the issue names).
//! Clients chat through them; what must hold: every acknowledged message arrives exactly
//! once and as sent, no client shows a wrong result or a false delivery, the honest
//! replicas' committed histories and states stay equal, and a censored user's requests
//! still commit (after the censoring leader is blamed and replaced).

mod common;

use std::time::{Duration, Instant};

use common::five::{Cluster, IDS};
use serde_json::Value;

const DELTA_MS: u64 = 50;
/// Messages alice sends bob, and bob alice, per run.
const TO_BOB: usize = 6;
const TO_ALICE: usize = 3;

/// What one run saw, for the fault matrix in NOTEBOOK.
struct Seen {
    acknowledged: usize,
    /// How long the first requests took: bob's and alice's accounts (a censor leading view
    /// 0 holds one of them back until it is blamed and replaced).
    first_requests: Duration,
    /// The longest time a later send took.
    slowest_send: Duration,
    height: u64,
    /// Checked proofs `quintet evidence` gathered: (accused, kind) pairs, each once.
    proven: Vec<(String, String)>,
    /// What each proof shows (`quintet evidence --json`'s "detail").
    details: Vec<String>,
    /// (reported by, peer, count): messages on a link that did not verify.
    unverifiable: Vec<(String, String, u64)>,
}

fn run(name: &str, byzantine: &[(usize, &str)]) -> Seen {
    run_with(name, byzantine, &[])
}

fn run_with(name: &str, byzantine: &[(usize, &str)], client_env: &[(&str, &str)]) -> Seen {
    let mut cluster = Cluster::start_byzantine(name, DELTA_MS, byzantine);
    cluster.client_env = client_env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let honest: Vec<usize> = (0..IDS.len()).filter(|i| byzantine.iter().all(|(b, _)| b != i)).collect();
    let statuses = cluster.statuses();
    for (i, modes) in byzantine {
        let status = statuses[*i].as_ref().expect("a Byzantine replica still answers its operator's status");
        assert_eq!(status.byzantine.join(","), *modes, "replica {} says what it is", IDS[*i]);
    }
    let started = Instant::now();
    let mut alice = cluster.alice_and_bob();
    let first_requests = started.elapsed();
    let mut slowest_send = Duration::ZERO;
    let mut ids = Vec::new();
    for k in 0..TO_BOB {
        let started = Instant::now();
        let sent = alice.run(&format!("send bob to bob {k}"));
        slowest_send = slowest_send.max(started.elapsed());
        assert_eq!(sent["type"], "result", "{name}: send {k}: {sent}");
        ids.push(sent["id"].as_u64().expect("a message id"));
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{name}: ids {ids:?}");

    // Bob logs in: the true unread count, then exactly alice's messages, once, as sent.
    let mut bob = cluster.chat("bob");
    let login = bob.run("login");
    assert_eq!(login["unread"].as_u64(), Some(TO_BOB as u64), "{name}: {login}");
    let read = bob.run("read 100");
    let messages = read["messages"].as_array().unwrap_or_else(|| panic!("{name}: read: {read}"));
    let got: Vec<(u64, String)> = messages.iter().map(|m| (m["id"].as_u64().unwrap(), m["text"].as_str().unwrap().to_owned())).collect();
    let want: Vec<(u64, String)> = ids.iter().enumerate().map(|(k, id)| (*id, format!("to bob {k}"))).collect();
    assert_eq!(got, want, "{name}: bob's mail");
    let who = bob.run("who");
    assert_eq!(who["names"], serde_json::json!(["alice", "bob"]), "{name}: {who}");

    // Bob writes back while alice is logged in: each arrives live, once, as sent.
    for k in 0..TO_ALICE {
        let started = Instant::now();
        let sent = bob.run(&format!("send alice to alice {k}"));
        slowest_send = slowest_send.max(started.elapsed());
        assert_eq!(sent["type"], "result", "{name}: {sent}");
    }
    let mut live = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while live.len() < TO_ALICE && Instant::now() < deadline {
        if let Some(v) = alice.next(Duration::from_secs(1)) {
            assert_ne!(v["type"], "result", "{name}: nothing was asked: {v}");
            if v["type"] == "delivery" {
                live.push(v["text"].as_str().unwrap().to_owned());
            }
        }
    }
    // Anything more (a false or repeated delivery) would come within a few Δ.
    while let Some(v) = alice.next(Duration::from_millis(20 * DELTA_MS)) {
        if v["type"] == "delivery" {
            live.push(v["text"].as_str().unwrap().to_owned());
        }
    }
    let want: Vec<String> = (0..TO_ALICE).map(|k| format!("to alice {k}")).collect();
    assert_eq!(live, want, "{name}: alice's live deliveries");
    let (status, rest) = bob.finish();
    assert_eq!(status, Some(0), "{name}: {rest:?}");
    let (status, rest) = alice.finish();
    assert_eq!(status, Some(0), "{name}: {rest:?}");
    let height = cluster.honest_converged(&honest, Duration::from_secs(30)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let common::Evidence { proven, details, unverifiable } = common::evidence(cluster.config()).unwrap_or_else(|e| panic!("{name}: {e}"));
    for (accused, kind) in &proven {
        let i = IDS.iter().position(|id| id == accused).expect("a replica of the cluster");
        assert!(byzantine.iter().any(|(b, _)| *b == i), "{name}: honest replica {accused} accused of {kind}: {proven:?}");
    }
    Seen { acknowledged: TO_BOB + TO_ALICE, first_requests, slowest_send, height, proven, details, unverifiable }
}

fn check(name: &str, byzantine: &[(usize, &str)]) -> Seen {
    let s = run(name, byzantine);
    println!(
        "{name}: {} messages acknowledged and delivered once; first requests {} ms, slowest later send {} ms; honest replicas equal at height {}; proofs against {:?}",
        s.acknowledged,
        s.first_requests.as_millis(),
        s.slowest_send.as_millis(),
        s.height,
        s.proven
    );
    s
}

#[test]
fn negative_control_a_client_that_takes_one_reply_shows_the_liars_results() {
    // The checks above must be able to fail: with the client's quorum planted down to one
    // reply, the two liars' answers are shown (a wrong unread count, wrong ids or texts).
    let caught = std::panic::catch_unwind(|| run_with("control", &[(3, "lie"), (4, "lie")], &[("QUINTET_PLANTED", "client-quorum-1")]));
    assert!(caught.is_err(), "a client that believes one reply must be caught showing a lie");
}

// One mode on one replica. Modes that act as leader run on A, which leads view 0.

#[test]
fn lie_alone() {
    // Its wrong results reach the clients beside three matching true ones: proofs.
    let seen = check("lie", &[(3, "lie")]);
    assert_eq!(seen.proven, vec![("D".to_owned(), "wrong results".to_owned())]);
}

#[test]
fn forge_alone() {
    // Forged signatures are no proof (anyone can make them): nothing accuses A, but the
    // honest replicas count what did not verify on A's link.
    let seen = check("forge", &[(0, "forge")]);
    assert!(seen.proven.is_empty(), "{:?}", seen.proven);
    let claims: Vec<String> = seen.unverifiable.iter().filter(|(_, peer, n)| peer == "A" && *n > 0).map(|(by, _, _)| by.clone()).collect();
    assert!(claims.len() >= 3, "the honest replicas say A's messages did not verify: {:?}", seen.unverifiable);
}

#[test]
fn equivocate_alone() {
    let seen = check("equivocate", &[(0, "equivocate")]);
    assert!(seen.proven.contains(&("A".to_owned(), "equivocation".to_owned())), "{:?}", seen.proven);
}

#[test]
fn mute_alone() {
    check("mute", &[(0, "mute")]);
}

#[test]
fn censor_alone() {
    // alice is censored by name; A leads view 0 and never orders her requests.
    check("censor", &[(0, "censor=alice")]);
}

#[test]
fn replay_alone() {
    check("replay", &[(2, "replay")]);
}

#[test]
fn garbage_alone() {
    check("garbage", &[(1, "garbage")]);
}

// Pairs: one mode on each of two replicas.

#[test]
fn lie_and_equivocate() {
    check("lie+equivocate", &[(0, "equivocate"), (1, "lie")]);
}

#[test]
fn forge_and_censor() {
    // The default censor: every other user; B leads the view after A's.
    check("forge+censor", &[(0, "forge"), (1, "censor")]);
}

#[test]
fn censor_then_equivocate_at_two_heights() {
    // A (view 0) holds alice's account back until it is blamed; B then leads view 1 and
    // equivocates with its first block: the twin is another first block of view 1 at
    // another height (over genesis), which honest replicas do not vote for and prove.
    let seen = check("censor+equivocate", &[(0, "censor=alice"), (1, "equivocate")]);
    assert!(seen.proven.contains(&("B".to_owned(), "equivocation".to_owned())), "{:?}", seen.proven);
    let heights = |d: &str| d.strip_prefix("view 1: blocks at heights ").and_then(|h| h.split_once(" and ")).map(|(a, b)| (a.to_owned(), b.to_owned()));
    let two_heights = seen.details.iter().filter_map(|d| heights(d)).any(|(a, b)| a != b);
    assert!(two_heights, "a proof of two first blocks at two heights: {:?}", seen.details);
}

#[test]
fn fork_and_fork() {
    // A (view 0) and B (view 1) collude: each, as leader, shows one block to C and its twin
    // to D and E, both vote for each block on its side only, and neither forwards, blames
    // or proves the other's equivocation. The honest replicas forward what they get, see
    // both blocks within Δ, and commit neither; each leader is replaced in turn.
    let seen = check("fork+fork", &[(0, "fork=B"), (1, "fork=A")]);
    assert!(seen.proven.contains(&("A".to_owned(), "equivocation".to_owned())), "{:?}", seen.proven);
}

#[test]
fn mute_and_replay() {
    check("mute+replay", &[(0, "mute"), (4, "replay")]);
}

#[test]
fn garbage_and_lie() {
    check("garbage+lie", &[(2, "garbage"), (3, "lie")]);
}

#[test]
fn everything_on_two_replicas() {
    check("all", &[(0, "lie,forge,equivocate,censor,replay,garbage"), (1, "lie,forge,equivocate,censor=bob,replay,garbage")]);
}

#[test]
fn two_liars_and_a_crashed_replica_give_no_result_and_a_clear_stop() {
    // Only two honest replicas are left: no three matching replies exist for the truth,
    // and the liars' two matching lies are not three either. The client shows no result,
    // says there is no quorum, and exits non-zero.
    let mut cluster = Cluster::start_byzantine("liars-and-a-crash", DELTA_MS, &[(3, "lie"), (4, "lie")]);
    let mut alice = cluster.alice_and_bob();
    assert_eq!(alice.run("send bob before the crash")["type"], "result");
    let (status, _) = alice.finish();
    assert_eq!(status, Some(0));
    cluster.kill(2);
    let mut alice = common::Chat::start(&cluster.config, "alice", "alice-pw", &["--timeout-ms", "3000"]);
    let mut seen = Vec::new();
    alice.send("login");
    while let Some(v) = alice.next(Duration::from_secs(20)) {
        seen.push(v);
    }
    let status = alice.proc.0.wait().unwrap();
    assert!(seen.iter().all(|v| v["type"] != "result"), "no result may be shown: {seen:?}");
    let stops: Vec<&Value> = seen.iter().filter(|v| v["type"] == "fatal").collect();
    assert_eq!(stops.len(), 1, "one clear line: {seen:?}");
    let message = stops[0]["message"].as_str().unwrap();
    assert!(message.starts_with("no quorum: 4 of 5 replicas answered, 3 alike needed"), "{message}");
    // It names who agreed with whom: the liars' matching answer is flagged against the
    // honest pair's.
    assert!(message.contains("D: answered at height ") && message.contains("(the same as E), unlike A, B"), "{message}");
    assert_ne!(status.code(), Some(0), "a non-zero exit");
}

#[test]
fn three_liars_are_believed_and_the_honest_answers_against_them_are_flagged() {
    // Beyond the promise, recorded (NOTEBOOK, "What three colluders can do"): C, D and E
    // sign the same wrong results, and three matching signed replies are all a client can
    // ask for. It shows their lie; what it can still see is that A and B signed another
    // answer, and it says so: they are named as differing, and the proofs it keeps now
    // accuse them (with three liars, a proof is only as good as its three signatures).
    let cluster = Cluster::start_byzantine("three-liars", DELTA_MS, &[(2, "lie"), (3, "lie"), (4, "lie")]);
    let mut alice = cluster.chat("alice");
    let created = alice.run("create");
    assert_eq!(created["code"], "lie", "the liars' made-up refusal is what is shown: {created}");
    let login = alice.run("login");
    assert_eq!(login["unread"].as_u64(), Some(7), "the liars' unread count (the truth is 0): {login}");
    let (status, _) = alice.finish();
    assert_ne!(status, Some(0));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let proven = common::evidence(cluster.config()).expect("evidence").proven;
        let accused: Vec<&str> = proven.iter().map(|(who, _)| who.as_str()).collect();
        if accused == ["A", "B"] {
            break;
        }
        assert!(Instant::now() < deadline, "the honest answers against the shown results are kept as proofs: {proven:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
