//! `scripts/demo.sh --check`: the five-terminal demo's steps, run unattended in a detached
//! tmux session on a private socket, each outcome verified by the script (exit 0 only when
//! all hold). Once with the line clients and once full screen (`--tui`, given before
//! `--check`: any position works). The script installs tmux where it is missing, kills what
//! it started by PID, and removes its folder.

mod common;

use std::process::Command;

fn check(args: &[&str]) {
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
    assert!(text.lines().filter(|l| l.starts_with("ok ")).count() >= 20, "every step reported:\n{text}");
    assert!(!text.contains("FAIL"), "{text}");
}

#[test]
fn the_demo_runs_unattended_with_every_outcome_checked() {
    let _turn = common::five::ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    check(&["--check"]);
    check(&["--tui", "--check"]);
}
