//! `quintet up` on a fresh folder: makes keys and cluster.toml, starts five replicas on free
//! ports, shows them up, serves a chat, and on Ctrl-C (SIGINT) stops them cleanly; a second
//! run reuses the files. `init` alone, `up` failing with the reason, `status --json`.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Proc, TempDir, bin, line_reader};

/// The PIDs of a process's children (from /proc: by PID, never by name).
fn children_of(pid: u32) -> Vec<u32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    text.split_whitespace().filter_map(|p| p.parse().ok()).collect()
}

/// Waits for a line containing `what` (lines seen on the way are kept in `seen`).
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

fn up(dir: &std::path::Path) -> (Proc, std::sync::mpsc::Receiver<String>) {
    up_with(&bin(), dir)
}

fn up_with(program: &str, dir: &std::path::Path) -> (Proc, std::sync::mpsc::Receiver<String>) {
    let mut child = Command::new(program)
        .args(["up", "--dir"])
        .arg(dir)
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
    let (mut proc, lines) = up(&data);
    let mut seen = Vec::new();
    wait_for(&lines, &mut seen, "created");
    // One line per change, in whatever order the replicas came up: each replica once, the
    // leader once.
    let expected = ["A: up, leader", "B: up, follower", "E: up, follower", "leader: A in view 0"];
    while !expected.iter().all(|e| seen.iter().any(|l| l == e)) {
        let waiting = expected.iter().find(|e| !seen.iter().any(|l| l == *e)).unwrap();
        wait_for(&lines, &mut seen, waiting);
    }
    // Replicas still starting are not called down (a stranger's try read "down (connection
    // refused)" for the first second).
    assert!(seen.iter().all(|l| !l.contains(": down")), "{seen:?}");
    // A second `up` in the folder says so before starting anything.
    let again = Command::new(bin()).args(["up", "--dir"]).arg(&data).output().unwrap();
    let said = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success() && said.contains(&format!("a cluster already runs here (pid {}", proc.0.id())), "{said}");
    // The operator's table, beside the keys: one leader, the PIDs, nobody behind.
    let status = Command::new(bin()).args(["status", "--config"]).arg(data.join("cluster.toml")).output().unwrap();
    let table = String::from_utf8_lossy(&status.stdout).to_string();
    assert!(status.status.success(), "{table}");
    let leaders = table.lines().filter(|l| l.split_whitespace().nth(4) == Some("leader")).count();
    assert!(table.starts_with("REPLICA  ADDRESS") && leaders == 1, "{table}");
    assert!(table.lines().nth(1).is_some_and(|row| row.split_whitespace().nth(2).is_some_and(|pid| pid.parse::<u32>().is_ok())), "a PID: {table}");
    assert!(table.contains("5 of 5 replicas up, 3 needed: leader A in view 0"), "{table}");
    let config = data.join("cluster.toml");
    assert!(data.join("A.key").exists() && config.exists());
    // Cheap key derivation for the test's chat (the replica does not use it).
    let text = std::fs::read_to_string(&config).unwrap().replace("memory_kib = 65536", "memory_kib = 64");
    std::fs::write(&config, text).unwrap();
    let mut alice = common::Chat::start(&config, "alice", "pw", &[]);
    assert_eq!(alice.run("create")["type"], "result");
    drop(alice);
    wait_for(&lines, &mut seen, "1 account,");
    // A replica that dies is shown with the end of its log and restarted.
    let replicas = children_of(proc.0.id());
    assert_eq!(replicas.len(), 5, "{replicas:?}");
    assert!(Command::new("kill").args(["-KILL", &replicas[2].to_string()]).status().unwrap().success());
    wait_for(&lines, &mut seen, "C: exited");
    wait_for(&lines, &mut seen, "C: restarting in 1s");
    wait_for(&lines, &mut seen, "C: restarted");
    interrupt(&mut proc, &lines, &mut seen);

    // Second run: same keys and config, and the account is still there.
    let key_before = std::fs::read(data.join("A.key")).unwrap();
    let (mut proc, lines) = up(&data);
    let mut seen = Vec::new();
    wait_for(&lines, &mut seen, "1 account,");
    assert!(seen.iter().all(|l| !l.contains("created")), "{seen:?}");
    assert_eq!(std::fs::read(data.join("A.key")).unwrap(), key_before);
    interrupt(&mut proc, &lines, &mut seen);
}

#[test]
fn a_replica_that_cannot_be_restarted_leaves_the_others_serving_and_is_tried_again() {
    // `up` run from a copy of the program, which then disappears (as when a rebuild
    // replaces it): the restart fails, `up` says so and keeps the four others, and once
    // the program is back the replica is restarted.
    let dir = TempDir::new("up-restart");
    let program = dir.0.join("quintet");
    std::fs::copy(bin(), &program).unwrap();
    let (mut proc, lines) = up_with(program.to_str().unwrap(), &dir.0.join("d"));
    let mut seen = Vec::new();
    wait_for(&lines, &mut seen, "E: up, follower");
    std::fs::remove_file(&program).unwrap();
    let replicas = children_of(proc.0.id());
    assert!(Command::new("kill").args(["-KILL", &replicas[2].to_string()]).status().unwrap().success());
    wait_for(&lines, &mut seen, "C: cannot restart");
    assert!(proc.0.try_wait().unwrap().is_none(), "up is still running");
    assert_eq!(children_of(proc.0.id()).len(), 4);
    // The four serve a chat meanwhile (cheap key derivation for the test's client).
    let config = dir.0.join("d/cluster.toml");
    let text = std::fs::read_to_string(&config).unwrap().replace("memory_kib = 65536", "memory_kib = 64");
    std::fs::write(&config, text).unwrap();
    let mut alice = common::Chat::start(&config, "alice", "pw", &[]);
    assert_eq!(alice.run("create")["type"], "result");
    drop(alice);
    // A new file at the same path, as a rebuild leaves it.
    std::fs::copy(bin(), &program).unwrap();
    wait_for(&lines, &mut seen, "C: restarted");
    interrupt(&mut proc, &lines, &mut seen);
}

#[test]
fn init_writes_a_cluster_once_and_status_without_replicas_exits_2() {
    let dir = TempDir::new("init");
    let data = dir.0.join("d");
    let init = |extra: &[&str]| Command::new(bin()).args(["init", "--dir"]).arg(&data).args(extra).output().unwrap();
    let made = init(&["--replicas", "3", "--delta-ms", "50"]);
    assert!(made.status.success(), "{made:?}");
    let config = quintet::config::ClusterConfig::load(&data.join("cluster.toml")).unwrap();
    assert_eq!((config.replicas.len(), config.delta_ms, config.cluster_id.len()), (3, 50, 32));
    assert!(["A.key", "B.key", "C.key"].iter().all(|k| data.join(k).exists()));
    let again = init(&[]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"), "{again:?}");
    // Nothing runs: status says so, as JSON, and exits 2.
    let status = Command::new(bin()).args(["status", "--json", "--config"]).arg(data.join("cluster.toml")).output().unwrap();
    assert_eq!(status.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!((v["up"].clone(), v["available"].clone()), (serde_json::json!(0), serde_json::json!(false)));
    assert_eq!(v["replicas"].as_array().unwrap().len(), 3);
}

#[test]
fn init_makes_everything_private_a_replica_refuses_what_others_can_read_and_up_makes_it_private() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let chmod = |p: &std::path::Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    let dir = TempDir::new("modes");
    let data = dir.0.join("d");
    let made = Command::new(bin()).args(["init", "--replicas", "1", "--dir"]).arg(&data).output().unwrap();
    assert!(made.status.success(), "{made:?}");
    assert_eq!((mode(&data), mode(&data.join("A.key")), mode(&data.join("cluster.toml"))), (0o700, 0o600, 0o600));
    let replica = || {
        let out = Command::new(bin()).args(["replica", "--id", "A", "--config"]).arg(data.join("cluster.toml")).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).to_string())
    };
    // A data folder others can read (every message is in it), then a key others can read.
    std::fs::create_dir(data.join("A")).unwrap();
    chmod(&data.join("A"), 0o755);
    let (code, stderr) = replica();
    assert!(code != Some(0) && stderr.contains("mode 0755") && stderr.contains(&format!("chmod 700 {}", data.join("A").display())), "{stderr}");
    chmod(&data.join("A"), 0o700);
    chmod(&data.join("A.key"), 0o640);
    let (code, stderr) = replica();
    assert!(code != Some(0) && stderr.contains(&format!("chmod 600 {}", data.join("A.key").display())), "{stderr}");
    // `up` on a folder an older version left readable: made private, said once each, served.
    chmod(&data, 0o755);
    chmod(&data.join("A"), 0o755);
    let (mut proc, lines) = up(&data);
    let mut seen = Vec::new();
    wait_for(&lines, &mut seen, "A: up, leader");
    for path in [data.clone(), data.join("A"), data.join("A.key")] {
        assert!(seen.iter().any(|l| l.starts_with(&format!("{} was readable by other users", path.display()))), "{path:?}: {seen:?}");
    }
    assert_eq!((mode(&data), mode(&data.join("A")), mode(&data.join("A.key")), mode(&data.join("A.log"))), (0o700, 0o700, 0o600, 0o600));
    interrupt(&mut proc, &lines, &mut seen);
    // What the replica wrote is private too.
    let chain = std::fs::read_dir(data.join("A")).unwrap().map(|e| e.unwrap().path()).find(|p| p.to_string_lossy().ends_with(".qlog")).unwrap();
    assert_eq!(mode(&chain), 0o600, "{chain:?}");
}

#[test]
fn up_stops_everything_with_the_reason_when_a_replica_cannot_start() {
    let dir = TempDir::new("upfail");
    let data = dir.0.join("d");
    // The third replica's port is taken by this test.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = taken.local_addr().unwrap().port() - 2;
    let made = Command::new(bin()).args(["init", "--dir"]).arg(&data).args(["--base-port", &base.to_string()]).output().unwrap();
    assert!(made.status.success(), "{made:?}");
    let mut child = Command::new(bin()).args(["up", "--dir"]).arg(&data).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "up kept running with a replica that cannot start");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1));
    assert!(stderr.contains("replica C cannot start") && stderr.contains("cannot listen on"), "{stderr}");
    drop(taken);
}

#[test]
fn status_shows_a_replica_answering_with_another_key_or_cluster_as_wrong_identity() {
    let one = common::OneReplica::start("identity");
    let status = |config: &quintet::config::ClusterConfig| {
        let path = one.dir.0.join("asked.toml");
        std::fs::write(&path, config.to_toml()).unwrap();
        let out = Command::new(bin()).args(["status", "--config"]).arg(&path).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let good = quintet::config::ClusterConfig::load(&one.client_config).unwrap();
    let (code, out) = status(&good);
    assert_eq!(code, Some(0), "{out}");
    let row = |out: &str| out.lines().find(|l| l.starts_with("A ")).unwrap_or_default().to_string();
    assert!(row(&out).contains(" leader "), "{out}");
    // Another key for A in the config: whatever answers at A's address is not A.
    let mut other_key = good.clone();
    other_key.replicas[0].public_key = quintet::crypto::encode_hex(quintet::crypto::generate_key().verifying_key().as_bytes());
    let (code, out) = status(&other_key);
    assert_eq!(code, Some(2), "{out}");
    assert!(row(&out).contains("wrong identity (its answer is not signed with A's key"), "{out}");
    // The same key, another cluster: a replica of one cluster never passes for another's.
    let mut other_cluster = good.clone();
    other_cluster.cluster_id = quintet::config::ClusterConfig::new_id();
    let (code, out) = status(&other_cluster);
    assert_eq!(code, Some(2), "{out}");
    assert!(row(&out).contains("wrong identity (it serves cluster"), "{out}");
}

/// Several hosts, as the README's "several machines" says, on this one machine: each
/// replica's key made by `keygen --id --address` (its `[[replica]]` part), the config put
/// together by `init --from`, each replica started on its own; a chat works. And `up` on a
/// config whose replicas are partly elsewhere starts only this host's; `init` over two
/// hosts warns that one of them holds three of five.
#[test]
fn several_hosts_the_readme_way_keygen_parts_init_from_and_up_starts_only_its_own() {
    let dir = TempDir::new("hosts");
    // Three distinct free ports: each listener is held until all are chosen.
    let held: Vec<std::net::TcpListener> = (0..3).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    let ports: Vec<u16> = held.iter().map(|l| l.local_addr().unwrap().port()).collect();
    drop(held);
    let mut parts = Vec::new();
    for (id, port) in ["A", "B", "C"].into_iter().zip(ports) {
        let address = format!("127.0.0.1:{port}");
        let out = Command::new(bin()).args(["keygen", "--out"]).arg(dir.0.join(format!("{id}.key"))).args(["--id", id, "--address", &address]).output().unwrap();
        assert!(out.status.success(), "{out:?}");
        let part = dir.0.join(format!("{id}.toml"));
        std::fs::write(&part, &out.stdout).unwrap();
        parts.push(part);
    }
    let made = Command::new(bin()).args(["init", "--dir"]).arg(&dir.0).args(["--delta-ms", "50", "--from"]).args(&parts).output().unwrap();
    let said = String::from_utf8_lossy(&made.stdout).to_string();
    assert!(made.status.success() && said.contains("from their hosts' parts") && said.contains("--id B --key B.key"), "{made:?}");
    let config = dir.0.join("cluster.toml");
    let loaded = quintet::config::ClusterConfig::load(&config).unwrap();
    assert_eq!(loaded.replicas.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["A", "B", "C"]);
    // Each replica on its own "host".
    let _replicas: Vec<Proc> = ["A", "B", "C"]
        .iter()
        .map(|id| {
            Proc(Command::new(bin()).args(["replica", "--config"]).arg(&config).args(["--id", id]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap())
        })
        .collect();
    let cheap = std::fs::read_to_string(&config).unwrap().replace("memory_kib = 65536", "memory_kib = 64");
    std::fs::write(&config, cheap).unwrap();
    let mut alice = common::Chat::start(&config, "alice", "pw", &["--timeout-ms", "20000"]);
    assert_eq!(alice.run("create")["type"], "result");
    assert_eq!(alice.run("send alice across hosts")["type"], "result");
    drop(alice);

    // `init` over two hosts: the one with three of five is named.
    let two = dir.0.join("two");
    let out = Command::new(bin()).args(["init", "--dir"]).arg(&two).args(["--host", "10.1.0.1", "--host", "10.1.0.2"]).output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(said.contains("warning: host 10.1.0.1 holds 3 of the 5 replicas (A, C, E)"), "{said}");

    // `up` on a config with one replica elsewhere: it starts the two of this host.
    let mixed = dir.0.join("mixed");
    std::fs::create_dir_all(&mixed).unwrap();
    let mut config = loaded.clone();
    config.replicas[1].address = "10.255.255.1:7101".into();
    for r in ["A", "C"] {
        std::fs::copy(dir.0.join(format!("{r}.key")), mixed.join(format!("{r}.key"))).unwrap();
    }
    let held: Vec<std::net::TcpListener> = (0..2).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    let mut ports = held.iter().map(|l| l.local_addr().unwrap().port());
    for r in &mut config.replicas {
        if r.id != "B" {
            r.address = format!("127.0.0.1:{}", ports.next().expect("a port for A and C"));
        }
    }
    drop(held);
    std::fs::write(mixed.join("cluster.toml"), config.to_toml()).unwrap();
    let (mut proc, lines) = up(&mixed);
    let mut seen = Vec::new();
    wait_for(&lines, &mut seen, "replicas B run on other hosts");
    wait_for(&lines, &mut seen, "leader:");
    assert!(seen.iter().any(|l| l.starts_with("started replica A")) && !seen.iter().any(|l| l.starts_with("started replica B")), "{seen:?}");
    interrupt(&mut proc, &lines, &mut seen);
}

/// Found by a new user: `--config` naming a key file by mistake printed the parser's quote
/// of its first line, the private key. The error names the file and the line only.
#[test]
fn a_key_file_named_as_the_config_is_refused_without_showing_it() {
    let dir = TempDir::new("key-as-config");
    let key = dir.0.join("A.key");
    let made = Command::new(bin()).args(["keygen", "--out"]).arg(&key).output().unwrap();
    assert!(made.status.success(), "{made:?}");
    let secret = std::fs::read_to_string(&key).unwrap();
    let secret = secret.trim();
    for command in [&["status", "--config"][..], &["chat", "--user", "alice", "--config"][..]] {
        let out = Command::new(bin()).args(command).arg(&key).stdin(Stdio::null()).output().unwrap();
        let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!out.status.success() && said.contains("not a cluster.toml"), "{command:?}: {said}");
        assert!(!said.contains(&secret[..16]), "{command:?} showed the key: {said}");
    }
}

#[test]
fn a_wrong_byzantine_replica_is_refused_before_anything_is_made() {
    let dir = common::TempDir::new("up-byzantine-refused");
    let data = dir.0.join("data");
    for (args, says) in [
        (vec!["--byzantine", "F=lie"], "there is no replica F"),
        (vec!["--byzantine", "D=lie", "--byzantine", "d=forge"], "names replica D twice"),
        (vec!["--byzantine", "D=lying"], "unknown Byzantine mode \"lying\""),
        (vec!["--byzantine", "D=fork=F"], "the partner must be another replica"),
        (vec!["--byzantine", "D=fork=d"], "the partner must be another replica"),
        (vec!["--byzantine", "D=fork"], "fork needs its partner"),
    ] {
        let out = Command::new(common::bin()).arg("up").arg("--dir").arg(&data).args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(says), "{args:?}: {stderr}");
        assert!(!data.join("cluster.toml").exists(), "{args:?}: nothing made");
    }
}

#[test]
fn evidence_says_by_its_exit_code_when_it_could_not_ask_or_read() {
    // 3: no cluster.toml; 2: nobody answered (nothing runs at the addresses) and no proof.
    let dir = common::TempDir::new("evidence-exits");
    let missing = Command::new(common::bin()).args(["evidence", "--config"]).arg(dir.0.join("none.toml")).output().unwrap();
    assert_eq!(missing.status.code(), Some(3), "{missing:?}");
    let data = dir.0.join("data");
    let made = Command::new(common::bin()).args(["init", "--dir"]).arg(&data).output().unwrap();
    assert!(made.status.success(), "{made:?}");
    let out = Command::new(common::bin()).args(["evidence", "--config"]).arg(data.join("cluster.toml")).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("no proof of misbehaviour found (0 of 5 replicas answered; fewer than the 3 needed"), "{text}");
}
