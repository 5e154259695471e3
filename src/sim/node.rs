//! One simulated replica: the real consensus core, a "disk" that keeps exactly what the core
//! asked to persist plus the committed chain, and the real chat state machine that executes
//! committed blocks. Its Byzantine behaviour, if any, is applied by the world around it.

use prost::Message as _;

use super::faults::Behaviour;
use crate::chat::{ChatState, Context};
use crate::consensus::{Block, Config, Core, Persistent, ReplicaId, Restored, SimCrypto};
use crate::{pb, wire};

/// What survives a crash.
#[derive(Default)]
pub struct Disk {
    pub persistent: Option<Persistent>,
    pub committed: Vec<Block>,
    /// The block store: blocks above the committed height, by (height, hash).
    pub blocks: std::collections::BTreeMap<(u64, crate::consensus::Hash), Block>,
}

/// Requests per block are numbered inside the chat state's heights: block height × 2²⁰ +
/// position, so replies can name the block height and heights still increase per request.
const POSITION_BITS: u32 = 20;

/// One executed request, for the client that sent it.
pub struct Executed {
    pub user: String,
    pub digest: [u8; 32],
    pub height: u64,
    pub outcome: pb::Outcome,
}

pub struct Node {
    pub id: ReplicaId,
    pub core: Option<Core>,
    pub disk: Disk,
    pub chat: ChatState,
    pub behaviour: Option<Behaviour>,
    /// Messages a replaying Byzantine replica may send again.
    pub heard: Vec<crate::consensus::Message>,
}

/// Decodes a client request as a replica would (the simulator's requests are unsigned: the
/// client-signature path is the replica's and is tested there).
pub fn decode(bytes: &[u8]) -> Option<crate::chat::Request> {
    let signed = pb::SignedRequest::decode(bytes).ok()?;
    wire::decode_request(&signed.body).ok().map(|(_, request)| request)
}

impl Node {
    pub fn new(id: ReplicaId, behaviour: Option<Behaviour>) -> Self {
        Node { id, core: None, disk: Disk::default(), chat: ChatState::new(), behaviour, heard: Vec::new() }
    }

    /// Starts (or restarts) from the disk: the core from its persisted state, the chat state
    /// by executing the committed chain again.
    pub fn boot(&mut self, cfg: &Config) {
        let restored = Restored {
            persistent: self.disk.persistent.clone(),
            committed: self.disk.committed.clone(),
            blocks: self.disk.blocks.values().cloned().collect(),
        };
        self.core = Some(Core::new(cfg.clone(), self.id, Box::new(SimCrypto { me: self.id }), restored));
        self.chat = ChatState::new();
        let chain = std::mem::take(&mut self.disk.committed);
        for block in &chain {
            self.execute(block);
        }
        self.disk.committed = chain;
    }

    pub fn is_up(&self) -> bool {
        self.core.is_some()
    }

    /// Executes one committed block on the chat state.
    pub fn execute(&mut self, block: &Block) -> Vec<Executed> {
        let mut out = Vec::new();
        for (i, bytes) in block.requests.iter().enumerate() {
            let Some(request) = decode(bytes) else { continue };
            let ctx = Context { height: (block.height << POSITION_BITS) | (i as u64 + 1), time_ms: block.time_ms };
            let applied = self.chat.apply(&request, ctx);
            out.push(Executed {
                user: request.user,
                digest: crate::consensus::digest(bytes),
                height: applied.reply.height >> POSITION_BITS,
                outcome: wire::encode_outcome(&applied.reply.outcome),
            });
        }
        out
    }

    /// The reply already given to a request, if it was executed here (PROTOCOL step 10).
    pub fn cached(&self, request: &crate::chat::Request) -> Option<(u64, pb::Outcome)> {
        let reply = self.chat.cached_reply(&request.user, request.session, request.seq)?;
        Some((reply.height >> POSITION_BITS, wire::encode_outcome(&reply.outcome)))
    }
}
