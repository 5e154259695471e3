//! Counting before allocating: a walk over protobuf wire bytes that decodes nothing. prost
//! allocates for every element of a repeated field, so 2 bytes on the wire (an empty
//! `bytes` element) become a 24-byte `Vec` in memory: a 1 GiB peer message of empty
//! requests would take about 12 GiB. Peer messages are first walked here, every field
//! occurrence at every level counted against a budget, and refused past it (or past their
//! byte limit) before prost sees them.

use super::peer::PeerWireError;

/// The peer schema's message types that contain other messages (the rest are leaves).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    PeerBatch,
    PeerMessage,
    Proposal,
    Block,
    QuorumCert,
    BlameCert,
    ViewStatus,
    Justification,
    Blame,
    Equivocation,
    StateTransfer,
    StateCert,
    /// A message whose fields are all scalars or bytes (PeerSignature, Vote, Checkpoint).
    Leaf,
}

/// The type of field `field` of a `ty`, when it is a message (`None`: scalar or bytes).
fn child(ty: Ty, field: u64) -> Option<Ty> {
    use Ty::*;
    Some(match (ty, field) {
        (PeerBatch, 2) => Leaf,
        (PeerMessage, 1) => Proposal,
        (PeerMessage, 2 | 6) => Leaf,
        (PeerMessage, 3) => Blame,
        (PeerMessage, 4) => BlameCert,
        (PeerMessage, 5) => ViewStatus,
        (PeerMessage, 8) => Block,
        (PeerMessage, 10) => StateTransfer,
        (Proposal, 1) => Block,
        (Proposal, 3) => Justification,
        (Block, 4) => QuorumCert,
        (QuorumCert, 4) | (BlameCert, 2) | (StateCert, 4) => Leaf,
        (ViewStatus, 2) => QuorumCert,
        (ViewStatus, 5) | (Justification, 1) | (Blame, 4) => BlameCert,
        (Justification, 2) => ViewStatus,
        (Blame, 5) => Equivocation,
        (Equivocation, 1 | 2) => Proposal,
        (StateTransfer, 1) => StateCert,
        (StateTransfer, 2) => Block,
        _ => return None,
    })
}

fn malformed(what: &str) -> PeerWireError {
    PeerWireError::Malformed(what.into())
}

fn varint(bytes: &[u8], pos: &mut usize) -> Result<u64, PeerWireError> {
    let mut value = 0u64;
    for shift in (0..70).step_by(7) {
        let byte = *bytes.get(*pos).ok_or_else(|| malformed("truncated varint"))?;
        *pos += 1;
        value |= u64::from(byte & 0x7f).checked_shl(shift).unwrap_or(0);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(malformed("varint longer than 10 bytes"))
}

/// Walks `bytes` as a `ty`, taking one from `budget` per field occurrence at every level.
/// Calls `top` with each top-level field number.
pub fn walk(bytes: &[u8], ty: Ty, budget: &mut usize, top: &mut dyn FnMut(u64)) -> Result<(), PeerWireError> {
    let mut pos = 0;
    while pos < bytes.len() {
        let key = varint(bytes, &mut pos)?;
        let field = key >> 3;
        *budget = budget.checked_sub(1).ok_or(PeerWireError::TooManyElements)?;
        top(field);
        let skip = match key & 7 {
            0 => {
                varint(bytes, &mut pos)?;
                0
            }
            1 => 8,
            5 => 4,
            2 => {
                let len = usize::try_from(varint(bytes, &mut pos)?).map_err(|_| malformed("length"))?;
                let end = pos.checked_add(len).filter(|end| *end <= bytes.len()).ok_or_else(|| malformed("length past the end"))?;
                if let Some(inner) = child(ty, field) {
                    walk(&bytes[pos..end], inner, budget, &mut |_| {})?;
                }
                len
            }
            _ => return Err(malformed("unknown wire type")),
        };
        pos = pos.checked_add(skip).filter(|p| *p <= bytes.len()).ok_or_else(|| malformed("field past the end"))?;
    }
    Ok(())
}

/// Walks `bytes` as a `ty` within `budget` field occurrences.
pub fn within(bytes: &[u8], ty: Ty, mut budget: usize) -> Result<(), PeerWireError> {
    walk(bytes, ty, &mut budget, &mut |_| {})
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;
    use crate::pb;

    fn count(bytes: &[u8], ty: Ty) -> Result<usize, PeerWireError> {
        let mut budget = usize::MAX;
        walk(bytes, ty, &mut budget, &mut |_| {})?;
        Ok(usize::MAX - budget)
    }

    #[test]
    fn every_field_occurrence_is_counted_at_every_level() {
        let qc = pb::QuorumCert { view: 1, height: 2, hash: vec![1; 32], votes: vec![pb::PeerSignature { signer: 1, signature: vec![2] }; 3] };
        let block = pb::Block { view: 1, height: 3, parent: vec![1; 32], parent_qc: Some(qc), proposer: 1, time_ms: 5, requests: vec![vec![]; 10] };
        let message = pb::PeerMessage { kind: Some(pb::peer_message::Kind::Block(block)) };
        // kind(1) + block's 6 set fields + parent_qc's 4 + 3 votes × 2 + 10 requests
        assert_eq!(count(&message.encode_to_vec(), Ty::PeerMessage), Ok(1 + 6 + 3 + 3 + 6 + 10));
    }

    #[test]
    fn a_budget_stops_the_walk_and_bad_bytes_are_errors_not_panics() {
        let block = pb::Block { requests: vec![vec![]; 1000], ..Default::default() };
        let bytes = block.encode_to_vec();
        assert_eq!(within(&bytes, Ty::Block, 999), Err(PeerWireError::TooManyElements));
        assert_eq!(within(&bytes, Ty::Block, 1000), Ok(()));
        for bad in [&[0x0a, 0x05, 0x00][..], &[0xff; 11], &[0x0b], &[0x09, 1, 2]] {
            assert!(matches!(count(bad, Ty::PeerMessage), Err(PeerWireError::Malformed(_))), "{bad:?}");
        }
        let mut rng = crate::rng::Rng::new(7);
        for _ in 0..2000 {
            let len = rng.below(64) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| rng.below(256) as u8).collect();
            let _ = count(&bytes, Ty::PeerMessage);
        }
    }
}
