//! The driver loop: one thread owns the ordering core, the replica store, the chat state
//! and the live-delivery hub, and carries out the core's actions in its call order.
//!
//! Per batch (every queued job, up to `BATCH_MAX`): each input goes to the core; the
//! actions are carried out in order — `Persist`, `StoreBlock` and `Commit` written,
//! committed blocks executed in height order — then **one fsync**, and only then do the
//! batch's messages go to the peers, the signed replies to the waiting clients and the
//! deliveries to the streams (group commit: nothing leaves before what it depends on is
//! durable). A failed write or fsync stops the replica: it restarts from its disk.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot};
use tonic::Status;

use super::hub::{DeliverySender, Hub};
use super::peers::Peers;
use super::service::Checked;
use crate::chat::ChatState;
use crate::consensus::{Action, Block, Core, Input, Message, ReplicaId};
use crate::crypto::SigningKey;
use crate::execute::{Ed25519Requests, Executed, execute_committed};
use crate::storage::{ReplicaStore, StorageError, WrittenImage};
use crate::pb;

/// Most jobs handled between two fsyncs.
const BATCH_MAX: usize = 1024;
/// Clients waiting on one replica for their requests to commit (beyond: answered "busy").
const WAITING_MAX: usize = 100_000;
/// How long a client's call may wait here for its request to commit.
const WAIT_MAX: Duration = Duration::from_secs(60);
/// How often the waiting clients are swept for `WAIT_MAX`.
const WAIT_SWEEP: Duration = Duration::from_secs(1);

pub enum Job {
    /// A request the service decoded and checked.
    Submit { checked: Checked, reply: oneshot::Sender<pb::ReplyBody> },
    Subscribe { body: pb::SubscribeBody, stream: DeliverySender, reply: oneshot::Sender<Result<(), Status>> },
    /// Messages from a peer, checked (frame signature) and decoded by the peer service.
    Peer { from: ReplicaId, messages: Vec<Message>, sent_at_us: u64 },
    Tick,
    /// The image worker finished (or failed) the state image it was given.
    ImageWritten(Result<WrittenImage, StorageError>),
    Shutdown,
}

/// Refusals kept for resends (`Driver::refused`).
const REFUSALS_KEPT: usize = 65_536;

/// The outcomes of recently executed requests that were refused: (height, outcome) by
/// signed-request digest, at most `REFUSALS_KEPT`.
#[derive(Default)]
pub struct RecentRefusals {
    by_digest: HashMap<[u8; 32], (u64, pb::Outcome)>,
    order: std::collections::VecDeque<[u8; 32]>,
}

impl RecentRefusals {
    pub fn keep(&mut self, digest: [u8; 32], height: u64, outcome: pb::Outcome) {
        if self.by_digest.insert(digest, (height, outcome)).is_none() {
            self.order.push_back(digest);
        }
        while self.order.len() > REFUSALS_KEPT {
            let old = self.order.pop_front().expect("not empty");
            self.by_digest.remove(&old);
        }
    }

    pub fn get(&self, digest: &[u8; 32]) -> Option<&(u64, pb::Outcome)> {
        self.by_digest.get(digest)
    }
}

/// A request's body digest, when its first client came, and the clients waiting for it.
pub type Waiting = ([u8; 32], Instant, Vec<oneshot::Sender<pb::ReplyBody>>);

pub struct Driver {
    pub id: String,
    pub ids: Vec<String>,
    /// The cluster tag requests must carry (`ClusterConfig::tag`).
    pub cluster: String,
    pub key: SigningKey,
    clock: CoreClock,
    pub core: Core,
    pub store: ReplicaStore,
    pub chat: ChatState,
    pub hub: Hub,
    /// Subscription challenges: issued by the gRPC service, used up here.
    pub challenges: std::sync::Arc<super::challenges::Challenges>,
    /// Requests admitted per user (before ordering).
    rates: super::rate::UserRates,
    /// Account creations per client address.
    creations: super::rate::CreateRates,
    /// The accounts' keys, shared with the service's signature check.
    pub keys: std::sync::Arc<super::keys::AccountKeys>,
    pub peers: Peers,
    /// The block executed last (a `TakeSnapshot` names it).
    pub last_committed: Option<Block>,
    pub last_commit: Option<Instant>,
    /// Clients waiting for a request to commit here, by the digest of the signed request
    /// (what execution reports), with the digest of its body (what replies name).
    /// Dropped after `WAIT_MAX` (a request the core refused to pool, or one that never
    /// committed): the client's call then ends with an error and it asks again.
    pub waiting: HashMap<[u8; 32], Waiting>,
    /// What recently executed requests were refused with (their session records do not
    /// keep a refusal of the session rules), by signed-request digest, oldest first out:
    /// a resend is answered the same, not dropped by the core as a duplicate.
    pub refused: RecentRefusals,
    pub swept_at: Instant,
    /// When each peer was last heard from (a frame of its messages handled here).
    pub heard: Vec<Option<Instant>>,
    /// Relayed requests whose signature was checked, per peer, in the current second.
    pub relay_checks: Vec<crate::consensus::Window>,
    /// Peer message delays, summed up in the log every 10 s (`replica/delay.rs`).
    pub delays: super::delay::Delays,
    /// What the status call answers, published by this loop after every batch, so the call
    /// never queues behind work.
    pub status: std::sync::Arc<std::sync::Mutex<pb::StatusReply>>,
    pub described_at: Instant,
    /// This loop's own queue, for the image worker's answer (weak: the loop still ends
    /// when every other sender is gone).
    pub jobs: mpsc::WeakSender<Job>,
    /// Height of the image being written by the worker, if one is.
    pub image_in_flight: Option<u64>,
    /// Misbehaviour on purpose (`--byzantine`), if any.
    pub byzantine: Option<super::byzantine::Byzantine>,
    /// Proofs of misbehaviour this replica came upon (`evidence.pb` in its folder).
    pub evidence: crate::evidence::Store,
    /// What the evidence call answers: the proofs, and the per-link counts of messages
    /// that did not verify (published when either changes).
    pub evidence_out: std::sync::Arc<std::sync::Mutex<pb::EvidenceReply>>,
}

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_millis() as u64
}

/// The core's clock: the wall clock read once at start, then advanced by the monotonic
/// clock. A step of the machine's clock while the replica runs (an operator's `date -s`, a
/// correction by time sync) moves neither its timers nor the times it proposes and checks;
/// the replica picks the new time up when it restarts.
pub struct CoreClock {
    wall_at_start: u64,
    started: Instant,
}

impl CoreClock {
    pub fn start() -> Self {
        CoreClock { wall_at_start: now_ms(), started: Instant::now() }
    }

    pub fn now(&self) -> u64 {
        self.wall_at_start + self.started.elapsed().as_millis() as u64
    }
}

/// What a batch sends once it is durable.
#[derive(Default)]
struct Outbox {
    messages: Vec<(Option<ReplicaId>, Message)>,
    replies: Vec<(oneshot::Sender<pb::ReplyBody>, pb::ReplyBody)>,
    deliveries: Vec<(u64, crate::chat::Message)>,
    /// Sessions closed by a committed request: (height, user, session, reason).
    closed: Vec<(u64, String, u64, &'static str)>,
    /// Deleted accounts, whose streams end after the notices.
    deleted: Vec<String>,
    /// Sessions logged out: (user, session), whose streams end.
    ended: Vec<(String, u64)>,
}

impl Driver {
    /// A driver over a started core and an opened store; `jobs` is its own queue's sender
    /// (for the image worker). Its published status starts from this state.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: &str,
        ids: Vec<String>,
        cluster: String,
        key: SigningKey,
        core: Core,
        store: ReplicaStore,
        chat: ChatState,
        peers: Peers,
        jobs: &mpsc::Sender<Job>,
    ) -> Driver {
        let status = pb::StatusReply { replica: id.to_owned(), ..Default::default() };
        let replicas = ids.len();
        let driver = Driver {
            id: id.to_owned(),
            ids,
            cluster,
            key,
            core,
            store,
            chat,
            hub: Hub::default(),
            challenges: std::sync::Arc::default(),
            rates: super::rate::UserRates::users(),
            creations: super::rate::CreateRates::creations(),
            keys: std::sync::Arc::default(),
            peers,
            last_committed: None,
            last_commit: None,
            waiting: HashMap::new(),
            refused: RecentRefusals::default(),
            heard: vec![None; replicas],
            relay_checks: vec![crate::consensus::Window::default(); replicas],
            swept_at: Instant::now(),
            clock: CoreClock::start(),
            delays: super::delay::Delays::default(),
            status: std::sync::Arc::new(std::sync::Mutex::new(status)),
            described_at: Instant::now(),
            jobs: jobs.downgrade(),
            image_in_flight: None,
            byzantine: None,
            evidence: Default::default(),
            evidence_out: Default::default(),
        };
        driver.keys.fill(&driver.chat);
        let status = driver.status();
        *driver.status.lock().unwrap_or_else(|e| e.into_inner()) = status;
        driver
    }

    /// Runs until `Shutdown` or until every sender is gone.
    pub fn run(mut self, mut jobs: mpsc::Receiver<Job>) -> Result<(), StorageError> {
        let mut shutdown = false;
        while !shutdown {
            let Some(first) = jobs.blocking_recv() else { break };
            let mut batch = vec![first];
            while batch.len() < BATCH_MAX {
                match jobs.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            let now = self.clock.now();
            let mut actions = Vec::new();
            let mut out = Outbox::default();
            let mut sent_at = Vec::new();
            for job in batch {
                match job {
                    Job::Submit { checked, reply } => self.submit(now, checked, reply, &mut actions, &mut out),
                    Job::Subscribe { body, stream, reply } => {
                        let _ = reply.send(self.subscribe(&body, stream));
                    }
                    Job::Peer { from, messages, sent_at_us } => {
                        sent_at.push(sent_at_us);
                        if let Some(heard) = self.heard.get_mut(from as usize) {
                            *heard = Some(Instant::now());
                        }
                        for m in messages {
                            if let Message::Relay(bytes) = &m
                                && !self.relay_admitted(now, from, bytes)
                            {
                                continue;
                            }
                            self.from_peer(from, &m);
                            actions.extend(self.core.handle(now, Input::Message(from, m)));
                        }
                    }
                    Job::Tick => {
                        actions.extend(self.core.handle(now, Input::Tick));
                        if self.swept_at.elapsed() >= WAIT_SWEEP {
                            self.swept_at = Instant::now();
                            self.waiting.retain(|_, (_, since, _)| since.elapsed() < WAIT_MAX);
                        }
                    }
                    Job::ImageWritten(written) => {
                        let written = match written {
                            Ok(written) => written,
                            Err(e) => {
                                let height = self.image_in_flight.take().unwrap_or(0);
                                if let Some(failed) = self.store.image_failed(height, e) {
                                    return Err(failed);
                                }
                                tracing::warn!(height, "state image dropped: out of file descriptors; the next checkpoint takes one");
                                continue;
                            }
                        };
                        let (height, hash, state) = (written.block.height, written.block.hash, written.digest);
                        self.store.place_image(written)?;
                        self.image_in_flight = None;
                        tracing::debug!(height, "state image kept");
                        actions.extend(self.core.handle(now, Input::Snapshot { height, hash, state }));
                    }
                    Job::Shutdown => shutdown = true,
                }
            }
            self.perform(actions, &mut out)?;
            self.store.sync()?;
            // Handled and durable: what a peer's frame waited, from its sender's queue to here.
            self.delays.record(&sent_at);
            self.send_out(out.messages);
            // Signed by the gRPC task that waits for it, off this thread: a flood of
            // requests refused here (replays, rates, a busy pool) costs this loop no
            // signatures.
            for (reply, body) in out.replies {
                let _ = reply.send(self.reply_out(body));
            }
            for (height, message) in out.deliveries {
                for (height, message) in self.deliveries_out(height, message) {
                    self.hub.deliver(&self.id, &self.key, height, &message);
                }
            }
            let mute = self.byzantine.as_ref().is_some_and(|b| b.has(crate::byzantine::Mode::Mute));
            for (height, user, session, reason) in out.closed {
                if !mute {
                    self.hub.session_closed(&self.id, &self.key, height, &user, session, reason);
                }
                self.hub.end_session(&user, session);
            }
            for (user, session) in out.ended {
                self.hub.end_session(&user, session);
            }
            for user in out.deleted {
                self.hub.drop_user(&user);
            }
            self.publish();
        }
        tracing::info!(height = self.core.committed_height(), "replica stopped");
        Ok(())
    }

    /// Carries out the core's actions in order (sends wait in the outbox for the fsync).
    fn perform(&mut self, actions: Vec<Action>, out: &mut Outbox) -> Result<(), StorageError> {
        for action in actions {
            match action {
                Action::Persist(p) => self.store.persist(&p)?,
                Action::StoreBlock(b) => self.store.store_block(&b)?,
                Action::Send(to, m) => out.messages.push((Some(to), m)),
                Action::Broadcast(m) => out.messages.push((None, m)),
                Action::Commit(block) => {
                    self.store.commit(&block)?;
                    let executed = self.execute(&block);
                    self.answer(executed, out);
                    self.last_committed = Some(block);
                    self.last_commit = Some(Instant::now());
                }
                Action::TakeSnapshot { height, hash } => {
                    let block = self.last_committed.clone().filter(|b| b.height == height && b.hash == hash);
                    let block = block.expect("TakeSnapshot follows the Commit of its block");
                    self.start_image(&block)?;
                }
                Action::Stable(cert) => self.store.stable(&cert)?,
                Action::SendState(to, cert) => {
                    let transfer = self.store.image(&cert)?;
                    out.messages.push((Some(to), Message::State(Box::new(transfer))));
                }
                Action::Evidence(e) => self.found(e),
                Action::KeepProof(c) => self.store.keep_proof(&c)?,
                Action::InstallState(t) => {
                    let presence_ms = self.chat.presence_ms();
                    self.chat = self.store.install(&t)?;
                    self.chat.set_presence_ms(presence_ms);
                    self.keys.fill(&self.chat);
                    tracing::info!(height = t.cert.height, "installed a certified state image");
                    self.last_committed = Some(t.block.clone());
                }
            }
        }
        Ok(())
    }

    /// Keeps a proof the core came upon (checked there), and says so.
    fn found(&mut self, e: crate::consensus::Evidence) {
        let accusation = crate::evidence::Accusation { replica: e.accused() as usize, kind: crate::evidence::Kind::of_evidence(&e) };
        // Nobody keeps a proof against itself; a `fork` colluder none against its partner.
        let me = self.ids.iter().position(|id| *id == self.id);
        let partner = self.byzantine.as_ref().and_then(|b| b.partner()).map(|p| p as usize);
        if Some(accusation.replica) == me || Some(accusation.replica) == partner || !self.evidence.has_room(accusation) {
            return;
        }
        match self.evidence.keep(crate::wire::peer::evidence_out(&e), accusation) {
            Ok(true) => {
                let accused = self.ids.get(accusation.replica).cloned().unwrap_or_default();
                tracing::warn!(replica = %accused, kind = accusation.kind.label(), "kept a proof of misbehaviour (`quintet evidence` shows it)");
                self.publish_evidence();
            }
            Ok(false) => {}
            Err(err) => tracing::warn!("cannot keep a proof of misbehaviour: {err}"),
        }
    }

    /// The evidence call's answer, anew.
    pub fn publish_evidence(&mut self) {
        let reply = pb::EvidenceReply { replica: self.id.clone(), proofs: self.evidence.proofs().cloned().collect(), unverifiable: self.unverifiable_counts() };
        *self.evidence_out.lock().unwrap_or_else(|e| e.into_inner()) = reply;
    }

    pub(super) fn unverifiable_counts(&self) -> Vec<pb::LinkCount> {
        let peer = |id: &crate::consensus::ReplicaId| self.ids.get(*id as usize).cloned().unwrap_or_default();
        self.core.unverifiable().iter().map(|(id, count)| pb::LinkCount { peer: peer(id), count: *count }).collect()
    }

    /// S11 off the ordering path: the chain moves to a new segment here, a copy of the
    /// state goes to a worker thread that writes and hashes the image, and the core hears
    /// of it (`Input::Snapshot`) when `Job::ImageWritten` comes back. One image at a time:
    /// a checkpoint height reached while one is written gets no image here (the others'
    /// images can still make it stable).
    fn start_image(&mut self, block: &Block) -> Result<(), StorageError> {
        if let Some(busy) = self.image_in_flight {
            tracing::warn!(height = block.height, busy, "skipping a state image: the previous one is still being written");
            return Ok(());
        }
        let writer = match self.store.begin_image(block) {
            Err(e) if e.is_descriptor_shortage() => {
                tracing::warn!(height = block.height, "skipping a state image: {e}");
                return Ok(());
            }
            writer => writer?,
        };
        let state = self.chat.clone();
        let Some(jobs) = self.jobs.upgrade() else { return Ok(()) };
        self.image_in_flight = Some(block.height);
        let spawned = std::thread::Builder::new().name(format!("image-{}", self.id)).spawn(move || {
            let _ = jobs.blocking_send(Job::ImageWritten(writer.write(&state)));
        });
        if let Err(e) = spawned {
            // Out of threads: like a descriptor shortage, nothing is lost by skipping.
            tracing::warn!(height = block.height, "skipping a state image: cannot start its writer: {e}");
            self.image_in_flight = None;
        }
        Ok(())
    }

    fn execute(&mut self, block: &Block) -> Vec<Executed> {
        execute_committed(&mut self.chat, block, &self.cluster, &Ed25519Requests, false)
    }
}

#[path = "driver_clients.rs"]
mod clients;

#[cfg(test)]
#[path = "driver_tests.rs"]
mod tests;
