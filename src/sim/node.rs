//! One simulated replica: the real consensus core, the real replica storage
//! ([`ReplicaStore`]) on a fault-injecting in-memory disk that loses every unsynced byte on a
//! crash, and the real chat state machine that executes committed blocks. It carries out
//! the core's actions as the replica driver does: storage first, a sync before anything
//! leaves. Its Byzantine behaviour, if any, is applied by the world around it.

use std::path::Path;
use std::sync::Arc;

use prost::Message as _;

use super::faults::Behaviour;
use crate::chat::ChatState;
use crate::consensus::{Action, Block, Config, Core, Input, Message, ReplicaId, SimCrypto};
use crate::storage::{MemFs, OnDamage, ReplicaStore, StorageError};
use crate::{pb, wire};

/// Where a simulated replica keeps its data on its `MemFs`.
const DATA: &str = "/replica";

/// What the world must do after a node carried out one action.
pub enum Effect {
    Send(ReplicaId, Message),
    Broadcast(Message),
    /// A committed block was executed; these are the replies (after a sync).
    Committed(Block, Vec<Executed>),
    /// A state image was installed at this height.
    Installed(u64),
    /// Feed this back into the core (a snapshot's hash).
    Input(Input),
    /// A state image was written (`Node::pending_image`); the world places it, now or
    /// later (`images.rs`).
    ImageWritten,
}

pub use crate::execute::Executed;

/// The cluster name simulated requests carry.
pub const CLUSTER: &str = "sim";

pub struct Node {
    pub id: ReplicaId,
    pub core: Option<Core>,
    pub fs: MemFs,
    pub store: Option<ReplicaStore>,
    pub chat: ChatState,
    pub behaviour: Option<Behaviour>,
    /// Messages a replaying Byzantine replica may send again.
    pub heard: Vec<crate::consensus::Message>,
    /// The block executed last (a `TakeSnapshot` names it).
    last_committed: Option<Block>,
    /// Planted bug: execute requests without checking their signatures.
    pub unchecked_requests: bool,
    /// The state image written and not yet in place (one at a time, as the replica's
    /// image thread), the stable certificates' states this node's core handed to its
    /// store by height, and the divergence fault (`images.rs`).
    pub pending_image: Option<crate::storage::WrittenImage>,
    pub stable_seen: std::collections::BTreeMap<u64, crate::consensus::Digest32>,
    pub diverge_from: Option<u64>,
    pub diverged: bool,
    /// Stopped for good (its state diverged): never restarted.
    pub halted: bool,
}

/// Decodes a client request (its signature is checked at execution, `crate::execute`).
/// A signed request's chat request and its body's SHA-256.
pub fn decode(bytes: &[u8]) -> Option<(crate::chat::Request, [u8; 32])> {
    let signed = pb::SignedRequest::decode(bytes).ok()?;
    wire::decode_request(&signed.body).ok().map(|(_, request)| (request, wire::digest(&signed.body)))
}

impl Node {
    pub fn new(id: ReplicaId, behaviour: Option<Behaviour>) -> Self {
        Node {
            id,
            core: None,
            fs: MemFs::new(),
            store: None,
            chat: ChatState::new(),
            behaviour,
            heard: Vec::new(),
            last_committed: None,
            unchecked_requests: false,
            pending_image: None,
            stable_seen: Default::default(),
            diverge_from: None,
            diverged: false,
            halted: false,
        }
    }

    /// Starts (or restarts) from the disk: the chat state from the newest image plus the
    /// committed blocks after it, the core from what it persisted. Returns what was
    /// repaired (damage set aside), as the replica reports it.
    pub fn boot(&mut self, cfg: &Config) -> Result<Vec<String>, StorageError> {
        let (store, opened) = ReplicaStore::open(Arc::new(self.fs.clone()), Path::new(DATA), OnDamage::Repair)?;
        self.chat = opened.state;
        for block in &opened.replay {
            self.execute(block);
        }
        self.core = Some(Core::new(cfg.clone(), self.id, Box::new(SimCrypto { me: self.id }), opened.restored));
        self.store = Some(store);
        Ok(opened.repairs)
    }

    /// Flips one byte of one file on the disk (not one already set aside): damage for the
    /// next start to find. Returns what was damaged.
    pub fn damage(&mut self, pick: &mut impl FnMut(u64) -> u64) -> Option<String> {
        let damaged = Path::new(DATA).join(crate::storage::DAMAGED);
        let files: Vec<_> = self
            .fs
            .paths()
            .into_iter()
            // proofs.qlog is the operator's evidence, not protocol state (a damaged one is
            // rewritten from what is whole): left out, so every seed draws as before it.
            .filter(|p| p.starts_with(DATA) && !p.starts_with(&damaged) && !p.ends_with(crate::storage::proofs::PROOFS))
            .filter(|p| self.fs.file_len(p).is_some_and(|len| len > 0))
            .collect();
        if files.is_empty() {
            return None;
        }
        let path = &files[pick(files.len() as u64) as usize];
        let offset = pick(self.fs.file_len(path).expect("listed above") as u64) as usize;
        self.fs.corrupt(path, offset);
        Some(format!("{} byte {offset}", path.display()))
    }

    /// Power cut: the core and everything unsynced are gone.
    pub fn crash(&mut self) {
        self.core = None;
        self.store = None;
        self.pending_image = None;
        self.fs.crash();
    }

    pub fn is_up(&self) -> bool {
        self.core.is_some()
    }

    /// Carries out one action as the replica driver does.
    pub fn perform(&mut self, action: Action) -> Result<Vec<Effect>, StorageError> {
        let store = self.store.as_mut().expect("a running node has its store");
        Ok(match action {
            Action::Persist(p) => {
                store.persist(&p)?;
                vec![]
            }
            Action::StoreBlock(b) => {
                store.store_block(&b)?;
                vec![]
            }
            Action::Send(to, m) => {
                store.sync()?;
                vec![Effect::Send(to, m)]
            }
            Action::Broadcast(m) => {
                store.sync()?;
                vec![Effect::Broadcast(m)]
            }
            Action::Commit(block) => {
                store.commit(&block)?;
                store.sync()?;
                let executed = self.execute(&block);
                self.last_committed = Some(block.clone());
                vec![Effect::Committed(block, executed)]
            }
            Action::TakeSnapshot { height, hash } => {
                let last = self.last_committed.as_ref().filter(|b| b.height == height && b.hash == hash);
                let block = last.expect("TakeSnapshot follows the Commit of its block");
                // One image at a time, as the replica: a checkpoint reached while one is
                // being written gets none.
                if self.pending_image.is_some() {
                    return Ok(vec![]);
                }
                let writer = store.begin_image(block)?;
                self.pending_image = Some(writer.write(&self.chat)?);
                vec![Effect::ImageWritten]
            }
            Action::Stable(cert) => {
                self.stable_seen.insert(cert.height, cert.state);
                store.stable(&cert)?;
                vec![]
            }
            Action::SendState(to, cert) => {
                let transfer = store.image(&cert)?;
                vec![Effect::Send(to, Message::State(Box::new(transfer)))]
            }
            // Checked by the simulator's checker (`observe`), kept nowhere here.
            Action::Evidence(_) => vec![],
            Action::KeepProof(c) => {
                store.keep_proof(&c)?;
                vec![]
            }
            Action::InstallState(t) => {
                self.chat = store.install(&t)?;
                self.diverge_from = None;
                self.diverged = false;
                self.last_committed = Some(t.block.clone());
                vec![Effect::Installed(t.cert.height)]
            }
        })
    }

    /// Executes one committed block on the chat state (the replicas' own code).
    pub fn execute(&mut self, block: &Block) -> Vec<Executed> {
        let executed = crate::execute::execute_committed(&mut self.chat, block, CLUSTER, &crate::execute::SimRequests, self.unchecked_requests);
        // Again when a restart replays the blocks after an image taken before it diverged.
        if self.diverge_from.is_some_and(|h| block.height >= h) && self.chat.account(super::images::DIVERGED).is_none() {
            self.diverged = true;
            super::images::diverge(&mut self.chat);
        }
        executed
    }

    /// Places the written image (`ImageWritten`); returns the core's input for it.
    pub fn place_image(&mut self) -> Result<Option<Input>, StorageError> {
        let (Some(store), Some(written)) = (self.store.as_mut(), self.pending_image.take()) else { return Ok(None) };
        let (height, hash, state) = (written.block.height, written.block.hash, written.digest);
        store.place_image(written)?;
        Ok(Some(Input::Snapshot { height, hash, state }))
    }

    /// The reply already given to a request (its body's SHA-256 is `body`), if it was
    /// executed here (PROTOCOL step 10).
    pub fn cached(&self, request: &crate::chat::Request, body: &[u8; 32]) -> Option<(u64, pb::Outcome)> {
        let reply = self.chat.cached_reply(&request.user, request.session, request.seq, body)?;
        Some((reply.height, wire::encode_outcome(&reply.outcome)))
    }
}
