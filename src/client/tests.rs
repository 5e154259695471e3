//! The voting rule against honest, lying, forging and confused replicas.

use prost::Message as _;

use super::tally::{DeliveryTally, Live, Rejected, Tally};
use crate::crypto::{SigningKey, TAG_DELIVERY, TAG_REPLY, sign};
use crate::{pb, wire};

fn keys() -> Vec<SigningKey> {
    (1..=5).map(|i| SigningKey::from_bytes(&[i; 32])).collect()
}

fn ids() -> Vec<String> {
    ["A", "B", "C", "D", "E"].iter().map(|s| s.to_string()).collect()
}

const DIGEST: [u8; 32] = [7; 32];

fn reply(key: &SigningKey, replica: &str, digest: [u8; 32], height: u64, sent_id: u64) -> pb::SignedReply {
    let outcome = wire::encode_outcome(&crate::chat::Outcome::Sent { id: sent_id });
    let body =
        pb::ReplyBody { replica: replica.into(), request_digest: digest.to_vec(), height, outcome: Some(outcome), executed: true, ordered: vec![9; 32] }
            .encode_to_vec();
    pb::SignedReply { signature: sign(key, TAG_REPLY, &body), body }
}

#[test]
fn three_matching_replies_are_accepted_and_two_are_not() {
    let (keys, ids) = (keys(), ids());
    let mut tally = Tally::new(3, DIGEST);
    for i in 0..2 {
        let r = reply(&keys[i], &ids[i], DIGEST, 9, 4);
        assert_eq!(tally.add(i, &ids[i], &keys[i].verifying_key(), &r), Ok(None));
    }
    let r = reply(&keys[2], &ids[2], DIGEST, 9, 4);
    let agreed = tally.add(2, &ids[2], &keys[2].verifying_key(), &r).unwrap().expect("quorum");
    assert_eq!((agreed.height, agreed.agreement.agreed), (9, vec![0, 1, 2]));
}

#[test]
fn two_liars_cannot_win_and_forgeries_do_not_count() {
    let (keys, ids) = (keys(), ids());
    let mut tally = Tally::new(3, DIGEST);
    let vk = |i: usize| keys[i].verifying_key();
    // D and E lie alike (another result).
    for i in [3, 4] {
        assert_eq!(tally.add(i, &ids[i], &vk(i), &reply(&keys[i], &ids[i], DIGEST, 9, 666)), Ok(None));
    }
    // E forges a third vote for the lie in A's name, signed with E's key.
    let forged = reply(&keys[4], &ids[0], DIGEST, 9, 666);
    assert_eq!(tally.add(0, &ids[0], &vk(0), &forged), Err(Rejected::BadSignature));
    // D replays a reply of C's to another request.
    let other = reply(&keys[2], &ids[2], [8; 32], 9, 666);
    assert_eq!(tally.add(2, &ids[2], &vk(2), &other), Err(Rejected::OtherRequest));
    // A reply signed by B but naming A is refused.
    assert_eq!(tally.add(1, &ids[1], &vk(1), &reply(&keys[1], &ids[0], DIGEST, 9, 4)), Err(Rejected::WrongReplica("A".into())));
    // A reply that differs only in height is a different vote.
    assert_eq!(tally.add(0, &ids[0], &vk(0), &reply(&keys[0], &ids[0], DIGEST, 10, 4)), Ok(None));
    assert_eq!(tally.add(2, &ids[2], &vk(2), &reply(&keys[2], &ids[2], DIGEST, 9, 4)), Ok(None));
    assert!(!tally.hopeless(5), "B has not answered yet: 2 + 1 could still reach 3");
    assert_eq!(tally.add(2, &ids[2], &vk(2), &reply(&keys[2], &ids[2], DIGEST, 9, 4)), Err(Rejected::Duplicate));
}

#[test]
fn hopeless_when_the_missing_replies_cannot_make_a_quorum() {
    let (keys, ids) = (keys(), ids());
    let mut tally = Tally::new(3, DIGEST);
    for (i, value) in [(0, 1), (1, 2), (2, 3)] {
        tally.add(i, &ids[i], &keys[i].verifying_key(), &reply(&keys[i], &ids[i], DIGEST, 9, value)).unwrap();
        assert!(!tally.hopeless(5));
    }
    tally.add(3, &ids[3], &keys[3].verifying_key(), &reply(&keys[3], &ids[3], DIGEST, 9, 4)).unwrap();
    assert!(tally.hopeless(5), "best is 1 vote with 1 reply missing");
}

#[test]
fn a_report_tells_too_few_alike_from_a_replica_that_answered_otherwise() {
    // Two alike and one quorum short is not the same as two that contradict each other:
    // the no-quorum report said "not as the others" for both (a five-process run, 2026-12-07).
    let (keys, ids) = (keys(), ids());
    let mut tally = Tally::new(3, DIGEST);
    for (i, value) in [(0, 1), (4, 1), (2, 7)] {
        tally.add(i, &ids[i], &keys[i].verifying_key(), &reply(&keys[i], &ids[i], DIGEST, 9, value)).unwrap();
    }
    assert_eq!(tally.compared(0), (vec![4], vec![2]));
    assert_eq!(tally.compared(2), (vec![], vec![0, 4]));
    assert_eq!(tally.compared(1), (vec![], vec![]), "B did not answer");
}

fn signed_delivery(key: &SigningKey, body: pb::DeliveryBody) -> pb::SignedDelivery {
    let body = body.encode_to_vec();
    pb::SignedDelivery { signature: sign(key, TAG_DELIVERY, &body).into(), body: body.into() }
}

/// Replica `replica`'s copy of message `id` at `height`, signed with `key`.
fn message_copy(key: &SigningKey, replica: &str, id: u64, height: u64, text: &str) -> pb::SignedDelivery {
    let message = pb::Message { id, from: "a".into(), to: "b".into(), text: text.into(), ..Default::default() };
    signed_delivery(key, pb::DeliveryBody { replica: replica.into(), height, message: Some(message), closed: None })
}

fn delivery(key: &SigningKey, replica: &str, height: u64, text: &str) -> pb::SignedDelivery {
    message_copy(key, replica, 5, height, text)
}

#[test]
fn a_delivery_shows_once_after_a_quorum_of_identical_copies() {
    let (keys, ids) = (keys(), ids());
    let mut tally = DeliveryTally::new(3);
    let vk = |i: usize| keys[i].verifying_key();
    assert_eq!(tally.add(0, &ids[0], &vk(0), &delivery(&keys[0], &ids[0], 3, "hi")), None);
    assert_eq!(tally.add(0, &ids[0], &vk(0), &delivery(&keys[0], &ids[0], 3, "hi")), None, "a repeat is one vote");
    assert_eq!(tally.add(1, &ids[1], &vk(1), &delivery(&keys[1], &ids[1], 3, "lie")), None);
    assert_eq!(tally.add(3, &ids[3], &vk(0), &delivery(&keys[3], &ids[3], 3, "hi")), None, "bad signature");
    assert_eq!(tally.add(2, &ids[2], &vk(2), &delivery(&keys[2], &ids[2], 3, "hi")), None);
    let Some(Live::Message(height, shown, agreement)) = tally.add(4, &ids[4], &vk(4), &delivery(&keys[4], &ids[4], 3, "hi")) else {
        panic!("shown")
    };
    assert_eq!((height, shown.text.as_str()), (3, "hi"));
    assert_eq!((agreement.agreed, agreement.differed), (vec![0, 2, 4], vec![1]), "who agreed, who sent another copy");
    assert_eq!(tally.add(3, &ids[3], &vk(3), &delivery(&keys[3], &ids[3], 3, "hi")), None, "shown once");
}

#[test]
fn a_status_is_a_replicas_only_if_signed_by_its_key_for_this_cluster_and_this_question() {
    use super::{StatusError, check_status};
    let keys = keys();
    let signed = |key: &SigningKey, replica: &str, cluster: &str, nonce: &[u8]| {
        let body = pb::StatusReply { replica: replica.into(), height: 7, cluster: cluster.into(), nonce: nonce.to_vec(), ..Default::default() }
            .encode_to_vec();
        let signature = sign(key, crate::crypto::TAG_STATUS, &body);
        pb::SignedStatus { body, signature }
    };
    let a = keys[0].verifying_key();
    let ok = check_status("A", &a, "c#1", b"n1", signed(&keys[0], "A", "c#1", b"n1"));
    assert_eq!(ok.map(|s| s.height), Ok(7));
    let wrong = |r: Result<pb::StatusReply, StatusError>| matches!(r, Err(StatusError::WrongIdentity(_)));
    assert!(wrong(check_status("A", &a, "c#1", b"n1", signed(&keys[1], "A", "c#1", b"n1"))), "another key");
    assert!(wrong(check_status("A", &a, "c#1", b"n1", signed(&keys[0], "A", "c#2", b"n1"))), "another cluster");
    assert!(wrong(check_status("A", &a, "c#1", b"n1", signed(&keys[0], "B", "c#1", b"n1"))), "another name");
    assert!(wrong(check_status("A", &a, "c#1", b"n2", signed(&keys[0], "A", "c#1", b"n1"))), "an old answer replayed");
    let mut forged = signed(&keys[0], "A", "c#1", b"n1");
    forged.body[0] ^= 1;
    assert!(wrong(check_status("A", &a, "c#1", b"n1", forged)), "a changed body");
}

fn closed_notice(key: &SigningKey, replica: &str, session: u64, reason: &str) -> pb::SignedDelivery {
    let closed = pb::SessionClosed { user: "b".into(), session, reason: reason.into() };
    signed_delivery(key, pb::DeliveryBody { replica: replica.into(), height: 8, message: None, closed: Some(closed) })
}

#[test]
fn a_session_closed_notice_counts_only_with_a_quorum_of_identical_signed_copies() {
    let (keys, ids) = (keys(), ids());
    let mut tally = DeliveryTally::new(3);
    let vk = |i: usize| keys[i].verifying_key();
    assert_eq!(tally.add(0, &ids[0], &vk(0), &closed_notice(&keys[0], &ids[0], 77, "gone")), None);
    assert_eq!(tally.add(0, &ids[0], &vk(0), &closed_notice(&keys[0], &ids[0], 77, "gone")), None, "a repeat is one vote");
    assert_eq!(tally.add(1, &ids[1], &vk(1), &closed_notice(&keys[1], &ids[1], 77, "other")), None, "a different notice");
    assert_eq!(tally.add(3, &ids[3], &vk(3), &closed_notice(&keys[0], &ids[3], 77, "gone")), None, "bad signature");
    assert_eq!(tally.add(2, &ids[2], &vk(2), &closed_notice(&keys[2], &ids[2], 77, "gone")), None);
    let shown = tally.add(4, &ids[4], &vk(4), &closed_notice(&keys[4], &ids[4], 77, "gone"));
    assert_eq!(shown, Some(Live::SessionClosed { height: 8, session: 77, reason: "gone".into() }));
    assert_eq!(tally.add(3, &ids[3], &vk(3), &closed_notice(&keys[3], &ids[3], 77, "gone")), None, "told once");
}

#[test]
fn a_delivery_whose_quorum_comes_after_a_newer_ones_is_left_for_read() {
    let (keys, ids) = (keys(), ids());
    let mut tally = DeliveryTally::new(3);
    let vk = |i: usize| keys[i].verifying_key();
    let copy = |i: usize, id: u64, height: u64| message_copy(&keys[i], &ids[i], id, height, &format!("m{id}"));
    // Message 10 reaches two replicas' streams only; 11 then reaches three (one of them a
    // replica whose stream was re-opened after 10).
    assert_eq!(tally.add(0, &ids[0], &vk(0), &copy(0, 10, 4)), None);
    assert_eq!(tally.add(1, &ids[1], &vk(1), &copy(1, 10, 4)), None);
    for i in [0, 1] {
        assert_eq!(tally.add(i, &ids[i], &vk(i), &copy(i, 11, 5)), None);
    }
    assert!(matches!(tally.add(2, &ids[2], &vk(2), &copy(2, 11, 5)), Some(Live::Message(5, m, _)) if m.id == 11));
    // A catching-up replica delivers 10 late: its quorum is complete, but 11 was shown, so 10
    // stays for `read` (live deliveries keep commit order).
    assert_eq!(tally.add(3, &ids[3], &vk(3), &copy(3, 10, 4)), None, "out of commit order");
    // Read from the mailbox up to 13: 12 and 13 are not shown live afterwards.
    tally.raise_floor(13);
    for i in 0..3 {
        assert_eq!(tally.add(i, &ids[i], &vk(i), &copy(i, 13, 6)), None, "already read");
    }
    for i in 0..2 {
        assert_eq!(tally.add(i, &ids[i], &vk(i), &copy(i, 14, 7)), None);
    }
    assert!(matches!(tally.add(4, &ids[4], &vk(4), &copy(4, 14, 7)), Some(Live::Message(7, m, _)) if m.id == 14));
}

#[test]
fn one_replicas_forged_deliveries_take_bounded_memory_and_push_out_no_genuine_message() {
    let (keys, ids) = (keys(), ids());
    let mut tally = DeliveryTally::new(3);
    let vk = |i: usize| keys[i].verifying_key();
    let text = "x".repeat(1000);
    // A genuine message, delivered by two replicas so far.
    for i in [0, 1] {
        assert_eq!(tally.add(i, &ids[i], &vk(i), &message_copy(&keys[i], &ids[i], 7, 3, "genuine")), None);
    }
    // Replica 4 signs 12,000 deliveries of messages that were never committed (more than the
    // 10,000 waiting copies after which the client used to drop the oldest: the genuine one).
    for n in 0..12_000u64 {
        assert_eq!(tally.add(4, &ids[4], &vk(4), &message_copy(&keys[4], &ids[4], 1_000 + n, 9, &text)), None);
    }
    assert!(tally.waiting() <= 1024 + 1, "{} copies waiting", tally.waiting());
    // The genuine message is still counted: the third copy shows it.
    let shown = tally.add(2, &ids[2], &vk(2), &message_copy(&keys[2], &ids[2], 7, 3, "genuine"));
    assert!(matches!(shown, Some(Live::Message(3, m, _)) if m.id == 7));
}

#[test]
fn a_reply_that_contradicts_the_agreed_result_at_its_height_becomes_a_proof() {
    let (keys, ids) = (keys(), ids());
    let mut tally = Tally::new(3, DIGEST);
    let vk = |i: usize| keys[i].verifying_key();
    // D lies first (another message id at the same height), E answers at another height.
    assert_eq!(tally.add(3, &ids[3], &vk(3), &reply(&keys[3], &ids[3], DIGEST, 9, 666)), Ok(None));
    assert_eq!(tally.add(4, &ids[4], &vk(4), &reply(&keys[4], &ids[4], DIGEST, 8, 666)), Ok(None));
    for i in 0..2 {
        assert_eq!(tally.add(i, &ids[i], &vk(i), &reply(&keys[i], &ids[i], DIGEST, 9, 4)), Ok(None));
    }
    let agreed = tally.add(2, &ids[2], &vk(2), &reply(&keys[2], &ids[2], DIGEST, 9, 4)).unwrap().expect("quorum");
    let proofs = tally.contradictions(&agreed);
    assert_eq!(proofs.iter().map(|(i, _)| *i).collect::<Vec<_>>(), vec![3], "D only: E's answer is at another height");
    let mut config_keys = crate::config::ClusterConfig {
        name: "t".into(),
        cluster_id: "c".into(),
        delta_ms: 200,
        kdf: Default::default(),
        checkpoint_every: 100,
        presence_ms: 60_000,
        reset: None,
        replicas: Vec::new(),
    };
    config_keys.replicas = keys
        .iter()
        .zip(&ids)
        .map(|(k, id)| crate::config::ReplicaEntry {
            id: id.clone(),
            address: "127.0.0.1:1".into(),
            public_key: crate::crypto::encode_hex(k.verifying_key().as_bytes()),
            certificate: String::new(),
        })
        .collect();
    let check_keys = crate::evidence::Keys::new(&config_keys);
    assert_eq!(crate::evidence::check(&proofs[0].1, &check_keys).map(|a| a.replica), Ok(3));
    // A client that believed one reply (the planted bug) holds no proof that checks.
    let mut gullible = Tally::new(1, DIGEST);
    let agreed = gullible.add(3, &ids[3], &vk(3), &reply(&keys[3], &ids[3], DIGEST, 9, 666)).unwrap().expect("one is enough for it");
    gullible.add(0, &ids[0], &vk(0), &reply(&keys[0], &ids[0], DIGEST, 9, 4)).ok();
    let proofs = gullible.contradictions(&agreed);
    assert!(proofs.iter().all(|(_, p)| crate::evidence::check(p, &check_keys).is_err()), "an honest replica is not accused");
}
