//! `quintet up`: a local cluster in one command. The first run makes the keys and
//! `DIR/cluster.toml`; every run starts each replica as a child process (output in
//! `DIR/<id>.log`), shows their state as it changes, and stops them all on Ctrl-C.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use super::Exit;
use super::render::status_line;
use crate::client::QuorumClient;
use crate::config::{ClusterConfig, ReplicaEntry};
use crate::crypto::{self, KdfParams, encode_hex};

#[derive(clap::Args, Debug)]
pub struct UpArgs {
    /// Replicas to create on the first run (this version orders requests on one replica).
    #[arg(long, default_value_t = 1)]
    replicas: usize,
    /// Folder for keys, cluster.toml, data and logs.
    #[arg(long, default_value = "quintet-data")]
    dir: PathBuf,
    /// First replica's port on 127.0.0.1 (the next ones count up), on the first run.
    #[arg(long, default_value_t = 7101)]
    base_port: u16,
    /// Δ in milliseconds, on the first run.
    #[arg(long, default_value_t = 200)]
    delta_ms: u64,
}

const IDS: [&str; 9] = ["A", "B", "C", "D", "E", "F", "G", "H", "I"];
/// How long replicas get to write their snapshot after SIGTERM before they are killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

fn create_cluster(args: &UpArgs, path: &Path) -> anyhow::Result<ClusterConfig> {
    anyhow::ensure!((1..=9).contains(&args.replicas) && args.replicas % 2 == 1, "--replicas must be 1, 3, 5, 7 or 9");
    std::fs::create_dir_all(&args.dir)?;
    let mut replicas = Vec::new();
    for (i, id) in IDS.iter().take(args.replicas).enumerate() {
        let key = crypto::generate_key();
        crypto::write_key_file(&args.dir.join(format!("{id}.key")), &key)?;
        let port = args.base_port.checked_add(i as u16).ok_or_else(|| anyhow::anyhow!("port out of range"))?;
        replicas.push(ReplicaEntry {
            id: id.to_string(),
            address: format!("127.0.0.1:{port}"),
            public_key: encode_hex(key.verifying_key().as_bytes()),
        });
    }
    let config = ClusterConfig {
        name: "quintet-local".into(),
        cluster_id: ClusterConfig::new_id(),
        delta_ms: args.delta_ms,
        kdf: KdfParams::default(),
        replicas,
    };
    config.validate()?;
    std::fs::write(path, config.to_toml())?;
    println!("created {} with {} replica(s)", path.display(), args.replicas);
    Ok(config)
}

fn spawn(config_path: &Path, dir: &Path, id: &str) -> anyhow::Result<Child> {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join(format!("{id}.log")))?;
    let mut command = Command::new(std::env::current_exe()?);
    // SAFETY: prctl only sets a flag of the new process; nothing is allocated between fork
    // and exec. The replica gets SIGTERM (and writes its snapshot) if `up` dies, however
    // it dies, so no replica outlives the cluster it belongs to.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    let child = command
        .args(["replica", "--config"])
        .arg(config_path)
        .args(["--id", id])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()?;
    Ok(child)
}

fn signal(child: &Child, signal: i32) {
    if let Some(pid) = child.id() {
        // SAFETY: sends a signal to our own child, by its PID; no memory is involved.
        unsafe { libc::kill(pid as i32, signal) };
    }
}

pub async fn run(args: UpArgs) -> anyhow::Result<Exit> {
    let config_path = args.dir.join("cluster.toml");
    let config = if config_path.exists() { ClusterConfig::load(&config_path)? } else { create_cluster(&args, &config_path)? };
    let mut children = Vec::new();
    for r in &config.replicas {
        children.push((r.id.clone(), Some(spawn(&config_path, &args.dir, &r.id)?)));
        println!("started replica {} on {} (log: {})", r.id, r.address, args.dir.join(format!("{}.log", r.id)).display());
    }
    println!(
        "chat with: quintet chat --config {} --user <name>    (Ctrl-C here stops the cluster)",
        config_path.display()
    );
    let client = QuorumClient::new(&config)?;
    let mut shown = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    // One listener for the whole run: a Ctrl-C that lands while the status poll runs is kept
    // for the next turn (a listener made anew each turn would miss it).
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = &mut ctrl_c => break,
        }
        let mut lines = Vec::new();
        for (id, child) in children.iter_mut() {
            if let Some(c) = child
                && let Ok(Some(status)) = c.try_wait()
            {
                lines.push(format!("{id}: exited ({status}); see its log, restart with: quintet replica --config {} --id {id}", config_path.display()));
                *child = None;
            }
        }
        for (id, status) in client.status().await {
            match status {
                Ok(s) => lines.push(status_line(&id, &s)),
                Err(e) => lines.push(format!("{id}: down ({e})")),
            }
        }
        if lines != shown {
            for line in &lines {
                println!("{line}");
            }
            shown = lines;
        }
    }
    println!("stopping: each replica writes a snapshot");
    for (_, child) in children.iter().filter_map(|(id, c)| c.as_ref().map(|c| (id, c))) {
        signal(child, libc::SIGTERM);
    }
    for (id, child) in children.iter_mut() {
        if let Some(c) = child {
            match tokio::time::timeout(STOP_GRACE, c.wait()).await {
                Ok(Ok(status)) => println!("{id}: stopped ({status})"),
                _ => {
                    let _ = c.kill().await;
                    println!("{id}: killed after {}s", STOP_GRACE.as_secs());
                }
            }
        }
    }
    Ok(Exit::Ok)
}
