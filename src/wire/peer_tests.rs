//! The peer codec: every message kind and the persistent state round-trip; any bytes decode
//! to a value or an error, never a panic.

use super::*;
use crate::consensus::{Block, QuorumCert};
use crate::rng::Rng;

fn block(height: u64) -> qop::Block {
    let qc = qop::QuorumCert { view: 1, height: height - 1, hash: [7; 32], votes: vec![(0, vec![1; 16]), (2, vec![2; 16])] };
    let mut b = Block { view: 2, height, parent: [7; 32], parent_qc: qc, proposer: 3, time_ms: 99, requests: vec![vec![1, 2], vec![]], hash: [0; 32] };
    b.hash = b.compute_hash();
    b
}

/// One message of every kind, with every optional part present somewhere.
fn every_kind() -> Vec<qop::Message> {
    let bc = qop::BlameCert { view: 4, blames: vec![(1, vec![3; 16])] };
    let recovered = |blame_cert: Option<qop::BlameCert>, proposals: Vec<qop::Proposal>| {
        let high_qc = proposals.first().map_or(QuorumCert::genesis(), |p| p.block.parent_qc.clone());
        qop::Message::Recovered(Box::new(qop::Recovered { blame_cert, proposals, high_qc, start: 1_800_000_000_123 }))
    };
    let status = qop::Status { view: 5, high_qc: QuorumCert::genesis(), voter: 1, signature: vec![4], blame_cert: bc.clone() };
    let j = qop::Justification { blame_cert: bc.clone(), statuses: vec![status.clone()] };
    let p = qop::Proposal { block: block(3), signature: vec![5; 16], justification: Some(j) };
    let p0 = qop::Proposal { block: block(4), signature: vec![6], justification: None };
    let cert = qop::StateCert { height: 3, hash: [8; 32], state: [9; 32], signatures: vec![(0, vec![1])] };
    vec![
        qop::Message::Propose(p.clone()),
        qop::Message::Vote(qop::Vote { view: 1, height: 2, hash: [1; 32], voter: 4, signature: vec![9] }),
        qop::Message::Blame(qop::Blame {
            view: 6,
            voter: 2,
            reason: qop::BlameReason::Equivocation(Box::new((p.clone(), p0.clone()))),
            signature: vec![1],
            entered_by: Some(bc.clone()),
        }),
        qop::Message::Blame(qop::Blame { view: 0, voter: 2, reason: qop::BlameReason::Timeout, signature: vec![], entered_by: None }),
        qop::Message::BlameCert(bc.clone()),
        qop::Message::Status(status),
        qop::Message::Checkpoint(qop::Checkpoint { height: 3, hash: [2; 32], state: None, voter: 0, signature: vec![2] }),
        qop::Message::Checkpoint(qop::Checkpoint { height: 3, hash: [2; 32], state: Some([3; 32]), voter: 0, signature: vec![2] }),
        qop::Message::Fetch([4; 32]),
        qop::Message::Block(Box::new(block(5))),
        qop::Message::FetchState(17),
        qop::Message::State(Box::new(qop::StateTransfer { cert, block: block(3), image: vec![1, 2, 3] })),
        qop::Message::Relay(vec![9, 8, 7]),
        qop::Message::Recover(7),
        recovered(None, vec![]),
        recovered(Some(bc.clone()), vec![p.clone(), p0.clone()]),
    ]
}

#[test]
fn every_message_kind_and_the_persistent_state_round_trip() {
    for m in every_kind() {
        assert_eq!(decode_message(&encode_message(&m)), Ok(m));
    }
    let p = qop::Persistent {
        view: 3,
        votes: vec![block(2).named()],
        high_qc: block(2).parent_qc,
        proposals: vec![block(3).named()],
        reported: Some((2, 1)),
        entered_by: Some(qop::BlameCert { view: 2, blames: vec![] }),
        justification: None,
    };
    assert_eq!(decode_persistent(&encode_persistent(&p)), Ok(p));
}

#[test]
fn any_bytes_give_a_message_or_a_clear_error_never_a_panic() {
    let mut rng = Rng::new(11);
    for m in every_kind() {
        let bytes = encode_message(&m);
        for cut in 0..bytes.len() {
            let _ = decode_message(&bytes[..cut]);
        }
        for _ in 0..500 {
            let mut b = bytes.clone();
            for _ in 0..1 + rng.below(3) {
                let at = rng.below(b.len() as u64) as usize;
                b[at] ^= 1 << rng.below(8);
            }
            let _ = decode_message(&b);
            let _ = decode_persistent(&b);
        }
    }
    for len in 0..64 {
        let b: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        let _ = decode_message(&b);
    }
    assert_eq!(decode_message(&[]), Err(PeerWireError::Missing("message kind")));
    let short = pb::PeerMessage { kind: Some(pb::peer_message::Kind::Fetch(vec![1; 31])) }.encode_to_vec();
    assert_eq!(decode_message(&short), Err(PeerWireError::HashLength { field: "fetch hash", len: 31 }));
    let vote = pb::Vote { hash: vec![0; 32], voter: 300, ..Default::default() };
    let bad_id = pb::PeerMessage { kind: Some(pb::peer_message::Kind::Vote(vote)) }.encode_to_vec();
    assert_eq!(decode_message(&bad_id), Err(PeerWireError::Id(300)));
    assert!(decode_message(&[0xff; 10]).unwrap_err().to_string().contains("not a valid protobuf"));
}
