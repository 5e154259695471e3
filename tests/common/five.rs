//! Five replicas on loopback, each a real `quintet replica` process with its own folder and
//! key; ports asked of the OS; every process killed by its PID when dropped.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use quintet::config::{ClusterConfig, ReplicaEntry};
use quintet::crypto;

use super::{Chat, Proc, TEST_KDF, TempDir, bin, line_reader};

pub const IDS: [&str; 5] = ["A", "B", "C", "D", "E"];

/// One five-replica cluster at a time per test binary: the tests of a binary run on parallel
/// threads, and two clusters plus their clients on 2 cores starve each other's timers.
pub static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Fields drop in order: the replicas are killed, then the folder goes, then the turn.
pub struct Cluster {
    pub replicas: Vec<Option<Proc>>,
    pub dir: TempDir,
    pub config: PathBuf,
    starts: u32,
    /// Extra environment for every replica start (the nemesis test's planted bug).
    env: Vec<(String, String)>,
    /// Replica i runs in network namespace `{tag}-{id}` (`scripts/netns-cluster.sh`).
    netns: Option<String>,
    /// Extra environment for the clients `chat` starts (a planted client bug).
    pub client_env: Vec<(String, String)>,
    /// Replica i's `--byzantine` modes, if it misbehaves on purpose.
    byzantine: Vec<Option<String>>,
    /// Held for the cluster's life (see `ONE_AT_A_TIME`).
    _turn: std::sync::MutexGuard<'static, ()>,
}

/// `n` distinct free ports: every listener is held until all are chosen, so the OS cannot
/// hand one port out twice (it did once, and two replicas got one address).
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> = (0..n).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    listeners.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

impl Cluster {
    /// Writes keys and `cluster.toml` (Δ in ms) and starts all five.
    pub fn start(name: &str, delta_ms: u64) -> Cluster {
        Cluster::start_with(name, delta_ms, &[])
    }

    /// As `start`, with extra environment for the replicas.
    pub fn start_with(name: &str, delta_ms: u64, env: &[(&str, &str)]) -> Cluster {
        let addresses = free_ports(IDS.len()).into_iter().map(|port| format!("127.0.0.1:{port}")).collect();
        Cluster::start_placed(name, delta_ms, env, addresses, None)
    }

    /// Five replicas, `byzantine` ones (index, `--byzantine` modes) misbehaving on purpose.
    pub fn start_byzantine(name: &str, delta_ms: u64, byzantine: &[(usize, &str)]) -> Cluster {
        let addresses = free_ports(IDS.len()).into_iter().map(|port| format!("127.0.0.1:{port}")).collect();
        let mut modes = vec![None; IDS.len()];
        for (i, m) in byzantine {
            modes[*i] = Some(m.to_string());
        }
        Cluster::start_full(name, delta_ms, &[], addresses, None, modes)
    }

    /// As `start_byzantine`, with extra environment for the replicas.
    pub fn start_byzantine_with(name: &str, delta_ms: u64, env: &[(&str, &str)], byzantine: &[(usize, &str)]) -> Cluster {
        let addresses = free_ports(IDS.len()).into_iter().map(|port| format!("127.0.0.1:{port}")).collect();
        let mut modes = vec![None; IDS.len()];
        for (i, m) in byzantine {
            modes[*i] = Some(m.to_string());
        }
        Cluster::start_full(name, delta_ms, env, addresses, None, modes)
    }

    /// Five replicas at the given addresses; with `netns`, each in namespace `{netns}-{id}`.
    pub fn start_placed(name: &str, delta_ms: u64, env: &[(&str, &str)], addresses: Vec<String>, netns: Option<String>) -> Cluster {
        Cluster::start_full(name, delta_ms, env, addresses, netns, vec![None; IDS.len()])
    }

    fn start_full(name: &str, delta_ms: u64, env: &[(&str, &str)], addresses: Vec<String>, netns: Option<String>, byzantine: Vec<Option<String>>) -> Cluster {
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let dir = TempDir::new(name);
        let replicas = IDS
            .iter()
            .zip(addresses)
            .map(|(id, address)| {
                let key = crypto::generate_key();
                crypto::write_key_file(&dir.0.join(format!("{id}.key")), &key).unwrap();
                ReplicaEntry::for_key(id, &address, &key)
            })
            .collect();
        let config = ClusterConfig {
            name: "five".into(),
            cluster_id: ClusterConfig::new_id(),
            delta_ms,
            kdf: TEST_KDF,
            // Small, so the tests cross stable checkpoints and catch up by state transfer.
            checkpoint_every: 100,
            presence_ms: quintet::chat::PRESENCE_MS_DEFAULT,
            reset: None,
            replicas,
        };
        let path = dir.0.join("cluster.toml");
        std::fs::write(&path, config.to_toml()).unwrap();
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut cluster =
            Cluster { _turn: turn, dir, config: path, replicas: (0..5).map(|_| None).collect(), starts: 0, env, netns, byzantine, client_env: Vec::new() };
        for i in 0..5 {
            cluster.start_replica(i);
        }
        cluster
    }

    pub fn start_replica(&mut self, i: usize) {
        if let Err(e) = self.try_start_replica(i) {
            panic!("{e}");
        }
    }

    /// Starts replica i and waits for its ready line; the error carries its log.
    pub fn try_start_replica(&mut self, i: usize) -> Result<(), String> {
        assert!(self.replicas[i].is_none(), "replica {} runs already", IDS[i]);
        self.starts += 1;
        let log = self.dir.0.join(format!("{}-{}.log", IDS[i], self.starts));
        let mut command = match &self.netns {
            None => Command::new(bin()),
            Some(tag) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", &format!("{tag}-{}", IDS[i]), &bin()]);
                c
            }
        };
        let mut child = command
            .args(["replica", "--id", IDS[i], "--config"])
            .arg(&self.config)
            .args(self.byzantine[i].iter().flat_map(|m| ["--byzantine".to_string(), m.clone()]))
            .env("RUST_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start a replica");
        let lines = line_reader(child.stdout.take().unwrap());
        if lines.recv_timeout(Duration::from_secs(30)).is_err() {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("replica {} did not start; its log:\n{}", IDS[i], std::fs::read_to_string(&log).unwrap_or_default()));
        }
        self.replicas[i] = Some(Proc(child));
        Ok(())
    }

    /// SIGSTOP (`pause`) or SIGCONT (`resume`) to replica i, by PID.
    pub fn signal(&self, i: usize, signal: &str) {
        let pid = self.replicas[i].as_ref().expect("running").0.id().to_string();
        let status = Command::new("kill").args([signal, &pid]).status().expect("run kill");
        assert!(status.success(), "kill {signal} {pid}");
    }

    /// Replica i's log of its latest start.
    pub fn log(&self, i: usize) -> String {
        let mut logs: Vec<_> = std::fs::read_dir(&self.dir.0)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|f| f.starts_with(&format!("{}-", IDS[i])) && f.ends_with(".log"))
            .collect();
        logs.sort_by_key(|f| f[2..f.len() - 4].parse::<u32>().unwrap_or(0));
        logs.last().map(|f| std::fs::read_to_string(self.dir.0.join(f)).unwrap_or_default()).unwrap_or_default()
    }

    /// Every running replica killed (SIGKILL, by PID): the cluster stopped.
    pub fn stop_all(&mut self) {
        for i in 0..IDS.len() {
            if self.replicas[i].is_some() {
                self.kill(i);
            }
        }
    }

    /// Replica i's data folder.
    pub fn data(&self, i: usize) -> PathBuf {
        self.dir.0.join(IDS[i])
    }

    /// SIGKILL, by PID.
    pub fn kill(&mut self, i: usize) {
        let mut proc = self.replicas[i].take().expect("running");
        proc.0.kill().unwrap();
        proc.0.wait().unwrap();
    }

    pub fn chat(&self, user: &str) -> Chat {
        Chat::start_env(&self.config, user, &format!("{user}-pw"), &["--timeout-ms", "20000"], &self.client_env)
    }

    /// A user's unread mail, all of it, in order (for users that are not logged in
    /// elsewhere meanwhile: live deliveries are marked read).
    pub fn unread(&self, user: &str) -> Vec<String> {
        let mut c = self.chat(user);
        assert_eq!(c.run("login")["type"], "result");
        let mut texts = Vec::new();
        for _ in 0..100 {
            let read = c.run("read 100");
            let messages = read["messages"].as_array().unwrap_or_else(|| panic!("read failed: {read}")).clone();
            texts.extend(messages.iter().map(|m| m["text"].as_str().unwrap().to_owned()));
            if read["unread_left"] == 0 {
                break;
            }
        }
        texts
    }

    /// Five replicas, bob's account (logged out) and alice logged in.
    pub fn with_alice_and_bob(name: &str, delta_ms: u64) -> (Cluster, Chat) {
        let cluster = Cluster::start(name, delta_ms);
        let alice = cluster.alice_and_bob();
        (cluster, alice)
    }

    /// Creates bob's account (logged out) and alice's; returns alice's client, logged in.
    pub fn alice_and_bob(&self) -> Chat {
        let mut bob = self.chat("bob");
        assert_eq!(bob.run("create")["type"], "result", "create bob");
        assert_eq!(bob.run("logout")["type"], "result");
        drop(bob);
        let mut alice = self.chat("alice");
        assert_eq!(alice.run("create")["type"], "result");
        alice
    }

    pub fn config(&self) -> &Path {
        &self.config
    }

    /// Each replica's status, through the status RPC (`None`: no answer).
    pub fn statuses(&self) -> Vec<Option<quintet::pb::StatusReply>> {
        let config = ClusterConfig::load(&self.config).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let mut client = quintet::client::QuorumClient::new(&config).unwrap();
            client.operator = config.operator_key(&self.config);
            client.status().await.into_iter().map(|(_, s)| s.ok()).collect()
        })
    }

    /// Each replica's committed (height, block hash): equal pairs mean the same history, and
    /// so the same state. Checks on the way that replicas whose newest state images are at
    /// the same height report the same state digest for them.
    pub fn digests(&self) -> Vec<Option<(u64, Vec<u8>)>> {
        let statuses = self.statuses();
        let up: Vec<_> = statuses.iter().flatten().collect();
        for (i, a) in up.iter().enumerate() {
            for b in &up[i + 1..] {
                if a.state_height == b.state_height {
                    assert_eq!(a.state_digest, b.state_digest, "{} and {} differ at image height {}", a.replica, b.replica, a.state_height);
                }
            }
        }
        statuses.into_iter().map(|s| s.map(|s| (s.height, s.committed_hash))).collect()
    }

    /// Each replica's message count.
    pub fn message_counts(&self) -> Vec<Option<u64>> {
        self.statuses().into_iter().map(|s| s.map(|s| s.messages)).collect()
    }

    /// The replica the running ones say leads (the most common answer), if any answers.
    pub fn leader(&self) -> Option<usize> {
        let leaders: Vec<String> = self.statuses().into_iter().flatten().map(|s| s.leader).collect();
        let top = leaders.iter().max_by_key(|l| leaders.iter().filter(|m| m == l).count())?;
        IDS.iter().position(|id| id == top).filter(|i| self.replicas[*i].is_some())
    }

    /// Waits (at most `within`) until the `honest` replicas report one committed (height,
    /// block); returns the height, or why not.
    pub fn honest_converged(&self, honest: &[usize], within: Duration) -> Result<u64, String> {
        let deadline = Instant::now() + within;
        loop {
            let digests = self.digests();
            let mine: Vec<_> = honest.iter().map(|i| digests[*i].clone()).collect();
            if let Some(Some(first)) = mine.first()
                && mine.iter().all(|d| d.as_ref() == Some(first))
            {
                return Ok(first.0);
            }
            if Instant::now() >= deadline {
                return Err(format!("the honest replicas did not converge: {digests:?}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until every running replica reports the same height and committed block.
    pub fn wait_converged(&self, within: Duration) -> (u64, Vec<u8>) {
        let deadline = Instant::now() + within;
        loop {
            let all = self.digests();
            let running: Vec<_> = all.iter().enumerate().filter(|(i, _)| self.replicas[*i].is_some()).map(|(_, d)| d.clone()).collect();
            if let Some(Some(first)) = running.first()
                && running.iter().all(|d| d.as_ref() == Some(first))
            {
                return first.clone();
            }
            assert!(Instant::now() < deadline, "replicas did not converge: {all:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
