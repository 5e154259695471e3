//! What the reply cache keeps (`Held`): bounded per session and per user whatever a user
//! reads, a `read` replayed whole, writes replayed with their outcome, and a read-only result
//! past the budget answered "ask again" (on the harness of `tests.rs`).

use super::*;
use crate::chat::sessions::HELD_SMALL_MAX;
use crate::chat::types::{HELD_PER_USER_MAX, HELD_REPLY_MAX, SESSIONS_PER_USER_MAX, TEXT_LEN_MAX};

/// Bytes of the kept replies as the digest and `sessions.csv` encode them.
fn encoded_reply_bytes(state: &ChatState) -> usize {
    state.sessions.iter().map(|(_, r)| serde_json::to_vec(&r.reply).unwrap().len()).sum()
}

fn history(with: &str) -> Op {
    Op::History { with: with.into(), before: 0, limit: 100 }
}

/// The review's attack: notes of 64 KiB to oneself, then `login` + `history self 100` in
/// every session a user may open (a reply of about 1.1 MiB each).
fn attack(h: &mut Harness) -> Vec<u64> {
    let s = h.session(0);
    h.create("mallory", s);
    for i in 0..17u64 {
        let sent = h.outcome("mallory", s, 2 + i, send("mallory", &"x".repeat(TEXT_LEN_MAX)));
        assert!(matches!(sent, Outcome::Sent { .. }), "{sent:?}");
    }
    let mut sessions = Vec::new();
    for i in 1..SESSIONS_PER_USER_MAX as u64 {
        let session = s + i;
        assert!(matches!(h.outcome("mallory", session, 1, Op::Login), Outcome::LoggedIn { .. }));
        let seen = h.outcome("mallory", session, 2, history("mallory"));
        assert!(matches!(&seen, Outcome::History { messages, .. } if messages.len() == 16), "the answer itself is whole (1 MiB of texts)");
        sessions.push(session);
    }
    sessions
}

#[test]
fn one_user_reading_large_results_in_every_session_keeps_a_bounded_number_of_bytes() {
    let mut h = Harness::new();
    let sessions = attack(&mut h);
    let held = h.state.sessions.held_bytes("mallory");
    let bound = HELD_PER_USER_MAX + SESSIONS_PER_USER_MAX * HELD_SMALL_MAX;
    println!("held after the attack: {held} bytes (bound {bound}); encoded {} bytes", encoded_reply_bytes(&h.state));
    assert!(held <= bound, "{held} bytes held, bound {bound}");
    // What the digest walks and the image carries of the replies: small, not 255 x 1.1 MiB.
    assert!(encoded_reply_bytes(&h.state) <= 2 * bound, "{}", encoded_reply_bytes(&h.state));
    let fs = crate::storage::MemFs::new();
    let dir = std::path::Path::new("/image");
    crate::storage::Fs::create_dir_all(&fs, dir).unwrap();
    crate::storage::snapshot::write(&fs, dir, &h.state).unwrap();
    let sessions_csv = fs.file_len(&dir.join("sessions.csv")).unwrap();
    let messages_csv = fs.file_len(&dir.join("messages.csv")).unwrap();
    println!("image after the attack: sessions.csv {sessions_csv} bytes, messages.csv {messages_csv} bytes");
    assert!(sessions_csv <= 2 * bound, "sessions.csv is {sessions_csv} bytes");
    // Each resend gets the same result while it was kept, else the stated "ask again".
    let mut whole = 0;
    for session in sessions {
        let again = h.outcome("mallory", session, 2, history("mallory"));
        match again {
            Outcome::History { .. } => whole += 1,
            Outcome::Failed(ChatError::NotHeld { seq: 2 }) => {}
            other => panic!("a resent history answered {other:?}"),
        }
    }
    assert_eq!(whole, 0, "a result of 1.1 MiB is past one session's {HELD_REPLY_MAX} bytes");
}

#[test]
fn small_read_only_results_are_kept_until_the_users_budget_is_spent() {
    let mut h = Harness::new();
    let s = h.session(0);
    h.create("alice", s);
    h.outcome("alice", s, 2, send("alice", &"y".repeat(40_000)));
    // One history of 40 KB fits a session; the user's budget holds six of them, not seven.
    let mut kept = 0;
    for i in 1..=7u64 {
        h.outcome("alice", s + i, 1, Op::Login);
        let first = h.run("alice", s + i, 2, history("alice")).reply;
        let again = h.run("alice", s + i, 2, history("alice")).reply;
        if again == first {
            kept += 1;
        } else {
            assert_eq!(again.outcome, Outcome::Failed(ChatError::NotHeld { seq: 2 }));
            assert_eq!(again.height, first.height, "the stated refusal is at the request's own height");
        }
    }
    // Each is counted 40,122 bytes (text, two names, per item and per reply): six fit in
    // 256 KiB beside the small replies, a seventh does not.
    assert_eq!(kept, 6);
    // A later request in a session gives its bytes back: the next history is kept again.
    h.outcome("alice", s + 1, 3, Op::Logout);
    let first = h.run("alice", s + 7, 3, history("alice")).reply;
    assert_eq!(h.run("alice", s + 7, 3, history("alice")).reply, first);
}

#[test]
fn a_resent_read_returns_the_same_messages_from_the_mailbox_and_marks_nothing_twice() {
    let mut h = Harness::new();
    let (sa, sb) = h.alice_and_bob();
    for i in 0..3 {
        h.outcome("bob", sb, 2 + i, send("alice", &format!("note {i} {}", "z".repeat(60_000))));
    }
    let first = h.run("alice", sa, 2, Op::Read { max: 10 }).reply;
    let Outcome::Messages { messages, unread_left: 0 } = &first.outcome else { panic!("{first:?}") };
    assert_eq!(messages.len(), 3);
    // Kept as ids: a few bytes, not 180 KB.
    assert!(h.state.sessions.held_bytes("alice") < 1_000, "{}", h.state.sessions.held_bytes("alice"));
    h.outcome("bob", sb, 5, send("alice", "later"));
    // The resend (ordered again, or answered from the cache) is the first reply, byte for byte.
    assert_eq!(h.run("alice", sa, 2, Op::Read { max: 10 }).reply, first);
    assert_eq!(h.state.cached_reply("alice", sa, 2, &[0; 32]), Some(first.clone()));
    assert!(matches!(h.outcome("alice", sa, 3, Op::Read { max: 10 }), Outcome::Messages { messages, .. } if messages.len() == 1));
    // Two more, read in a second session; alice deletes one of them from a third: a resend
    // of that read leaves it out (it is gone), the rest is as it was.
    h.outcome("bob", sb, 6, send("alice", "one"));
    h.outcome("bob", sb, 7, send("alice", "two"));
    let (s2, s3) = (h.session(7), h.session(8));
    h.outcome("alice", s2, 1, Op::Login);
    let read = h.run("alice", s2, 2, Op::Read { max: 10 }).reply;
    let Outcome::Messages { messages: two, .. } = &read.outcome else { panic!("{read:?}") };
    assert_eq!(two.len(), 2);
    h.outcome("alice", s3, 1, Op::Login);
    h.outcome("alice", s3, 2, Op::DeleteMessages { ids: vec![two[0].id] });
    let again = h.run("alice", s2, 2, Op::Read { max: 10 }).reply;
    assert_eq!(again, Reply { height: read.height, outcome: Outcome::Messages { messages: vec![two[1].clone()], unread_left: 0 } });
}

#[test]
fn a_resent_write_returns_its_outcome_whatever_was_read_in_between() {
    let mut h = Harness::new();
    let (sa, sb) = h.alice_and_bob();
    let sent = h.run("alice", sa, 2, send("bob", "hello")).reply;
    // Bob reads a lot in every session he may hold open: alice's budget is hers alone, and
    // writes are always kept.
    for i in 1..OPEN_SESSIONS_MAX as u64 {
        h.outcome("bob", sb + i, 1, Op::Login);
        h.outcome("bob", sb + i, 2, history("alice"));
    }
    assert_eq!(h.run("alice", sa, 2, send("bob", "hello")).reply, sent);
    assert_eq!(h.state.message_count(), 1, "applied once");
    let deleted = h.run("bob", sb, 2, Op::DeleteMessages { ids: vec![1] }).reply;
    assert_eq!(h.run("bob", sb, 2, Op::DeleteMessages { ids: vec![1] }).reply, deleted);
}

#[test]
fn kept_replies_survive_a_snapshot_and_the_byte_counts_are_rebuilt() {
    let mut h = Harness::new();
    attack(&mut h);
    let (sa, sb) = h.alice_and_bob();
    h.outcome("bob", sb, 2, send("alice", "x"));
    h.outcome("alice", sa, 2, Op::Read { max: 5 });
    let fs = crate::storage::MemFs::new();
    let dir = std::path::Path::new("/image");
    crate::storage::Fs::create_dir_all(&fs, dir).unwrap();
    crate::storage::snapshot::write(&fs, dir, &h.state).unwrap();
    let loaded = crate::storage::snapshot::load(&fs, dir).unwrap();
    assert_eq!(loaded.digest(), h.state.digest());
    for user in ["mallory", "alice", "bob"] {
        assert_eq!(loaded.sessions.held_bytes(user), h.state.sessions.held_bytes(user), "{user}");
    }
    assert_eq!(loaded.cached_reply("alice", sa, 2, &[0; 32]), h.state.cached_reply("alice", sa, 2, &[0; 32]));
}
