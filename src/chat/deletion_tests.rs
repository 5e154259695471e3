//! Deleting for oneself (on the harness of `tests.rs`): each side of a conversation deletes
//! its own view; a message goes once nobody sees it; sent-only conversations are listed.

use super::*;

fn history_texts(h: &mut Harness, user: &str, session: u64, seq: u64, with: &str) -> Vec<String> {
    match h.outcome(user, session, seq, Op::History { with: with.into(), before: 0, limit: 100 }) {
        Outcome::History { messages, .. } => messages.into_iter().map(|m| m.text).collect(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_recipients_delete_hides_the_message_from_the_recipient_only() {
    let mut h = Harness::new();
    let (sa, sb) = h.alice_and_bob();
    let Outcome::Sent { id } = h.outcome("alice", sa, 2, send("bob", "hello bob")) else { panic!() };
    h.outcome("alice", sa, 3, send("bob", "second"));
    assert_eq!(h.outcome("bob", sb, 2, Op::DeleteMessages { ids: vec![id] }), Outcome::Deleted { count: 1 });
    assert_eq!(history_texts(&mut h, "bob", sb, 3, "alice"), ["second"], "gone for bob");
    assert_eq!(history_texts(&mut h, "alice", sa, 4, "bob"), ["hello bob", "second"], "alice still has it");
    assert_eq!(h.state.message_count(), 2, "kept while alice has it");
    // Bob cannot delete it twice; alice deletes her side: now nobody sees it, and it goes.
    assert_eq!(failed(&h.outcome("bob", sb, 4, Op::DeleteMessages { ids: vec![id] })), "no_such_message");
    assert_eq!(h.outcome("alice", sa, 5, Op::DeleteMessages { ids: vec![id] }), Outcome::Deleted { count: 1 });
    assert_eq!(history_texts(&mut h, "alice", sa, 6, "bob"), ["second"]);
    assert_eq!(h.state.message_count(), 1);
    // The state after it all is the one a snapshot rebuilds (the derived sent lists too).
    let fs = crate::storage::MemFs::new();
    let dir = std::path::Path::new("/s");
    crate::storage::Fs::create_dir_all(&fs, dir).unwrap();
    crate::storage::snapshot::write(&fs, dir, &h.state).unwrap();
    let loaded = crate::storage::snapshot::load(&fs, dir).unwrap();
    assert_eq!(loaded.digest(), h.state.digest());
    assert_eq!(loaded.account("alice").unwrap().sent, h.state.account("alice").unwrap().sent);
}

#[test]
fn a_senders_delete_hides_it_from_the_sender_and_unread_stays_the_recipients() {
    let mut h = Harness::new();
    let (sa, sb) = h.alice_and_bob();
    let Outcome::Sent { id } = h.outcome("alice", sa, 2, send("bob", "oops")) else { panic!() };
    assert_eq!(h.outcome("alice", sa, 3, Op::DeleteMessages { ids: vec![id] }), Outcome::Deleted { count: 1 });
    assert!(history_texts(&mut h, "alice", sa, 4, "bob").is_empty());
    // Bob still gets it: it was sent.
    assert!(matches!(h.outcome("bob", sb, 2, Op::Read { max: 5 }), Outcome::Messages { messages, .. } if messages.len() == 1));
    assert_eq!(history_texts(&mut h, "bob", sb, 3, "alice"), ["oops"]);
    // A mix of ids: all or nothing.
    assert_eq!(failed(&h.outcome("bob", sb, 4, Op::DeleteMessages { ids: vec![id, 999] })), "no_such_message");
    assert_eq!(history_texts(&mut h, "bob", sb, 5, "alice"), ["oops"]);
    // A note to oneself goes at once.
    let Outcome::Sent { id: note } = h.outcome("alice", sa, 5, send("alice", "note")) else { panic!() };
    assert_eq!(h.outcome("alice", sa, 6, Op::DeleteMessages { ids: vec![note] }), Outcome::Deleted { count: 1 });
    assert!(h.state.account("alice").unwrap().mailbox.get(&note).is_none());
}

#[test]
fn inbox_lists_conversations_one_only_wrote_in_and_forgets_deleted_ones() {
    let mut h = Harness::new();
    let (sa, sb) = h.alice_and_bob();
    let sc = h.session(3);
    h.create("carol", sc);
    h.outcome("alice", sa, 2, send("carol", "hi carol"));
    h.outcome("bob", sb, 2, send("alice", "hi alice"));
    let inbox = |h: &mut Harness, seq| match h.outcome("alice", sa, seq, Op::Inbox { limit: 10 }) {
        Outcome::Inbox { senders, .. } => senders.into_iter().map(|e| (e.from, e.unread)).collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    assert_eq!(inbox(&mut h, 3), [("bob".to_string(), 1), ("carol".to_string(), 0)]);
    // Carol's account goes: her mailbox with it, and the conversation from alice's list.
    h.outcome("carol", sc, 2, Op::DeleteAccount);
    assert_eq!(inbox(&mut h, 4), [("bob".to_string(), 1)]);
    assert!(h.state.account("alice").unwrap().sent.is_empty());
}
