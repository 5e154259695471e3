//! The `quintet` subcommands. `main.rs` parses these and calls [`run`].

mod chat;
mod render;
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
    /// Run one replica.
    Replica {
        #[arg(long)]
        config: PathBuf,
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
    },
    /// Write a new replica key file and print its public key (for cluster.toml).
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// The chat client: interactive on a terminal, one command per line from a pipe.
    Chat(chat::ChatArgs),
    /// Run the deterministic simulator of the ordering protocol.
    Sim(sim::SimArgs),
    /// Show every replica's height and counts.
    Status {
        #[arg(long)]
        config: PathBuf,
    },
}

/// How a command ended, for the process exit code.
pub enum Exit {
    Ok,
    /// The command failed in a way the user must act on (message already printed).
    Failed(i32),
}

pub async fn run(cli: Cli) -> anyhow::Result<Exit> {
    match cli.command {
        Command::Up(args) => up::run(args).await,
        Command::Replica { config, id, data, key, listen } => {
            crate::replica::run(crate::replica::ReplicaOptions { config, id, data, key, listen }).await?;
            Ok(Exit::Ok)
        }
        Command::Keygen { out } => {
            let key = crypto::generate_key();
            crypto::write_key_file(&out, &key)?;
            println!("{}", encode_hex(key.verifying_key().as_bytes()));
            Ok(Exit::Ok)
        }
        Command::Chat(args) => chat::run(args).await,
        Command::Sim(args) => sim::run(args),
        Command::Status { config } => {
            let config = ClusterConfig::load(&config)?;
            let client = crate::client::QuorumClient::new(&config)?;
            let mut down = 0;
            for (id, status) in client.status().await {
                match status {
                    Ok(s) => println!("{} ({}s)", render::status_line(&id, &s), s.uptime_ms / 1000),
                    Err(e) => {
                        down += 1;
                        println!("{id}: down ({e})");
                    }
                }
            }
            let up = config.replicas.len() - down;
            println!("{up} of {} replicas up; {} needed for service", config.replicas.len(), config.quorum());
            Ok(if up >= config.quorum() { Exit::Ok } else { Exit::Failed(2) })
        }
    }
}
