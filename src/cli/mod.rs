//! The `quintet` subcommands. `main.rs` parses these and calls [`run`].

mod chat;
mod cluster_view;
mod commands;
mod editor;
mod evidence;
mod follow;
mod init;
mod recover;
pub(crate) mod render;
mod sim;
mod up;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::ClusterConfig;
use crate::crypto::{self, encode_hex};

#[derive(Parser, Debug)]
#[command(name = "quintet", version, about = "A chat service replicated on five replicas that tolerates two crashed or lying replicas")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start a local cluster: keys and cluster.toml are made on the first run, then every
    /// replica runs as a child process until Ctrl-C.
    Up(up::UpArgs),
    /// Write a new cluster's keys and cluster.toml (with a fresh cluster id); start nothing.
    Init(init::InitArgs),
    /// Run one replica.
    Replica {
        /// The cluster's cluster.toml
        #[arg(long)]
        config: PathBuf,
        /// This replica's id in cluster.toml (A, B, ...)
        #[arg(long)]
        id: String,
        /// Data folder [default: <config folder>/<id>]
        #[arg(long)]
        data: Option<PathBuf>,
        /// Key file [default: <config folder>/<id>.key]
        #[arg(long)]
        key: Option<PathBuf>,
        /// Listen on this address instead of the config's (port 0: any free port)
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Misbehave on purpose, for demos and tests (comma-separated): lie, forge,
        /// equivocate, mute, censor[=alice+bob], replay, garbage, fork=PARTNER (colludes with
        /// the replica PARTNER, itself started with fork=this one). The replica says so in its
        /// log and its status; the cluster must keep working with two such replicas
        #[arg(long, value_name = "MODES", value_parser = crate::byzantine::Modes::parse)]
        byzantine: Option<crate::byzantine::Modes>,
    },
    /// Write a new replica key file and print its `public_key` and `certificate` lines for
    /// cluster.toml (with --id and --address: its whole `[[replica]]` part, for `init --from`).
    Keygen {
        /// The key file to write (or, with --show, to read)
        #[arg(long)]
        out: PathBuf,
        /// Read the existing key file instead and print its lines again
        #[arg(long)]
        show: bool,
        /// The replica's id (A, B, ...): print its whole `[[replica]]` part
        #[arg(long, requires = "address")]
        id: Option<String>,
        /// The address other hosts and clients reach this replica at (IP:PORT)
        #[arg(long, requires = "id")]
        address: Option<String>,
    },
    /// The chat client: interactive on a terminal, one command per line from a pipe.
    Chat(chat::ChatArgs),
    /// Run the deterministic simulator of the ordering protocol.
    Sim(sim::SimArgs),
    /// Every replica's role, view, height, state digest and peers, once; exits 2 without
    /// a quorum of replicas up.
    Status {
        /// The cluster's cluster.toml
        #[arg(long, default_value = "quintet-data/cluster.toml")]
        config: PathBuf,
        /// One JSON object for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Gather the proofs of misbehaviour the replicas and this host's clients kept (asking
    /// each replica, and reading the replicas' folders and the clients' files beside
    /// cluster.toml), check each against cluster.toml's keys, and show whom they accuse.
    /// Exits 0 when none was found, 1 when checked proofs were found, 2 when fewer than a
    /// quorum answered (and none was found), 3 when cluster.toml cannot be read.
    Evidence {
        /// The cluster's cluster.toml (the clients' proofs files are beside it)
        #[arg(long, default_value = "quintet-data/cluster.toml")]
        config: PathBuf,
        /// One JSON object for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Recover a stopped cluster after more than two faults (what `reset.sh` runs): read
    /// every replica's folder, keep the longest history that signed CHECKPOINTs prove, back
    /// every folder up, and re-seed the replicas from it in a new reset epoch. Exits 0 when
    /// done or when nothing needed doing, 1 when refused (a replica is running), 2 when no
    /// history is proven or two proven histories conflict (choose with --keep).
    Recover(recover::RecoverArgs),
    /// Follow one replica (the demo's replica panes): a plain line whenever its role,
    /// view, leader, the peers it hears or the proofs against it change, and its height
    /// every few seconds while it commits
    Follow(follow::FollowArgs),
}

/// How the user started this program, for hints: `cargo run --release --` under cargo
/// (which sets `CARGO_MANIFEST_DIR` for the program it runs), else the name it was run by.
pub fn invocation() -> String {
    if std::env::var_os("CARGO_MANIFEST_DIR").is_some() {
        return "cargo run --release --".into();
    }
    let arg0 = std::env::args().next().unwrap_or_default();
    // A bare name was found on PATH; a path is shown as typed (./target/release/quintet).
    if arg0.is_empty() { "quintet".into() } else { arg0 }
}

/// How a command ended, for the process exit code.
pub enum Exit {
    Ok,
    /// The command failed in a way the user must act on (message already printed).
    Failed(i32),
}

pub async fn run(cli: Cli) -> anyhow::Result<Exit> {
    // Keys, data folders, logs: for this user only.
    crate::storage::modes::private_umask();
    match cli.command {
        Command::Up(args) => up::run(args).await,
        Command::Init(args) => init::init(&args).map(|_| Exit::Ok),
        Command::Replica { config, id, data, key, listen, byzantine } => {
            crate::replica::run(crate::replica::ReplicaOptions { config, id, data, key, listen, byzantine }).await?;
            Ok(Exit::Ok)
        }
        Command::Keygen { out, show, id, address } => {
            let key = if show {
                crypto::read_key_file(&out)?
            } else {
                let key = crypto::generate_key();
                crypto::write_key_file(&out, &key)?;
                key
            };
            if let (Some(id), Some(address)) = (id, address) {
                anyhow::ensure!(address.parse::<std::net::SocketAddr>().is_ok(), "--address {address:?} is not IP:PORT");
                println!("[[replica]]");
                println!("id = \"{id}\"");
                println!("address = \"{address}\"");
            }
            println!("public_key = \"{}\"", encode_hex(key.verifying_key().as_bytes()));
            println!("certificate = \"{}\"", crypto::tls::certificate_text(&key));
            Ok(Exit::Ok)
        }
        Command::Chat(args) => chat::run(args).await,
        Command::Sim(args) => sim::run(args),
        Command::Status { config, json } => {
            let config_path = config;
            let config = ClusterConfig::load(&config_path)?;
            let mut client = crate::client::QuorumClient::new(&config)?;
            // Beside a replica key (an operator's host), the counters are shown too.
            client.operator = config.operator_key(&config_path);
            let mut checks = evidence::Checks::default();
            let (statuses, gathered) = tokio::join!(client.status(), evidence::gather(&config, &config_path, &client, &mut checks));
            let mut view = cluster_view::ClusterView::new(cluster_view::rows(&config, statuses), config.quorum());
            view.proofs = evidence::per_replica(&gathered);
            if json {
                println!("{}", view.json());
            } else {
                for line in view.table() {
                    println!("{line}");
                }
            }
            Ok(if view.available() { Exit::Ok } else { Exit::Failed(2) })
        }
        Command::Recover(args) => recover::run(args),
        Command::Follow(args) => follow::run(args).await,
        Command::Evidence { config, json } => {
            let config_path = config;
            // Exit 1 says "proofs found": a config that cannot be read says 3.
            let config = match ClusterConfig::load(&config_path) {
                Ok(config) => config,
                Err(e) => {
                    eprintln!("quintet: {e}");
                    return Ok(Exit::Failed(3));
                }
            };
            let client = crate::client::QuorumClient::new(&config)?;
            let gathered = evidence::gather(&config, &config_path, &client, &mut Default::default()).await;
            if json {
                println!("{}", gathered.json());
            } else {
                for line in gathered.table() {
                    println!("{line}");
                }
            }
            Ok(match gathered.exit_code() {
                0 => Exit::Ok,
                code => Exit::Failed(code),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn every_flag_of_every_command_has_a_help_line() {
        let mut missing = Vec::new();
        for command in super::Cli::command().get_subcommands() {
            for arg in command.get_arguments() {
                if arg.get_help().is_none() {
                    missing.push(format!("{} --{}", command.get_name(), arg.get_id()));
                }
            }
        }
        assert!(missing.is_empty(), "no help line: {missing:?}");
    }
}
