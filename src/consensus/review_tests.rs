//! Exact transitions for the repairs of the 2026-11-22 review (QOP v2): S2.6 block limits,
//! S5a (one chain per view: which pairs prove an equivocation, unlinked and conflicting
//! view blocks, the cap), S7's refreshed status, S3's rising high_qc.

use super::tests::*;
use super::*;

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
    assert!(with(vec![vec![0; cfg.batch_bytes_max / 2]; 2]), "exactly the byte limit is allowed");
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
    let checker = Checker { n: 5, qc_size: 3, quorum: 3, certificate_size: 3, repeats_count: false, votes_any_height: false, base: (0, crate::consensus::GENESIS), crypto: &crypto };
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
    let g_proposal = proposal(0, QuorumCert::genesis(), 1, None);
    assert!(!ok(&g_proposal, &first_low), "blocks of two views at one height (mutation survivor)");
    assert!(!ok(&first_low, &first_low), "one block twice (mutation survivor)");
    // Two first blocks two heights apart, both over view-0 QCs: only "two first blocks"
    // shows it (mutation survivors in what counts as a first block).
    let g2 = proposal(0, qc_for(&g, &[0, 2, 3]), 2, None).block;
    let g3 = proposal(0, qc_for(&g2, &[0, 2, 3]), 3, None).block;
    assert!(ok(&first_high, &view1(qc_for(&g3, &[0, 2, 3]), 17)), "first blocks at heights 2 and 4");
    // A first block at height 3 and a view-1 block at height 2 over another view-1 block:
    // only "its view-v parent lies below the first block" shows it.
    let first_at_3 = view1(qc_for(&g2, &[0, 2, 3]), 18);
    assert!(ok(&first_at_3, &child), "a view-1 block whose parent lies below a first block two heights up");
    assert!(ok(&child, &first_at_3), "either order");
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
    waiting_to_commit_b1_with(Planted::default())
}

fn waiting_to_commit_b1_with(planted: Planted) -> (Core, Proposal, Proposal) {
    let mut cfg = Config::new(5, DELTA);
    cfg.planted = planted;
    let mut r = Core::new(cfg, 2, Box::new(SimCrypto { me: 2 }), Restored::default());
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

/// b4 arrives, forwarded by replica 3, before b3: its link to the chain is unknown when
/// b1's 2Δ ends. Returns the kinds of the actions then, and once b3 arrives.
fn unknown_link_story(planted: Planted) -> (Vec<String>, Vec<String>) {
    let (mut r, _, b2) = waiting_to_commit_b1_with(planted);
    let b3 = proposal(0, qc_for(&b2.block, &[0, 1, 2]), 3, None);
    let b4 = proposal(0, qc_for(&b3.block, &[0, 1, 2]), 4, None);
    let k = kinds(&r.handle(1_100, Input::Message(3, Message::Propose(b4.clone()))));
    assert!(k.iter().any(|a| a.contains("fetch")), "the missing link is fetched: {k:?}");
    let at_wait_end = kinds(&r.handle(1_000 + 2 * DELTA + 1, Input::Tick));
    let linked = kinds(&r.handle(1_250, Input::Message(1, Message::Block(Box::new(b3.block.clone())))));
    (at_wait_end, linked)
}

#[test]
fn s5a_a_view_block_of_unknown_link_holds_the_commit_until_it_is_linked() {
    let (at_wait_end, linked) = unknown_link_story(Planted::default());
    assert!(!at_wait_end.contains(&"commit 1".to_string()), "no commit while a view block is unlinked: {at_wait_end:?}");
    // The link arrives: b4 extends the chain, the commit goes ahead.
    assert!(linked.contains(&"commit 1".to_string()), "{linked:?}");
    // The control (plant 2 of the second review's list): the commit does not wait.
    let (at_wait_end, _) = unknown_link_story(Planted { commit_with_unlinked: true, ..Planted::default() });
    assert!(at_wait_end.contains(&"commit 1".to_string()), "the control must commit at once: {at_wait_end:?}");
}

/// Another height-2 block (y), and a block z at height 3 over y, arrive while b1 waits: z
/// conflicts with b2, found when y links it two heights down from the tip's own height.
/// Returns the kinds of the actions when y arrives, and when b1's 2Δ ends.
fn deep_conflict_story(planted: Planted) -> (Vec<String>, Vec<String>) {
    let (mut r, b1, _) = waiting_to_commit_b1_with(planted);
    let y = proposal(0, qc_for(&b1.block, &[0, 1, 3]), 9, None).block;
    let z = proposal(0, qc_for(&y, &[0, 1, 3]), 10, None);
    r.handle(1_100, Input::Message(3, Message::Propose(z)));
    let linked = kinds(&r.handle(1_110, Input::Message(3, Message::Block(Box::new(y)))));
    (linked, kinds(&r.handle(1_000 + 2 * DELTA + 1, Input::Tick)))
}

#[test]
fn s5a_a_view_block_found_to_conflict_stops_voting_and_committing_in_the_view() {
    let (linked, at_wait_end) = deep_conflict_story(Planted::default());
    assert!(linked.contains(&"broadcast blame".to_string()), "{linked:?}");
    assert!(!at_wait_end.iter().any(|a| a.starts_with("commit")), "{at_wait_end:?}");
    // The control (plant 1 of the second review's list): a conflict at another height than
    // the tip's goes unseen, and b1 commits.
    let (linked, at_wait_end) = deep_conflict_story(Planted { deep_conflict_unseen: true, ..Planted::default() });
    assert!(!linked.contains(&"broadcast blame".to_string()), "{linked:?}");
    assert!(at_wait_end.iter().any(|a| a.starts_with("commit")), "the control must commit: {at_wait_end:?}");
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
    voter.handle(1_000 + 2 * DELTA + 1, Input::Tick);
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
        let actions = r.handle(1_003 + 2 * DELTA, Input::Tick);
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

#[test]
fn s2_1_votes_below_the_view_are_also_held_in_check_by_s2_2() {
    // What "no vote below cur_view" is for, and why the planted control cannot fork (see
    // NOTEBOOK): a replica in view 1 that reported genesis is shown a view-0 block B late,
    // and view 1's first block C, which conflicts with B. Fixed, it votes C only. Planted,
    // it votes whichever comes first, and S2.2 (its votes of this view, the late one
    // included) refuses the other: never both, so no QC for C can form from the votes of
    // replicas that certified B.
    let blame_cert = blame_cert_of_view_0();
    let statuses = [1u8, 2, 3]
        .iter()
        .map(|v| {
            let high_qc = QuorumCert::genesis();
            let signature = sign_as(*v, &signed::status(1, &high_qc));
            Status { view: 1, high_qc, voter: *v, signature, blame_cert: blame_cert.clone() }
        })
        .collect();
    let j = Justification { blame_cert: blame_cert.clone(), statuses };
    let late_b = || proposal(0, QuorumCert::genesis(), 1, None);
    let c = || proposal(1, QuorumCert::genesis(), 9, Some(j.clone()));
    let voted = |actions: &[Action]| kinds(actions).contains(&"broadcast vote".to_string());
    let run = |planted: Planted, b_first: bool| {
        let mut cfg = Config::new(5, DELTA);
        cfg.planted = planted;
        let mut r = Core::new(cfg, 4, Box::new(SimCrypto { me: 4 }), Restored::default());
        r.handle(1_000, Input::Message(0, Message::BlameCert(blame_cert.clone())));
        assert!(kinds(&r.handle(1_000 + 2 * DELTA + 1, Input::Tick)).contains(&"send status to 1".to_string()));
        let (first, second) = if b_first { (late_b(), c()) } else { (c(), late_b()) };
        let one = voted(&r.handle(1_300, Input::Message(first.block.proposer, Message::Propose(first))));
        let two = voted(&r.handle(1_301, Input::Message(second.block.proposer, Message::Propose(second))));
        (one, two)
    };
    let planted = Planted { vote_below_view: true, ..Planted::default() };
    assert_eq!(run(Planted::default(), true), (false, true), "fixed: the late view-0 block gets no vote");
    assert_eq!(run(Planted::default(), false), (true, false));
    assert_eq!(run(planted, true), (true, false), "planted: B is voted below the view, then C is refused (S2.2)");
    assert_eq!(run(planted, false), (true, false), "planted: C is voted, then B is refused (S2.2)");
}

/// A core that lists the QCs it learns (the simulator's setting).
fn recording(me: ReplicaId) -> Core {
    let mut cfg = Config::new(5, DELTA);
    cfg.record_qcs = true;
    Core::new(cfg, me, Box::new(SimCrypto { me }), Restored::default())
}

/// A QC for `b` whose three signatures are made up.
fn forged_qc(b: &Block) -> QuorumCert {
    QuorumCert { view: b.view, height: b.height, hash: b.hash, votes: vec![(0, vec![7; 64]), (1, vec![7; 64]), (3, vec![7; 64])] }
}

#[test]
fn s3_votes_with_bad_signatures_never_form_a_qc() {
    // Found by mutation testing: the signature check of an incoming vote must hold at every
    // height above the committed one (a Byzantine replica sends votes in others' names).
    let run = |good: bool| {
        let mut r = recording(2);
        let b = proposal(0, QuorumCert::genesis(), 1, None);
        r.handle(1_000, Input::Message(0, Message::Propose(b.clone())));
        for voter in [0u8, 1] {
            let signature = if good { sign_as(voter, &signed::vote(0, 1, &b.block.hash)) } else { vec![7; 64] };
            let vote = Vote { view: 0, height: 1, hash: b.block.hash, voter, signature };
            r.handle(1_001, Input::Message(voter, Message::Vote(vote)));
        }
        r.take_observed().0.iter().any(|(_, _, hash)| *hash == b.block.hash)
    };
    assert!(run(true), "control: two good votes and its own make QC(b)");
    assert!(!run(false), "forged votes are not counted");
}

#[test]
fn s9_a_fetched_blocks_forged_parent_qc_is_not_learned() {
    // Found by mutation testing: the parent QC of a block that comes back from a FETCH is
    // checked before it is learned (no proposal signature vouches for it).
    let run = |forged: bool| {
        let mut r = recording(2);
        let w = block(0, QuorumCert::genesis(), 1, vec![]);
        let w_qc = if forged { forged_qc(&w) } else { qc_for(&w, &[0, 1, 3]) };
        let x = block(0, w_qc, 2, vec![]);
        let p = proposal(0, qc_for(&x, &[0, 1, 3]), 3, None);
        let asked = kinds(&r.handle(1_000, Input::Message(0, Message::Propose(p))));
        assert!(asked.iter().any(|k| k.contains("fetch")), "{asked:?}");
        r.handle(1_001, Input::Message(0, Message::Block(Box::new(x))));
        r.take_observed().0.iter().any(|(_, height, hash)| *height == 1 && *hash == w.hash)
    };
    assert!(run(false), "control: a good parent QC is learned");
    assert!(!run(true), "a forged one is not");
}

#[test]
fn s10_a_blame_sent_again_does_not_nudge_the_leader_again() {
    // Found on five real replicas: S10 resends a blame every 4Δ, and each copy re-armed the
    // leader's nudge, so one lone blamer got two empty blocks every 4Δ for ever.
    let mut r = core(0, None);
    let blame = || {
        let signature = sign_as(3, &signed::blame(0));
        Message::Blame(Blame { view: 0, voter: 3, reason: BlameReason::Timeout, signature, entered_by: None })
    };
    let proposed = |actions: &[Action]| {
        actions.iter().find_map(|a| match a {
            Action::Broadcast(Message::Propose(p)) => Some(p.block.clone()),
            _ => None,
        })
    };
    let votes_for = |r: &mut Core, b: &Block, t: u64| {
        let mut out = Vec::new();
        for voter in [1u8, 2] {
            let signature = sign_as(voter, &signed::vote(0, b.height, &b.hash));
            let vote = Vote { view: 0, height: b.height, hash: b.hash, voter, signature };
            out.extend(r.handle(t, Input::Message(voter, Message::Vote(vote))));
        }
        out
    };
    let h1 = proposed(&r.handle(1_000, Input::Message(3, blame()))).expect("the nudge proposes an empty block");
    let h2 = proposed(&votes_for(&mut r, &h1, 1_001)).expect("and a second one over its QC");
    assert!(proposed(&votes_for(&mut r, &h2, 1_002)).is_none(), "two blocks: the nudge is spent");
    assert!(proposed(&r.handle(1_400, Input::Message(3, blame()))).is_none(), "the same blame again: no new nudge");
}

/// Mutation survivors in `on_fetched` (2026-12-01): a fetched block is kept only if it was
/// asked for and its contents hash to its hash. A lying replica that answers a FETCH with
/// other requests under the asked hash must not get them stored, and so committed.
#[test]
fn s9_a_fetched_block_with_other_contents_or_not_asked_for_is_not_kept() {
    let (mut r, _, b2) = waiting_to_commit_b1();
    let b3 = proposal(0, qc_for(&b2.block, &[0, 1, 2]), 3, None);
    let b4 = proposal(0, qc_for(&b3.block, &[0, 1, 2]), 4, None);
    let k = kinds(&r.handle(1_100, Input::Message(3, Message::Propose(b4))));
    assert!(k.iter().any(|a| a.contains("fetch")), "b3 is asked for: {k:?}");
    // The answer carries other requests under b3's hash.
    let mut tampered = b3.block.clone();
    tampered.requests = vec![b"forged".to_vec()];
    r.handle(1_110, Input::Message(1, Message::Block(Box::new(tampered))));
    assert!(!r.blocks.contains_key(&b3.block.hash), "contents that do not hash to the hash are not kept");
    // A block nobody asked for, even a well-formed one, is not kept either.
    let unasked = proposal(0, qc_for(&b2.block, &[0, 1, 2]), 30, None).block;
    r.handle(1_120, Input::Message(1, Message::Block(Box::new(unasked.clone()))));
    assert!(!r.blocks.contains_key(&unasked.hash), "not asked for");
    // The genuine block is still taken.
    r.handle(1_130, Input::Message(1, Message::Block(Box::new(b3.block.clone()))));
    assert_eq!(r.blocks.get(&b3.block.hash), Some(&b3.block));
}

/// Mutation survivors in `prune` (2026-12-01): a commit forgets what lies at or below the
/// committed height and keeps what lies above it (own votes for S2.2, QCs, proposals seen
/// for S5a, pending votes).
#[test]
fn prune_after_a_commit_forgets_the_committed_height_and_keeps_what_is_above() {
    let (mut r, _, b2) = waiting_to_commit_b1();
    let k = kinds(&r.handle(1_000 + 2 * DELTA + 10, Input::Tick));
    assert!(k.contains(&"commit 1".to_string()), "{k:?}");
    assert_eq!(r.votes.iter().map(|v| v.height).collect::<Vec<_>>(), vec![2], "own votes above the commit");
    assert!(r.qcs.values().all(|qc| qc.height > 1), "QCs at or below the commit are gone");
    assert!(r.qcs.contains_key(&b2.block.hash), "QC(b2) is kept");
    assert_eq!(r.seen.keys().map(|(_, h)| *h).collect::<Vec<_>>(), vec![1, 2], "proposals seen from the committed height up");
    assert!(r.vote_pool.keys().all(|(_, h, _)| *h > 1));
    assert!(r.candidates.iter().all(|(h, _)| *h > 1));
}

#[test]
fn s1_a_leader_fills_its_next_block_up_to_the_limits_and_keeps_the_rest_pooled() {
    let cfg = Config::new(5, DELTA);
    let proposed = |actions: Vec<Action>| actions.into_iter().find_map(|a| if let Action::Broadcast(Message::Propose(p)) = a { Some(p.block) } else { None });
    let mut leader = core(0, None);
    let b1 = proposed(leader.handle(1_000, Input::Request(b"first".to_vec()))).expect("block 1");
    // While block 1 waits for its QC: the same request again, and four of a little under a third of the byte limit each.
    leader.handle(1_001, Input::Request(b"first".to_vec()));
    for i in 0..4u8 {
        assert!(proposed(leader.handle(1_001, Input::Request(vec![i; cfg.batch_bytes_max / 3 - 10]))).is_none());
    }
    let mut b2 = None;
    for v in [1u8, 2] {
        let vote = Vote { view: 0, height: 1, hash: b1.hash, voter: v, signature: sign_as(v, &signed::vote(0, 1, &b1.hash)) };
        b2 = b2.or(proposed(leader.handle(1_010, Input::Message(v, Message::Vote(vote)))));
    }
    let b2 = b2.expect("block 2 once block 1 has its QC");
    assert_eq!(b2.requests.len(), 3, "three fit the byte limit, the fourth waits; the chain's request is not repeated");
    assert!(b2.requests.iter().all(|r| r.len() == cfg.batch_bytes_max / 3 - 10), "block 1's request (room is left for it) is not proposed again");
}
