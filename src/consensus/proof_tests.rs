//! Proofs of commit kept for `quintet recover` (`Action::KeepProof`), and the chain's start
//! after a reset (`Config::base`, `QuorumCert::base`).

use super::tests::*;
use super::*;

fn commit_checkpoint(who: ReplicaId, height: Height, hash: Hash) -> Message {
    let signature = sign_as(who, &signed::checkpoint(height, &hash, None));
    Message::Checkpoint(Checkpoint { height, hash, state: None, voter: who, signature })
}

fn kept(actions: &[Action]) -> Vec<(Height, ReplicaId)> {
    actions.iter().filter_map(|a| if let Action::KeepProof(c) = a { Some((c.height, c.voter)) } else { None }).collect()
}

/// Replica 2 has voted b1 and b2 and holds QC(b2): b1 commits when its 2Δ ends.
fn replica_about_to_commit_b1() -> (Core, Block) {
    let mut r = Core::new(Config::new(5, DELTA), 2, Box::new(SimCrypto { me: 2 }), Restored::default());
    let b1 = proposal(0, QuorumCert::genesis(), 1, None);
    let b2 = proposal(0, qc_for(&b1.block, &[0, 1, 2]), 2, None);
    r.handle(1_000, Input::Message(0, Message::Propose(b1.clone())));
    r.handle(1_010, Input::Message(0, Message::Propose(b2.clone())));
    for v in [0u8, 1] {
        let vote = Vote { view: 0, height: 2, hash: b2.block.hash, voter: v, signature: sign_as(v, &signed::vote(0, 2, &b2.block.hash)) };
        r.handle(1_020, Input::Message(v, Message::Vote(vote)));
    }
    (r, b1.block)
}

#[test]
fn a_replica_keeps_its_own_checkpoint_and_each_signers_newest_once_it_committed_that_far() {
    let (mut r, b1) = replica_about_to_commit_b1();
    // A CHECKPOINT above the committed height is held, not kept.
    assert!(kept(&r.handle(1_030, Input::Message(0, commit_checkpoint(0, 1, b1.hash)))).is_empty());
    let at_commit = r.handle(1_000 + 2 * DELTA + 10, Input::Tick);
    assert!(kinds(&at_commit).contains(&"commit 1".to_string()), "{:?}", kinds(&at_commit));
    let mut at_commit = kept(&at_commit);
    at_commit.sort();
    assert_eq!(at_commit, vec![(1, 0), (1, 2)], "the held one and its own");
    // Another signer's, at or below the committed height: kept at once, and only once.
    assert_eq!(kept(&r.handle(1_500, Input::Message(1, commit_checkpoint(1, 1, b1.hash)))), vec![(1, 1)]);
    assert!(kept(&r.handle(1_501, Input::Message(1, commit_checkpoint(1, 1, b1.hash)))).is_empty());
    // A forged one is not kept.
    let mut forged = commit_checkpoint(3, 1, b1.hash);
    if let Message::Checkpoint(c) = &mut forged {
        c.signature = sign_as(4, &signed::checkpoint(1, &b1.hash, None));
    }
    assert!(kept(&r.handle(1_502, Input::Message(3, forged))).is_empty());
}

#[test]
fn junk_checkpoints_from_one_signer_hold_one_entry_and_write_nothing() {
    let (mut r, _) = replica_about_to_commit_b1();
    r.handle(1_000 + 2 * DELTA + 10, Input::Tick);
    for height in 2..2_002u64 {
        let junk = commit_checkpoint(3, height, [height as u8; 32]);
        assert!(kept(&r.handle(1_600, Input::Message(3, junk))).is_empty(), "junk above the committed height is not written");
    }
    assert_eq!(r.proofs_held.len(), 1, "one held entry per signer");
    assert_eq!(r.proofs_held[&3].height, 2_001);
}

#[test]
fn a_signer_gets_one_proof_written_per_commit_of_this_replica() {
    // Signed CHECKPOINTs at every height up to the committed one, newest last: one is
    // written now, the newest of the rest when this replica next commits.
    let (mut r, b1) = replica_about_to_commit_b1();
    r.handle(1_000 + 2 * DELTA + 10, Input::Tick);
    r.committed_height = 500; // as if it had committed that far
    r.handle(1_600, Input::Tick); // a retransmission period starts: one slot from here
    let mut written = 0;
    for height in 1..=500u64 {
        written += kept(&r.handle(1_600, Input::Message(3, commit_checkpoint(3, height, b1.hash)))).len();
    }
    assert_eq!(written, 1);
    assert_eq!(r.proofs_held[&3].height, 500);
    // On an idle cluster the held one reaches the disk at the next retransmission period.
    let later = kept(&r.handle(1_600 + 5 * DELTA, Input::Tick));
    assert_eq!(later, vec![(500, 3)]);
}

#[test]
fn after_a_reset_the_chain_starts_at_the_reset_block_whose_qc_has_no_votes() {
    let crypto = SimCrypto { me: 0 };
    let base_hash = [7; 32];
    let checker = |base| Checker { n: 5, qc_size: 3, quorum: 3, certificate_size: 3, repeats_count: false, votes_any_height: false, base, crypto: &crypto };
    let reset = checker((40, base_hash));
    assert!(reset.qc(&QuorumCert::base((40, base_hash))).is_ok());
    assert!(reset.qc(&QuorumCert::genesis()).is_err(), "genesis is no start after a reset");
    assert!(reset.qc(&QuorumCert::base((41, base_hash))).is_err(), "an empty QC elsewhere");
    assert!(reset.qc(&QuorumCert::base((40, [8; 32]))).is_err(), "an empty QC for another block at that height");
    let mut viewed = QuorumCert::base((40, base_hash));
    viewed.view = 1;
    assert!(reset.qc(&viewed).is_err(), "an empty QC of a later view");
    // Votes at or below the start are never a QC (signed before the reset, in another domain).
    let b = block(0, QuorumCert::base((39, [1; 32])), 5, vec![]);
    let mut low = qc_for(&b, &[0, 1, 2]);
    low.height = 40;
    assert!(reset.qc(&low).is_err());
    // Without a reset, genesis is the start, as always.
    assert!(checker((0, GENESIS)).qc(&QuorumCert::genesis()).is_ok());
    assert!(checker((0, GENESIS)).qc(&QuorumCert::base((40, base_hash))).is_err());
}

#[test]
fn a_reseeded_replica_proposes_on_the_reset_block_and_the_others_vote_for_it() {
    // Every replica restarts from the image of block 40 (its only committed block) with the
    // reset's start configured: the view-0 leader's first block extends it.
    let mut tip = block(3, qc_for(&block(3, QuorumCert::genesis(), 1, vec![]), &[0, 1, 2]), 99, vec![]);
    tip.height = 40;
    tip.hash = tip.compute_hash();
    let restored = || Restored { committed: vec![tip.clone()], restarted: false, ..Restored::default() };
    let mut cfg = Config::new(5, DELTA);
    cfg.base = (40, tip.hash);
    let mut leader = Core::new(cfg.clone(), 0, Box::new(SimCrypto { me: 0 }), restored());
    let proposed = leader
        .handle(1_000, Input::Request(b"after the reset".to_vec()))
        .into_iter()
        .find_map(|a| if let Action::Broadcast(Message::Propose(p)) = a { Some(p) } else { None })
        .expect("the leader proposes");
    assert_eq!((proposed.block.height, proposed.block.parent), (41, tip.hash));
    assert!(proposed.block.parent_qc.is_genesis() && proposed.block.parent_qc.height == 40);
    let mut voter = Core::new(cfg, 1, Box::new(SimCrypto { me: 1 }), restored());
    let k = kinds(&voter.handle(1_001, Input::Message(0, Message::Propose(proposed))));
    assert!(k.iter().any(|a| a.starts_with("broadcast vote") || a.starts_with("send vote")), "{k:?}");
}
