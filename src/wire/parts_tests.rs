//! Parts: a large message split and put together again; every malformed sequence refused
//! without holding more than what arrived.

use super::*;
use crate::wire::peer::decode_batch;

fn part(total: usize, offset: usize, len: usize) -> pb::StatePart {
    pb::StatePart { total: total as u64, offset: offset as u64, data: vec![7; len] }
}

#[test]
fn a_message_larger_than_a_frame_is_split_into_frames_and_put_together_again() {
    let message: Vec<u8> = (0..(2 * PART_MAX + 12_345)).map(|i| (i % 251) as u8).collect();
    let batches: Vec<Vec<u8>> = parts(&message).collect();
    assert_eq!(batches.len(), 3);
    let mut whole = None;
    let mut r = Reassembly::default();
    for (i, batch) in batches.into_iter().enumerate() {
        assert!(batch.len() <= crate::wire::peer::BATCH_MAX, "each part fits a frame");
        let (messages, part) = decode_batch(&batch).unwrap();
        assert!(messages.is_empty());
        let got = r.add(part.unwrap()).unwrap();
        assert_eq!(got.is_some(), i == 2, "whole after the last part only");
        whole = whole.or(got);
    }
    assert_eq!(whole.as_deref(), Some(&message[..]));
    assert_eq!(r.parts, 3);
}

#[test]
fn parts_out_of_order_of_another_length_too_large_or_small_enough_for_a_frame_are_refused() {
    let total = MESSAGE_MAX + 10;
    let refused = |parts: &[pb::StatePart]| {
        let mut r = Reassembly::default();
        parts.iter().cloned().map(|p| r.add(p)).any(|x| x.is_err())
    };
    assert!(!refused(&[part(total, 0, PART_MAX), part(total, PART_MAX, total - PART_MAX)]));
    assert!(refused(&[part(total, PART_MAX, 10)]), "no first part");
    assert!(refused(&[part(total, 0, PART_MAX), part(total, PART_MAX + 1, 9)]), "a gap");
    assert!(refused(&[part(total, 0, PART_MAX), part(total + 1, PART_MAX, 10)]), "another length");
    assert!(refused(&[part(total, 0, PART_MAX), part(total, PART_MAX, 11)]), "past the end");
    assert!(refused(&[part(total, 0, PART_MAX + 1)]), "a part over PART_MAX");
    assert!(refused(&[part(total, 0, 0)]), "an empty part");
    assert!(refused(&[part(MESSAGE_MAX, 0, 10)]), "a message that fits a frame");
    assert!(refused(&[part(PEER_MESSAGE_MAX + 1, 0, 10)]), "over the largest message");
    assert!(refused(&[pb::StatePart { total: u64::MAX, offset: 0, data: vec![1] }]));
    // A part that claims 1 GiB holds only its own bytes.
    let mut r = Reassembly::default();
    assert_eq!(r.add(part(PEER_MESSAGE_MAX, 0, 100)), Ok(None));
    assert!(r.bytes.capacity() < 1 << 20);
    // A new first part starts over (a sender that reconnected sends again from the start).
    assert_eq!(r.add(part(total, 0, PART_MAX)), Ok(None));
    assert_eq!(r.add(part(total, PART_MAX, 10)).unwrap().map(|b| b.len()), Some(total));
}
