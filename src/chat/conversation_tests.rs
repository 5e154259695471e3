//! `who`, `history` and `inbox` (on the harness of `tests.rs`): who is logged in, and a
//! conversation in both directions, paged by cursor over bounded scans.

use super::*;

fn who(h: &mut Harness, user: &str, session: u64, seq: u64, after: &str, limit: u32) -> (Vec<String>, Option<String>, u64) {
    match h.outcome(user, session, seq, Op::Who { after: after.into(), limit }) {
        Outcome::Online { names, next, total } => (names, next, total),
        other => panic!("expected a page of names, got {other:?}"),
    }
}

fn history(h: &mut Harness, user: &str, session: u64, seq: u64, with: &str, before: u64, limit: u32) -> (Vec<(u64, String, String)>, Option<u64>) {
    match h.outcome(user, session, seq, Op::History { with: with.into(), before, limit }) {
        Outcome::History { messages, before } => (messages.into_iter().map(|m| (m.id, m.from, m.text)).collect(), before),
        other => panic!("expected a conversation, got {other:?}"),
    }
}

#[test]
fn who_lists_the_users_with_an_open_session() {
    let mut h = Harness::new();
    let (sa, sb) = h.alice_and_bob();
    let sc = h.session(3);
    h.create("carol", sc);
    assert_eq!(who(&mut h, "alice", sa, 2, "", 10), (vec!["alice".into(), "bob".into(), "carol".into()], None, 3));
    assert_eq!(who(&mut h, "alice", sa, 3, "", 2), (vec!["alice".into(), "bob".into()], Some("bob".into()), 3));
    assert_eq!(who(&mut h, "alice", sa, 4, "bob", 2), (vec!["carol".into()], None, 3));
    // Logging out and deleting an account take a user off the list.
    h.outcome("bob", sb, 2, Op::Logout);
    h.outcome("carol", sc, 2, Op::DeleteAccount);
    assert_eq!(who(&mut h, "alice", sa, 5, "", 10), (vec!["alice".into()], None, 1));
    // Two sessions of one user: still one name, until both are closed.
    let sb2 = h.session(4);
    h.outcome("bob", sb2, 1, Op::Login);
    let sb3 = h.session(5);
    h.outcome("bob", sb3, 1, Op::Login);
    h.outcome("bob", sb2, 2, Op::Logout);
    assert_eq!(who(&mut h, "alice", sa, 6, "", 10).0, vec!["alice".to_string(), "bob".into()]);
    assert!(matches!(h.outcome("alice", sa, 7, Op::Who { after: String::new(), limit: 0 }), Outcome::Failed(ChatError::InvalidLimit(0))));
    // Like every operation but create and login, it needs an open session.
    assert!(matches!(h.outcome("bob", sb, 3, Op::Who { after: String::new(), limit: 5 }), Outcome::Failed(_)));
}

#[test]
fn history_shows_both_directions_in_order_read_or_not() {
    let mut h = Harness::new();
    let (sa, sb) = h.alice_and_bob();
    let sc = h.session(3);
    h.create("carol", sc);
    h.outcome("alice", sa, 2, send("bob", "hi bob"));
    h.outcome("bob", sb, 2, send("alice", "hi alice"));
    h.outcome("carol", sc, 2, send("alice", "not in this conversation"));
    h.outcome("alice", sa, 3, send("bob", "how are you?"));
    h.outcome("bob", sb, 3, Op::Read { max: 10 }); // read ones stay in the history
    let (messages, before) = history(&mut h, "alice", sa, 4, "bob", 0, 10);
    let texts: Vec<&str> = messages.iter().map(|m| m.2.as_str()).collect();
    assert_eq!(texts, ["hi bob", "hi alice", "how are you?"]);
    assert_eq!(before, None);
    assert_eq!(messages[1].1, "bob");
    // The same conversation from bob's side, and the last two only, with a cursor.
    let (last_two, before) = history(&mut h, "bob", sb, 4, "alice", 0, 2);
    assert_eq!(last_two.iter().map(|m| m.2.as_str()).collect::<Vec<_>>(), ["hi alice", "how are you?"]);
    assert_eq!(before, Some(last_two[0].0));
    let (older, before) = history(&mut h, "bob", sb, 5, "alice", last_two[0].0, 2);
    assert_eq!((older.iter().map(|m| m.2.as_str()).collect::<Vec<_>>(), before), (vec!["hi bob"], None));
    // Notes to oneself appear once.
    h.outcome("carol", sc, 3, send("carol", "note to self"));
    assert_eq!(history(&mut h, "carol", sc, 4, "carol", 0, 10).0.len(), 1);
    // Nothing was marked read by looking at the history.
    assert!(matches!(h.outcome("alice", sa, 5, Op::Login), Outcome::LoggedIn { unread: 2 }));
    assert!(matches!(h.outcome("alice", sa, 6, Op::History { with: "nobody".into(), before: 0, limit: 5 }), Outcome::Failed(ChatError::UnknownUser(_))));
    assert!(matches!(h.outcome("alice", sa, 7, Op::History { with: "bob".into(), before: 0, limit: 101 }), Outcome::Failed(ChatError::InvalidLimit(101))));
}

#[test]
fn what_a_deleted_account_sent_stays_in_its_correspondents_history() {
    let mut h = Harness::new();
    let (sa, sb) = h.alice_and_bob();
    h.outcome("alice", sa, 2, send("bob", "to bob"));
    h.outcome("bob", sb, 2, send("alice", "from bob"));
    h.outcome("bob", sb, 3, Op::DeleteAccount);
    // Bob's message is alice's; hers to him went with his mailbox (a stranger's try: the
    // whole conversation was refused as `unknown_user`).
    let (messages, before) = history(&mut h, "alice", sa, 3, "bob", 0, 10);
    assert_eq!(messages.iter().map(|m| m.2.as_str()).collect::<Vec<_>>(), ["from bob"]);
    assert_eq!(before, None);
    // A name that never wrote and has no account is still unknown.
    let typo = h.outcome("alice", sa, 4, Op::History { with: "bbo".into(), before: 0, limit: 10 });
    assert!(matches!(typo, Outcome::Failed(ChatError::UnknownUser(_))), "{typo:?}");
}

#[test]
fn history_of_a_deleted_namesake_is_not_shown_and_large_mailboxes_are_walked_in_bounded_steps() {
    let mut h = Harness::new();
    let (sa, sb) = h.alice_and_bob();
    h.outcome("bob", sb, 2, send("alice", "from the first bob"));
    h.outcome("bob", sb, 3, Op::DeleteAccount);
    let sb2 = h.session(9);
    h.create("bob", sb2);
    let (messages, _) = history(&mut h, "alice", sa, 2, "bob", 0, 10);
    assert!(messages.is_empty(), "another person with the same name: {messages:?}");
    // 2,500 messages from carol, then one from the new bob: the walk stops at the scan bound
    // and hands back a cursor; following it reaches the end with every message found once.
    let sc = h.session(10);
    h.create("carol", sc);
    // Alice reads as they come, in another session (a sender may leave only so many unread).
    let sa2 = h.session(11);
    h.outcome("alice", sa2, 1, Op::Login);
    let mut sent = Vec::new();
    for i in 0..2_500u64 {
        let Outcome::Sent { id } = h.outcome("carol", sc, 2 + i, send("alice", "noise")) else { panic!("carol's send {i}") };
        sent.push(id);
        if sent.len() == 500 {
            h.outcome("alice", sa2, 2 + i, Op::MarkRead { ids: std::mem::take(&mut sent) });
        }
    }
    h.outcome("bob", sb2, 2, send("alice", "new bob"));
    h.outcome("alice", sa, 3, send("bob", "hello new bob"));
    let (mut found, mut before, mut requests) = (Vec::new(), 0, 0);
    loop {
        requests += 1;
        let (page, next) = history(&mut h, "alice", sa, 3 + requests, "bob", before, 100);
        found.splice(0..0, page.into_iter().map(|m| m.2));
        match next {
            Some(cursor) => before = cursor,
            None => break,
        }
        assert!(requests < 10, "the cursor moves down");
    }
    assert_eq!(found, ["new bob", "hello new bob"]);
    assert_eq!(requests, 3, "2,500 entries in scans of {LIST_SCAN_MAX}");
}

fn inbox(h: &mut Harness, user: &str, session: u64, seq: u64, limit: u32) -> (Vec<(String, u64)>, u64, bool) {
    match h.outcome(user, session, seq, Op::Inbox { limit }) {
        Outcome::Inbox { senders, unread, complete } => (senders.into_iter().map(|e| (e.from, e.unread)).collect(), unread, complete),
        other => panic!("expected an inbox, got {other:?}"),
    }
}

#[test]
fn inbox_lists_who_wrote_latest_first_with_unread_counts_and_marks_nothing_read() {
    let mut h = Harness::new();
    let (sa, sb) = h.alice_and_bob();
    let sc = h.session(3);
    h.create("carol", sc);
    assert_eq!(inbox(&mut h, "alice", sa, 2, 10), (vec![], 0, true));
    h.outcome("bob", sb, 2, send("alice", "one"));
    h.outcome("carol", sc, 2, send("alice", "two"));
    h.outcome("bob", sb, 3, send("alice", "three"));
    assert_eq!(inbox(&mut h, "alice", sa, 3, 10), (vec![("bob".into(), 2), ("carol".into(), 1)], 3, true));
    // Reading bob's first message leaves it in the list with one unread; a limit cuts the list.
    h.outcome("alice", sa, 4, Op::Read { max: 1 });
    assert_eq!(inbox(&mut h, "alice", sa, 5, 10), (vec![("bob".into(), 1), ("carol".into(), 1)], 2, true));
    assert_eq!(inbox(&mut h, "alice", sa, 6, 1).0, vec![("bob".to_string(), 1)]);
    assert!(matches!(h.outcome("alice", sa, 7, Op::Inbox { limit: 101 }), Outcome::Failed(ChatError::InvalidLimit(101))));
    // An old unread message below 1,000 newer, read ones is still counted (the second walk),
    // and the answer says the walk was bounded.
    let mut noise = Vec::new();
    for i in 0..1_200u64 {
        if let Outcome::Sent { id } = h.outcome("bob", sb, 4 + i, send("alice", "noise")) {
            noise.push(id);
        }
    }
    for (n, ids) in noise.chunks(100).enumerate() {
        h.outcome("alice", sa, 8 + n as u64, Op::MarkRead { ids: ids.to_vec() });
    }
    assert_eq!(inbox(&mut h, "alice", sa, 20, 10), (vec![("bob".into(), 1), ("carol".into(), 1)], 2, false));
    assert!(matches!(h.outcome("alice", sa, 21, Op::Login), Outcome::LoggedIn { unread: 2 }), "nothing marked read");
}
