//! `quintet init`: a new cluster's `cluster.toml` (with a fresh cluster id). On one host
//! it also makes every replica's key; across several hosts each host makes its own key
//! (`quintet keygen --id A --address ...`, which prints the replica's `[[replica]]` part) and
//! `init --from` puts the parts together, so no private key ever leaves its host. Either way
//! it says where each file goes, and warns when one host holds enough replicas to take the
//! quorum down with it.

use std::path::PathBuf;

use crate::config::{ClusterConfig, ReplicaEntry};
use crate::crypto::{self, KdfParams};

#[derive(clap::Args, Debug, Clone)]
pub struct InitArgs {
    /// Folder for keys, cluster.toml, data and logs.
    #[arg(long, default_value = "quintet-data")]
    pub dir: PathBuf,
    /// Replicas in the cluster (odd: n = 2f + 1 tolerates f faults).
    #[arg(long, default_value_t = 5)]
    pub replicas: usize,
    /// First replica's port (the next ones count up) [default: free ports on this machine,
    /// or 7101 when --host is given]
    #[arg(long)]
    pub base_port: Option<u16>,
    /// Δ in milliseconds: the bound on message delay plus processing (NOTEBOOK "Δ").
    #[arg(long, default_value_t = 200)]
    pub delta_ms: u64,
    /// Replica hosts (IP addresses), used in turn: replica i runs on host i mod count
    /// [default: 127.0.0.1]
    #[arg(long = "host")]
    pub hosts: Vec<String>,
    /// Make no keys: assemble cluster.toml from these `[[replica]]` parts, each written on
    /// its replica's own host by `quintet keygen --id ID --address IP:PORT`
    #[arg(long, num_args = 1.., value_name = "PART")]
    pub from: Vec<PathBuf>,
}

const IDS: [&str; 9] = ["A", "B", "C", "D", "E", "F", "G", "H", "I"];

/// The ids `init` gives a new cluster of `replicas` replicas.
pub fn ids(replicas: usize) -> Vec<String> {
    IDS.iter().take(replicas).map(|s| s.to_string()).collect()
}

/// A free port, its listener kept in `held` until every port is chosen: released at once,
/// the OS may hand the same port out again, and two replicas would get one address (a
/// test run met it).
fn free_port(held: &mut Vec<std::net::TcpListener>) -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    held.push(listener);
    Ok(port)
}

/// `quintet init`: writes the keys and `DIR/cluster.toml` (with a fresh cluster id) and
/// starts nothing. Refuses to overwrite an existing cluster.
pub fn init(args: &InitArgs) -> anyhow::Result<ClusterConfig> {
    let path = args.dir.join("cluster.toml");
    anyhow::ensure!(!path.exists(), "{} exists already; remove the folder to make a new cluster", path.display());
    if !args.from.is_empty() {
        return assemble(args, &path);
    }
    anyhow::ensure!((1..=9).contains(&args.replicas) && args.replicas % 2 == 1, "--replicas must be 1, 3, 5, 7 or 9");
    let hosts = if args.hosts.is_empty() { vec!["127.0.0.1".to_string()] } else { args.hosts.clone() };
    for host in &hosts {
        anyhow::ensure!(host.parse::<std::net::IpAddr>().is_ok(), "--host {host:?} is not an IP address");
    }
    std::fs::create_dir_all(&args.dir)?;
    let mut replicas = Vec::new();
    let mut held = Vec::new();
    for (i, id) in IDS.iter().take(args.replicas).enumerate() {
        let key = crypto::generate_key();
        crypto::write_key_file(&args.dir.join(format!("{id}.key")), &key)?;
        let port = match args.base_port {
            Some(base) => base.checked_add(i as u16).ok_or_else(|| anyhow::anyhow!("port out of range"))?,
            None if args.hosts.is_empty() => free_port(&mut held)?,
            None => 7101 + i as u16,
        };
        let host = &hosts[i % hosts.len()];
        let address = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
        replicas.push(ReplicaEntry::for_key(id, &address, &key));
    }
    let config = written(&path, "quintet-local", args, replicas)?;
    println!("created {} with {} replicas (cluster id {})", path.display(), args.replicas, config.cluster_id);
    if hosts.len() > 1 {
        warn_placement(&config);
        println!("next, for each host: copy it cluster.toml and the key files of its replicas (and nothing else),");
        println!("open its replicas' TCP ports to the other hosts and to clients, and run each replica there:");
        print_where_each_runs(&config);
        println!("(better: make each key on its own host with `quintet keygen`, and assemble with `init --from`; README, several machines)");
    }
    Ok(config)
}

/// `init --from`: the config from `[[replica]]` parts made on each replica's host.
fn assemble(args: &InitArgs, path: &std::path::Path) -> anyhow::Result<ClusterConfig> {
    #[derive(serde::Deserialize)]
    struct Part {
        replica: Vec<ReplicaEntry>,
    }
    let mut replicas: Vec<ReplicaEntry> = Vec::new();
    for part in &args.from {
        let text = std::fs::read_to_string(part).map_err(|e| anyhow::anyhow!("{}: {e}", part.display()))?;
        let part: Part = toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: not a [[replica]] part of `quintet keygen --id`{}", part.display(), crate::config::toml_error(&text, &e)))?;
        replicas.extend(part.replica);
    }
    replicas.sort_by(|a, b| a.id.cmp(&b.id));
    std::fs::create_dir_all(&args.dir)?;
    let config = written(path, "quintet", args, replicas)?;
    println!("created {} with {} replicas (cluster id {}) from their hosts' parts", path.display(), config.replicas.len(), config.cluster_id);
    warn_placement(&config);
    println!("next: copy {} to every replica host and to every client; then on each host:", path.display());
    print_where_each_runs(&config);
    Ok(config)
}

/// A new cluster's config (a fresh cluster id, the defaults), checked and written to `path`.
fn written(path: &std::path::Path, name: &str, args: &InitArgs, replicas: Vec<ReplicaEntry>) -> anyhow::Result<ClusterConfig> {
    let config = ClusterConfig {
        name: name.into(),
        cluster_id: ClusterConfig::new_id(),
        delta_ms: args.delta_ms,
        kdf: KdfParams::default(),
        checkpoint_every: crate::config::CHECKPOINT_EVERY_DEFAULT,
        presence_ms: crate::chat::PRESENCE_MS_DEFAULT,
        reset: None,
        replicas,
    };
    config.validate()?;
    std::fs::write(path, config.to_toml())?;
    Ok(config)
}

/// The command each replica's host runs.
fn print_where_each_runs(config: &ClusterConfig) {
    for r in &config.replicas {
        println!("  on {}: quintet replica --config cluster.toml --id {} --key {}.key", r.address, r.id, r.id);
    }
}

/// Hosts that hold enough replicas to take the quorum down with them, with their replicas.
pub fn crowded_hosts(config: &ClusterConfig) -> Vec<(String, Vec<String>)> {
    let mut by_host: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for r in &config.replicas {
        by_host.entry(r.socket_addr().ip().to_string()).or_default().push(r.id.clone());
    }
    // Losing a host with n - quorum + 1 replicas leaves fewer than a quorum.
    let fatal = config.replicas.len() - config.quorum() + 1;
    by_host.into_iter().filter(|(_, ids)| ids.len() >= fatal && ids.len() < config.replicas.len()).collect()
}

/// Says so when losing one host would lose the quorum (replicas spread over too few hosts).
fn warn_placement(config: &ClusterConfig) {
    for (host, ids) in crowded_hosts(config) {
        println!(
            "warning: host {host} holds {} of the {} replicas ({}): if it fails, fewer than {} are left and the service stops; spread them over more hosts",
            ids.len(),
            config.replicas.len(),
            ids.join(", "),
            config.quorum()
        );
    }
}

