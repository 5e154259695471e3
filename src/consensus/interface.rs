//! What goes into the core and what comes out: inputs, actions (performed by the driver in
//! order), the persistent state, and what a restarting replica hands back. See `core.rs` for
//! the call order.

use super::Digest32;
use super::types::*;

pub enum Input {
    Message(ReplicaId, Message),
    /// A client request (signed request bytes) that arrived at this replica.
    Request(Vec<u8>),
    Tick,
    /// The driver executed through `height` (after a `TakeSnapshot`), kept a state image of
    /// it, and the image hashes to `state` (S11).
    Snapshot { height: Height, hash: Hash, state: Digest32 },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Make this durable before performing any later action of the batch.
    Persist(Persistent),
    /// Store this block durably (a block store, pruned at the committed height), before any
    /// later action of the batch: votes and proposals must never name a block that a
    /// restart would forget.
    StoreBlock(Block),
    Send(ReplicaId, Message),
    Broadcast(Message),
    /// Execute this committed block (heights strictly increase by one).
    Commit(Block),
    /// Keep a state image of the state right after the last `Commit` (at this height), and
    /// report its sha256 with `Input::Snapshot` (S11).
    TakeSnapshot { height: Height, hash: Hash },
    /// A stable checkpoint (S11): the log and images below it may be deleted, and the image
    /// at its height must be kept (with the certificate) until a newer one is stable.
    Stable(StateCert),
    /// Send the image named by this stable checkpoint (with its block) as `Message::State`.
    SendState(ReplicaId, StateCert),
    /// Replace the chat state with this certified image; its block is the new committed tip
    /// (the next `Commit` extends it). Checked here: certificate, block, image hash.
    InstallState(Box<StateTransfer>),
    /// A proof of misbehaviour this replica came upon, checked (`Checker::evidence`): keep
    /// it. Nothing else waits on it.
    Evidence(super::Evidence),
    /// A signed CHECKPOINT at or below this replica's committed height (its own or
    /// another's), the signer's newest so far: keep it where `quintet recover` reads it.
    /// Q of them that cover a block prove it committed when the cluster is down (S11).
    /// Nothing waits on it.
    KeepProof(Checkpoint),
}

/// What must survive a crash (NOTEBOOK "Persistent state").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Persistent {
    pub view: View,
    /// Blocks this replica voted for in `view`, above the committed height. Only named: the
    /// blocks themselves were stored (`StoreBlock`) before the record naming them.
    pub votes: Vec<BlockRef>,
    pub high_qc: QuorumCert,
    /// Blocks this replica proposed in `view`, above the committed height (named, likewise).
    pub proposals: Vec<BlockRef>,
    /// The rank reported in this replica's STATUS for `view`.
    pub reported: Option<Rank>,
    /// BC(view − 1), by which this replica entered `view` (S8 needs it after a restart).
    pub entered_by: Option<BlameCert>,
    /// As leader of `view`: the justification its proposals carry.
    pub justification: Option<Justification>,
}

/// What a restarting replica hands back to the core (`default()`: a replica's first start).
#[derive(Default)]
pub struct Restored {
    pub persistent: Option<Persistent>,
    /// The committed chain, in height order (a suffix is enough; its tip is what counts).
    pub committed: Vec<Block>,
    /// Stored blocks above the committed height (from `StoreBlock`).
    pub blocks: Vec<Block>,
    /// The newest stable checkpoint the driver kept (from `Stable` or `InstallState`), and
    /// the state images it holds at or above it: (height, block hash, image sha256).
    pub stable: Option<StateCert>,
    pub images: Vec<(Height, Hash, Digest32)>,
    /// The replica ran before (its data folder held records): it may have received
    /// proposals it no longer knows, so it recovers before it votes (S13).
    pub restarted: bool,
}
