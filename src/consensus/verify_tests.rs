//! The checker (`verify.rs`), the view change (`view_change.rs`) and the core's own rules
//! (`core.rs`) rule by rule: each test pins a check that mutation testing, or a review,
//! showed no other test needed on its own.

use super::tests::*;
use super::*;

/// The checker of a replica of five, with the usual sizes.
fn checker_of_five(crypto: &SimCrypto) -> Checker<'_> {
    Checker { n: 5, qc_size: 3, quorum: 3, certificate_size: 3, repeats_count: false, votes_any_height: false, base: (0, crate::consensus::GENESIS), crypto }
}

/// Mutation survivors in `verify.rs` (2026-11-22): each check of a status's certificate
/// view and of a block's link to its parent QC is needed on its own.
#[test]
fn verify_every_link_check_of_a_status_and_a_block_is_needed_on_its_own() {
    let crypto = SimCrypto { me: 4 };
    let checker = checker_of_five(&crypto);
    // A status for view 3 with a valid certificate of view 0 (not of view 2).
    let status = |view: View, bc: BlameCert| {
        let high_qc = QuorumCert::genesis();
        Status { view, signature: sign_as(2, &signed::status(view, &high_qc)), high_qc, voter: 2, blame_cert: bc }
    };
    assert_eq!(checker.status(&status(1, blame_cert_of_view_0())), Ok(()));
    assert!(checker.status(&status(3, blame_cert_of_view_0())).is_err(), "a certificate of another view");
    // Blocks signed by their leader whose link to the parent QC is wrong in one way each.
    let g = proposal(0, QuorumCert::genesis(), 1, None).block;
    let signed_block = |mut b: Block| {
        b.hash = b.compute_hash();
        let signature = sign_as(b.proposer, &signed::proposal(&b.hash, None));
        Proposal { block: b, signature, justification: None }
    };
    let good = block(0, qc_for(&g, &[0, 2, 3]), 5, vec![]);
    assert_eq!(checker.proposal_block(&signed_block(good.clone())), Ok(()));
    let other_parent = Block { parent: [9; 32], ..good.clone() };
    assert!(checker.proposal_block(&signed_block(other_parent)).is_err(), "parent is not the QC's block");
    let other_height = Block { height: 5, ..good.clone() };
    assert!(checker.proposal_block(&signed_block(other_height)).is_err(), "height is not the QC's plus one");
    let h1 = proposal(1, QuorumCert::genesis(), 2, None).block; // a view-1 block, certified in view 1
    let later_qc = Block { view: 0, proposer: 0, ..block(1, qc_for(&h1, &[1, 2, 3]), 6, vec![]) };
    assert!(checker.proposal_block(&signed_block(later_qc)).is_err(), "parent QC from a later view");
}

/// Mutation survivor in `verify.rs` (2026-12-01): a justification's certificate must be
/// for the view before, even when its statuses are good.
#[test]
fn verify_a_justification_with_a_certificate_of_another_view_is_refused() {
    let crypto = SimCrypto { me: 4 };
    let checker = checker_of_five(&crypto);
    let b1 = proposal(0, QuorumCert::genesis(), 1, None).block;
    let j = justification_for_view_1(&b1);
    assert_eq!(checker.justification(&j, 1), Ok(()));
    let blames = [0u8, 1, 3].iter().map(|v| (*v, sign_as(*v, &signed::blame(1)))).collect();
    let bc1 = BlameCert { view: 1, blames };
    assert_eq!(checker.blame_cert(&bc1), Ok(()));
    let wrong = Justification { blame_cert: bc1, ..j.clone() };
    assert!(checker.justification(&wrong, 1).is_err(), "BC(1) justifying view 1");
    assert!(checker.justification(&j, 0).is_err(), "no justification in view 0");
}

/// Mutation survivor in `verify.rs` (2026-12-01): a "genesis" QC is genesis only at view 0
/// and with no votes. A genesis QC of a later view would rank above real QCs, so a replica
/// that learned it would report and lock on genesis above the block it had locked.
#[test]
fn verify_a_genesis_qc_of_a_later_view_or_with_votes_is_malformed() {
    let crypto = SimCrypto { me: 4 };
    let checker = checker_of_five(&crypto);
    assert_eq!(checker.qc(&QuorumCert::genesis()), Ok(()));
    let later = QuorumCert { view: 5, ..QuorumCert::genesis() };
    assert!(checker.qc(&later).is_err(), "genesis at view 5");
    let g = proposal(0, QuorumCert::genesis(), 1, None).block;
    let votes = qc_for(&g, &[0, 1, 2]).votes;
    let with_votes = QuorumCert { votes, ..QuorumCert::genesis() };
    assert!(checker.qc(&with_votes).is_err(), "genesis carrying votes");
}

/// Mutation survivor in `view_change.rs` (2026-12-01): the equivocation proof a blame
/// carries is acted on. The simulator cannot tell, because honest replicas forward what
/// they vote for and the 2Δ wait lets both blocks reach everyone before a commit; the rule
/// is what stops a replica's vote at once, from the proof alone.
#[test]
fn s5_an_equivocation_proof_carried_by_a_blame_stops_voting_in_that_view_at_once() {
    let mut r = core(2, None);
    let a = proposal(0, QuorumCert::genesis(), 1, None);
    let b = proposal(0, QuorumCert::genesis(), 2, None);
    let reason = BlameReason::Equivocation(Box::new((a.clone(), b)));
    let proof = Blame { view: 0, voter: 3, reason, signature: sign_as(3, &signed::blame(0)), entered_by: None };
    let actions = r.handle(1_000, Input::Message(3, Message::Blame(proof)));
    assert!(kinds(&actions).contains(&"broadcast blame".to_string()), "it blames the view too: {:?}", kinds(&actions));
    let actions = r.handle(1_001, Input::Message(0, Message::Propose(a)));
    assert!(!kinds(&actions).contains(&"broadcast vote".to_string()), "no vote in a view whose leader equivocated");
}

/// Mutation survivor in `view_change.rs` (2026-12-01): a status is verified before its QC
/// is learned, whatever its view. A status whose QC carries a forged vote must not move
/// the leader's `high_qc` (from which commits and its own lock follow).
#[test]
fn s7_a_status_with_a_forged_qc_teaches_the_leader_nothing() {
    let mut r = core(1, None);
    let b1 = block(0, QuorumCert::genesis(), 1, vec![vec![1]]);
    let j = justification_for_view_1(&b1);
    r.handle(1_000, Input::Message(0, Message::BlameCert(j.blame_cert.clone())));
    assert_eq!(r.view, 1);
    let mut forged = qc_for(&b1, &[0, 3, 4]);
    forged.votes[1].1[0] ^= 1;
    let signature = sign_as(3, &signed::status(1, &forged));
    let status = Status { view: 1, high_qc: forged, voter: 3, signature, blame_cert: j.blame_cert.clone() };
    r.handle(1_001, Input::Message(3, Message::Status(status)));
    assert_eq!(r.high_qc.rank(), QuorumCert::genesis().rank(), "the forged QC was not learned");
    // The same status with the genuine QC is learned: the test can see a learned QC.
    let genuine = qc_for(&b1, &[0, 3, 4]);
    let signature = sign_as(3, &signed::status(1, &genuine));
    let status = Status { view: 1, high_qc: genuine.clone(), voter: 3, signature, blame_cert: j.blame_cert };
    r.handle(1_002, Input::Message(3, Message::Status(status)));
    assert_eq!(r.high_qc.rank(), genuine.rank());
}

/// Mutation survivor in `view_change.rs` (2026-12-01): a blame certificate is verified
/// before it moves a replica. With `&&` → `||` in `on_blame_cert`, two blames (one lying
/// replica and a partner) would push honest replicas out of every view: liveness, but a
/// rule worth pinning. The genuine certificate, the control, does move it.
#[test]
fn s6_a_blame_certificate_of_two_blames_or_a_forged_one_moves_no_replica() {
    let mut r = core(2, None);
    let cert = |voters: &[u8], forge: bool| {
        let mut blames: Vec<_> = voters.iter().map(|v| (*v, sign_as(*v, &signed::blame(0)))).collect();
        if forge {
            blames[0].1[0] ^= 1;
        }
        BlameCert { view: 0, blames: blames.into_iter().collect() }
    };
    r.handle(1_000, Input::Message(0, Message::BlameCert(cert(&[0, 1], false))));
    assert_eq!(r.view, 0, "two blames are not a certificate");
    r.handle(1_001, Input::Message(0, Message::BlameCert(cert(&[0, 1, 3], true))));
    assert_eq!(r.view, 0, "a certificate with a forged blame");
    r.handle(1_002, Input::Message(0, Message::BlameCert(cert(&[0, 1, 3], false))));
    assert_eq!(r.view, 1, "the genuine certificate moves it");
}

/// The leader signs its block together with the justification voters rely on (review of
/// 2026-11-22): a relay that keeps the signature and swaps in another valid justification
/// (here: statuses that all report genesis, hiding replica 3's QC) is refused.
#[test]
fn verify_a_relay_cannot_swap_a_proposals_justification() {
    let crypto = SimCrypto { me: 4 };
    let checker = checker_of_five(&crypto);
    let b1 = proposal(0, QuorumCert::genesis(), 1, None).block;
    let j = justification_for_view_1(&b1);
    let mut lower = j.clone();
    for s in &mut lower.statuses {
        s.high_qc = QuorumCert::genesis();
        s.signature = sign_as(s.voter, &signed::status(1, &s.high_qc));
    }
    assert_eq!(checker.justification(&lower, 1), Ok(()), "the other justification is valid on its own");
    let signed = proposal(1, qc_for(&b1, &[0, 3, 4]), 10, Some(j));
    assert_eq!(checker.proposal(&signed), Ok(()));
    let swapped = Proposal { justification: Some(lower), ..signed };
    assert!(checker.proposal(&swapped).is_err(), "the leader's signature covers the justification");
}

/// The decision of 2026-11-22 on S2.1's "not leaving v": it means not holding BC(v). A
/// replica whose own timer blamed the view still votes in it (stopping would let one early
/// timer and f crashed replicas stall a working leader); once it holds BC(v) it does not.
#[test]
fn s2_1_a_replica_that_blamed_the_view_votes_in_it_until_it_holds_the_blame_certificate() {
    let mut r = core(4, None);
    r.handle(0, Input::Request(b"a request only replica 4 got".to_vec()));
    // Half the request timeout later it gives the leader the request (S10), and blames the
    // view a full timeout after that.
    let relayed = r.handle(6 * DELTA, Input::Tick);
    assert!(kinds(&relayed).contains(&"send relay to 0".to_string()), "{:?}", kinds(&relayed));
    assert!(!kinds(&r.handle(18 * DELTA, Input::Tick)).contains(&"broadcast blame".to_string()));
    let timed_out = r.handle(18 * DELTA + 1, Input::Tick);
    assert!(kinds(&timed_out).contains(&"broadcast blame".to_string()), "{:?}", kinds(&timed_out));
    let b1 = proposal(0, QuorumCert::genesis(), 1, None);
    let voted = r.handle(18 * DELTA + 2, Input::Message(0, Message::Propose(b1.clone())));
    assert!(kinds(&voted).contains(&"broadcast vote".to_string()), "still in view 0: {:?}", kinds(&voted));
    for voter in [0u8, 1] {
        let signature = sign_as(voter, &signed::blame(0));
        r.handle(18 * DELTA + 3, Input::Message(voter, Message::Blame(Blame { view: 0, voter, reason: BlameReason::Timeout, signature, entered_by: None })));
    }
    let b2 = proposal(0, qc_for(&b1.block, &[0, 1, 4]), 2, None);
    let after = r.handle(18 * DELTA + 4, Input::Message(0, Message::Propose(b2)));
    assert!(!kinds(&after).contains(&"broadcast vote".to_string()), "holding BC(0): {:?}", kinds(&after));
}

/// S9's asking rate (mutation survivors in `Core::fetch`, 2026-12-02): a missing block is
/// asked of the replica that named it, then of everyone, at most once per 2Δ; a hash asked
/// for within the last 20Δ is asked of everyone at once.
#[test]
fn s9_a_missing_block_is_asked_of_its_sender_then_of_everyone_at_most_once_per_two_deltas() {
    let mut r = core(4, None);
    r.handle(0, Input::Tick);
    let mut asked = |now: u64, hash: Hash, from: ReplicaId| {
        r.fetch(now, hash, from);
        kinds(&r.handle(now, Input::Tick)).into_iter().filter(|k| k.contains("fetch")).collect::<Vec<_>>()
    };
    let (h, other) = ([7; 32], [8; 32]);
    assert_eq!(asked(1_000, h, 0), ["send fetch to 0"]);
    assert!(asked(1_000 + 2 * DELTA - 1, h, 0).is_empty(), "not again within 2Δ");
    assert_eq!(asked(1_000 + 2 * DELTA, h, 0), ["broadcast fetch"], "then of everyone");
    // Another hash asked for 5Δ later sweeps out what is older than 20Δ; `h` is not.
    assert_eq!(asked(1_000 + 7 * DELTA, other, 1), ["send fetch to 1"]);
    assert_eq!(asked(1_000 + 7 * DELTA, h, 0), ["broadcast fetch"], "still remembered");
    assert_eq!(asked(1_000 + 27 * DELTA, other, 1), ["broadcast fetch"], "exactly 20Δ after `h` was last asked: swept");
    assert_eq!(asked(1_000 + 30 * DELTA, h, 0), ["send fetch to 0"], "forgotten after 20Δ: of its sender first again");
}

/// S2.1's "v entered (its STATUS out)" (a mutation survivor of `Core::entered`, 2026-12-02):
/// a replica moved into view 1 by the justification of view 1's first block does not vote
/// for it until its 2Δ wait is over and its STATUS is out; a copy after that gets its vote.
#[test]
fn s2_1_no_vote_in_a_view_before_its_status_is_out() {
    let b1 = proposal(0, QuorumCert::genesis(), 1, None).block;
    let j = justification_for_view_1(&b1);
    let first = proposal(1, qc_for(&b1, &[0, 3, 4]), 10, Some(j));
    let mut r = core(4, None);
    r.handle(1_000, Input::Message(3, Message::Propose(proposal(0, QuorumCert::genesis(), 1, None))));
    let early = kinds(&r.handle(1_000, Input::Message(1, Message::Propose(first.clone()))));
    assert_eq!(r.view(), 1, "the justification's BC(0) moved it to view 1 (S8)");
    assert!(!early.contains(&"broadcast vote".to_string()), "entering, no STATUS out yet: {early:?}");
    let waited = kinds(&r.handle(1_000 + 2 * DELTA + 1, Input::Tick));
    assert!(waited.contains(&"send status to 1".to_string()), "{waited:?}");
    let copy = kinds(&r.handle(1_000 + 2 * DELTA + 2, Input::Message(2, Message::Propose(first))));
    let voted = waited.iter().chain(&copy).any(|k| k == "broadcast vote");
    assert!(voted, "entered: the block gets its vote ({waited:?}, {copy:?})");
}

/// The request pool (mutation survivors in `Core::on_request` and `remember_committed`,
/// 2026-12-02): a committed request leaves the pool and is not pooled again when a client
/// resends it; the pool is capped; a request larger than a block may be is refused, one of
/// exactly the block limit is not.
#[test]
fn the_request_pool_forgets_committed_requests_is_capped_and_takes_what_a_block_can_hold() {
    // Replica 2 pools request 1, then commits the block b1 that holds it (S4).
    let mut r = core(2, None);
    let request = 1u64.to_le_bytes().to_vec();
    r.handle(900, Input::Request(request.clone()));
    assert_eq!(r.pending_len(), 1);
    let b1 = proposal(0, QuorumCert::genesis(), 1, None);
    let b2 = proposal(0, qc_for(&b1.block, &[0, 1, 2]), 2, None);
    r.handle(1_000, Input::Message(0, Message::Propose(b1)));
    r.handle(1_010, Input::Message(0, Message::Propose(b2.clone())));
    for v in [0u8, 1] {
        let b = &b2.block;
        let vote = Vote { view: 0, height: 2, hash: b.hash, voter: v, signature: sign_as(v, &signed::vote(0, 2, &b.hash)) };
        r.handle(1_020, Input::Message(v, Message::Vote(vote)));
    }
    assert!(kinds(&r.handle(1_000 + 2 * DELTA + 1, Input::Tick)).contains(&"commit 1".to_string()));
    assert_eq!(r.pending_len(), 0, "committed: out of the pool");
    r.handle(1_300, Input::Request(request));
    assert_eq!(r.pending_len(), 0, "resent after its commit: not pooled again");

    let mut cfg = Config::new(5, DELTA);
    (cfg.pending_max, cfg.batch_bytes_max) = (2, 16);
    let mut r = Core::new(cfg, 2, Box::new(SimCrypto { me: 2 }), Restored::default());
    r.handle(0, Input::Request(vec![1; 17]));
    assert_eq!(r.pending_len(), 0, "larger than a block may be");
    r.handle(0, Input::Request(vec![2; 16]));
    assert_eq!(r.pending_len(), 1, "exactly the block limit");
    r.handle(0, Input::Request(vec![3; 8]));
    r.handle(0, Input::Request(vec![4; 8]));
    assert_eq!(r.pending_len(), 2, "the pool is full");
}
