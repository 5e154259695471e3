//! Between the wire (`pb`) and the ordering protocol's types: replica-to-replica messages and
//! the records of a replica's consensus log. Decoding is total: any bytes give a message or a
//! `PeerWireError`, never a panic. Shape checks live here (hash lengths, ids, required
//! fields); what the bytes mean (signatures, certificates) is checked by the core.

use prost::Message as _;

use super::census;
pub use super::parts::{Reassembly, parts};
use crate::consensus::{self as qop, Hash, ReplicaId};
use crate::pb;

/// Largest replica-to-replica message accepted: a state transfer (an image of at most
/// `IMAGE_MAX` with its block and certificate). One over `MESSAGE_MAX` travels in parts of
/// `PART_MAX` (`StatePart`), so no frame is larger than `BATCH_MAX`.
pub const PEER_MESSAGE_MAX: usize = IMAGE_MAX + (4 << 20);
/// Bytes of a message in one part.
pub const PART_MAX: usize = 4 << 20;
/// Largest frame batch: the sender stops adding messages past 1 MiB, and each is at most
/// `MESSAGE_MAX` (or a part); the rest is room for the encoding's own bytes.
pub const BATCH_MAX: usize = MESSAGE_MAX + (1 << 20) + (64 << 10);
/// Largest message of any other kind: two full blocks (an equivocation proof; a block holds
/// at most 1 MiB of requests) with their certificates and justifications.
pub const MESSAGE_MAX: usize = 4 << 20;
/// Largest state image accepted in one transfer.
pub const IMAGE_MAX: usize = 1 << 30;
/// Field occurrences, at every level, in one peer message (`census`): about 600 in the
/// largest legitimate one with five replicas (an equivocation proof of two full blocks).
pub const ELEMENTS_MAX: usize = 8192;
/// Messages in one frame.
pub const FRAME_MESSAGES_MAX: usize = 256;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PeerWireError {
    #[error("peer message is {0} bytes; the limit is {1}")]
    TooLarge(usize, usize),
    #[error("too many fields or elements (counted before decoding)")]
    TooManyElements,
    #[error("not a valid protobuf message: {0}")]
    Malformed(String),
    #[error("{0} is missing")]
    Missing(&'static str),
    #[error("{field} is {len} bytes, not 32")]
    HashLength { field: &'static str, len: usize },
    #[error("replica id {0} is out of range")]
    Id(u32),
}

type Result<T> = std::result::Result<T, PeerWireError>;

fn hash(field: &'static str, bytes: &[u8]) -> Result<Hash> {
    bytes.try_into().map_err(|_| PeerWireError::HashLength { field, len: bytes.len() })
}

fn id(v: u32) -> Result<ReplicaId> {
    ReplicaId::try_from(v).map_err(|_| PeerWireError::Id(v))
}

fn need<T>(field: &'static str, v: Option<T>) -> Result<T> {
    v.ok_or(PeerWireError::Missing(field))
}

fn sigs_out(sigs: &[(ReplicaId, Vec<u8>)]) -> Vec<pb::PeerSignature> {
    sigs.iter().map(|(who, s)| pb::PeerSignature { signer: *who as u32, signature: s.clone() }).collect()
}

fn sigs_in(sigs: Vec<pb::PeerSignature>) -> Result<Vec<(ReplicaId, Vec<u8>)>> {
    sigs.into_iter().map(|s| Ok((id(s.signer)?, s.signature))).collect()
}

// ---------------------------------------------------------------- to the wire

fn qc_out(qc: &qop::QuorumCert) -> pb::QuorumCert {
    pb::QuorumCert { view: qc.view, height: qc.height, hash: qc.hash.to_vec(), votes: sigs_out(&qc.votes) }
}

fn block_out(b: &qop::Block) -> pb::Block {
    pb::Block {
        view: b.view,
        height: b.height,
        parent: b.parent.to_vec(),
        parent_qc: Some(qc_out(&b.parent_qc)),
        proposer: b.proposer as u32,
        time_ms: b.time_ms,
        requests: b.requests.clone(),
    }
}

fn bc_out(bc: &qop::BlameCert) -> pb::BlameCert {
    pb::BlameCert { view: bc.view, blames: sigs_out(&bc.blames) }
}

fn status_out(s: &qop::Status) -> pb::ViewStatus {
    pb::ViewStatus {
        view: s.view,
        high_qc: Some(qc_out(&s.high_qc)),
        voter: s.voter as u32,
        signature: s.signature.clone(),
        blame_cert: Some(bc_out(&s.blame_cert)),
    }
}

fn justification_out(j: &qop::Justification) -> pb::Justification {
    pb::Justification { blame_cert: Some(bc_out(&j.blame_cert)), statuses: j.statuses.iter().map(status_out).collect() }
}

fn vote_out(v: &qop::Vote) -> pb::Vote {
    pb::Vote { view: v.view, height: v.height, hash: v.hash.to_vec(), voter: v.voter as u32, signature: v.signature.clone() }
}

fn proposal_out(p: &qop::Proposal) -> pb::Proposal {
    pb::Proposal {
        block: Some(block_out(&p.block)),
        signature: p.signature.clone(),
        justification: p.justification.as_ref().map(justification_out),
    }
}

fn state_cert_out(c: &qop::StateCert) -> pb::StateCert {
    pb::StateCert { height: c.height, hash: c.hash.to_vec(), state: c.state.to_vec(), signatures: sigs_out(&c.signatures) }
}

fn message_out(m: &qop::Message) -> pb::PeerMessage {
    use pb::peer_message::Kind;
    let kind = match m {
        qop::Message::Propose(p) => Kind::Propose(proposal_out(p)),
        qop::Message::Vote(v) => Kind::Vote(vote_out(v)),
        qop::Message::Blame(b) => Kind::Blame(pb::Blame {
            view: b.view,
            voter: b.voter as u32,
            signature: b.signature.clone(),
            entered_by: b.entered_by.as_ref().map(bc_out),
            equivocation: match &b.reason {
                qop::BlameReason::Timeout => None,
                qop::BlameReason::Equivocation(pair) => {
                    Some(pb::Equivocation { first: Some(proposal_out(&pair.0)), second: Some(proposal_out(&pair.1)), between: Vec::new() })
                }
            },
        }),
        qop::Message::BlameCert(bc) => Kind::BlameCert(bc_out(bc)),
        qop::Message::Status(s) => Kind::Status(status_out(s)),
        qop::Message::Checkpoint(c) => Kind::Checkpoint(pb::Checkpoint {
            height: c.height,
            hash: c.hash.to_vec(),
            state: c.state.map(|s| s.to_vec()).unwrap_or_default(),
            voter: c.voter as u32,
            signature: c.signature.clone(),
        }),
        qop::Message::Fetch(h) => Kind::Fetch(h.to_vec()),
        qop::Message::Block(b) => Kind::Block(block_out(b)),
        qop::Message::FetchState(h) => Kind::FetchState(*h),
        qop::Message::Relay(request) => Kind::Relay(request.clone()),
        qop::Message::Recover(start) => Kind::Recover(*start),
        qop::Message::Recovered(r) => Kind::Recovered(pb::Recovered {
            blame_cert: r.blame_cert.as_ref().map(bc_out),
            proposals: r.proposals.iter().map(proposal_out).collect(),
            high_qc: Some(qc_out(&r.high_qc)),
            start: r.start,
        }),
        qop::Message::State(t) => Kind::State(pb::StateTransfer {
            cert: Some(state_cert_out(&t.cert)),
            block: Some(block_out(&t.block)),
            image: t.image.clone(),
        }),
    };
    pb::PeerMessage { kind: Some(kind) }
}

/// A proof the core found, for the wire and the evidence files.
/// The peer protocol version this release sends in every frame (`PeerFrame.version`). The
/// releases before it send none (0) and speak version 1, which this one reads.
pub const PEER_VERSION: u32 = 1;

pub fn evidence_out(e: &qop::Evidence) -> pb::Proof {
    use pb::proof::Kind;
    let kind = match e {
        qop::Evidence::Equivocation(pair) => {
            Kind::Equivocation(pb::Equivocation { first: Some(proposal_out(&pair.0)), second: Some(proposal_out(&pair.1)), between: Vec::new() })
        }
        qop::Evidence::ChainEquivocation(proof) => Kind::Equivocation(pb::Equivocation {
            first: Some(proposal_out(&proof.0)),
            second: Some(proposal_out(&proof.1)),
            between: proof.2.iter().map(block_out).collect(),
        }),
        qop::Evidence::DoubleVote(pair) => Kind::DoubleVote(pb::VotePair { first: Some(vote_out(&pair.0)), second: Some(vote_out(&pair.1)) }),
    };
    pb::Proof { kind: Some(kind) }
}

/// The protocol's proofs back from the wire; `Ok(None)` for a proof of another kind (a
/// client reply's, checked in `crate::evidence`).
pub fn evidence_in(p: pb::Proof) -> Result<Option<qop::Evidence>> {
    use pb::proof::Kind;
    Ok(Some(match need("proof kind", p.kind)? {
        Kind::Equivocation(e) if e.between.is_empty() => qop::Evidence::Equivocation(Box::new((
            proposal_in(need("equivocation first", e.first)?)?,
            proposal_in(need("equivocation second", e.second)?)?,
        ))),
        Kind::Equivocation(e) => qop::Evidence::ChainEquivocation(Box::new((
            proposal_in(need("equivocation first", e.first)?)?,
            proposal_in(need("equivocation second", e.second)?)?,
            e.between.into_iter().map(block_in).collect::<Result<_>>()?,
        ))),
        Kind::DoubleVote(v) => {
            qop::Evidence::DoubleVote(Box::new((vote_in(need("first vote", v.first)?)?, vote_in(need("second vote", v.second)?)?)))
        }
        Kind::WrongResult(_) => return Ok(None),
    }))
}

pub fn encode_message(m: &qop::Message) -> Vec<u8> {
    message_out(m).encode_to_vec()
}

pub fn encode_block(b: &qop::Block) -> Vec<u8> {
    block_out(b).encode_to_vec()
}

pub fn encode_state_cert(c: &qop::StateCert) -> Vec<u8> {
    state_cert_out(c).encode_to_vec()
}

fn block_ref_out(b: &qop::BlockRef) -> pb::BlockRef {
    pb::BlockRef { height: b.height, hash: b.hash.to_vec() }
}

pub fn encode_persistent(p: &qop::Persistent) -> Vec<u8> {
    pb::PersistentState {
        view: p.view,
        votes: p.votes.iter().map(block_ref_out).collect(),
        high_qc: Some(qc_out(&p.high_qc)),
        proposals: p.proposals.iter().map(block_ref_out).collect(),
        has_reported: p.reported.is_some(),
        reported_view: p.reported.map_or(0, |r| r.0),
        reported_height: p.reported.map_or(0, |r| r.1),
        entered_by: p.entered_by.as_ref().map(bc_out),
        justification: p.justification.as_ref().map(justification_out),
    }
    .encode_to_vec()
}

// ---------------------------------------------------------------- from the wire

fn qc_in(qc: pb::QuorumCert) -> Result<qop::QuorumCert> {
    Ok(qop::QuorumCert { view: qc.view, height: qc.height, hash: hash("qc hash", &qc.hash)?, votes: sigs_in(qc.votes)? })
}

fn block_in(b: pb::Block) -> Result<qop::Block> {
    let mut block = qop::Block {
        view: b.view,
        height: b.height,
        parent: hash("block parent", &b.parent)?,
        parent_qc: qc_in(need("block parent_qc", b.parent_qc)?)?,
        proposer: id(b.proposer)?,
        time_ms: b.time_ms,
        requests: b.requests,
        hash: [0; 32],
    };
    block.hash = block.compute_hash();
    Ok(block)
}

fn bc_in(bc: pb::BlameCert) -> Result<qop::BlameCert> {
    Ok(qop::BlameCert { view: bc.view, blames: sigs_in(bc.blames)? })
}

fn status_in(s: pb::ViewStatus) -> Result<qop::Status> {
    Ok(qop::Status {
        view: s.view,
        high_qc: qc_in(need("status high_qc", s.high_qc)?)?,
        voter: id(s.voter)?,
        signature: s.signature,
        blame_cert: bc_in(need("status blame_cert", s.blame_cert)?)?,
    })
}

fn justification_in(j: pb::Justification) -> Result<qop::Justification> {
    Ok(qop::Justification {
        blame_cert: bc_in(need("justification blame_cert", j.blame_cert)?)?,
        statuses: j.statuses.into_iter().map(status_in).collect::<Result<_>>()?,
    })
}

fn vote_in(v: pb::Vote) -> Result<qop::Vote> {
    Ok(qop::Vote { view: v.view, height: v.height, hash: hash("vote hash", &v.hash)?, voter: id(v.voter)?, signature: v.signature })
}

fn proposal_in(p: pb::Proposal) -> Result<qop::Proposal> {
    Ok(qop::Proposal {
        block: block_in(need("proposal block", p.block)?)?,
        signature: p.signature,
        justification: p.justification.map(justification_in).transpose()?,
    })
}

fn state_cert_in(c: pb::StateCert) -> Result<qop::StateCert> {
    Ok(qop::StateCert {
        height: c.height,
        hash: hash("state cert hash", &c.hash)?,
        state: hash("state cert state", &c.state)?,
        signatures: sigs_in(c.signatures)?,
    })
}

fn message_in(m: pb::PeerMessage) -> Result<qop::Message> {
    use pb::peer_message::Kind;
    Ok(match need("message kind", m.kind)? {
        Kind::Propose(p) => qop::Message::Propose(proposal_in(p)?),
        Kind::Vote(v) => qop::Message::Vote(vote_in(v)?),
        Kind::Blame(b) => qop::Message::Blame(qop::Blame {
            view: b.view,
            voter: id(b.voter)?,
            signature: b.signature,
            entered_by: b.entered_by.map(bc_in).transpose()?,
            reason: match b.equivocation {
                None => qop::BlameReason::Timeout,
                Some(e) => qop::BlameReason::Equivocation(Box::new((
                    proposal_in(need("equivocation first", e.first)?)?,
                    proposal_in(need("equivocation second", e.second)?)?,
                ))),
            },
        }),
        Kind::BlameCert(bc) => qop::Message::BlameCert(bc_in(bc)?),
        Kind::Status(s) => qop::Message::Status(status_in(s)?),
        Kind::Checkpoint(c) => qop::Message::Checkpoint(qop::Checkpoint {
            height: c.height,
            hash: hash("checkpoint hash", &c.hash)?,
            state: if c.state.is_empty() { None } else { Some(hash("checkpoint state", &c.state)?) },
            voter: id(c.voter)?,
            signature: c.signature,
        }),
        Kind::Fetch(h) => qop::Message::Fetch(hash("fetch hash", &h)?),
        Kind::Block(b) => qop::Message::Block(Box::new(block_in(b)?)),
        Kind::FetchState(h) => qop::Message::FetchState(h),
        Kind::Relay(request) => qop::Message::Relay(request),
        Kind::Recover(start) => qop::Message::Recover(start),
        Kind::Recovered(r) => qop::Message::Recovered(Box::new(qop::Recovered {
            blame_cert: r.blame_cert.map(bc_in).transpose()?,
            proposals: r.proposals.into_iter().map(proposal_in).collect::<Result<_>>()?,
            high_qc: qc_in(need("recovered high_qc", r.high_qc)?)?,
            start: r.start,
        })),
        Kind::State(t) => qop::Message::State(Box::new(qop::StateTransfer {
            cert: state_cert_in(need("state cert", t.cert)?)?,
            block: block_in(need("state block", t.block)?)?,
            image: t.image,
        })),
    })
}

fn decode<T: prost::Message + Default>(bytes: &[u8]) -> Result<T> {
    if bytes.len() > PEER_MESSAGE_MAX {
        return Err(PeerWireError::TooLarge(bytes.len(), PEER_MESSAGE_MAX));
    }
    T::decode(bytes).map_err(|e| PeerWireError::Malformed(e.to_string()))
}

/// Counts a peer message's fields and checks its size for its kind, before any decoding.
fn count_message(bytes: &[u8]) -> Result<()> {
    if bytes.len() > PEER_MESSAGE_MAX {
        return Err(PeerWireError::TooLarge(bytes.len(), PEER_MESSAGE_MAX));
    }
    let mut budget = ELEMENTS_MAX;
    let mut state_only = true;
    census::walk(bytes, census::Ty::PeerMessage, &mut budget, &mut |field| state_only &= field == 10)?;
    if !state_only && bytes.len() > MESSAGE_MAX {
        return Err(PeerWireError::TooLarge(bytes.len(), MESSAGE_MAX));
    }
    Ok(())
}

pub fn decode_message(bytes: &[u8]) -> Result<qop::Message> {
    count_message(bytes)?;
    message_in(decode(bytes)?)
}

/// The bytes a frame's signature covers: sender, addressee, send time and the batch's
/// SHA-256 (so a large batch is neither copied nor re-encoded to be checked).
pub fn frame_signed_bytes(frame: &pb::PeerFrame) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(48);
    bytes.extend_from_slice(&frame.from.to_le_bytes());
    bytes.extend_from_slice(&frame.to.to_le_bytes());
    bytes.extend_from_slice(&frame.sent_at_us.to_le_bytes());
    bytes.extend_from_slice(&super::digest(&frame.batch));
    bytes
}

/// A frame's batch: its messages, counted before they are split out, or a part of one.
pub fn decode_batch(bytes: &[u8]) -> Result<(Vec<Vec<u8>>, Option<pb::StatePart>)> {
    if bytes.len() > BATCH_MAX {
        return Err(PeerWireError::TooLarge(bytes.len(), BATCH_MAX));
    }
    census::within(bytes, census::Ty::PeerBatch, FRAME_MESSAGES_MAX)?;
    let batch = decode::<pb::PeerBatch>(bytes)?;
    Ok((batch.messages, batch.part))
}

pub fn encode_batch(messages: Vec<Vec<u8>>) -> Vec<u8> {
    pb::PeerBatch { messages, part: None }.encode_to_vec()
}

pub fn decode_block(bytes: &[u8]) -> Result<qop::Block> {
    census::within(bytes, census::Ty::Block, ELEMENTS_MAX)?;
    block_in(decode(bytes)?)
}

pub fn decode_state_cert(bytes: &[u8]) -> Result<qop::StateCert> {
    state_cert_in(decode(bytes)?)
}

fn block_ref_in(b: pb::BlockRef) -> Result<qop::BlockRef> {
    Ok(qop::BlockRef { height: b.height, hash: hash("block ref hash", &b.hash)? })
}

pub fn decode_persistent(bytes: &[u8]) -> Result<qop::Persistent> {
    let p: pb::PersistentState = decode(bytes)?;
    Ok(qop::Persistent {
        view: p.view,
        votes: p.votes.into_iter().map(block_ref_in).collect::<Result<_>>()?,
        high_qc: qc_in(need("persistent high_qc", p.high_qc)?)?,
        proposals: p.proposals.into_iter().map(block_ref_in).collect::<Result<_>>()?,
        reported: p.has_reported.then_some((p.reported_view, p.reported_height)),
        entered_by: p.entered_by.map(bc_in).transpose()?,
        justification: p.justification.map(justification_in).transpose()?,
    })
}

#[cfg(test)]
#[path = "peer_tests.rs"]
mod tests;
