//! `quintet follow --id A`: one replica, followed as a person would watch it (the demo's
//! replica panes): a plain line whenever its role, view, leader, peers or the proofs
//! against it change, and its height every few seconds while it commits.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::Exit;
use crate::config::ClusterConfig;

#[derive(clap::Args, Debug, Clone)]
pub struct FollowArgs {
    /// The cluster's cluster.toml
    #[arg(long, default_value = "quintet-data/cluster.toml")]
    pub config: PathBuf,
    /// The replica to follow (A, B, ...)
    #[arg(long)]
    pub id: String,
    /// Stop after this many seconds (default: until interrupted)
    #[arg(long)]
    pub seconds: Option<u64>,
    /// Short lines for a narrow pane (the replica's id is left out: the pane names it)
    #[arg(long)]
    pub compact: bool,
}

/// What a line says; a new line is printed when it changes.
#[derive(Clone, PartialEq, Eq)]
struct Seen {
    up: Result<(String, u64, u32, Vec<String>), String>,
    proofs: String,
}

fn now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    format!("{:02}:{:02}:{:02}", secs / 3600 % 24, secs / 60 % 60, secs % 60)
}

pub async fn run(args: FollowArgs) -> anyhow::Result<Exit> {
    let config = ClusterConfig::load(&args.config)?;
    anyhow::ensure!(config.replica(&args.id).is_some(), "replica {:?} is not in {}", args.id, args.config.display());
    let client = crate::client::QuorumClient::new(&config)?;
    let peers = config.replicas.len() - 1;
    let mut checks = super::evidence::Checks::default();
    let (mut last, mut last_height, mut last_line) = (None::<Seen>, None::<u64>, Instant::now());
    let (mut proofs, mut proofs_at) = (String::from("no proofs against it"), None::<Instant>);
    let mut proof_count: Option<usize> = None;
    let end = args.seconds.map(|s| Instant::now() + Duration::from_secs(s));
    while end.is_none_or(|e| Instant::now() < e) {
        if proofs_at.is_none_or(|t| t.elapsed() >= Duration::from_secs(5)) {
            let gathered = super::evidence::gather(&config, &args.config, &client, &mut checks).await;
            (proofs, proof_count) = match super::evidence::per_replica(&gathered).get(&args.id) {
                Some(kinds) if !kinds.is_empty() => (format!("{} against it", super::evidence::proofs_text(kinds)), Some(kinds.values().sum())),
                _ => ("no proofs against it".into(), None),
            };
            proofs_at = Some(Instant::now());
        }
        let status = client.status().await.into_iter().find(|(id, _)| *id == args.id).map(|(_, s)| s);
        let (seen, height) = match status {
            Some(Ok(s)) => {
                let role = if s.leader == args.id { "leader".to_string() } else { format!("follower of {}", s.leader) };
                (Seen { up: Ok((role, s.view, s.peers_heard, s.byzantine.clone())), proofs: proofs.clone() }, Some(s.height))
            }
            Some(Err(e)) => (Seen { up: Err(e.to_string()), proofs: proofs.clone() }, None),
            None => (Seen { up: Err("not in the answers".into()), proofs: proofs.clone() }, None),
        };
        let moved = height.is_some() && height != last_height && last_line.elapsed() >= Duration::from_secs(5);
        if last.as_ref() != Some(&seen) || moved {
            let line = match (&seen.up, height) {
                (Ok((role, view, heard, byzantine)), Some(height)) if args.compact => {
                    let commits = last_height.map_or(String::new(), |h| format!("+{}", height.saturating_sub(h)));
                    let role = role.strip_prefix("follower of ").map_or("leader".to_string(), |l| format!("-> {l}"));
                    let proofs = proof_count.map_or(String::new(), |n| format!(" {n} proofs!"));
                    let lying = if byzantine.is_empty() { String::new() } else { format!(" LIES({})", byzantine.join(",")) };
                    format!("{} {role} v{view} h{height}{commits} {heard}/{peers}{proofs}{lying}", &now()[..8])
                }
                (Err(e), _) if args.compact => format!("{} down: {}", now(), e.chars().take(60).collect::<String>()),
                (Ok((role, view, heard, byzantine)), Some(height)) => {
                    let commits = last_height.map_or(String::new(), |h| format!(" (+{})", height.saturating_sub(h)));
                    let lying = if byzantine.is_empty() { String::new() } else { format!("  BYZANTINE ({})", byzantine.join(",")) };
                    let faults = if *heard as usize >= peers { "hears every peer".to_string() } else { format!("hears {heard} of {peers} peers") };
                    format!("{} {}  {role}  view {view}  height {height}{commits}  {faults}  {}{lying}", now(), args.id, seen.proofs)
                }
                (Err(e), _) => format!("{} {}  {e}  {}", now(), args.id, seen.proofs),
                (Ok(_), None) => format!("{} {}", now(), args.id),
            };
            println!("{line}");
            last = Some(seen);
            if height.is_some() {
                last_height = height;
            }
            last_line = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(Exit::Ok)
}
