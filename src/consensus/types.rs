//! The protocol's objects (NOTEBOOK "QOP v1"): blocks, votes, quorum certificates, blames,
//! statuses, and the message enum. Every signed object has a canonical byte encoding with its
//! own domain tag; signatures cover exactly those bytes.

use sha2::{Digest, Sha256};

use super::Digest32;

pub type ReplicaId = u8;
pub type View = u64;
pub type Height = u64;
pub type Hash = [u8; 32];

/// (view, height), compared lexicographically: how QCs are ranked.
pub type Rank = (View, Height);

/// The hash of the genesis block, which every chain starts from (height 0, view 0).
pub const GENESIS: Hash = [0; 32];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    pub view: View,
    pub height: Height,
    pub parent: Hash,
    pub parent_qc: QuorumCert,
    pub proposer: ReplicaId,
    pub time_ms: u64,
    /// Client requests, opaque here (signed request bytes).
    pub requests: Vec<Vec<u8>>,
    /// Computed from the fields above; checked on receipt.
    pub hash: Hash,
}

impl Block {
    pub fn compute_hash(&self) -> Hash {
        let mut h = Sha256::new();
        h.update(b"quintet/block/v1\0");
        for v in [self.view, self.height, self.parent_qc.view, self.parent_qc.height, self.time_ms] {
            h.update(v.to_le_bytes());
        }
        h.update(self.parent);
        h.update(self.parent_qc.hash);
        h.update([self.proposer]);
        h.update((self.requests.len() as u64).to_le_bytes());
        for r in &self.requests {
            h.update(Sha256::digest(r));
        }
        h.finalize().into()
    }

    pub fn rank(&self) -> Rank {
        (self.view, self.height)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vote {
    pub view: View,
    pub height: Height,
    pub hash: Hash,
    pub voter: ReplicaId,
    pub signature: Vec<u8>,
}

/// q votes for one block. The genesis QC has none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuorumCert {
    pub view: View,
    pub height: Height,
    pub hash: Hash,
    pub votes: Vec<(ReplicaId, Vec<u8>)>,
}

impl QuorumCert {
    pub fn genesis() -> Self {
        QuorumCert::base((0, GENESIS))
    }

    /// The QC of the block the chain starts from (genesis, or a reset's block): no votes,
    /// view 0. `Checker::qc` accepts it only for the configured base.
    pub fn base((height, hash): (Height, Hash)) -> Self {
        QuorumCert { view: 0, height, hash, votes: Vec::new() }
    }

    pub fn rank(&self) -> Rank {
        (self.view, self.height)
    }

    /// Whether this is the QC of the chain's start (no votes, view 0): genesis, or after a
    /// reset the reset's block. Only the configured base passes `Checker::qc`.
    pub fn is_genesis(&self) -> bool {
        self.votes.is_empty() && self.view == 0
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlameReason {
    Timeout,
    /// Two proposals signed by the view's leader that conflict.
    Equivocation(Box<(Proposal, Proposal)>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blame {
    pub view: View,
    pub voter: ReplicaId,
    pub reason: BlameReason,
    pub signature: Vec<u8>,
    /// BC(view − 1) for view > 0, so a replica still in an older view can follow (S8).
    pub entered_by: Option<BlameCert>,
}

/// q blames for one view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlameCert {
    pub view: View,
    pub blames: Vec<(ReplicaId, Vec<u8>)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// The view this status is for (the one being entered).
    pub view: View,
    pub high_qc: QuorumCert,
    pub voter: ReplicaId,
    pub signature: Vec<u8>,
    /// BC(view − 1), so the receiver can enter the view (S8).
    pub blame_cert: BlameCert,
}

/// Why the leader may start a view: BC(v − 1) and at least q statuses for v.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Justification {
    pub blame_cert: BlameCert,
    pub statuses: Vec<Status>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    pub block: Block,
    /// The leader's signature over the block hash.
    pub signature: Vec<u8>,
    /// Present in every proposal of a view after view 0 (S1, S8).
    pub justification: Option<Justification>,
}

/// "I committed `hash` at `height`" (S11). q matching ones prove an honest replica committed
/// it, so a replica that missed the votes may commit it too. At every `checkpoint_every`-th
/// height it also names `state`, the sha256 of the replica's state image after executing the
/// block; q matching ones make a [`StateCert`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub height: Height,
    pub hash: Hash,
    pub state: Option<Digest32>,
    pub voter: ReplicaId,
    pub signature: Vec<u8>,
}

/// q signed CHECKPOINTs naming one state (S11): a stable checkpoint. An honest replica
/// executed the committed chain up to `hash` and its state image hashes to `state`, so an
/// image with that hash may replace the chain below it, and the log behind it may go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateCert {
    pub height: Height,
    pub hash: Hash,
    pub state: Digest32,
    pub signatures: Vec<(ReplicaId, Vec<u8>)>,
}

/// A state image on its way to a replica that is behind a stable checkpoint (S11): the
/// certificate, the committed block at its height (the chain goes on from its hash), and the
/// image itself (opaque here; sha256(image) must equal `cert.state`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateTransfer {
    pub cert: StateCert,
    pub block: Block,
    pub image: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Propose(Proposal),
    Vote(Vote),
    Blame(Blame),
    BlameCert(BlameCert),
    Status(Status),
    Checkpoint(Checkpoint),
    Fetch(Hash),
    Block(Box<Block>),
    /// "Send me a state image at this height or above" (S11).
    FetchState(Height),
    State(Box<StateTransfer>),
    /// A client request this replica holds and the view's leader has not ordered: given to
    /// the leader before this replica blames it for the request (S10).
    Relay(Vec<u8>),
    /// "I restarted in this view: tell me what you know of yours" (S13).
    /// S13: a restarted replica asks; the number names this start of it (its first input's
    /// time), so that every start is answered.
    Recover(u64),
    Recovered(Box<Recovered>),
}

/// The answer to a RECOVER (S13): what a restarted replica must know before it votes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovered {
    /// The certificate that took the sender into its view (none in view 0).
    pub blame_cert: Option<BlameCert>,
    /// Leader-signed proposals of the sender's view: its lowest and highest, and the pair
    /// that proves the view's leader equivocated, if the sender holds one.
    pub proposals: Vec<Proposal>,
    /// The sender's `high_qc`: a replica that was down while a view committed and ended
    /// learns a QC that extends what was committed, as its peers hold (S13).
    pub high_qc: QuorumCert,
    /// The ask's number (`Message::Recover`): the asker counts only answers to this start.
    pub start: u64,
}

impl Message {
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Propose(_) => "propose",
            Message::Vote(_) => "vote",
            Message::Blame(_) => "blame",
            Message::BlameCert(_) => "blame-cert",
            Message::Status(_) => "status",
            Message::Checkpoint(_) => "checkpoint",
            Message::Fetch(_) => "fetch",
            Message::Block(_) => "block",
            Message::FetchState(_) => "fetch-state",
            Message::State(_) => "state",
            Message::Relay(_) => "relay",
            Message::Recover(_) => "recover",
            Message::Recovered(_) => "recovered",
        }
    }
}

/// The bytes each kind of signature covers.
pub mod signed {
    use super::*;

    /// The leader signs the block and the justification its voters rely on (S2.4), so a
    /// relay cannot swap in another one.
    pub fn proposal(hash: &Hash, justification: Option<&Justification>) -> Vec<u8> {
        let j = justification.map_or([0; 32], justification_digest);
        [b"quintet/proposal/v2\0".as_slice(), hash, &j].concat()
    }

    /// SHA-256 over every field of a justification, in order:
    /// ```text
    /// "quintet/justification/v1\0" | bc | statuses.len u64 | per status:
    ///     view u64 | voter u8 | qc | signature.len u64 | signature | bc
    /// bc = view u64 | n u64 | (id u8 | sig.len u64 | sig)*     qc = view | height | hash | bc-like votes
    /// ```
    pub fn justification_digest(j: &Justification) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"quintet/justification/v1\0");
        let sigs = |h: &mut Sha256, sigs: &[(ReplicaId, Vec<u8>)]| {
            h.update((sigs.len() as u64).to_le_bytes());
            for (who, sig) in sigs {
                h.update([*who]);
                h.update((sig.len() as u64).to_le_bytes());
                h.update(sig);
            }
        };
        h.update(j.blame_cert.view.to_le_bytes());
        sigs(&mut h, &j.blame_cert.blames);
        h.update((j.statuses.len() as u64).to_le_bytes());
        for s in &j.statuses {
            h.update(s.view.to_le_bytes());
            h.update([s.voter]);
            h.update(s.high_qc.view.to_le_bytes());
            h.update(s.high_qc.height.to_le_bytes());
            h.update(s.high_qc.hash);
            sigs(&mut h, &s.high_qc.votes);
            h.update((s.signature.len() as u64).to_le_bytes());
            h.update(&s.signature);
            h.update(s.blame_cert.view.to_le_bytes());
            sigs(&mut h, &s.blame_cert.blames);
        }
        h.finalize().into()
    }

    pub fn vote(view: View, height: Height, hash: &Hash) -> Vec<u8> {
        [b"quintet/vote/v1\0".as_slice(), &view.to_le_bytes(), &height.to_le_bytes(), hash].concat()
    }

    /// A blame signs only the view: q blames for v certify "leave v" whatever the reasons.
    pub fn blame(view: View) -> Vec<u8> {
        [b"quintet/blame/v1\0".as_slice(), &view.to_le_bytes()].concat()
    }

    pub fn checkpoint(height: Height, hash: &Hash, state: Option<&Digest32>) -> Vec<u8> {
        match state {
            None => [b"quintet/checkpoint/v1\0".as_slice(), &height.to_le_bytes(), hash].concat(),
            Some(state) => {
                [b"quintet/checkpoint-state/v1\0".as_slice(), &height.to_le_bytes(), hash, state].concat()
            }
        }
    }

    pub fn status(view: View, qc: &QuorumCert) -> Vec<u8> {
        let fixed = [view.to_le_bytes(), qc.view.to_le_bytes(), qc.height.to_le_bytes()].concat();
        [b"quintet/status/v1\0".as_slice(), &fixed, &qc.hash].concat()
    }
}

/// Signing and verification, injected: the replica uses ed25519 keys, the simulator a fast
/// keyed hash (and can plant forgeries).
pub trait Crypto: Send {
    fn sign(&self, bytes: &[u8]) -> Vec<u8>;
    fn verify(&self, signer: ReplicaId, bytes: &[u8], signature: &[u8]) -> bool;
}

/// A shared signer (the replica's core and its peer links use one).
impl<T: Crypto + Sync + ?Sized> Crypto for std::sync::Arc<T> {
    fn sign(&self, bytes: &[u8]) -> Vec<u8> {
        (**self).sign(bytes)
    }
    fn verify(&self, signer: ReplicaId, bytes: &[u8], signature: &[u8]) -> bool {
        (**self).verify(signer, bytes, signature)
    }
}

/// A block named by height and hash: what the persistent state keeps of the blocks a replica
/// voted for or proposed (their bodies are in the block store).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockRef {
    pub height: Height,
    pub hash: Hash,
}

impl Block {
    pub fn named(&self) -> BlockRef {
        BlockRef { height: self.height, hash: self.hash }
    }
}
