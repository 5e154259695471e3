//! Shared harness for integration tests: a one-replica cluster in a temporary folder, the
//! real `quintet` binary on 127.0.0.1 with port 0, and chat clients driven over pipes.
//! Every process started here is killed by its PID when its handle is dropped.

#![allow(dead_code)]

pub mod attack;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use quintet::config::{ClusterConfig, ReplicaEntry};
use quintet::crypto::{self, KdfParams, SigningKey};

/// The `quintet` binary under test: the one cargo built, or `QUINTET_BIN` (so a long run,
/// such as the 30-minute nemesis, can use a copy while the tree is rebuilt).
pub fn bin() -> String {
    std::env::var("QUINTET_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_quintet").to_string())
}
/// Cheap key derivation so tests do not spend seconds in Argon2.
pub const TEST_KDF: KdfParams = KdfParams { memory_kib: 64, iterations: 1 };

pub mod five;
pub mod tmux;

/// A temporary folder, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("quintet-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    /// Kept when the test failed, with its logs, and named on stderr.
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept for inspection: {}", self.0.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process that is killed (SIGKILL, by PID) and reaped when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Lines a process printed, gathered by a thread so reads can time out.
pub fn line_reader(stream: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

pub struct OneReplica {
    pub dir: TempDir,
    pub key: SigningKey,
    /// The config the replica reads (its own address is port 0; it is told to listen).
    pub server_config: PathBuf,
    /// The config clients read, with the port the replica really bound.
    pub client_config: PathBuf,
    pub addr: SocketAddr,
    pub replica: Option<Proc>,
    /// How many times the replica was started (names its log files).
    starts: u32,
    /// A hard open-file limit for the replica process (`ulimit -Hn`), set before it starts.
    pub open_files: Option<u64>,
    /// A config without certificates: every link plaintext.
    pub plaintext: bool,
    /// The cluster's presence time, when not the default.
    pub presence_ms: Option<u64>,
}

pub fn config(name: &str, address: &str, key: &SigningKey) -> ClusterConfig {
    ClusterConfig {
        name: name.into(),
        cluster_id: "0f1e2d3c4b5a69788796a5b4c3d2e1f0".into(),
        // Short, so the ordering core's 2Δ commit wait keeps the tests quick on loopback.
        delta_ms: 20,
        kdf: TEST_KDF,
        checkpoint_every: quintet::config::CHECKPOINT_EVERY_DEFAULT,
        presence_ms: quintet::chat::PRESENCE_MS_DEFAULT,
        reset: None,
        replicas: vec![ReplicaEntry::for_key("A", address, key)],
    }
}

impl OneReplica {
    pub fn start(name: &str) -> Self {
        OneReplica::start_limited(name, None)
    }

    /// A replica whose config has no certificates (plaintext links).
    pub fn start_plaintext(name: &str) -> Self {
        OneReplica::start_with(name, None, true)
    }

    /// As `start`, with a hard open-file limit for the replica process.
    pub fn start_limited(name: &str, open_files: Option<u64>) -> Self {
        OneReplica::start_with(name, open_files, false)
    }

    /// As `start`, with another presence time (how long a user stays online).
    pub fn start_with_presence(name: &str, presence_ms: u64) -> Self {
        OneReplica::start_configured(name, None, false, Some(presence_ms))
    }

    fn start_with(name: &str, open_files: Option<u64>, plaintext: bool) -> Self {
        OneReplica::start_configured(name, open_files, plaintext, None)
    }

    fn start_configured(name: &str, open_files: Option<u64>, plaintext: bool, presence_ms: Option<u64>) -> Self {
        let dir = TempDir::new(name);
        let key = crypto::generate_key();
        crypto::write_key_file(&dir.0.join("A.key"), &key).unwrap();
        let server_config = dir.0.join("cluster.toml");
        let mut cluster = OneReplica {
            dir,
            key,
            server_config,
            client_config: PathBuf::new(),
            addr: "127.0.0.1:0".parse().unwrap(),
            replica: None,
            starts: 0,
            open_files,
            plaintext,
            presence_ms,
        };
        std::fs::write(&cluster.server_config, cluster.config_for("127.0.0.1:0").to_toml()).unwrap();
        cluster.restart();
        cluster
    }

    /// Starts the replica (again), on the same port as before if it had one.
    pub fn restart(&mut self) {
        assert!(self.replica.is_none(), "stop the replica first");
        let log = self.dir.0.join(format!("replica-{}.log", self.starts));
        self.starts += 1;
        let mut command = Command::new(bin());
        if let Some(limit) = self.open_files {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
            unsafe {
                command.pre_exec(move || {
                    let l = libc::rlimit { rlim_cur: limit as libc::rlim_t, rlim_max: limit as libc::rlim_t };
                    match libc::setrlimit(libc::RLIMIT_NOFILE, &l) {
                        0 => Ok(()),
                        _ => Err(std::io::Error::last_os_error()),
                    }
                });
            }
        }
        let mut child = command
            .args(["replica", "--id", "A", "--config"])
            .arg(&self.server_config)
            .arg("--listen")
            .arg(self.addr.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start the replica");
        let lines = line_reader(child.stdout.take().unwrap());
        let line = lines.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| {
            let _ = child.kill();
            let _ = child.wait();
            let output = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("replica did not report its address; its log:\n{output}")
        });
        let addr: SocketAddr = line.rsplit(' ').next().unwrap().parse().expect("address in the listening line");
        self.addr = addr;
        self.client_config = self.dir.0.join("client.toml");
        std::fs::write(&self.client_config, self.config_for(&addr.to_string()).to_toml()).unwrap();
        self.replica = Some(Proc(child));
    }

    pub fn kill9(&mut self) {
        let mut proc = self.replica.take().expect("running");
        proc.0.kill().unwrap(); // SIGKILL, by PID
        proc.0.wait().unwrap();
    }

    /// SIGTERM, then wait for the clean exit (which writes a snapshot).
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut proc = self.replica.take().expect("running");
        let status = Command::new("kill").arg("-TERM").arg(proc.0.id().to_string()).status().unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = proc.0.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "replica did not stop after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn data(&self) -> PathBuf {
        self.dir.0.join("A")
    }

    /// An endpoint of the replica over the cluster's TLS, for raw gRPC clients.
    pub fn endpoint(&self) -> tonic::transport::Endpoint {
        quintet::transport::endpoint(&self.config_for(&self.addr.to_string()).replicas[0], None).unwrap()
    }

    /// The cluster's config with the replica at `address`.
    pub fn config_for(&self, address: &str) -> ClusterConfig {
        let mut config = config("test-cluster", address, &self.key);
        if let Some(presence_ms) = self.presence_ms {
            config.presence_ms = presence_ms;
        }
        if self.plaintext {
            config.replicas[0].certificate.clear();
        }
        config
    }

    pub fn pid(&self) -> u32 {
        self.replica.as_ref().expect("running").0.id()
    }

    /// Everything the replica has logged so far, over all its starts.
    pub fn logs(&self) -> String {
        (0..self.starts).map(|i| std::fs::read_to_string(self.dir.0.join(format!("replica-{i}.log"))).unwrap_or_default()).collect()
    }

    pub fn chat(&self, user: &str, password: &str) -> Chat {
        Chat::start(&self.client_config, user, password, &[])
    }
}

/// A `quintet chat --json` client driven over pipes.
pub struct Chat {
    pub proc: Proc,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl Chat {
    pub fn start(config: &Path, user: &str, password: &str, extra: &[&str]) -> Chat {
        Chat::start_env(config, user, password, extra, &[])
    }

    /// As `start`, with extra environment for the client (a planted bug).
    pub fn start_env(config: &Path, user: &str, password: &str, extra: &[&str], env: &[(String, String)]) -> Chat {
        let mut child = Command::new(bin())
            .args(["chat", "--json", "--user", user, "--config"])
            .arg(config)
            .args(extra)
            .env("QUINTET_PASSWORD", password)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chat");
        let lines = line_reader(child.stdout.take().unwrap());
        let stdin = child.stdin.take();
        Chat { proc: Proc(child), stdin, lines }
    }

    pub fn send(&mut self, line: &str) {
        assert!(self.try_send(line), "the chat client exited");
    }

    /// False when the client has exited (its stdin is closed).
    pub fn try_send(&mut self, line: &str) -> bool {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").and_then(|_| stdin.flush()).is_ok()
    }

    /// The next output line as JSON, within a bound.
    pub fn next(&mut self, within: Duration) -> Option<serde_json::Value> {
        let line = self.lines.recv_timeout(within).ok()?;
        Some(serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
    }

    /// The next result or error line, skipping live deliveries (returned separately).
    pub fn result(&mut self) -> serde_json::Value {
        loop {
            // Longer than the clients' own quorum timeouts, so a client's report comes first.
            let v = self.next(Duration::from_secs(45)).expect("a result within 45 s");
            if v["type"] != "delivery" {
                return v;
            }
        }
    }

    /// Sends a command and returns its result line.
    pub fn run(&mut self, line: &str) -> serde_json::Value {
        self.send(line);
        self.result()
    }

    /// Closes stdin (end of input: the client logs out and exits) and waits for the exit.
    pub fn finish(mut self) -> (Option<i32>, Vec<serde_json::Value>) {
        self.stdin = None;
        let mut rest = Vec::new();
        while let Some(v) = self.next(Duration::from_secs(30)) {
            rest.push(v);
        }
        let status = self.proc.0.wait().unwrap();
        (status.code(), rest)
    }
}

/// What `quintet evidence --json` found on a cluster (its replicas and the clients' files
/// beside cluster.toml).
#[derive(Default)]
pub struct Evidence {
    /// Whom the checked proofs accuse, of what, each (accused, kind) once.
    pub proven: Vec<(String, String)>,
    /// What each proof shows ("view 1: blocks at heights 9 and 1").
    pub details: Vec<String>,
    /// (reported by, peer, count): messages on a link that did not verify.
    pub unverifiable: Vec<(String, String, u64)>,
}

/// Runs `quintet evidence --json` once. An error when its exit code does not say what it
/// found, or a kept entry is not a proof.
pub fn evidence(config: &std::path::Path) -> Result<Evidence, String> {
    let out = std::process::Command::new(bin()).args(["evidence", "--json", "--config"]).arg(config).output().map_err(|e| e.to_string())?;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("evidence --json: {e}: {out:?}"))?;
    let proofs = json["proofs"].as_array().ok_or(format!("no proofs array: {json}"))?;
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("?").to_owned();
    let mut proven: Vec<(String, String)> = proofs.iter().map(|p| (text(&p["accused"]), text(&p["kind"]))).collect();
    proven.sort();
    proven.dedup();
    if out.status.code() != Some(if proven.is_empty() { 0 } else { 1 }) {
        return Err(format!("evidence exit code {:?}: {json}", out.status.code()));
    }
    if !json["not_proofs"].as_array().is_some_and(|a| a.is_empty()) {
        return Err(format!("a kept entry does not check: {json}"));
    }
    let details = proofs.iter().map(|p| text(&p["detail"])).collect();
    let unverifiable = json["unverifiable"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| (text(&c["reported_by"]), text(&c["peer"]), c["count"].as_u64().unwrap_or(0)))
        .collect();
    Ok(Evidence { proven, details, unverifiable })
}
