//! What one user can put in another's mailbox: a bounded number of unread messages per
//! sender, and nothing at all once blocked (on the harness of `tests.rs`).

use super::*;
use crate::chat::types::{BLOCKED_MAX, UNREAD_FROM_ONE_MAX};

#[test]
fn a_sender_may_leave_a_bounded_number_of_unread_messages_then_waits_for_the_reader() {
    let mut h = Harness::new();
    let (sa, sb) = h.alice_and_bob();
    let sm = h.session(3);
    h.create("mallory", sm);
    for i in 0..UNREAD_FROM_ONE_MAX {
        assert!(matches!(h.outcome("mallory", sm, 2 + i, send("alice", "spam")), Outcome::Sent { .. }));
    }
    let next = 2 + UNREAD_FROM_ONE_MAX;
    assert_eq!(failed(&h.outcome("mallory", sm, next, send("alice", "spam"))), "too_many_unread");
    // Bob is not affected by mallory's flood; alice reading makes room for mallory again.
    assert!(matches!(h.outcome("bob", sb, 2, send("alice", "hi")), Outcome::Sent { .. }));
    h.outcome("alice", sa, 2, Op::Read { max: 5 });
    for i in 0..5 {
        assert!(matches!(h.outcome("mallory", sm, next + 1 + i, send("alice", "more")), Outcome::Sent { .. }), "{i}");
    }
    assert_eq!(failed(&h.outcome("mallory", sm, next + 6, send("alice", "spam"))), "too_many_unread");
    // Marked read or deleted counts as read.
    let Outcome::Messages { messages, .. } = h.outcome("alice", sa, 3, Op::Read { max: 2 }) else { panic!() };
    h.outcome("alice", sa, 4, Op::DeleteMessages { ids: vec![messages[0].id] });
    assert!(matches!(h.outcome("mallory", sm, next + 7, send("alice", "x")), Outcome::Sent { .. }));
    // The count is rebuilt from a snapshot the same way.
    let restored = crate::storage::snapshot::load(&snapshot_fs(&h.state), std::path::Path::new("/s")).unwrap();
    assert_eq!(restored.account("alice").unwrap().unread_from, h.state.account("alice").unwrap().unread_from);
}

fn snapshot_fs(state: &ChatState) -> crate::storage::MemFs {
    let fs = crate::storage::MemFs::new();
    crate::storage::Fs::create_dir_all(&fs, std::path::Path::new("/s")).unwrap();
    crate::storage::snapshot::write(&fs, std::path::Path::new("/s"), state).unwrap();
    fs
}

#[test]
fn a_blocked_account_cannot_write_and_a_later_account_of_its_name_can() {
    let mut h = Harness::new();
    let (sa, _) = h.alice_and_bob();
    let sm = h.session(3);
    h.create("mallory", sm);
    let block = |user: &str, unblock| Op::Block { user: user.into(), unblock };
    assert_eq!(h.outcome("alice", sa, 2, block("mallory", false)), Outcome::Blocked { names: vec!["mallory".into()] });
    assert_eq!(failed(&h.outcome("mallory", sm, 2, send("alice", "hello?"))), "not_accepted");
    assert_eq!(h.state.account("alice").unwrap().mailbox.len(), 0);
    // Listing, and what cannot be blocked.
    assert_eq!(h.outcome("alice", sa, 3, block("", false)), Outcome::Blocked { names: vec!["mallory".into()] });
    assert_eq!(failed(&h.outcome("alice", sa, 4, block("alice", false))), "block_yourself");
    assert_eq!(failed(&h.outcome("alice", sa, 5, block("nobody", false))), "unknown_user");
    // The block list is in the digest and survives a snapshot.
    let restored = crate::storage::snapshot::load(&snapshot_fs(&h.state), std::path::Path::new("/s")).unwrap();
    assert_eq!(restored.account("alice").unwrap().blocked, h.state.account("alice").unwrap().blocked);
    // Mallory's account goes; a new "mallory" is another person and may write.
    h.outcome("mallory", sm, 3, Op::DeleteAccount);
    let sm2 = h.session(4);
    h.create("mallory", sm2);
    assert!(matches!(h.outcome("mallory", sm2, 2, send("alice", "new here")), Outcome::Sent { .. }));
    // Unblocking by the name the list shows removes the old entry.
    assert_eq!(h.outcome("alice", sa, 6, block("mallory", true)), Outcome::Blocked { names: vec![] });
}

#[test]
fn block_lists_are_bounded_and_an_empty_one_changes_no_digest() {
    let mut h = Harness::new();
    let (sa, _) = h.alice_and_bob();
    let before = h.state.digest();
    let mut emptied = h.state.clone();
    let alice = std::sync::Arc::make_mut(emptied.accounts.get_mut("alice").unwrap());
    alice.blocked.insert(2, "bob".into());
    assert_ne!(emptied.digest(), before, "a block list is in the digest");
    std::sync::Arc::make_mut(emptied.accounts.get_mut("alice").unwrap()).blocked.clear();
    assert_eq!(emptied.digest(), before, "an emptied list is as none: states without block lists hash as before");
    // A full list refuses one more.
    for i in 0..BLOCKED_MAX as u64 {
        let name = format!("u{i}");
        h.create(&name, h.session(10 + i));
        assert!(matches!(h.outcome("alice", sa, 2 + i, Op::Block { user: name, unblock: false }), Outcome::Blocked { .. }));
    }
    assert_eq!(failed(&h.outcome("alice", sa, 2 + BLOCKED_MAX as u64, Op::Block { user: "bob".into(), unblock: false })), "too_many_blocked");
}
