//! The replica: the async driver around the ordering core, the chat state machine and the
//! replica store.
//!
//! Start-up: read the config and key, lock the data folder, open the store (newest state
//! image, then the committed blocks after it, executed again; the core's persistent record
//! and stored blocks for `Restored`), start the driver loop on its own thread, the peer
//! links, a tick every Δ/4, then serve gRPC (clients and peers on one port) until SIGINT or
//! SIGTERM. A restarted replica rejoins and catches up by itself (fetched blocks with
//! their QCs, or a certified state transfer).

mod byzantine;
mod challenges;
mod delay;
mod driver;
mod failures;
mod gate;
mod hub;
mod keys;
mod peers;
mod rate;
mod service;
mod status;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::config::{ClusterConfig, ConfigError};
use crate::consensus::{self, ReplicaId};
use crate::crypto::PeerCrypto;
use crate::crypto::{self, CryptoError, encode_hex};
use crate::storage::{OnDamage, RealFs, ReplicaStore, StorageError};
use crate::{pb, wire};

pub use driver::Job;

/// Jobs queued for the driver before callers wait.
const JOB_QUEUE: usize = 8192;

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
    /// Misbehave on purpose (`--byzantine`, `crate::byzantine`).
    pub byzantine: Option<crate::byzantine::Modes>,
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
}

/// A storage error that calls for recovery, with the command that does it for this cluster.
fn recovery_named(e: StorageError, config: &Path) -> ReplicaError {
    if !e.needs_recovery() {
        return ReplicaError::Storage(e);
    }
    ReplicaError::Setup(format!(
        "{e}\n  to recover: stop every replica of the cluster, then run `./reset.sh --config {}` \
         (it backs up every folder first; --dry-run shows what it would do)",
        config.display()
    ))
}

fn folder_of(path: &Path) -> PathBuf {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf()
}

/// Locks the data folder for the life of the process (two replicas must never write one
/// log); the lock file names this process's PID.
fn lock_folder(dir: &Path) -> Result<crate::storage::pidlock::PidLock, ReplicaError> {
    std::fs::create_dir_all(dir).map_err(|e| ReplicaError::Setup(format!("{}: {e}", dir.display())))?;
    let path = dir.join("LOCK");
    crate::storage::pidlock::lock(&path).map_err(|e| match e {
        crate::storage::pidlock::LockError::Held(pid) => {
            let by = pid.map_or(String::new(), |pid| format!(" (pid {pid})"));
            ReplicaError::Setup(format!("{} is in use by another replica process{by}", dir.display()))
        }
        crate::storage::pidlock::LockError::Io(e) => ReplicaError::Setup(format!("{}: {e}", path.display())),
    })
}

pub async fn run(options: ReplicaOptions) -> Result<(), ReplicaError> {
    if let Some(modes) = &options.byzantine {
        tracing::warn!(
            "BYZANTINE: replica {} misbehaves on purpose ({}); for demos and tests only",
            options.id,
            modes.names().join(",")
        );
    }
    let config = ClusterConfig::load(&options.config)?;
    let entry = config.replica(&options.id).ok_or_else(|| {
        let ids: Vec<&str> = config.replicas.iter().map(|r| r.id.as_str()).collect();
        ReplicaError::Setup(format!("replica {:?} is not in {} (it has {})", options.id, options.config.display(), ids.join(", ")))
    })?;
    // `fork=B`: B must be another replica of this cluster.
    let partner = match options.byzantine.as_ref().and_then(|m| m.partner.as_ref()) {
        None => None,
        Some(partner) => match config.replicas.iter().position(|r| r.id == *partner) {
            Some(p) if *partner != options.id => Some(p as ReplicaId),
            _ => return Err(ReplicaError::Setup(format!("--byzantine fork={partner}: the partner must be another replica of {}", options.config.display()))),
        },
    };
    let base = folder_of(&options.config);
    let key_path = options.key.clone().unwrap_or_else(|| base.join(format!("{}.key", options.id)));
    crate::storage::modes::check_private(&key_path, "the key file").map_err(ReplicaError::Setup)?;
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
    // With TLS, the certificate the config pins for this replica must be the one its key
    // makes (certificates are deterministic per key, `crypto::tls`).
    let identity = if config.tls() {
        let identity = crypto::tls::identity(&key);
        if entry.certificate_der().as_ref() != Some(&identity.certificate_der) {
            return Err(ReplicaError::Setup(format!(
                "the certificate the config lists for replica {} is not the one {} makes (`quintet keygen --show --out {}` prints it)",
                options.id,
                key_path.display(),
                key_path.display()
            )));
        }
        Some(identity)
    } else {
        crate::transport::warn_plaintext();
        None
    };
    let data = options.data.clone().unwrap_or_else(|| base.join(&options.id));
    let lock = lock_folder(&data)?;
    crate::storage::modes::check_private(&data, "the data folder").map_err(ReplicaError::Setup)?;
    if std::env::var("QUINTET_PLANTED").is_ok_and(|p| p == "ack-before-fsync") {
        tracing::warn!("PLANTED BUG (tests only): writes are acknowledged before they are synced");
        crate::storage::PLANTED_SKIP_SYNC.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    // Damage is repaired from the other replicas; a replica alone has none to ask.
    let on_damage = if config.replicas.len() > 1 { OnDamage::Repair } else { OnDamage::Refuse };
    crate::storage::version::check_and_mark(&data).map_err(ReplicaError::Setup)?;
    crate::storage::version::check_epoch(&data, config.epoch(), &config.cluster_id, &options.config).map_err(ReplicaError::Setup)?;
    let (mut store, opened) = ReplicaStore::open(Arc::new(RealFs), &data, on_damage).map_err(|e| recovery_named(e, &options.config))?;
    store.set_epoch(config.epoch());
    let (base_height, _) = config.base();
    if store.committed_height() < base_height {
        return Err(ReplicaError::Setup(format!(
            "{} holds the history up to height {}, but this cluster was reset at height {base_height} (reset epoch {}): \
             stop every replica and run `./reset.sh --config {}` to re-seed it",
            data.display(),
            store.committed_height(),
            config.epoch(),
            options.config.display()
        )));
    }
    for repair in &opened.repairs {
        tracing::warn!("repaired: {repair}");
    }
    let me = config.replicas.iter().position(|r| r.id == options.id).expect("found above") as ReplicaId;
    let mut chat = opened.state;
    chat.set_presence_ms(config.presence_ms);
    let cluster = config.tag();
    for block in &opened.replay {
        crate::execute::execute_committed(&mut chat, block, &cluster, &crate::execute::Ed25519Requests, false);
    }
    // One set of keys for the core's signatures and the peer frames.
    let keys = config.replicas.iter().map(|r| r.verifying_key()).collect();
    let crypto = Arc::new(PeerCrypto::new(key.clone(), keys, &config.signing_id()));
    let mut cfg = consensus::Config::new(config.replicas.len(), config.delta_ms);
    cfg.checkpoint_every = config.checkpoint_every;
    cfg.base = config.base();
    let core = consensus::Core::new(cfg, me, Box::new(crypto.clone()), opened.restored);
    tracing::info!(
        committed = core.committed_height(),
        view = core.view(),
        replayed = opened.replay.len(),
        accounts = chat.account_count(),
        messages = chat.message_count(),
        "state recovered"
    );

    let open_files = gate::raise_open_file_limit();
    let limits = gate::Limits::for_open_files(open_files);
    tracing::info!(open_files, connections = limits.total, per_address = limits.per_address, "connection limits");
    let listen = options.listen.unwrap_or_else(|| entry.socket_addr());
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| ReplicaError::Setup(format!("cannot listen on {listen}: {e}")))?;
    let bound = listener.local_addr().map_err(|e| ReplicaError::Setup(e.to_string()))?;
    // One machine-readable line on stdout: scripts and tests learn the port from it.
    println!("quintet replica {} listening on {bound}", options.id);

    let (jobs, queue) = mpsc::channel(JOB_QUEUE);
    let started = Instant::now();
    let status_key = key.clone();
    let ids = config.replicas.iter().map(|r| r.id.clone()).collect();
    let peers = peers::Peers::start(me, &config.replicas, identity.as_ref(), crypto.clone());
    let mut driver = driver::Driver::new(&options.id, ids, cluster, key, core, store, chat, peers, &jobs);
    driver.byzantine = options.byzantine.clone().map(|modes| byzantine::Byzantine::new(modes, me, config.replicas.len(), crypto.clone(), partner));
    let (evidence, warning) = crate::evidence::Store::open(&data.join("evidence.pb"), &crate::evidence::Keys::new(&config));
    if let Some(warning) = warning {
        tracing::warn!("{warning}");
    }
    if !evidence.is_empty() {
        tracing::warn!(proofs = evidence.len(), "holds proofs of misbehaviour from before (`quintet evidence` shows them)");
    }
    driver.evidence = evidence;
    driver.publish_evidence();
    driver.publish(); // the status says what it is from the first question on
    let status = driver.status.clone();
    let evidence = driver.evidence_out.clone();
    let challenges = driver.challenges.clone();
    let keys = driver.keys.clone();
    let driver_thread = std::thread::Builder::new()
        .name(format!("driver-{}", options.id))
        .spawn(move || driver.run(queue))
        .map_err(|e| ReplicaError::Setup(e.to_string()))?;
    // Ticks at Δ/4 (S10's timers and the 2Δ waits need no finer grain); a full queue
    // skips a tick, the next one comes.
    let tick = Duration::from_millis((config.delta_ms / 4).max(1));
    let ticker = {
        let jobs = jobs.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(tick);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                every.tick().await;
                if jobs.try_send(Job::Tick).is_err() && jobs.is_closed() {
                    return;
                }
            }
        })
    };

    let service = service::ReplicaService { jobs: jobs.clone(), status, started, key: status_key, cluster: config.tag(), challenges, keys, id: options.id.clone(), unpaid: Default::default(), failures: Default::default(), operators: config.replicas.iter().map(|r| (r.id.clone(), r.verifying_key())).collect(), byzantine: options.byzantine.clone(), evidence, evidence_at: Default::default() };
    let service = pb::replica_server::ReplicaServer::new(service)
        .max_decoding_message_size(wire::GRPC_MESSAGE_MAX);
    let peer_service = pb::peer_server::PeerServer::new(peers::PeerService {
        me,
        n: config.replicas.len(),
        crypto,
        jobs: jobs.clone(),
        certificates: config.replicas.iter().map(|r| r.certificate_der()).collect(),
        open: Arc::new((0..config.replicas.len()).map(|_| Default::default()).collect()),
    })
        .max_decoding_message_size(peers::FRAME_MAX);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let stop_signal = async move {
        let _ = stop_rx.await;
    };
    let incoming = gate::incoming(listener, limits);
    let mut server = tonic::transport::Server::builder();
    if let Some(identity) = &identity {
        server = server.tls_config(gate::server_tls(&config, identity)).map_err(|e| ReplicaError::Setup(format!("TLS: {e}")))?;
    }
    let server = tokio::spawn(
        server
            .http2_keepalive_interval(Some(gate::KEEPALIVE_INTERVAL))
            .http2_keepalive_timeout(Some(gate::KEEPALIVE_INTERVAL))
            .max_concurrent_streams(gate::STREAMS_PER_CONNECTION)
            .concurrency_limit_per_connection(gate::STREAMS_PER_CONNECTION as usize)
            .add_service(service)
            .add_service(peer_service)
            .serve_with_incoming_shutdown(incoming, stop_signal),
    );
    let driver_done = tokio::task::spawn_blocking(move || driver_thread.join());
    tokio::pin!(driver_done);
    let outcome = tokio::select! {
        _ = shutdown_signal() => {
            tracing::info!("stopping");
            let _ = jobs.send(Job::Shutdown).await;
            driver_done.await
        }
        joined = &mut driver_done => joined,
    };
    let _ = stop_tx.send(());
    ticker.abort();
    server.abort();
    drop(lock);
    match outcome {
        Ok(Ok(result)) => result.map_err(|e| recovery_named(e, &options.config)),
        _ => Err(ReplicaError::Setup("the driver loop panicked".into())),
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
