//! What counts as a proof, and what never does: each kind made by a misbehaving replica,
//! and the near misses an honest replica can produce (or anyone can make) refused.

use prost::Message as _;

use super::*;
use crate::config::ReplicaEntry;
use crate::consensus::{Block, Crypto, Proposal, QuorumCert, Vote, signed};
use crate::crypto::{PeerCrypto, SigningKey, sign};

const CLUSTER_ID: &str = "00112233445566778899aabbccddeeff";

fn signing_keys() -> Vec<SigningKey> {
    (1..=5).map(|i| SigningKey::from_bytes(&[i; 32])).collect()
}

fn ids() -> Vec<String> {
    ["A", "B", "C", "D", "E"].iter().map(|s| s.to_string()).collect()
}

fn config() -> ClusterConfig {
    let replicas = signing_keys()
        .iter()
        .zip(ids())
        .enumerate()
        .map(|(i, (key, id))| ReplicaEntry {
            id,
            address: format!("127.0.0.1:{}", 7000 + i),
            public_key: crate::crypto::encode_hex(key.verifying_key().as_bytes()),
            certificate: String::new(),
        })
        .collect();
    ClusterConfig {
        name: "test".into(),
        cluster_id: CLUSTER_ID.into(),
        delta_ms: 200,
        kdf: Default::default(),
        checkpoint_every: 100,
        presence_ms: 60_000,
        reset: None,
        replicas,
    }
}

fn peer(i: usize) -> PeerCrypto {
    let keys = signing_keys();
    PeerCrypto::new(keys[i].clone(), keys.iter().map(|k| k.verifying_key()).collect(), CLUSTER_ID)
}

/// Replica `leader`'s signed proposal of a first block of view `view` over genesis.
fn proposal(leader: usize, view: u64, time_ms: u64) -> Proposal {
    let mut block = Block {
        view,
        height: 1,
        parent: [0; 32],
        parent_qc: QuorumCert::genesis(),
        proposer: leader as u8,
        time_ms,
        requests: vec![],
        hash: [0; 32],
    };
    block.hash = block.compute_hash();
    let signature = peer(leader).sign(&signed::proposal(&block.hash, None));
    Proposal { block, signature, justification: None }
}

fn vote(voter: usize, view: u64, height: u64, hash: [u8; 32]) -> Vote {
    Vote { view, height, hash, voter: voter as u8, signature: peer(voter).sign(&signed::vote(view, height, &hash)) }
}

fn protocol_proof(e: consensus::Evidence) -> pb::Proof {
    crate::wire::peer::evidence_out(&e)
}

fn equivocation(a: Proposal, b: Proposal) -> pb::Proof {
    protocol_proof(consensus::Evidence::Equivocation(Box::new((a, b))))
}

fn double_vote(a: Vote, b: Vote) -> pb::Proof {
    protocol_proof(consensus::Evidence::DoubleVote(Box::new((a, b))))
}

/// Replica `i`'s signed answer of the execution of request `digest` at `height`: "sent,
/// id `sent`".
fn reply(i: usize, digest: [u8; 32], height: u64, sent: u64) -> pb::SignedReply {
    let outcome = crate::wire::encode_outcome(&crate::chat::Outcome::Sent { id: sent });
    signed_reply(i, pb::ReplyBody { replica: ids()[i].clone(), request_digest: digest.to_vec(), height, outcome: Some(outcome), executed: true, ordered: vec![9; 32] })
}

fn signed_reply(i: usize, body: pb::ReplyBody) -> pb::SignedReply {
    let body = body.encode_to_vec();
    pb::SignedReply { signature: sign(&signing_keys()[i], TAG_REPLY, &body), body }
}

/// `reply` with its body changed by `change`.
fn reply_with(i: usize, height: u64, sent: u64, change: impl Fn(&mut pb::ReplyBody)) -> pb::SignedReply {
    let mut body = pb::ReplyBody::decode(reply(i, REQUEST, height, sent).body.as_slice()).unwrap();
    change(&mut body);
    signed_reply(i, body)
}

fn wrong_result(accused: pb::SignedReply, others: Vec<pb::SignedReply>) -> pb::Proof {
    pb::Proof { kind: Some(pb::proof::Kind::WrongResult(pb::ReplyConflict { accused: Some(accused), others })) }
}

const REQUEST: [u8; 32] = [7; 32];

#[test]
fn a_leaders_two_first_blocks_of_a_view_prove_equivocation_and_one_block_twice_does_not() {
    let keys = Keys::new(&config());
    let (a, b) = (proposal(0, 0, 1_000), proposal(0, 0, 1_001));
    assert_eq!(check(&equivocation(a.clone(), b.clone()), &keys), Ok(Accusation { replica: 0, kind: Kind::Equivocation }));
    assert!(check(&equivocation(a.clone(), a.clone()), &keys).is_err(), "the same block twice");
    // Not the view's leader: replica 1 does not lead view 0, whatever it signs.
    assert!(check(&equivocation(proposal(1, 0, 1_000), proposal(1, 0, 1_001)), &keys).is_err());
    // Two views' first blocks are what an honest leader of each signs.
    assert!(check(&equivocation(proposal(0, 0, 1_000), proposal(0, 5, 1_001)), &keys).is_err());
    // A signature that does not verify makes no proof (anyone could make the pair).
    let mut forged = b;
    forged.signature = crate::byzantine::forge(&forged.signature);
    assert!(check(&equivocation(a, forged), &keys).is_err());
}

#[test]
fn votes_for_two_blocks_at_one_height_prove_a_double_vote_and_one_chain_does_not() {
    let keys = Keys::new(&config());
    let proof = double_vote(vote(3, 4, 10, [1; 32]), vote(3, 4, 10, [2; 32]));
    assert_eq!(check(&proof, &keys), Ok(Accusation { replica: 3, kind: Kind::DoubleVote }));
    // An honest replica's votes of a view form one chain: two heights are allowed.
    assert!(check(&double_vote(vote(3, 4, 10, [1; 32]), vote(3, 4, 11, [2; 32])), &keys).is_err());
    // Two views, two voters, one block: all honest.
    assert!(check(&double_vote(vote(3, 4, 10, [1; 32]), vote(3, 5, 10, [2; 32])), &keys).is_err());
    assert!(check(&double_vote(vote(3, 4, 10, [1; 32]), vote(2, 4, 10, [2; 32])), &keys).is_err());
    assert!(check(&double_vote(vote(3, 4, 10, [1; 32]), vote(3, 4, 10, [1; 32])), &keys).is_err());
    // A vote in D's name that D did not sign (E signed it) accuses nobody.
    let mut forged = vote(4, 4, 10, [2; 32]);
    forged.voter = 3;
    assert!(check(&double_vote(vote(3, 4, 10, [1; 32]), forged), &keys).is_err());
}

#[test]
fn a_reply_against_three_matching_ones_at_its_height_proves_a_wrong_result() {
    let keys = Keys::new(&config());
    let truth: Vec<_> = (0..3).map(|i| reply(i, REQUEST, 9, 4)).collect();
    let lie = reply(3, REQUEST, 9, 1_004);
    assert_eq!(check(&wrong_result(lie.clone(), truth.clone()), &keys), Ok(Accusation { replica: 3, kind: Kind::WrongResult }));
    // Two of its own replies that differ at one height prove it too.
    assert_eq!(check(&wrong_result(lie.clone(), vec![reply(3, REQUEST, 9, 4)]), &keys).map(|a| a.replica), Ok(3));
    // Only two others: they could be the two liars, so the accused may be honest.
    assert!(check(&wrong_result(lie.clone(), truth[..2].to_vec()), &keys).is_err());
    // Others at another height, for another request, or disagreeing among themselves.
    assert!(check(&wrong_result(lie.clone(), (0..3).map(|i| reply(i, REQUEST, 10, 4)).collect()), &keys).is_err());
    assert!(check(&wrong_result(lie.clone(), (0..3).map(|i| reply(i, [8; 32], 9, 4)).collect()), &keys).is_err());
    assert!(check(&wrong_result(lie.clone(), vec![reply(0, REQUEST, 9, 4), reply(1, REQUEST, 9, 4), reply(2, REQUEST, 9, 5)]), &keys).is_err());
    // One replica counted three times is one.
    assert!(check(&wrong_result(lie.clone(), vec![truth[0].clone(), truth[0].clone(), truth[0].clone()]), &keys).is_err());
    // A height-0 answer is a replica's answer of the moment.
    let refused: Vec<_> = (0..3).map(|i| reply(i, REQUEST, 0, 4)).collect();
    assert!(check(&wrong_result(reply(3, REQUEST, 0, 1_004), refused), &keys).is_err());
    // A reply in D's name signed by E proves nothing against D.
    let mut forged = lie;
    forged.signature = sign(&signing_keys()[4], TAG_REPLY, &forged.body);
    assert!(check(&wrong_result(forged, truth), &keys).is_err());
}

#[test]
fn two_liars_cannot_make_a_proof_against_an_honest_replica() {
    // D and E sign the same lie: A's true reply contradicts it, but two signatures on the
    // lie are not a result, so A is not accused; nor is any honest replica by forged bytes.
    let keys = Keys::new(&config());
    let honest = reply(0, REQUEST, 9, 4);
    let liars = vec![reply(3, REQUEST, 9, 1_004), reply(4, REQUEST, 9, 1_004)];
    assert!(check(&wrong_result(honest.clone(), liars.clone()), &keys).is_err());
    // Adding a made-up third "signature" in B's name does not help them.
    let mut fake_b = reply(1, REQUEST, 9, 1_004);
    fake_b.signature = sign(&signing_keys()[3], TAG_REPLY, &fake_b.body);
    let mut three = liars;
    three.push(fake_b);
    assert!(check(&wrong_result(honest, three), &keys).is_err());
}

#[test]
fn a_store_keeps_each_proof_once_bounded_per_accused_and_survives_a_restart() {
    let dir = std::env::temp_dir().join(format!("quintet-evidence-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("evidence.pb");
    let keys = Keys::new(&config());
    let (mut store, warning) = Store::open(&path, &keys);
    assert_eq!((store.len(), warning), (0, None));
    let (a, b) = (proposal(0, 0, 1_000), proposal(0, 0, 1_001));
    let accusation = Accusation { replica: 0, kind: Kind::Equivocation };
    assert!(store.keep(equivocation(a.clone(), b.clone()), accusation).unwrap());
    assert!(!store.keep(equivocation(b.clone(), a.clone()), accusation).unwrap(), "the same pair told the other way round");
    for t in 2..20 {
        store.keep(equivocation(a.clone(), proposal(0, 0, 1_000 + t)), accusation).unwrap();
    }
    assert_eq!(store.len(), PER_ACCUSED_KIND, "bounded per accused replica and kind");
    let vote_accusation = Accusation { replica: 3, kind: Kind::DoubleVote };
    assert!(store.keep(double_vote(vote(3, 4, 10, [1; 32]), vote(3, 4, 10, [2; 32])), vote_accusation).unwrap());
    assert_eq!(crate::storage::modes::mode(&path), Some(0o600));
    let (again, warning) = Store::open(&path, &keys);
    assert_eq!((again.len(), warning), (PER_ACCUSED_KIND + 1, None));
    // An entry that no longer checks (another cluster's keys, an edit) is dropped, loudly.
    let mut other = config();
    other.cluster_id = "ffeeddccbbaa99887766554433221100".into();
    let (other_store, warning) = Store::open(&path, &Keys::new(&other));
    assert_eq!(other_store.len(), 0);
    assert!(warning.is_some_and(|w| w.contains("5 of its 5 entries are not proofs")), "{:?}", other_store.rejected);
    std::fs::write(&path, b"\x0a\xff\xff\x03 not a store").unwrap();
    let (damaged, warning) = Store::open(&path, &keys);
    assert_eq!(damaged.len(), 0);
    assert!(warning.is_some_and(|w| w.contains("does not decode")));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn only_answers_of_the_execution_itself_make_a_wrong_result_proof() {
    // Found by review: answers from what a replica kept may say less than the execution
    // did (a result too large to keep, a mailbox read again after a deletion), a request
    // body can be ordered twice under other signatures, and presence answers depend on
    // each replica's settings. None of those may accuse anyone.
    let keys = Keys::new(&config());
    let truth: Vec<_> = (0..3).map(|i| reply(i, REQUEST, 9, 4)).collect();
    assert!(check(&wrong_result(reply(3, REQUEST, 9, 1_004), truth.clone()), &keys).is_ok(), "the control");
    // A resend's answer from the cache (not `executed`), against the executed ones.
    let cached = reply_with(3, 9, 1_004, |b| b.executed = false);
    assert!(check(&wrong_result(cached.clone(), truth.clone()), &keys).is_err());
    // Nor against the same replica's own executed answer.
    assert!(check(&wrong_result(cached, vec![reply(3, REQUEST, 9, 4)]), &keys).is_err());
    // The same body ordered under other signed bytes (another `ordered`) is another request.
    let other_bytes = reply_with(3, 9, 1_004, |b| b.ordered = vec![8; 32]);
    assert!(check(&wrong_result(other_bytes, truth.clone()), &keys).is_err());
    // Presence answers.
    let alive = |i: usize, until_ms: u64| {
        reply_with(i, 9, 0, |b| b.outcome = Some(pb::Outcome { kind: Some(pb::outcome::Kind::Alive(pb::Alive { until_ms })) }))
    };
    assert!(check(&wrong_result(alive(3, 60_000), (0..3).map(|i| alive(i, 90_000)).collect()), &keys).is_err());
    // More "others" than the cluster has replicas is refused before any is verified.
    let many: Vec<_> = (0..6).map(|i| reply(i % 3, REQUEST, 9, 4)).collect();
    assert!(check(&wrong_result(reply(3, REQUEST, 9, 1_004), many), &keys).unwrap_err().contains("fewer"));
}

/// Replicas `voters`' QC for `block`.
fn qc_for(block: &Block, voters: &[usize]) -> QuorumCert {
    let votes = voters.iter().map(|v| (*v as u8, peer(*v).sign(&signed::vote(block.view, block.height, &block.hash)))).collect();
    QuorumCert { view: block.view, height: block.height, hash: block.hash, votes }
}

/// Leader 0's view-0 block over `parent` (its QC from `voters`), at `time_ms`.
fn child(parent: &Block, time_ms: u64) -> Block {
    let parent_qc = qc_for(parent, &[0, 1, 2]);
    let mut block = Block { view: 0, height: parent.height + 1, parent: parent.hash, parent_qc, proposer: 0, time_ms, requests: vec![], hash: [0; 32] };
    block.hash = block.compute_hash();
    block
}

fn signed_by_leader(block: Block) -> Proposal {
    let signature = peer(0).sign(&signed::proposal(&block.hash, None));
    Proposal { block, signature, justification: None }
}

#[test]
fn a_conflict_deep_in_a_views_chain_is_proven_with_the_blocks_between() {
    // View 0: A1, then A2 over it; the leader also grew Y2 (another block at height 2, over
    // A1), Y3 over Y2 and B4 over Y3. A2 and B4 alone show nothing (heights 2 and 4, B4's
    // parent is Y3); with Y3 between them, B4's chain has a view-0 QC at height 2 for Y2,
    // not A2: the leader signed two blocks at height 2.
    let keys = Keys::new(&config());
    let a1 = proposal(0, 0, 1_000).block;
    let a2 = child(&a1, 1_001);
    let y2 = child(&a1, 1_002);
    let y3 = child(&y2, 1_003);
    let b4 = child(&y3, 1_004);
    let (pa2, pb4) = (signed_by_leader(a2.clone()), signed_by_leader(b4));
    assert!(check(&equivocation(pa2.clone(), pb4.clone()), &keys).is_err(), "the pair alone shows nothing");
    let chain = |between: Vec<Block>| protocol_proof(consensus::Evidence::ChainEquivocation(Box::new((pa2.clone(), pb4.clone(), between))));
    assert_eq!(check(&chain(vec![y3.clone()]), &keys), Ok(Accusation { replica: 0, kind: Kind::Equivocation }));
    assert!(describe(&chain(vec![y3.clone()])).contains("through 1 blocks between"));
    // Without the block between, or with a block that is not the one B4's QC names.
    assert!(check(&chain(vec![]), &keys).is_err());
    assert!(check(&chain(vec![a2.clone()]), &keys).is_err());
    let mut tampered = y3.clone();
    tampered.time_ms += 1;
    assert!(check(&chain(vec![tampered]), &keys).is_err(), "its hash no longer matches");
    // One honest chain A1, A2, A3, A4: the blocks between show it extends A2.
    let a3 = child(&a2, 1_005);
    let a4 = signed_by_leader(child(&a3, 1_006));
    let honest = protocol_proof(consensus::Evidence::ChainEquivocation(Box::new((pa2, a4, vec![a3]))));
    assert!(check(&honest, &keys).is_err(), "one chain is no equivocation");
}
