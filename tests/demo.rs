//! `scripts/demo.sh --check`: the five-terminal demo's steps, run unattended in a detached
//! tmux session on a private socket, each outcome verified by the script (exit 0 only when
//! all hold). Once with the line clients and once full screen (`--tui`, given before
//! `--check`: any position works). The script installs tmux where it is missing, kills what
//! it started by PID, and removes its folder.

mod common;

use std::process::Command;

fn check(args: &[&str]) -> String {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/demo.sh");
    let out = Command::new("bash")
        .arg(&script)
        .args(args)
        .env("QUINTET_BIN", common::bin())
        .env("DEMO_DELTA_MS", "50")
        .output()
        .expect("run scripts/demo.sh");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("{text}");
    assert_eq!(out.status.code(), Some(0), "demo.sh {args:?} failed:\n{text}");
    assert!(!text.contains("FAIL"), "{text}");
    text
}

fn steps(text: &str) -> usize {
    text.lines().filter(|l| l.starts_with("ok ")).count()
}

#[test]
fn the_demo_runs_unattended_with_every_outcome_checked() {
    let _turn = common::five::ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    for args in [&["--check"][..], &["--tui", "--check"]] {
        let text = check(args);
        assert_eq!(steps(&text), 20, "every step reported:\n{text}");
    }
}

/// The README's demo across hosts: this host runs A, B and C (their keys are in the demo's
/// folder), "another host" (a second folder with D's and E's keys and the same
/// cluster.toml) runs D and E. The demo's panes follow D and E; its kills, liars and
/// restarts use this host's replicas; the reset, which needs every folder on one host, is
/// left out and said so.
#[test]
fn the_demo_runs_with_two_replicas_on_another_host() {
    let _turn = common::five::ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = common::TempDir::new("demo-hosts");
    let demo = dir.0.join("demo");
    let init = Command::new(common::bin()).args(["init", "--dir"]).arg(&demo).args(["--delta-ms", "50"]).output().expect("init");
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let config = demo.join("cluster.toml");
    let cheap = std::fs::read_to_string(&config).unwrap().replace("memory_kib = 65536", "memory_kib = 64").replace("iterations = 3", "iterations = 1");
    std::fs::write(&config, cheap).unwrap();
    let other = dir.0.join("other-host");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::copy(&config, other.join("cluster.toml")).unwrap();
    let mut replicas = Vec::new();
    for id in ["D", "E"] {
        std::fs::rename(demo.join(format!("{id}.key")), other.join(format!("{id}.key"))).unwrap();
        let child = Command::new(common::bin())
            .args(["replica", "--id", id, "--config"])
            .arg(other.join("cluster.toml"))
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(other.join(format!("{id}.log"))).unwrap())
            .spawn()
            .expect("start a replica");
        replicas.push(common::Proc(child));
    }
    let text = check(&["--check", demo.to_str().unwrap()]);
    assert!(text.contains("replicas A B C run here"), "{text}");
    assert!(text.contains("skip  the reset"), "{text}");
    assert_eq!(steps(&text), 17, "every step but the reset's three:\n{text}");
    drop(replicas);
}
