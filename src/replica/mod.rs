//! The replica: the async driver around the chat state machine and storage.
//!
//! Start-up: read the config and key, lock the data folder, open storage (newest snapshot,
//! then replay the log tail), start the apply loop on its own thread, then serve gRPC until
//! SIGINT or SIGTERM, after which the loop writes a snapshot and the process exits.

mod core;
mod hub;
mod service;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;

use crate::chat::{ChatState, Context};
use crate::config::{ClusterConfig, ConfigError};
use crate::crypto::{self, CryptoError, encode_hex};
use crate::storage::{RealFs, Storage, StorageError};
use crate::{pb, wire};

/// Jobs queued for the apply loop before callers wait.
const JOB_QUEUE: usize = 4096;
/// Minimum log records between periodic snapshots.
pub const SNAPSHOT_EVERY: u64 = 10_000;

#[derive(Clone, Debug)]
pub struct ReplicaOptions {
    pub config: PathBuf,
    pub id: String,
    /// Data folder; defaults to `<config folder>/<id>`.
    pub data: Option<PathBuf>,
    /// Key file; defaults to `<config folder>/<id>.key`.
    pub key: Option<PathBuf>,
    /// Listen here instead of the config's address (port 0 picks a free port).
    pub listen: Option<std::net::SocketAddr>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Key(#[from] CryptoError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{0}")]
    Setup(String),
    #[error("log record at height {height} cannot be replayed: {reason}")]
    Replay { height: u64, reason: String },
}

fn folder_of(path: &Path) -> PathBuf {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf()
}

/// Holds an exclusive lock on the data folder for the life of the process, so two replicas
/// can never write the same log.
struct FolderLock(#[allow(dead_code)] std::fs::File);

fn lock_folder(dir: &Path) -> Result<FolderLock, ReplicaError> {
    std::fs::create_dir_all(dir).map_err(|e| ReplicaError::Setup(format!("{}: {e}", dir.display())))?;
    let path = dir.join("LOCK");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| ReplicaError::Setup(format!("{}: {e}", path.display())))?;
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a file descriptor we own; no memory is shared with the call.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(ReplicaError::Setup(format!("{} is in use by another replica process", dir.display())));
    }
    Ok(FolderLock(file))
}

/// Re-applies the log entries after the snapshot, exactly as they were first applied.
fn replay(state: &mut ChatState, tail: &[crate::storage::LogEntry]) -> Result<(), ReplicaError> {
    use prost::Message as _;
    for entry in tail {
        let fail = |reason: String| ReplicaError::Replay { height: entry.height, reason };
        let signed = pb::SignedRequest::decode(entry.bytes.as_slice()).map_err(|e| fail(e.to_string()))?;
        let (_, request) = wire::decode_request(&signed.body).map_err(|e| fail(e.to_string()))?;
        state.apply(&request, Context { height: entry.height, position: 0, time_ms: entry.time_ms });
    }
    Ok(())
}

pub async fn run(options: ReplicaOptions) -> Result<(), ReplicaError> {
    let config = ClusterConfig::load(&options.config)?;
    let entry = config.replica(&options.id).ok_or_else(|| {
        let ids: Vec<&str> = config.replicas.iter().map(|r| r.id.as_str()).collect();
        ReplicaError::Setup(format!("replica {:?} is not in {} (it has {})", options.id, options.config.display(), ids.join(", ")))
    })?;
    if config.replicas.len() > 1 {
        return Err(ReplicaError::Setup(format!(
            "{} lists {} replicas, but this version orders requests on one replica only; \
             run a one-replica cluster (quintet up --replicas 1)",
            options.config.display(),
            config.replicas.len()
        )));
    }
    let base = folder_of(&options.config);
    let key_path = options.key.clone().unwrap_or_else(|| base.join(format!("{}.key", options.id)));
    let key = crypto::read_key_file(&key_path)?;
    if key.verifying_key() != entry.verifying_key() {
        return Err(ReplicaError::Setup(format!(
            "{} holds the key {}, but the config lists {} for replica {}",
            key_path.display(),
            encode_hex(key.verifying_key().as_bytes()),
            entry.public_key,
            options.id
        )));
    }
    let data = options.data.clone().unwrap_or_else(|| base.join(&options.id));
    let lock = lock_folder(&data)?;
    let (storage, recovered) = Storage::open(Arc::new(RealFs), &data, SNAPSHOT_EVERY)?;
    if let Some((path, before, after)) = &recovered.truncated {
        tracing::warn!(path = %path.display(), before, after, "cut a torn record off the log tail");
    }
    let mut state = recovered.state;
    replay(&mut state, &recovered.tail)?;
    tracing::info!(
        height = state.height(),
        snapshot = storage.snapshot_height(),
        replayed = recovered.tail.len(),
        accounts = state.account_count(),
        messages = state.message_count(),
        "state recovered"
    );

    let listen = options.listen.unwrap_or_else(|| entry.socket_addr());
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| ReplicaError::Setup(format!("cannot listen on {listen}: {e}")))?;
    let bound = listener.local_addr().map_err(|e| ReplicaError::Setup(e.to_string()))?;
    // One machine-readable line on stdout: scripts and tests learn the port from it.
    println!("quintet replica {} listening on {bound}", options.id);

    let (jobs, queue) = mpsc::channel(JOB_QUEUE);
    let core = core::Core {
        id: options.id.clone(),
        cluster: config.name.clone(),
        key,
        state,
        storage,
        hub: Default::default(),
        started: Instant::now(),
    };
    let core_thread = std::thread::Builder::new()
        .name(format!("apply-{}", options.id))
        .spawn(move || core.run(queue))
        .map_err(|e| ReplicaError::Setup(e.to_string()))?;

    let service = pb::replica_server::ReplicaServer::new(service::ReplicaService { jobs: jobs.clone() })
        .max_decoding_message_size(wire::GRPC_MESSAGE_MAX);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let stop_signal = async move {
        let _ = stop_rx.await;
    };
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(tokio_stream::wrappers::TcpListenerStream::new(listener), stop_signal),
    );
    let core_done = tokio::task::spawn_blocking(move || core_thread.join());
    tokio::pin!(core_done);
    let outcome = tokio::select! {
        _ = shutdown_signal() => {
            tracing::info!("stopping: writing a snapshot");
            let _ = jobs.send(core::Job::Shutdown).await;
            core_done.await
        }
        joined = &mut core_done => joined,
    };
    let _ = stop_tx.send(());
    server.abort();
    drop(lock);
    match outcome {
        Ok(Ok(result)) => result.map_err(ReplicaError::from),
        _ => Err(ReplicaError::Setup("the apply loop panicked".into())),
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("signal handlers install");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
