//! `quintet up` on a fresh folder: makes keys and cluster.toml, starts the replica, shows it
//! up, serves a chat, and on Ctrl-C (SIGINT) stops it cleanly; a second run reuses the files.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, Proc, TempDir, line_reader};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_for(lines: &std::sync::mpsc::Receiver<String>, seen: &mut Vec<String>, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(line) = lines.recv_timeout(Duration::from_millis(200)) {
            let found = line.contains(what);
            seen.push(line);
            if found {
                return;
            }
        }
    }
    panic!("no line with {what:?}; saw:\n{}", seen.join("\n"));
}

fn up(dir: &std::path::Path, port: u16) -> (Proc, std::sync::mpsc::Receiver<String>) {
    let mut child = Command::new(BIN)
        .args(["up", "--dir"])
        .arg(dir)
        .args(["--base-port", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = line_reader(child.stdout.take().unwrap());
    (Proc(child), lines)
}

fn interrupt(proc: &mut Proc, lines: &std::sync::mpsc::Receiver<String>, seen: &mut Vec<String>) {
    let pid = proc.0.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    wait_for(lines, seen, "A: stopped");
    let deadline = Instant::now() + Duration::from_secs(30);
    while proc.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "up did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn up_creates_starts_shows_and_stops_a_cluster() {
    let dir = TempDir::new("up");
    let data = dir.0.join("d");
    let port = free_port();
    let (mut proc, lines) = up(&data, port);
    let mut seen = Vec::new();
    wait_for(&lines, &mut seen, "created");
    wait_for(&lines, &mut seen, "A: up, leader in view 0, height 0");
    let config = data.join("cluster.toml");
    assert!(data.join("A.key").exists() && config.exists());
    // Cheap key derivation for the test's chat (the replica does not use it).
    let text = std::fs::read_to_string(&config).unwrap().replace("memory_kib = 65536", "memory_kib = 64");
    std::fs::write(&config, text).unwrap();
    let mut alice = common::Chat::start(&config, "alice", "pw", &[]);
    assert_eq!(alice.run("create")["type"], "result");
    drop(alice);
    wait_for(&lines, &mut seen, "1 accounts");
    interrupt(&mut proc, &lines, &mut seen);

    // Second run: same keys and config, and the account is still there.
    let key_before = std::fs::read(data.join("A.key")).unwrap();
    let (mut proc, lines) = up(&data, port);
    let mut seen = Vec::new();
    wait_for(&lines, &mut seen, "1 accounts");
    assert!(seen.iter().all(|l| !l.contains("created")), "{seen:?}");
    assert_eq!(std::fs::read(data.join("A.key")).unwrap(), key_before);
    interrupt(&mut proc, &lines, &mut seen);
}
