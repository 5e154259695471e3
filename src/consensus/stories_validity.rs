//! The block-validity attacks of the second review, as stories on the same harness as
//! `stories.rs` (three honest cores, a Byzantine pair).

use super::*;

/// Attack 1 of the second review: leader 0 shows every honest replica a block of 2²⁰ + 5
/// empty requests, with the coalition's votes. Voters used to take any block; the position
/// packed into the reply height then made every replica's state machine stop at execution,
/// and again at every restart. Now no honest replica votes for it (S2.6), the silent
/// leaders are blamed, and the honest leader of view 2 orders the real request.
#[test]
fn story_a_block_of_two_to_the_twenty_junk_requests_gets_no_vote_and_chat_goes_on() {
    let mut net = Net::new(Planted::default());
    net.request(b"a real request");
    let junk = block(0, QuorumCert::genesis(), 100, vec![Vec::new(); (1 << 20) + 5]);
    for to in HONEST {
        net.inject(100, 0, to, propose(&junk, None));
        net.inject(100, 0, to, vote(0, &junk));
        net.inject(100, 1, to, vote(1, &junk));
    }
    net.run_until(15_000);
    let voted = net.to_coalition.iter().any(|(_, m)| matches!(m, Message::Vote(v) if v.hash == junk.hash));
    assert!(!voted, "an honest replica voted for a block over the batch limits");
    assert!(net.agreement_holds());
    for id in HONEST {
        assert!(net.core(id).view() >= 2, "replica {id} left the silent leaders' views");
        let committed = &net.commits[&id];
        assert!(committed.iter().all(|b| b.hash != junk.hash));
        assert!(committed.iter().any(|b| b.requests == vec![b"a real request".to_vec()]), "replica {id}: {committed:?}");
    }
}

/// A signed request in the simulator's signature scheme (`execute::SimRequests`).
fn request(user: &str, seq: u64, op: crate::chat::Op, key: &[u8; 32], time_ms: u64) -> Vec<u8> {
    use prost::Message as _;
    let body = crate::pb::RequestBody {
        cluster: "story".into(),
        user: user.into(),
        session: time_ms * 1_000,
        seq,
        op: Some(crate::wire::encode_op(&op)),
    }
    .encode_to_vec();
    let signature = crate::execute::SimRequests::sign(key, &body);
    crate::pb::SignedRequest { body, signature }.encode_to_vec()
}

/// Attack 2 of the second review: leader 0 orders alice's genuine account creation and a
/// "delete alice" that alice never signed (signed with another key), and with the
/// coalition's votes the honest replicas commit the block: voters cannot check a request's
/// signature (the key may come from a block not executed yet). Execution checks it, the
/// same way on every replica: the forgery is refused and alice keeps her account. With the
/// check planted away, the same committed log deletes her.
#[test]
fn story_a_leader_commits_a_request_alice_never_signed_and_nothing_happens() {
    use crate::chat::{ChatState, Op};
    let mut net = Net::new(Planted::default());
    let alice = [1; 32];
    let create = request("alice", 1, Op::CreateAccount { public_key: alice }, &alice, 100);
    let forged = request("alice", 2, Op::DeleteAccount, &[9; 32], 100);
    let b1 = block(0, QuorumCert::genesis(), 100, vec![create, forged]);
    let b2 = block(0, qc(&b1, &[0, 1, 2]), 300, vec![]);
    let b3 = block(0, qc(&b2, &[0, 1, 2]), 500, vec![]);
    for (at, b) in [(100, &b1), (300, &b2), (500, &b3)] {
        for to in HONEST {
            net.inject(at, 0, to, propose(b, None));
            net.inject(at, 0, to, vote(0, b));
            net.inject(at, 1, to, vote(1, b));
        }
    }
    net.run_until(1_500);
    let replay = |blocks: &[Block], unchecked: bool| {
        let mut state = ChatState::new();
        let mut outcomes = Vec::new();
        for b in blocks {
            let executed = crate::execute::execute_committed(&mut state, b, "story", &crate::execute::SimRequests, unchecked);
            outcomes.extend(executed.into_iter().map(|e| (e.applied, e.outcome)));
        }
        (state, outcomes)
    };
    let mut digests = Vec::new();
    for id in HONEST {
        let blocks = &net.commits[&id];
        assert!(blocks.iter().any(|b| b.hash == b1.hash), "replica {id} committed the block");
        let (state, outcomes) = replay(blocks, false);
        assert!(state.account("alice").is_some(), "replica {id}: the forgery deleted alice");
        assert_eq!(outcomes.iter().map(|(applied, _)| *applied).collect::<Vec<_>>(), vec![true, false]);
        assert!(
            matches!(&outcomes[1].1.kind, Some(crate::pb::outcome::Kind::Failure(f)) if f.code == "bad_signature"),
            "{:?}",
            outcomes[1]
        );
        digests.push(state.digest());
    }
    assert!(digests.windows(2).all(|w| w[0] == w[1]), "every replica refused it the same way");
    let (state, _) = replay(&net.commits[&2], true);
    assert!(state.account("alice").is_none(), "planted: execution without the check deletes alice");
}
