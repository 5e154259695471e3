//! Exact transitions for the second review of QOP v2 (2026-12-06/07): what one peer can make
//! a replica keep or do (signed junk, FETCH floods, an equivocating leader's blocks), and
//! the leader's fill order.

use super::tests::*;
use super::*;

/// Review finding (2026-12-06): votes and commit CHECKPOINTs above the committed height
/// were kept until that height committed, one entry per signed (height, hash): one replica
/// signing junk grew every other replica's memory for ever. Each signer now has a bound,
/// and the honest replicas' votes still form their QC among the junk.
#[test]
fn signed_junk_from_one_replica_is_bounded_per_signer() {
    use crate::consensus::checkpoints::CHECKPOINTS_PER_SIGNER;
    use crate::consensus::steady::VOTES_PER_SIGNER;
    let mut r = core(4, None);
    let junk = |i: u64| digest(&i.to_le_bytes());
    for i in 0..20_000u64 {
        let (height, hash) = (2 + i, junk(i));
        let vote = Vote { view: 0, height, hash, voter: 3, signature: sign_as(3, &signed::vote(0, height, &hash)) };
        r.handle(1_000, Input::Message(3, Message::Vote(vote)));
        let signature = sign_as(3, &signed::checkpoint(height, &hash, None));
        r.handle(1_000, Input::Message(3, Message::Checkpoint(Checkpoint { height, hash, state: None, voter: 3, signature })));
    }
    eprintln!("after 20,000 junk votes and 20,000 junk CHECKPOINTs from one replica: {} pooled votes, {} checkpoint entries", r.vote_pool.len(), r.checkpoints.len());
    assert!(r.vote_pool.len() <= VOTES_PER_SIGNER, "{} pooled votes", r.vote_pool.len());
    assert!(r.checkpoints.len() <= CHECKPOINTS_PER_SIGNER, "{} checkpoint entries", r.checkpoints.len());
    // The honest replicas' votes for a real block still make its QC.
    let b1 = proposal(0, QuorumCert::genesis(), 1, None);
    r.handle(1_001, Input::Message(0, Message::Propose(b1.clone())));
    for v in [0u8, 1, 2] {
        let vote = Vote { view: 0, height: 1, hash: b1.block.hash, voter: v, signature: sign_as(v, &signed::vote(0, 1, &b1.block.hash)) };
        r.handle(1_002, Input::Message(v, Message::Vote(vote)));
    }
    assert!(r.qcs.contains_key(&b1.block.hash), "QC(b1) among the junk");
}

/// Review finding (2026-12-06): every FETCH was answered, so 1,000 FETCHes of a 1 MiB block
/// in one second cost 1,000 replies. Now each asker gets at most `FETCH_BYTES_PER_PERIOD`
/// of blocks per 4Δ; an honest asker, one FETCH per hash per 2Δ, never meets the bound.
#[test]
fn fetch_answers_are_bounded_per_asker() {
    use crate::consensus::core::FETCH_BYTES_PER_PERIOD;
    let big = block(0, QuorumCert::genesis(), 1_000, vec![vec![7u8; (1 << 20) - 1_000]]);
    let signature = sign_as(0, &signed::proposal(&big.hash, None));
    let mut r = core(4, None);
    r.handle(1_000, Input::Message(0, Message::Propose(Proposal { block: big.clone(), signature, justification: None })));
    let replies = |r: &mut Core, from: ReplicaId, start: u64, count: u64| -> usize {
        (0..count)
            .map(|i| r.handle(start + i, Input::Message(from, Message::Fetch(big.hash))))
            .map(|actions| actions.iter().filter(|a| matches!(a, Action::Send(_, Message::Block(_)))).count())
            .sum()
    };
    // 1,000 FETCHes from replica 2 within one second (2.5 periods of 4Δ).
    let flood = replies(&mut r, 2, 2_000, 1_000);
    eprintln!("1,000 FETCHes of a 1 MiB block in 1 s: {flood} replies");
    let per_period = (FETCH_BYTES_PER_PERIOD / (1 << 20)) as usize;
    assert!(flood <= 3 * per_period, "{flood} replies");
    // Another asker is not held back by the first one's flood; an honest pace is answered.
    assert_eq!(replies(&mut r, 3, 2_500, 1), 1);
    let honest: usize = (0..5).map(|k| replies(&mut r, 1, 3_000 + k * 2 * DELTA, 1)).sum();
    assert_eq!(honest, 5, "one FETCH per 2Δ is always answered");
}

/// Review finding (2026-12-06): an equivocating leader's distinct blocks at one height were
/// each stored and forwarded to every replica, even after the equivocation was proven.
/// Now the second block of a (view, height) is the proof, and nothing after it is stored or
/// forwarded; the blame carries the pair.
#[test]
fn an_equivocating_leaders_many_blocks_are_neither_stored_nor_forwarded() {
    let mut r = core(4, None);
    let mut stored = 0;
    let mut forwarded = 0;
    for tag in 0..200u64 {
        let p = proposal(0, QuorumCert::genesis(), 1_000 + tag, None);
        let k = kinds(&r.handle(1_000, Input::Message(0, Message::Propose(p))));
        stored += k.iter().filter(|k| *k == "store").count();
        forwarded += k.iter().filter(|k| *k == "broadcast propose").count();
        if tag == 1 {
            assert!(k.contains(&"broadcast blame".to_string()), "the second block proves it: {k:?}");
        }
    }
    eprintln!("200 blocks at height 1 from the view's leader: {stored} stored, {forwarded} forwarded");
    assert_eq!((stored, forwarded), (1, 1), "only the first block");
}

/// Review finding (2026-12-07): the leader filled blocks in digest order, so requests whose
/// digests sort low (a client can grind them, and relays made that free for a Byzantine
/// replica) could keep an older request out of every block until its timer blamed an
/// honest leader. Blocks are filled oldest first.
#[test]
fn s1_a_leader_proposes_the_oldest_requests_first() {
    let proposed = |actions: Vec<Action>| actions.into_iter().find_map(|a| if let Action::Broadcast(Message::Propose(p)) = a { Some(p.block) } else { None });
    let mut leader = core(0, None);
    let b1 = proposed(leader.handle(1_000, Input::Request(b"first".to_vec()))).expect("block 1");
    let later: Vec<Vec<u8>> = (0..300).map(|i| format!("later {i}").into_bytes()).collect();
    let highest = later.iter().map(|r| digest(r)).max().expect("300");
    // An old request whose digest sorts after every later one.
    let old = (0..).map(|i| format!("old {i}").into_bytes()).find(|r| digest(r) > highest).expect("found");
    leader.handle(1_001, Input::Request(old.clone()));
    for r in &later {
        leader.handle(1_002, Input::Request(r.clone()));
    }
    let mut b2 = None;
    for v in [1u8, 2] {
        let vote = Vote { view: 0, height: 1, hash: b1.hash, voter: v, signature: sign_as(v, &signed::vote(0, 1, &b1.hash)) };
        b2 = b2.or(proposed(leader.handle(1_010, Input::Message(v, Message::Vote(vote)))));
    }
    let b2 = b2.expect("block 2 once block 1 has its QC");
    assert_eq!(b2.requests.len(), 256);
    assert_eq!(b2.requests[0], old, "the oldest request first");
}
