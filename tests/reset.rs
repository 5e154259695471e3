//! `reset.sh` with real processes: a stopped cluster after more than two faults is
//! recovered from the history that signed CHECKPOINTs prove, and serves again with every
//! message of it. Loopback, five replica processes, Δ = 50 ms; every process killed by PID.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::five::{Cluster, IDS};

const DELTA_MS: u64 = 50;

/// `./reset.sh ARGS` on the cluster's config, with the binary under test.
fn reset(cluster: &Cluster, args: &[&str]) -> Output {
    let root = env!("CARGO_MANIFEST_DIR");
    Command::new("bash")
        .arg(Path::new(root).join("reset.sh"))
        .arg("--config")
        .arg(cluster.config())
        .args(args)
        .env("QUINTET_BIN", common::bin())
        .output()
        .expect("run reset.sh")
}

/// `./reset.sh ARGS` that must succeed: its report.
fn reset_ok(cluster: &Cluster, args: &[&str]) -> String {
    let out = reset(cluster, args);
    let report = text(&out);
    eprintln!("{report}");
    assert_eq!(out.status.code(), Some(0), "{report}");
    report
}

/// A reset that must succeed and report `found` for each of `ids`; then the cluster serves
/// with exactly `sent` in bob's mail.
fn reset_and_serve(cluster: &mut Cluster, ids: &[&str], found: &str, sent: &[String]) {
    let report = reset_ok(cluster, &[]);
    for id in ids {
        assert!(row(&report, id).contains(found), "{report}");
    }
    start_all(cluster);
    serves_with(cluster, sent);
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// The report's line for replica `id`.
fn row<'a>(report: &'a str, id: &str) -> &'a str {
    report.lines().find(|l| l.split_whitespace().next() == Some(id)).unwrap_or_else(|| panic!("no row for {id}:\n{report}"))
}

/// alice sends `count` messages to bob, each acknowledged by a quorum.
fn send(alice: &mut common::Chat, prefix: &str, count: usize) -> Vec<String> {
    (0..count)
        .map(|k| {
            let text = format!("{prefix} {k}");
            let sent = alice.run(&format!("send bob {text}"));
            assert_eq!(sent["type"], "result", "{text}: {sent}");
            text
        })
        .collect()
}

/// Lets the last commit's CHECKPOINTs reach every replica's disk, then stops the cluster.
fn settle_and_stop(cluster: &mut Cluster) {
    cluster.wait_converged(Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(20 * DELTA_MS));
    cluster.stop_all();
}

fn start_all(cluster: &mut Cluster) {
    for i in 0..IDS.len() {
        cluster.start_replica(i);
    }
}

/// bob's mail holds exactly `expected`, in order, and the cluster takes a new message.
fn serves_with(cluster: &Cluster, expected: &[String]) {
    assert_eq!(cluster.unread("bob"), expected, "bob's mail after the reset");
    let mut alice = cluster.chat("alice");
    assert_eq!(alice.run("login")["type"], "result");
    assert_eq!(alice.run("send bob after the reset")["type"], "result");
}

/// The cluster (all five started) takes `count` more of alice's messages, then stops.
fn more_then_stop(cluster: &mut Cluster, prefix: &str, count: usize) -> Vec<String> {
    let mut alice = cluster.chat("alice");
    assert_eq!(alice.run("login")["type"], "result");
    let sent = send(&mut alice, prefix, count);
    drop(alice);
    settle_and_stop(cluster);
    sent
}

fn copy_dir(from: &Path, to: &Path) {
    let status = Command::new("cp").arg("-a").arg(from).arg(to).status().unwrap();
    assert!(status.success());
}

#[test]
fn three_wiped_replicas_are_reseeded_from_the_two_that_kept_the_history_and_a_second_run_changes_nothing() {
    let (mut cluster, mut alice) = Cluster::with_alice_and_bob("reset-wiped", DELTA_MS);
    // Past a stable checkpoint (every 100 blocks here): the history has an image.
    let sent = send(&mut alice, "kept", 110);
    drop(alice);

    // (5) While replicas run, reset refuses and changes nothing.
    let refused = reset(&cluster, &[]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(text(&refused).contains("refused: replica"), "{}", text(&refused));

    settle_and_stop(&mut cluster);
    for i in [2, 3, 4] {
        std::fs::remove_dir_all(cluster.data(i)).unwrap();
    }
    let before = std::fs::read_to_string(cluster.config()).unwrap();
    let report = reset_ok(&cluster, &[]);
    for id in ["C", "D", "E"] {
        assert!(row(&report, id).contains("no data"), "{report}");
    }
    for id in ["A", "B"] {
        assert!(!row(&report, id).contains("diverged"), "{report}");
    }
    assert!(report.contains("history kept: height") && report.contains("reset epoch 1"), "{report}");
    assert!(report.contains("backup: "), "{report}");
    let backup = Path::new(&format!("{}.backup-", cluster.config().display())).to_path_buf();
    let backups: Vec<_> = std::fs::read_dir(&cluster.dir.0).unwrap().filter_map(|e| e.ok()).map(|e| e.file_name().into_string().unwrap()).collect();
    assert!(backups.iter().any(|n| n.starts_with("A.backup-")), "{backups:?} ({})", backup.display());
    assert!(backups.iter().any(|n| n.starts_with("cluster.toml.backup-")), "{backups:?}");

    // (6) A second run on the result: nothing to do, no new epoch.
    let config = std::fs::read_to_string(cluster.config()).unwrap();
    assert_ne!(config, before);
    let again = reset(&cluster, &[]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(text(&again).contains("nothing to do"), "{}", text(&again));
    assert_eq!(std::fs::read_to_string(cluster.config()).unwrap(), config, "a second run changes cluster.toml");

    // A folder the reset left out (here a copy from before it) does not start under the
    // new cluster.toml.
    let a_backup = backups.iter().find(|n| n.starts_with("A.backup-")).unwrap();
    let reseeded = cluster.dir.0.join("C.reseeded");
    std::fs::rename(cluster.data(2), &reseeded).unwrap();
    copy_dir(&cluster.dir.0.join(a_backup), &cluster.data(2));
    let left_out = cluster.try_start_replica(2).unwrap_err();
    assert!(left_out.contains("holds data of reset epoch 0") && left_out.contains("reset.sh"), "{left_out}");
    std::fs::remove_dir_all(cluster.data(2)).unwrap();
    std::fs::rename(&reseeded, cluster.data(2)).unwrap();

    start_all(&mut cluster);
    serves_with(&cluster, &sent);

    // A client with the cluster.toml from before the reset is told what happened.
    let old = cluster.dir.0.join("old-cluster.toml");
    std::fs::write(&old, &before).unwrap();
    let mut stale = common::Chat::start(&old, "alice", "alice-pw", &["--timeout-ms", "10000"]);
    let refused = stale.run("login");
    assert!(refused.to_string().contains("was reset"), "{refused}");
    drop(stale);

    // After the reset, one replica's disk is replaced by an empty one: it is re-seeded in
    // place, in the same epoch, and cluster.toml does not change.
    cluster.stop_all();
    std::fs::remove_dir_all(cluster.data(4)).unwrap();
    let refused = cluster.try_start_replica(4).unwrap_err();
    assert!(refused.contains("reset.sh"), "{refused}");
    let config = std::fs::read_to_string(cluster.config()).unwrap();
    let refilled = reset(&cluster, &[]);
    assert_eq!(refilled.status.code(), Some(0), "{}", text(&refilled));
    assert!(text(&refilled).contains("re-seeded E in place") && text(&refilled).contains("epoch stays 1"), "{}", text(&refilled));
    assert_eq!(std::fs::read_to_string(cluster.config()).unwrap(), config, "refilling one folder changes no config");
    start_all(&mut cluster);
    cluster.kill(0);
    cluster.kill(1);
    assert_eq!(cluster.unread("bob"), vec!["after the reset".to_string()], "E, refilled, serves with C and D");
    cluster.start_replica(0);
    cluster.start_replica(1);

    // --wipe empties every folder (after a backup); a reset after it has nothing to do.
    // Unconfirmed (no `wipe` typed), it changes nothing.
    cluster.stop_all();
    let config = std::fs::read_to_string(cluster.config()).unwrap();
    let unconfirmed = reset(&cluster, &["--wipe"]);
    assert_eq!(unconfirmed.status.code(), Some(1), "{}", text(&unconfirmed));
    assert!(text(&unconfirmed).contains("type wipe to go on") && text(&unconfirmed).contains("not confirmed; nothing changed"), "{}", text(&unconfirmed));
    assert_eq!(std::fs::read_to_string(cluster.config()).unwrap(), config);
    let help = reset(&cluster, &["--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(["--keep REPLICA", "--unproven", "--wipe", "--dry-run", "several hosts"].iter().all(|w| text(&help).contains(w)), "{}", text(&help));
    let wiped = reset(&cluster, &["--wipe", "--yes"]);
    assert_eq!(wiped.status.code(), Some(0), "{}", text(&wiped));
    assert!(text(&wiped).contains("every replica emptied, reset epoch 2"), "{}", text(&wiped));
    let after = reset(&cluster, &[]);
    assert_eq!(after.status.code(), Some(0), "{}", text(&after));
    assert!(text(&after).contains("every folder is empty: nothing to recover"), "{}", text(&after));
    start_all(&mut cluster);
    let mut carol = cluster.chat("carol");
    assert_eq!(carol.run("create")["type"], "result", "a wiped cluster takes new accounts");
    let mut alice = cluster.chat("alice");
    assert_ne!(alice.run("login")["type"], "result", "alice's account went with the wipe");
}

#[test]
fn three_replicas_restored_from_an_older_backup_are_brought_to_the_proven_history() {
    let (mut cluster, mut alice) = Cluster::with_alice_and_bob("reset-old-backup", DELTA_MS);
    let mut sent = send(&mut alice, "early", 10);
    drop(alice);
    settle_and_stop(&mut cluster);
    let old = cluster.dir.0.join("old");
    std::fs::create_dir_all(&old).unwrap();
    for i in [2, 3, 4] {
        copy_dir(&cluster.data(i), &old.join(IDS[i]));
    }
    start_all(&mut cluster);
    sent.extend(more_then_stop(&mut cluster, "late", 10));
    for i in [2, 3, 4] {
        std::fs::remove_dir_all(cluster.data(i)).unwrap();
        copy_dir(&old.join(IDS[i]), &cluster.data(i));
    }
    reset_and_serve(&mut cluster, &["C", "D", "E"], "behind", &sent);
}

#[test]
fn a_corrupted_log_on_three_replicas_is_reported_and_reseeded() {
    let (mut cluster, mut alice) = Cluster::with_alice_and_bob("reset-corrupt", DELTA_MS);
    let sent = send(&mut alice, "whole", 10);
    drop(alice);
    settle_and_stop(&mut cluster);
    for i in [2, 3, 4] {
        for name in ["consensus.qlog", "consensus.mirror.qlog", "chain-00000000000000000001.qlog"] {
            let path = cluster.data(i).join(name);
            let mut bytes = std::fs::read(&path).unwrap();
            assert!(bytes.len() > 64, "{} is {} bytes", path.display(), bytes.len());
            bytes[20] ^= 0xff;
            std::fs::write(&path, bytes).unwrap();
        }
    }
    reset_and_serve(&mut cluster, &["C", "D", "E"], "damaged", &sent);
}

#[test]
fn two_conflicting_proven_histories_stop_the_reset_until_the_operator_keeps_one() {
    let (mut cluster, mut alice) = Cluster::with_alice_and_bob("reset-conflict", DELTA_MS);
    let common_part = send(&mut alice, "both", 5);
    drop(alice);
    settle_and_stop(&mut cluster);
    // The same five folders run twice from here: once writing "left", once "right".
    let fork = cluster.dir.0.join("fork");
    std::fs::create_dir_all(&fork).unwrap();
    for i in 0..IDS.len() {
        copy_dir(&cluster.data(i), &fork.join(IDS[i]));
    }
    start_all(&mut cluster);
    more_then_stop(&mut cluster, "left", 5);
    let left = cluster.dir.0.join("left");
    std::fs::create_dir_all(&left).unwrap();
    for i in [0, 1] {
        copy_dir(&cluster.data(i), &left.join(IDS[i]));
    }
    for i in 0..IDS.len() {
        std::fs::remove_dir_all(cluster.data(i)).unwrap();
        copy_dir(&fork.join(IDS[i]), &cluster.data(i));
    }
    start_all(&mut cluster);
    let mut right = common_part.clone();
    right.extend(more_then_stop(&mut cluster, "right", 7));
    // A and B hold the "left" history, C, D and E the "right" one: both proven.
    for i in [0, 1] {
        std::fs::remove_dir_all(cluster.data(i)).unwrap();
        copy_dir(&left.join(IDS[i]), &cluster.data(i));
    }
    let config = std::fs::read_to_string(cluster.config()).unwrap();
    let out = reset(&cluster, &[]);
    let report = text(&out);
    eprintln!("{report}");
    assert_eq!(out.status.code(), Some(2), "{report}");
    assert!(report.contains("two proven histories conflict"), "{report}");
    assert_eq!(std::fs::read_to_string(cluster.config()).unwrap(), config, "a refused reset changes nothing");

    let report = reset_ok(&cluster, &["--keep", "C"]);
    for id in ["A", "B"] {
        assert!(row(&report, id).contains("diverged at height"), "{report}");
    }
    start_all(&mut cluster);
    serves_with(&cluster, &right);
}

#[test]
fn folders_without_kept_proofs_keep_what_certificates_prove_and_unproven_keeps_the_rest() {
    // Folders of the release before proofs were kept hold no proofs.qlog: the newest
    // certified image is what is proven, the blocks above it are said and kept on request.
    let (mut cluster, mut alice) = Cluster::with_alice_and_bob("reset-unproven", DELTA_MS);
    let sent = send(&mut alice, "old", 110);
    drop(alice);
    settle_and_stop(&mut cluster);
    for i in 0..IDS.len() {
        let _ = std::fs::remove_file(cluster.data(i).join("proofs.qlog"));
    }
    for i in [2, 3, 4] {
        std::fs::remove_dir_all(cluster.data(i)).unwrap();
    }
    let dry = reset(&cluster, &["--dry-run"]);
    let report = text(&dry);
    eprintln!("{report}");
    assert_eq!(dry.status.code(), Some(0), "{report}");
    assert!(report.contains("proven by a state certificate"), "{report}");
    assert!(report.contains("that A, B hold committed") && report.contains("--keep A --unproven"), "{report}");

    let report = reset_ok(&cluster, &["--keep", "A", "--unproven"]);
    assert!(report.contains("kept unproven (--unproven)"), "{report}");
    start_all(&mut cluster);
    serves_with(&cluster, &sent);
}

#[test]
fn a_reset_stopped_half_way_is_finished_by_the_next_run() {
    let (mut cluster, mut alice) = Cluster::with_alice_and_bob("reset-half-way", DELTA_MS);
    let sent = send(&mut alice, "kept", 20);
    drop(alice);
    settle_and_stop(&mut cluster);
    for i in [2, 3, 4] {
        std::fs::remove_dir_all(cluster.data(i)).unwrap();
    }
    let root = env!("CARGO_MANIFEST_DIR");
    let stopped = Command::new("bash")
        .arg(Path::new(root).join("reset.sh"))
        .arg("--config")
        .arg(cluster.config())
        .env("QUINTET_BIN", common::bin())
        .env("QUINTET_PLANTED", "reset-stops-half-way")
        .output()
        .unwrap();
    assert_eq!(stopped.status.code(), Some(1), "{}", text(&stopped));
    // The config says epoch 1; B, not yet re-seeded, refuses to start under it.
    let refused = cluster.try_start_replica(1).unwrap_err();
    assert!(refused.contains("holds data of reset epoch 0") && refused.contains("reset.sh"), "{refused}");
    let again = reset(&cluster, &[]);
    let report = text(&again);
    eprintln!("{report}");
    assert_eq!(again.status.code(), Some(0), "{report}");
    assert!(report.contains("finished the reset to epoch 1 that stopped half-way"), "{report}");
    assert!(report.contains("nothing to do"), "{report}");
    start_all(&mut cluster);
    serves_with(&cluster, &sent);
}

#[test]
fn blocks_above_the_proven_history_that_two_folders_hold_differently_make_a_reset_not_nothing_to_do() {
    // Folders without proofs (the release before proofs were kept): a certified image
    // proves the common part. Above it A holds one continuation and B another, C, D and E
    // sit at the fork point. Started as they are, one side would win and the other's
    // holder would be stuck and accused; the reset keeps the proven history instead.
    let (mut cluster, mut alice) = Cluster::with_alice_and_bob("reset-unproven-fork", DELTA_MS);
    let both = send(&mut alice, "both", 110);
    drop(alice);
    settle_and_stop(&mut cluster);
    let saved = |cluster: &Cluster, name: &str, ids: &[usize]| {
        let to = cluster.dir.0.join(name);
        std::fs::create_dir_all(&to).unwrap();
        for i in ids {
            copy_dir(&cluster.data(*i), &to.join(IDS[*i]));
        }
        to
    };
    let restore = |cluster: &Cluster, from: &Path, ids: &[usize]| {
        for i in ids {
            std::fs::remove_dir_all(cluster.data(*i)).unwrap();
            copy_dir(&from.join(IDS[*i]), &cluster.data(*i));
        }
    };
    let fork = saved(&cluster, "fork", &[0, 1, 2, 3, 4]);
    start_all(&mut cluster);
    more_then_stop(&mut cluster, "left", 5);
    let left = saved(&cluster, "left", &[0]);
    restore(&cluster, &fork, &[0, 1, 2, 3, 4]);
    start_all(&mut cluster);
    more_then_stop(&mut cluster, "right", 7);
    restore(&cluster, &left, &[0]);
    restore(&cluster, &fork, &[2, 3, 4]);
    for i in 0..IDS.len() {
        let _ = std::fs::remove_file(cluster.data(i).join("proofs.qlog"));
    }

    let report = reset_ok(&cluster, &[]);
    assert!(report.contains("A's and B's blocks above the kept history differ from height"), "{report}");
    assert!(report.contains("re-seeded"), "{report}");
    start_all(&mut cluster);
    cluster.wait_converged(Duration::from_secs(30));
    let mail = cluster.unread("bob");
    assert!(!mail.is_empty() && both.starts_with(&mail), "bob's mail is the proven common part: {mail:?}");
}
