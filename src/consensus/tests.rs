//! Exact transitions of the core: what one input produces, in which order (S1–S6).

use super::*;

const DELTA: u64 = 100;

fn core(me: ReplicaId, persistent: Option<Persistent>) -> Core {
    start_from(me, Restored { persistent, ..Restored::default() })
}

/// Replica `me` of five, started from what its store handed back.
fn start_from(me: ReplicaId, restored: Restored) -> Core {
    Core::new(Config::new(5, DELTA), me, Box::new(SimCrypto { me }), restored)
}

fn sign_as(who: ReplicaId, bytes: &[u8]) -> Vec<u8> {
    SimCrypto { me: who }.sign(bytes)
}

/// A view-`view` block over `parent_qc`, proposed by the view's leader (of five).
pub(super) fn block(view: View, parent_qc: QuorumCert, time_ms: u64, requests: Vec<Vec<u8>>) -> Block {
    let mut b = Block {
        view,
        height: parent_qc.height + 1,
        parent: parent_qc.hash,
        parent_qc,
        proposer: (view % 5) as ReplicaId,
        time_ms,
        requests,
        hash: GENESIS,
    };
    b.hash = b.compute_hash();
    b
}

/// A view-`view` block at `height` over `parent_qc`, signed by the view's leader.
fn proposal(view: View, parent_qc: QuorumCert, tag: u64, justification: Option<Justification>) -> Proposal {
    let block = block(view, parent_qc, tag, vec![tag.to_le_bytes().to_vec()]);
    let signature = sign_as(block.proposer, &signed::proposal(&block.hash, justification.as_ref()));
    Proposal { block, signature, justification }
}

fn qc_for(b: &Block, voters: &[ReplicaId]) -> QuorumCert {
    let votes = voters.iter().map(|v| (*v, sign_as(*v, &signed::vote(b.view, b.height, &b.hash)))).collect();
    QuorumCert { view: b.view, height: b.height, hash: b.hash, votes }
}

fn kinds(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .map(|a| match a {
            Action::Persist(_) => "persist".to_string(),
            Action::StoreBlock(_) => "store".to_string(),
            Action::Send(to, m) => format!("send {} to {to}", m.kind()),
            Action::Broadcast(m) => format!("broadcast {}", m.kind()),
            Action::Commit(b) => format!("commit {}", b.height),
            Action::TakeSnapshot { height, .. } => format!("snapshot {height}"),
            Action::Stable(c) => format!("stable {}", c.height),
            Action::SendState(to, c) => format!("send state {} to {to}", c.height),
            Action::InstallState(t) => format!("install {}", t.cert.height),
        })
        .collect()
}

#[test]
fn s1_the_leader_persists_its_proposal_before_sending_it_and_votes_for_it() {
    let mut leader = core(0, None);
    let actions = leader.handle(1_000, Input::Request(b"req".to_vec()));
    let k = kinds(&actions);
    let persist = k.iter().position(|a| a == "persist").expect("persist");
    let send = k.iter().position(|a| a == "broadcast propose").expect("proposal sent");
    assert!(persist < send, "{k:?}");
    let vote = k.iter().position(|a| a == "broadcast vote").expect("the leader votes too");
    assert!(send < vote);
}

#[test]
fn s2_a_follower_forwards_stores_and_persists_its_vote_before_sending_it() {
    let mut follower = core(2, None);
    let p = proposal(0, QuorumCert::genesis(), 1, None);
    let k = kinds(&follower.handle(1_000, Input::Message(0, Message::Propose(p.clone()))));
    assert_eq!(k, ["broadcast propose", "store", "persist", "broadcast vote"]);
    // The same proposal again is neither forwarded nor voted twice (the vote is resent).
    let k = kinds(&follower.handle(1_001, Input::Message(1, Message::Propose(p))));
    assert_eq!(k, ["broadcast vote"]);
}

#[test]
fn s2_a_forged_proposal_is_ignored() {
    let mut follower = core(2, None);
    let mut p = proposal(0, QuorumCert::genesis(), 1, None);
    p.signature = sign_as(3, &signed::proposal(&p.block.hash, None)); // not the leader's
    assert!(follower.handle(1_000, Input::Message(3, Message::Propose(p))).is_empty());
}

#[test]
fn s4_commit_waits_two_deltas_after_the_vote() {
    let mut r = core(2, None);
    let b1 = proposal(0, QuorumCert::genesis(), 1, None);
    r.handle(1_000, Input::Message(0, Message::Propose(b1.clone())));
    let b2 = proposal(0, qc_for(&b1.block, &[0, 1, 2]), 2, None);
    r.handle(1_010, Input::Message(0, Message::Propose(b2.clone())));
    // QC(b2) arrives through votes: the 2-chain is complete at t = 1020.
    for v in [0u8, 1] {
        let b = &b2.block;
        let vote = Vote { view: 0, height: 2, hash: b.hash, voter: v, signature: sign_as(v, &signed::vote(0, 2, &b.hash)) };
        let k = kinds(&r.handle(1_020, Input::Message(v, Message::Vote(vote))));
        assert!(!k.iter().any(|a| a.starts_with("commit")), "no commit before 2Δ: {k:?}");
    }
    assert!(!kinds(&r.handle(1_000 + 2 * DELTA - 1, Input::Tick)).iter().any(|a| a.starts_with("commit")));
    let k = kinds(&r.handle(1_000 + 2 * DELTA, Input::Tick));
    assert!(k.contains(&"commit 1".to_string()), "{k:?}");
    assert!(k.contains(&"broadcast checkpoint".to_string()));
}

#[test]
fn s5_two_blocks_from_one_leader_at_one_height_stop_voting_and_blame_with_proof() {
    let mut r = core(2, None);
    let a = proposal(0, QuorumCert::genesis(), 1, None);
    let b = proposal(0, QuorumCert::genesis(), 2, None);
    r.handle(1_000, Input::Message(0, Message::Propose(a)));
    let actions = r.handle(1_001, Input::Message(0, Message::Propose(b)));
    let blame = actions.iter().find_map(|a| match a {
        Action::Broadcast(Message::Blame(bl)) => Some(bl.clone()),
        _ => None,
    });
    let blame = blame.expect("a blame");
    assert!(matches!(blame.reason, BlameReason::Equivocation(_)));
    assert!(!kinds(&actions).contains(&"broadcast vote".to_string()), "no vote for the second block");
}

/// BC(0) and statuses for view 1: replica 3 reports QC(b1), the others genesis.
fn justification_for_view_1(b1: &Block) -> Justification {
    let blames = [0u8, 1, 2].iter().map(|v| (*v, sign_as(*v, &signed::blame(0)))).collect();
    let blame_cert = BlameCert { view: 0, blames };
    let statuses = [2u8, 3, 4]
        .iter()
        .map(|v| {
            let high_qc = if *v == 3 { qc_for(b1, &[0, 3, 4]) } else { QuorumCert::genesis() };
            let signature = sign_as(*v, &signed::status(1, &high_qc));
            Status { view: 1, high_qc, voter: *v, signature, blame_cert: blame_cert.clone() }
        })
        .collect();
    Justification { blame_cert, statuses }
}

#[test]
fn s2_4_a_views_first_block_must_extend_the_highest_qc_of_its_justification() {
    let b1 = proposal(0, QuorumCert::genesis(), 1, None).block;
    let j = justification_for_view_1(&b1);
    // The view-1 leader (replica 1) ignores the higher QC and forks from genesis.
    let fork = proposal(1, QuorumCert::genesis(), 9, Some(j.clone()));
    let mut r = core(4, None);
    r.handle(1_000, Input::Message(3, Message::Propose(proposal(0, QuorumCert::genesis(), 1, None))));
    let actions = r.handle(1_000, Input::Message(1, Message::Propose(fork)));
    assert_eq!(r.view(), 1, "the justification's BC(0) moved it to view 1 (S8)");
    let after_wait = r.handle(1_000 + 2 * DELTA, Input::Tick);
    assert!(!kinds(&actions).contains(&"broadcast vote".to_string()));
    assert!(kinds(&after_wait).contains(&"send status to 1".to_string()));
    let refused = r.handle(1_300, Input::Message(1, Message::Propose(proposal(1, QuorumCert::genesis(), 9, Some(j.clone())))));
    assert!(!kinds(&refused).contains(&"broadcast vote".to_string()), "a fork from genesis is refused");
    // Extending the highest QC is accepted (by a replica that did not also see the fork:
    // two first blocks of one view are an equivocation, S5a).
    let mut r2 = core(4, None);
    r2.handle(1_000, Input::Message(3, Message::Propose(proposal(0, QuorumCert::genesis(), 1, None))));
    r2.handle(1_000, Input::Message(1, Message::BlameCert(j.blame_cert.clone())));
    r2.handle(1_000 + 2 * DELTA, Input::Tick);
    let good = proposal(1, qc_for(&b1, &[0, 3, 4]), 10, Some(j));
    assert!(kinds(&r2.handle(1_301, Input::Message(1, Message::Propose(good)))).contains(&"broadcast vote".to_string()));
}

/// Counts the signature checks a core makes.
struct Counting {
    inner: SimCrypto,
    verified: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Crypto for Counting {
    fn sign(&self, bytes: &[u8]) -> Vec<u8> {
        self.inner.sign(bytes)
    }
    fn verify(&self, signer: ReplicaId, bytes: &[u8], signature: &[u8]) -> bool {
        self.verified.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.verify(signer, bytes, signature)
    }
}

#[test]
fn s2_forwarded_copies_and_a_views_repeated_justification_are_verified_once() {
    let verified = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let crypto = Counting { inner: SimCrypto { me: 4 }, verified: verified.clone() };
    let mut r = Core::new(Config::new(5, DELTA), 4, Box::new(crypto), Restored::default());
    let checks = |r: &mut Core, from: ReplicaId, p: &Proposal| {
        verified.store(0, std::sync::atomic::Ordering::Relaxed);
        let k = kinds(&r.handle(1_300, Input::Message(from, Message::Propose(p.clone()))));
        (verified.load(std::sync::atomic::Ordering::Relaxed), k)
    };
    let b1 = proposal(0, QuorumCert::genesis(), 1, None).block;
    let j = justification_for_view_1(&b1);
    let first = proposal(1, qc_for(&b1, &[0, 3, 4]), 10, Some(j.clone()));
    let (n, _) = checks(&mut r, 1, &first);
    assert!(n > 10, "the first receipt checks the justification too ({n} checks)");
    let (n, _) = checks(&mut r, 2, &first);
    assert_eq!(n, 0, "a forwarded copy is compared, not verified again");
    // The next block of the view carries the same justification: only the leader's
    // signature and the parent QC's three votes are checked.
    let second = proposal(1, qc_for(&first.block, &[1, 2, 4]), 11, Some(j.clone()));
    let (n, k) = checks(&mut r, 1, &second);
    assert_eq!(n, 4, "{k:?}");
    // A copy of a known block with another justification is checked in full, and refused
    // when that justification is bad.
    let mut bad = j;
    bad.statuses.truncate(2);
    let third = proposal(1, qc_for(&second.block, &[1, 2, 4]), 12, Some(bad));
    let (n, k) = checks(&mut r, 1, &third);
    assert!(n > 4, "{n}");
    assert!(!k.contains(&"broadcast vote".to_string()), "{k:?}");
}

#[test]
fn restart_restores_votes_so_no_conflicting_vote_follows() {
    let mut r = core(2, None);
    let a = proposal(0, QuorumCert::genesis(), 1, None);
    let actions = r.handle(1_000, Input::Message(0, Message::Propose(a.clone())));
    let persisted = actions.iter().rev().find_map(|x| match x {
        Action::Persist(p) => Some(p.clone()),
        _ => None,
    });
    // The record names the voted block; the block itself comes back from the block store.
    let persisted = persisted.expect("the vote was persisted");
    assert_eq!(persisted.votes, vec![a.block.named()]);
    let restored = Restored { persistent: Some(persisted), blocks: vec![a.block.clone()], ..Restored::default() };
    let mut restarted = start_from(2, restored);
    // A child of the voted block is voted for.
    let child = proposal(0, qc_for(&a.block, &[0, 1, 3]), 3, None);
    let k = kinds(&restarted.handle(2_000, Input::Message(0, Message::Propose(child))));
    assert!(k.contains(&"broadcast vote".to_string()), "{k:?}");
    // A view-0 block conflicting with the one it voted for before the restart (it forgot
    // nothing): refused.
    let b = proposal(0, QuorumCert::genesis(), 2, None);
    let k = kinds(&restarted.handle(2_100, Input::Message(0, Message::Propose(b))));
    assert!(!k.contains(&"broadcast vote".to_string()), "{k:?}");
}

#[test]
fn s9_a_block_lost_from_the_middle_of_the_chain_is_fetched_on_each_proposal_then_voted() {
    // Seeds 84459 and 86605: a crash lost a stored block below others, and the FETCH
    // reply for it was lost too; nothing asked again, so the replica never voted again.
    let b1 = proposal(0, QuorumCert::genesis(), 1, None).block;
    let b2 = proposal(0, qc_for(&b1, &[0, 1, 3]), 2, None).block;
    let b3 = proposal(0, qc_for(&b2, &[0, 1, 3]), 3, None).block;
    let p4 = proposal(0, qc_for(&b3, &[0, 1, 3]), 4, None);
    let mut r = start_from(2, Restored { blocks: vec![b1, b3], ..Restored::default() });
    let asked = |actions: &[Action]| {
        actions.iter().any(|a| matches!(a, Action::Send(_, Message::Fetch(h)) | Action::Broadcast(Message::Fetch(h)) if *h == b2.hash))
    };
    let actions = r.handle(1_000, Input::Message(0, Message::Propose(p4.clone())));
    assert!(asked(&actions), "{:?}", kinds(&actions));
    assert!(!kinds(&actions).contains(&"broadcast vote".to_string()));
    // The reply is lost; the leader repeats its proposal after 2Δ: the replica asks again.
    let actions = r.handle(1_000 + 2 * DELTA, Input::Message(0, Message::Propose(p4)));
    assert!(asked(&actions), "{:?}", kinds(&actions));
    // The block arrives: the parked proposal gets its vote.
    let k = kinds(&r.handle(1_000 + 3 * DELTA, Input::Message(1, Message::Block(Box::new(b2)))));
    assert!(k.contains(&"broadcast vote".to_string()), "{k:?}");
}

fn blame_cert_of_view_0() -> BlameCert {
    let blames = [0u8, 1, 3].iter().map(|v| (*v, sign_as(*v, &signed::blame(0)))).collect();
    BlameCert { view: 0, blames }
}

#[test]
fn s6_a_replica_that_restarts_before_its_status_is_out_still_holds_the_certificate() {
    // Seed 19230: the view was persisted before the certificate that entered it, so a
    // crash in between left a replica in view 1 whose blames could not lead others there.
    let mut r = core(2, None);
    let actions = r.handle(1_000, Input::Message(0, Message::BlameCert(blame_cert_of_view_0())));
    let last = actions.iter().rev().find_map(|a| match a {
        Action::Persist(p) => Some(p.clone()),
        _ => None,
    });
    let last = last.expect("entering a view is persisted");
    assert_eq!(last.view, 1);
    assert_eq!(last.entered_by.as_ref().map(|bc| bc.view), Some(0));
    // Restarted, it sends its status once the 2Δ wait is over, to the leader of view 1.
    // A restart does not know when the certificate arrived: the wait counts from the
    // restart (review of 2026-11-22: it used to count from time 0 and was skipped).
    let mut restarted = core(2, Some(last));
    let k = kinds(&restarted.handle(5_000, Input::Tick));
    assert!(!k.contains(&"send status to 1".to_string()), "no status at the restart itself: {k:?}");
    let k = kinds(&restarted.handle(5_000 + 2 * DELTA - 1, Input::Tick));
    assert!(!k.contains(&"send status to 1".to_string()), "{k:?}");
    let k = kinds(&restarted.handle(5_000 + 2 * DELTA, Input::Tick));
    assert!(k.contains(&"send status to 1".to_string()), "{k:?}");
}

#[test]
fn s8_a_blame_from_a_replica_left_in_an_older_view_is_answered_with_the_way_out() {
    let mut r = core(2, None);
    r.handle(1_000, Input::Message(0, Message::BlameCert(blame_cert_of_view_0())));
    let blame = Blame { view: 0, voter: 4, reason: BlameReason::Timeout, signature: sign_as(4, &signed::blame(0)), entered_by: None };
    let k = kinds(&r.handle(1_100, Input::Message(4, Message::Blame(blame.clone()))));
    assert_eq!(k, ["send blame-cert to 4"]);
    // A forged one gets nothing.
    let forged = Blame { signature: sign_as(3, &signed::blame(0)), ..blame };
    let k = kinds(&r.handle(1_200, Input::Message(4, Message::Blame(forged))));
    assert!(!k.contains(&"send blame-cert to 4".to_string()), "{k:?}");
}

// ------------------------------------------------------------------ S11 state checkpoints

fn state_checkpoint(who: ReplicaId, b: &Block, state: Digest32) -> Message {
    let signature = sign_as(who, &signed::checkpoint(b.height, &b.hash, Some(&state)));
    Message::Checkpoint(Checkpoint { height: b.height, hash: b.hash, state: Some(state), voter: who, signature })
}

fn transfer(b: &Block, image: &[u8], signers: &[ReplicaId]) -> StateTransfer {
    let state = digest(image);
    let signatures =
        signers.iter().map(|w| (*w, sign_as(*w, &signed::checkpoint(b.height, &b.hash, Some(&state))))).collect();
    StateTransfer { cert: StateCert { height: b.height, hash: b.hash, state, signatures }, block: b.clone(), image: image.to_vec() }
}

#[test]
fn s11_q_matching_state_checkpoints_make_a_stable_checkpoint_and_only_then() {
    let b = proposal(0, QuorumCert::genesis(), 1, None).block;
    let mut r = core(4, None);
    let state = digest(b"image");
    let mut odd = state;
    odd[0] ^= 1;
    assert!(kinds(&r.handle(1_000, Input::Message(0, state_checkpoint(0, &b, state)))).iter().all(|k| !k.starts_with("stable")));
    // Another state at the same height does not count with it; a forged signature does not count.
    r.handle(1_001, Input::Message(1, state_checkpoint(1, &b, odd)));
    let mut forged = state_checkpoint(2, &b, state);
    if let Message::Checkpoint(c) = &mut forged {
        c.signature = sign_as(3, &signed::checkpoint(b.height, &b.hash, Some(&state)));
    }
    r.handle(1_002, Input::Message(2, forged));
    assert!(r.stable.is_none());
    let k = kinds(&r.handle(1_003, Input::Message(3, state_checkpoint(3, &b, state))));
    assert!(k.iter().all(|k| !k.starts_with("stable")), "{k:?}");
    let k = kinds(&r.handle(1_004, Input::Message(2, state_checkpoint(2, &b, state))));
    assert!(k.contains(&"stable 1".to_string()), "{k:?}");
    // A replica behind it asks a signer for the image once it sees no progress.
    let k: Vec<String> = (0..3).flat_map(|i| kinds(&r.handle(1_005 + i * 4 * DELTA, Input::Tick))).collect();
    assert!(k.iter().any(|k| k.starts_with("send fetch-state")), "{k:?}");
}

#[test]
fn s11_a_state_transfer_is_installed_only_with_a_valid_certificate_block_and_image() {
    let b = proposal(0, QuorumCert::genesis(), 1, None).block;
    let bad: Vec<(&str, StateTransfer)> = vec![
        ("two signers", transfer(&b, b"image", &[0, 1])),
        ("a repeated signer", transfer(&b, b"image", &[0, 1, 1])),
        ("another image", StateTransfer { image: b"other".to_vec(), ..transfer(&b, b"image", &[0, 1, 2]) }),
        ("another block", {
            let mut t = transfer(&b, b"image", &[0, 1, 2]);
            t.block.time_ms += 1;
            t.block.hash = t.block.compute_hash();
            t
        }),
    ];
    for (what, t) in bad {
        let mut r = core(4, None);
        let k = kinds(&r.handle(1_000, Input::Message(0, Message::State(Box::new(t)))));
        assert!(k.iter().all(|k| !k.starts_with("install")), "{what}: {k:?}");
        assert_eq!(r.committed_height(), 0, "{what}");
    }
    let mut r = core(4, None);
    let k = kinds(&r.handle(1_000, Input::Message(0, Message::State(Box::new(transfer(&b, b"image", &[0, 1, 2]))))));
    assert_eq!(k.first().map(String::as_str), Some("install 1"), "{k:?}");
    assert!(k.contains(&"stable 1".to_string()) && k.contains(&"broadcast checkpoint".to_string()), "{k:?}");
    assert_eq!(r.committed_height(), 1);
    // It now serves that image to whoever asks (once per period).
    let k = kinds(&r.handle(1_001, Input::Message(2, Message::FetchState(1))));
    assert!(k.contains(&"send state 1 to 2".to_string()), "{k:?}");
    assert!(kinds(&r.handle(1_002, Input::Message(2, Message::FetchState(1)))).iter().all(|k| !k.starts_with("send state")));
}

#[test]
fn s2_5_a_block_time_far_from_the_voters_clock_or_before_its_parent_gets_no_vote() {
    let now = 1_000_000;
    let at = |time_ms: u64| {
        let mut p = proposal(0, QuorumCert::genesis(), 1, None);
        p.block.time_ms = time_ms;
        p.block.hash = p.block.compute_hash();
        p.signature = sign_as(0, &signed::proposal(&p.block.hash, None));
        p
    };
    let cfg = Config::new(5, DELTA);
    let votes = |p: Proposal| {
        let mut r = core(1, None);
        kinds(&r.handle(now, Input::Message(0, Message::Propose(p)))).contains(&"broadcast vote".to_string())
    };
    assert!(votes(at(now - 50)), "a block from a moment ago");
    assert!(votes(at(now + cfg.clock_skew_ms)), "within the allowed skew");
    assert!(!votes(at(now + cfg.clock_skew_ms + 1)), "from the future");
    assert!(!votes(at(now - cfg.clock_skew_ms - cfg.timeout_cap_ms - 1)), "from long ago");
    // A child whose time is before its parent's.
    let parent = at(now - 50);
    let child = |time_ms: u64| {
        let mut c = proposal(0, qc_for(&parent.block, &[0, 1, 2]), 2, None);
        c.block.time_ms = time_ms;
        c.block.hash = c.block.compute_hash();
        c.signature = sign_as(0, &signed::proposal(&c.block.hash, None));
        c
    };
    for (time, expected) in [(now - 51, false), (now - 50, true)] {
        let mut r = core(1, None);
        r.handle(now, Input::Message(0, Message::Propose(parent.clone())));
        let k = kinds(&r.handle(now, Input::Message(0, Message::Propose(child(time)))));
        assert_eq!(k.contains(&"broadcast vote".to_string()), expected, "child at {time}: {k:?}");
    }
}

// ------------------------------------------------------------------ review of 2026-11-22

#[test]
fn s2_6_a_block_over_the_batch_limits_gets_no_vote() {
    let cfg = Config::new(5, DELTA);
    let with = |requests: Vec<Vec<u8>>| {
        let mut block = proposal(0, QuorumCert::genesis(), 1, None).block;
        block.requests = requests;
        block.hash = block.compute_hash();
        let signature = sign_as(0, &signed::proposal(&block.hash, None));
        let mut r = core(2, None);
        kinds(&r.handle(1_000, Input::Message(0, Message::Propose(Proposal { block, signature, justification: None }))))
            .contains(&"broadcast vote".to_string())
    };
    assert!(with(vec![vec![1]; cfg.batch_max]));
    assert!(!with(vec![vec![1]; cfg.batch_max + 1]), "one request too many");
    assert!(!with(vec![vec![0; cfg.batch_bytes_max / 2 + 1]; 2]), "too many bytes");
}

/// Signed proposals of view 1 over `parent_qc` (the justification does not matter to the
/// equivocation check, which looks at blocks).
fn view1(parent_qc: QuorumCert, tag: u64) -> Proposal {
    proposal(1, parent_qc, tag, None)
}

#[test]
fn s5a_which_pairs_of_blocks_prove_an_equivocation() {
    let crypto = SimCrypto { me: 4 };
    let checker = Checker { n: 5, qc_size: 3, quorum: 3, certificate_size: 3, repeats_count: false, crypto: &crypto };
    let g = proposal(0, QuorumCert::genesis(), 1, None).block; // a view-0 block at height 1
    let first_low = view1(QuorumCert::genesis(), 10); // first block of view 1 at height 1
    let first_high = view1(qc_for(&g, &[0, 2, 3]), 11); // another first block, at height 2
    let child = view1(qc_for(&first_low.block, &[1, 2, 3]), 12); // height 2, over first_low
    let grandchild = view1(qc_for(&child.block, &[1, 2, 3]), 13); // height 3
    let other_child = view1(qc_for(&first_high.block, &[1, 2, 3]), 14); // height 3, over first_high
    let ok = |a: &Proposal, b: &Proposal| checker.equivocation(a, b).is_ok();
    assert!(ok(&first_low, &first_high), "two first blocks at different heights (bug 1)");
    assert!(ok(&first_high, &child), "two blocks at one height");
    assert!(ok(&grandchild, &first_high), "a view-1 parent QC naming another block at first_high's height");
    assert!(ok(&first_high, &view1(qc_for(&first_low.block, &[1, 2, 3]), 15)), "a view-1 block whose parent lies below the first block");
    assert!(!ok(&first_low, &child), "a block and its child");
    assert!(!ok(&first_low, &grandchild), "a block and its grandchild");
    assert!(ok(&child, &other_child), "other_child's parent QC names first_high at child's height");
    let deeper = view1(qc_for(&other_child.block, &[1, 2, 3]), 16); // height 4
    assert!(!ok(&child, &deeper), "conflicting, but the pair alone does not show it");
    let mut forged = first_high.clone();
    forged.signature = sign_as(3, &signed::proposal(&forged.block.hash, None));
    assert!(!ok(&first_low, &forged), "a block the leader did not sign proves nothing");
}

/// Replica 2 voted for b1 (t = 1000) and b2 (1010) and formed QC(b2) from votes (1020):
/// b1 meets S4a and waits for its 2Δ.
fn waiting_to_commit_b1() -> (Core, Proposal, Proposal) {
    let mut r = core(2, None);
    let b1 = proposal(0, QuorumCert::genesis(), 1, None);
    let b2 = proposal(0, qc_for(&b1.block, &[0, 1, 2]), 2, None);
    r.handle(1_000, Input::Message(0, Message::Propose(b1.clone())));
    r.handle(1_010, Input::Message(0, Message::Propose(b2.clone())));
    for v in [0u8, 1] {
        let b = &b2.block;
        let vote = Vote { view: 0, height: 2, hash: b.hash, voter: v, signature: sign_as(v, &signed::vote(0, 2, &b.hash)) };
        r.handle(1_020, Input::Message(v, Message::Vote(vote)));
    }
    (r, b1, b2)
}

#[test]
fn s5a_a_view_block_of_unknown_link_holds_the_commit_until_it_is_linked() {
    let (mut r, _, b2) = waiting_to_commit_b1();
    let b3 = proposal(0, qc_for(&b2.block, &[0, 1, 2]), 3, None);
    let b4 = proposal(0, qc_for(&b3.block, &[0, 1, 2]), 4, None);
    // b4 arrives, forwarded by replica 3, before b3: its link to the chain is unknown.
    let k = kinds(&r.handle(1_100, Input::Message(3, Message::Propose(b4.clone()))));
    assert!(k.iter().any(|a| a.contains("fetch")), "the missing link is fetched: {k:?}");
    let k = kinds(&r.handle(1_000 + 2 * DELTA, Input::Tick));
    assert!(!k.contains(&"commit 1".to_string()), "no commit while a view block is unlinked: {k:?}");
    // The link arrives: b4 extends the chain, the commit goes ahead.
    let k = kinds(&r.handle(1_250, Input::Message(1, Message::Block(Box::new(b3.block.clone())))));
    assert!(k.contains(&"commit 1".to_string()), "{k:?}");
}

#[test]
fn s5a_a_view_block_found_to_conflict_stops_voting_and_committing_in_the_view() {
    let (mut r, b1, _) = waiting_to_commit_b1();
    // Another height-2 block (y), and a block at height 3 over y: it conflicts with b2.
    let y = proposal(0, qc_for(&b1.block, &[0, 1, 3]), 9, None).block;
    let z = proposal(0, qc_for(&y, &[0, 1, 3]), 10, None);
    r.handle(1_100, Input::Message(3, Message::Propose(z)));
    let k = kinds(&r.handle(1_110, Input::Message(3, Message::Block(Box::new(y)))));
    assert!(k.contains(&"broadcast blame".to_string()), "{k:?}");
    let k = kinds(&r.handle(1_000 + 2 * DELTA, Input::Tick));
    assert!(!k.iter().any(|a| a.starts_with("commit")), "{k:?}");
}

#[test]
fn s7_a_leader_that_learned_a_higher_qc_after_its_status_extends_it_and_reports_it_again() {
    // Replica 1 leads view 1. It reported genesis in its STATUS, then learned QC(b1) (a
    // late view-0 QC). Its first block extends QC(b1), and its own status in the
    // justification is replaced by one that reports it, so voters accept the block.
    let b1 = proposal(0, QuorumCert::genesis(), 1, None).block;
    let mut leader = core(1, None);
    leader.handle(1_000, Input::Message(0, Message::Propose(proposal(0, QuorumCert::genesis(), 1, None))));
    leader.handle(1_000, Input::Message(0, Message::BlameCert(blame_cert_of_view_0())));
    leader.handle(1_000 + 2 * DELTA, Input::Tick); // its status (genesis: no QC yet)
    for v in [2u8, 3] {
        let signature = sign_as(v, &signed::status(1, &QuorumCert::genesis()));
        let status = Status { view: 1, high_qc: QuorumCert::genesis(), voter: v, signature, blame_cert: blame_cert_of_view_0() };
        leader.handle(1_250, Input::Message(v, Message::Status(status)));
    }
    for v in [0u8, 3, 4] {
        let vote = Vote { view: 0, height: 1, hash: b1.hash, voter: v, signature: sign_as(v, &signed::vote(0, 1, &b1.hash)) };
        leader.handle(1_300, Input::Message(v, Message::Vote(vote)));
    }
    assert_eq!(leader.high_qc().rank(), (0, 1));
    let actions = leader.handle(1_000 + 4 * DELTA + 1, Input::Request(b"req".to_vec()));
    let proposal = actions.iter().find_map(|a| match a {
        Action::Broadcast(Message::Propose(p)) => Some(p.clone()),
        _ => None,
    });
    let proposal = proposal.expect("the leader proposes");
    assert_eq!(proposal.block.parent, b1.hash, "over its own, higher QC");
    let j = proposal.justification.clone().expect("justified");
    assert_eq!(verify::highest_qc(&j).map(|qc| qc.rank()), Some((0, 1)), "its refreshed status reports it");
    assert!(kinds(&actions).contains(&"broadcast vote".to_string()), "the leader votes for its own block");
    let mut voter = core(3, None);
    voter.handle(1_000, Input::Message(0, Message::Propose(super::tests::proposal(0, QuorumCert::genesis(), 1, None))));
    voter.handle(1_000, Input::Message(0, Message::BlameCert(blame_cert_of_view_0())));
    voter.handle(1_000 + 2 * DELTA, Input::Tick);
    let k = kinds(&voter.handle(1_500, Input::Message(1, Message::Propose(proposal))));
    assert!(k.contains(&"broadcast vote".to_string()), "{k:?}");
}

#[test]
fn s5a_two_first_blocks_of_a_view_are_blamed_with_proof_at_once_even_with_a_parent_unknown() {
    // Replica 3 holds the view-1 first block B0 over genesis; X0, another first block of
    // view 1, comes over QC(Q) for a block Q it never saw. Walking X0's chain would have to
    // wait for Q; two first blocks are a proof by themselves.
    let q = proposal(0, QuorumCert::genesis(), 7, None).block;
    let j = justification_for_view_1(&q);
    let b0 = proposal(1, QuorumCert::genesis(), 10, Some(j.clone()));
    let x0 = proposal(1, qc_for(&q, &[0, 3, 4]), 11, Some(j));
    let mut r = core(2, None);
    r.handle(1_000, Input::Message(0, Message::BlameCert(blame_cert_of_view_0())));
    r.handle(1_000 + 2 * DELTA, Input::Tick);
    r.handle(1_300, Input::Message(1, Message::Propose(b0)));
    let actions = r.handle(1_310, Input::Message(1, Message::Propose(x0)));
    let proof = actions.iter().any(|a| {
        matches!(a, Action::Broadcast(Message::Blame(b)) if b.view == 1 && matches!(b.reason, BlameReason::Equivocation(_)))
    });
    assert!(proof, "{:?}", kinds(&actions));
    assert!(!kinds(&actions).contains(&"broadcast vote".to_string()));
}

#[test]
fn s3_a_late_lower_qc_never_replaces_high_qc_so_the_status_reports_the_highest() {
    // What "high_qc only rises" is for (the seeded search did not reach this control; see
    // NOTEBOOK): a replica that learned QC(b2) and then a delayed QC(b1) must report QC(b2)
    // in its STATUS, or the next leader may extend b1 and abandon a committed b2.
    let run = |planted: Planted| {
        let mut cfg = Config::new(5, DELTA);
        cfg.planted = planted;
        let mut r = Core::new(cfg, 2, Box::new(SimCrypto { me: 2 }), Restored::default());
        let b1 = proposal(0, QuorumCert::genesis(), 1, None);
        let b2 = proposal(0, qc_for(&b1.block, &[0, 1, 3]), 2, None);
        let b3 = proposal(0, qc_for(&b2.block, &[0, 1, 3]), 3, None);
        r.handle(1_000, Input::Message(0, Message::Propose(b3))); // carries QC(b2)
        r.handle(1_001, Input::Message(0, Message::Propose(b2))); // carries QC(b1), late
        let actions = r.handle(1_002, Input::Message(0, Message::BlameCert(blame_cert_of_view_0())));
        let _ = actions;
        let actions = r.handle(1_002 + 2 * DELTA, Input::Tick);
        actions.iter().find_map(|a| match a {
            Action::Send(_, Message::Status(s)) => Some(s.high_qc.height),
            _ => None,
        })
    };
    assert_eq!(run(Planted::default()), Some(2));
    assert_eq!(run(Planted { high_qc_backwards: true, ..Planted::default() }), Some(1));
}

#[test]
fn s5a_more_unlinked_view_blocks_than_it_keeps_are_taken_for_an_equivocation() {
    // Sixteen view-0 blocks whose parents nobody sent are held as unlinked (no vote, no
    // commit, each fetched); a seventeenth would have to be dropped, and dropping a view
    // block could hide a conflict, so the view is treated as equivocating instead.
    let mut r = core(2, None);
    let blamed = |actions: &[Action]| kinds(actions).contains(&"broadcast blame".to_string());
    // A chain nobody sent; each proposal stands over a different one of its blocks.
    let mut unseen = vec![block(0, QuorumCert::genesis(), 500, vec![])];
    for h in 1..40u64 {
        let next = block(0, qc_for(&unseen[h as usize - 1], &[0, 1, 3]), 500 + h, vec![]);
        unseen.push(next);
    }
    for i in 0..17u64 {
        let p = proposal(0, qc_for(&unseen[2 * i as usize + 1], &[0, 1, 3]), 10 + i, None);
        let actions = r.handle(1_000 + i, Input::Message(0, Message::Propose(p)));
        assert!(!kinds(&actions).contains(&"broadcast vote".to_string()), "block {i}");
        assert_eq!(blamed(&actions), i == 16, "block {i}: {:?}", kinds(&actions));
    }
}
