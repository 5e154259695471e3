//! The nemesis run: five real replicas, clients that send and read at once, and a seeded
//! nemesis that SIGKILLs, pauses (SIGSTOP/SIGCONT) and restarts replicas, never more than
//! two faulty at once. The run ends with a power cut (all five SIGKILLed at one instant,
//! then restarted, while the clients go on), and a checker goes over everything the clients
//! saw. `QUINTET_NEMESIS_SEED` and `QUINTET_NEMESIS_SECS` replay or lengthen a run.
//!
//! A second run has two Byzantine replicas (`--byzantine`: lying to clients, equivocating
//! as leader, replaying, forging, sending garbage) while the nemesis kills, pauses and
//! restarts the honest ones, one at a time: three faults at those moments, beyond what the
//! cluster promises to serve through (clients wait for the honest one to come back), but
//! never beyond what it keeps safe (NOTEBOOK, S13: R2 with honest restarts). Nothing
//! acknowledged may be lost, no wrong result shown, and the honest replicas converge.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Barrier};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::Chat;
use common::five::{Cluster, IDS};
use serde_json::Value;

const CLIENTS: usize = 4;

/// splitmix64: the nemesis's choices, from its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n
    }
}

#[derive(Clone, Debug)]
struct Msg {
    id: u64,
    from: String,
    text: String,
}

fn msg(v: &Value) -> Msg {
    Msg { id: v["id"].as_u64().unwrap(), from: v["from"].as_str().unwrap().into(), text: v["text"].as_str().unwrap().into() }
}

/// What one client saw.
#[derive(Default, Debug)]
struct Seen {
    user: String,
    to: String,
    attempted: BTreeSet<String>,
    /// Acknowledged sends: (text, message id, height).
    acked: Vec<(String, u64, u64)>,
    /// Heights of every agreed result, in the order they came.
    heights: Vec<u64>,
    read: Vec<Msg>,
    delivered: Vec<Msg>,
    failed: Vec<String>,
    failed_reads: usize,
}

impl Seen {
    /// Runs one command; live deliveries that come first are recorded.
    fn command(&mut self, chat: &mut Chat, line: &str) -> Option<Value> {
        if !chat.try_send(line) {
            self.failed.push(format!("{line}: the client had exited"));
            return None;
        }
        loop {
            let v = chat.next(Duration::from_secs(45))?;
            if v["type"] == "delivery" {
                self.delivered.push(msg(&v));
                continue;
            }
            if v["type"] == "result" {
                self.heights.push(v["height"].as_u64().unwrap());
            } else {
                self.failed.push(format!("{line}: {v}"));
            }
            return Some(v);
        }
    }

    /// `read`, recording what came; false when it got no agreed answer (the messages it
    /// may have marked read are then unknown).
    fn read(&mut self, chat: &mut Chat) -> Option<u64> {
        match self.command(chat, "read 50") {
            Some(v) if v["type"] == "result" => {
                self.read.extend(v["messages"].as_array().unwrap().iter().map(msg));
                v["unread_left"].as_u64()
            }
            _ => {
                self.failed_reads += 1;
                None
            }
        }
    }
}

fn client(config: PathBuf, user: String, to: String, stop: Arc<AtomicBool>, stopped: Arc<Barrier>) -> Seen {
    let mut seen = Seen { user: user.clone(), to: to.clone(), ..Seen::default() };
    let mut chat = Chat::start(&config, &user, &format!("{user}-pw"), &["--timeout-ms", "30000"]);
    if seen.command(&mut chat, "login").is_none_or(|v| v["type"] != "result") {
        stopped.wait();
        return seen;
    }
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let text = format!("{user}-{i}");
        seen.attempted.insert(text.clone());
        match seen.command(&mut chat, &format!("send {to} {text}")) {
            Some(v) if v["type"] == "result" => seen.acked.push((text, v["id"].as_u64().unwrap(), v["height"].as_u64().unwrap())),
            Some(_) => {}
            None => break,
        }
        if i % 4 == 0 {
            seen.read(&mut chat);
        }
    }
    // Drain once every client has stopped sending: everything still unread (bounded).
    stopped.wait();
    for _ in 0..200 {
        if seen.read(&mut chat) == Some(0) {
            break;
        }
    }
    seen
}

fn seq_of(text: &str) -> u64 {
    text.rsplit('-').next().and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// The checker over the client-visible history; returns the violations.
fn check(all: &[Seen]) -> Vec<String> {
    let mut bad = Vec::new();
    let attempted: BTreeMap<&str, &BTreeSet<String>> = all.iter().map(|s| (s.user.as_str(), &s.attempted)).collect();
    for s in all {
        if s.heights.windows(2).any(|w| w[0] >= w[1]) {
            let at = s.heights.windows(2).position(|w| w[0] >= w[1]).unwrap_or(0);
            bad.push(format!("{}: agreed heights do not increase: {:?}", s.user, &s.heights[at..(at + 2).min(s.heights.len())]));
        }
        let ids: Vec<u64> = s.delivered.iter().map(|m| m.id).collect();
        if ids.windows(2).any(|w| w[0] >= w[1]) {
            let at = ids.windows(2).position(|w| w[0] >= w[1]).unwrap_or(0);
            bad.push(format!("{}: live deliveries out of commit order or repeated: {:?}", s.user, &ids[at..(at + 2).min(ids.len())]));
        }
        let mut reads = BTreeSet::new();
        let mut by_id: BTreeMap<u64, (&str, &str)> = BTreeMap::new();
        for m in s.read.iter().chain(&s.delivered) {
            if !attempted.get(m.from.as_str()).is_some_and(|a| a.contains(&m.text)) {
                bad.push(format!("{}: message {} from {} ({:?}) was never sent", s.user, m.id, m.from, m.text));
            }
            if let Some(other) = by_id.insert(m.id, (&m.from, &m.text))
                && other != (m.from.as_str(), m.text.as_str())
            {
                bad.push(format!("{}: message id {} shown as {:?} and as {:?}", s.user, m.id, other, (&m.from, &m.text)));
            }
        }
        for m in &s.read {
            if !reads.insert(m.id) {
                bad.push(format!("{}: message {} read twice", s.user, m.id));
            }
        }
        let mut texts: BTreeMap<&str, BTreeSet<u64>> = BTreeMap::new();
        for (id, (_, text)) in &by_id {
            texts.entry(text).or_default().insert(*id);
        }
        for (text, ids) in &texts {
            if ids.len() > 1 {
                bad.push(format!("{}: {text:?} is in the mailbox {} times ({ids:?})", s.user, ids.len()));
            }
        }
        // Per-sender order: ids and sequence numbers rise together.
        let mut from: BTreeMap<&str, Vec<(u64, u64)>> = BTreeMap::new();
        for (id, (sender, text)) in &by_id {
            from.entry(sender).or_default().push((*id, seq_of(text)));
        }
        for (sender, list) in from {
            if list.windows(2).any(|w| w[0].1 >= w[1].1) {
                bad.push(format!("{}: {sender}'s messages out of order: {list:?}", s.user));
            }
        }
    }
    // Every acknowledged send is in its recipient's mailbox, once, with its id.
    for s in all {
        let recipient = all.iter().find(|r| r.user == s.to).expect("a client per user");
        let shown: BTreeMap<u64, &Msg> = recipient.read.iter().chain(&recipient.delivered).map(|m| (m.id, m)).collect();
        for (text, id, height) in &s.acked {
            match shown.get(id) {
                Some(m) if m.text == *text && m.from == s.user => {}
                Some(m) => bad.push(format!("{} acknowledged {text:?} as id {id}, but {} has id {id} = {:?}", s.user, s.to, m.text)),
                None if recipient.failed_reads > 0 => {} // a read with no answer may have taken it
                None => bad.push(format!("{} acknowledged {text:?} (id {id}, height {height}); {} never saw it", s.user, s.to)),
            }
        }
    }
    // Ids follow commit order across clients.
    let mut acked: Vec<(u64, u64)> = all.iter().flat_map(|s| s.acked.iter().map(|(_, id, h)| (*h, *id))).collect();
    acked.sort();
    if acked.windows(2).any(|w| w[0].0 < w[1].0 && w[0].1 >= w[1].1) {
        bad.push("message ids do not follow the commit heights".into());
    }
    bad
}

/// Runs the nemesis for `secs`; returns the violations (empty when the run was clean) and a
/// summary line.
fn nemesis(seed: u64, secs: u64, env: &[(&str, &str)]) -> (Vec<String>, String) {
    nemesis_with(seed, secs, env, &[])
}

/// The nemesis with `byzantine` replicas (index, modes): it then only ever makes one
/// honest replica faulty at a time.
fn nemesis_with(seed: u64, secs: u64, env: &[(&str, &str)], byzantine: &[(usize, &str)]) -> (Vec<String>, String) {
    let mut cluster = Cluster::start_byzantine_with("nemesis", 20, env, byzantine);
    let honest: Vec<usize> = (0..5).filter(|i| byzantine.iter().all(|(b, _)| b != i)).collect();
    let most_faulty = if byzantine.is_empty() { 2 } else { 1 };
    let mut proofs = String::new();
    let users: Vec<String> = (0..CLIENTS).map(|u| format!("n{u}")).collect();
    for user in &users {
        let mut c = cluster.chat(user);
        assert_eq!(c.run("create")["type"], "result", "create {user}");
        assert_eq!(c.run("logout")["type"], "result");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::new(Barrier::new(CLIENTS));
    let threads: Vec<_> = (0..CLIENTS)
        .map(|u| {
            let (config, user, to) = (cluster.config().to_path_buf(), users[u].clone(), users[(u + 1) % CLIENTS].clone());
            let (stop, stopped) = (stop.clone(), stopped.clone());
            std::thread::spawn(move || client(config, user, to, stop, stopped))
        })
        .collect();
    let mut rng = Rng(seed);
    let (mut killed, mut paused) = (BTreeSet::new(), BTreeSet::new());
    let mut actions = Vec::new();
    let mut bad = Vec::new();
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(300 + rng.below(1_700)));
        let faulty = killed.len() + paused.len();
        let live: Vec<usize> = honest.iter().copied().filter(|i| !killed.contains(i) && !paused.contains(i)).collect();
        let roll = rng.below(100);
        if faulty > 0 && (faulty == most_faulty || roll < 35) {
            let all: Vec<usize> = killed.iter().chain(&paused).copied().collect();
            let i = all[rng.below(all.len() as u64) as usize];
            if paused.remove(&i) {
                cluster.signal(i, "-CONT");
                actions.push(format!("resume {}", IDS[i]));
            } else {
                killed.remove(&i);
                if let Err(e) = cluster.try_start_replica(i) {
                    bad.push(e);
                    break;
                }
                actions.push(format!("restart {}", IDS[i]));
            }
        } else if roll < 75 {
            let i = live[rng.below(live.len() as u64) as usize];
            cluster.kill(i);
            killed.insert(i);
            actions.push(format!("kill {}", IDS[i]));
        } else {
            let i = live[rng.below(live.len() as u64) as usize];
            cluster.signal(i, "-STOP");
            paused.insert(i);
            actions.push(format!("pause {}", IDS[i]));
        }
    }
    for i in std::mem::take(&mut paused) {
        cluster.signal(i, "-CONT");
    }
    for i in std::mem::take(&mut killed) {
        if let Err(e) = cluster.try_start_replica(i) {
            bad.push(e);
        }
    }
    // The power cut: all five at one instant, while the clients send.
    std::thread::sleep(Duration::from_secs(2));
    for i in 0..5 {
        if cluster.replicas[i].is_some() {
            cluster.kill(i);
        }
    }
    actions.push("power cut".into());
    for i in 0..5 {
        if let Err(e) = cluster.try_start_replica(i) {
            bad.push(e);
        }
    }
    // Long enough for every client to get commands through the restarted cluster: what a
    // lost tail does shows there (heights going back, ids given twice).
    std::thread::sleep(Duration::from_secs(8));
    stop.store(true, Ordering::Relaxed);
    let seen: Vec<Seen> = threads.into_iter().map(|t| t.join().expect("a client thread")).collect();
    bad.extend(check(&seen));
    // With never more than two replicas faulty, every command gets an agreed answer.
    bad.extend(seen.iter().flat_map(|s| s.failed.iter().map(move |f| format!("{}: no agreed answer: {f}", s.user))));
    if bad.is_empty() && cluster.replicas.iter().all(|r| r.is_some()) {
        if byzantine.is_empty() {
            let converged = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cluster.wait_converged(Duration::from_secs(60))));
            if converged.is_err() {
                bad.push(format!("the five did not converge: {:?}", cluster.digests()));
            }
        } else {
            bad.extend(cluster.honest_converged(&honest, Duration::from_secs(60)).err());
            // Proofs, if any, accuse only the Byzantine replicas.
            match common::evidence(cluster.config()) {
                Err(e) => bad.push(e),
                Ok(common::Evidence { proven, .. }) => {
                    proofs = proven.iter().map(|(who, kind)| format!("{who}: {kind}")).collect::<Vec<_>>().join(", ");
                    let framed = proven.iter().filter(|(who, _)| honest.iter().any(|i| IDS[*i] == who.as_str()));
                    bad.extend(framed.map(|(who, kind)| format!("honest replica {who} accused of {kind}")));
                }
            }
        }
    }
    let acked: usize = seen.iter().map(|s| s.acked.len()).sum();
    let read: usize = seen.iter().map(|s| s.read.len() + s.delivered.len()).sum();
    let failed: usize = seen.iter().map(|s| s.failed.len()).sum();
    let summary = format!(
        "seed {seed}, {secs} s: {} nemesis actions ({} kills, {} pauses), {acked} sends acknowledged, {read} messages seen by recipients, {failed} commands without an agreed answer",
        actions.len(),
        actions.iter().filter(|a| a.starts_with("kill")).count(),
        actions.iter().filter(|a| a.starts_with("pause")).count(),
    ) + &if proofs.is_empty() { String::new() } else { format!("; proofs against {proofs}") };
    if !bad.is_empty() {
        eprintln!("nemesis actions: {actions:?}");
        for s in &seen {
            eprintln!("{}: failed {:?}", s.user, s.failed);
        }
    }
    (bad, summary)
}

fn seed_and_secs(default_secs: u64) -> (u64, u64) {
    let seed = std::env::var("QUINTET_NEMESIS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
    });
    let secs = std::env::var("QUINTET_NEMESIS_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(default_secs);
    (seed, secs)
}

#[test]
fn nemesis_kills_pauses_and_a_power_cut_lose_nothing_acknowledged() {
    let (seed, secs) = seed_and_secs(75);
    println!("nemesis seed {seed} (QUINTET_NEMESIS_SEED={seed} replays its choices)");
    let (bad, summary) = nemesis(seed, secs, &[]);
    println!("{summary}");
    assert!(bad.is_empty(), "{summary}\n{}", bad.join("\n"));
}

#[test]
fn nemesis_with_two_byzantine_replicas_kills_pauses_and_restarts_the_honest_ones() {
    let (seed, secs) = seed_and_secs(40);
    println!("byzantine nemesis seed {seed} (QUINTET_NEMESIS_SEED={seed} replays its choices)");
    let (bad, summary) = nemesis_with(seed, secs, &[], &[(3, "lie,equivocate,replay"), (4, "lie,forge,garbage")]);
    println!("{summary}");
    assert!(bad.is_empty(), "{summary}\n{}", bad.join("\n"));
}

/// The plant loses what sits in the replicas' write buffers at the power cut; now and then
/// (once in the nine 20 s runs of 2026-11-22 and 2026-12-01) it held nothing a client was told: the
/// run showed nothing. So up to three runs, on consecutive seeds: the control fails only
/// if none of them is caught.
#[test]
fn nemesis_negative_control_replicas_that_acknowledge_before_fsync_are_caught() {
    let (seed, _) = seed_and_secs(0);
    let mut summaries = Vec::new();
    for attempt in 0..3 {
        let (bad, summary) = nemesis(seed.wrapping_add(attempt), 20, &[("QUINTET_PLANTED", "ack-before-fsync")]);
        println!("planted ack-before-fsync: {summary}; {} violation(s), first: {:?}", bad.len(), bad.first());
        if !bad.is_empty() {
            return;
        }
        summaries.push(summary);
    }
    panic!("the checker must catch acknowledgements before fsync; three runs showed nothing:\n{}", summaries.join("\n"));
}
