//! Replies: the texts that quote user strings, and the cached reply's binding to one body
//! and one account (on the harness of `tests.rs`).

use super::*;

#[test]
fn resent_request_gets_the_cached_reply_and_applies_once() {
    let mut h = Harness::new();
    let (sa, _) = h.alice_and_bob();
    let first = h.run("alice", sa, 2, send("bob", "once"));
    let again = h.run("alice", sa, 2, send("bob", "once"));
    assert_eq!(first.reply, again.reply, "same reply, same height");
    assert!(again.deliveries.is_empty());
    assert_eq!(h.state.cached_reply("alice", sa, 2, &[0; 32]), Some(first.reply.clone()));
    assert_eq!(h.state.message_count(), 1);
    // An older sequence number is a replay.
    h.run("alice", sa, 3, send("bob", "twice"));
    assert_eq!(failed(&h.outcome("alice", sa, 2, send("bob", "once"))), "replayed");
    assert_eq!(h.state.message_count(), 2);
}

#[test]
fn user_strings_in_reply_texts_are_quoted_the_same_way_everywhere() {
    use super::quote;
    assert_eq!(quote("bob"), "\"bob\"");
    assert_eq!(quote("a\"b\\c"), "\"a\\u{22}b\\u{5c}c\"");
    assert_eq!(quote("x\u{1b}[2J\ny\u{301}é"), "\"x\\u{1b}[2J\\u{a}y\\u{301}\\u{e9}\"");
    assert_eq!(ChatError::UnknownUser("é\u{7}".into()).to_string(), "no account named \"\\u{e9}\\u{7}\"");
}

#[test]
fn a_cached_reply_goes_only_to_the_body_it_answers_and_never_to_a_later_account_of_the_name() {
    let mut h = Harness::new();
    let (sa, sb) = h.alice_and_bob();
    h.run("bob", sb, 2, send("alice", "a secret for alice"));
    let body = [7; 32];
    let next = |h: &mut Harness| {
        h.height += 1;
        h.time_ms += 10;
        Context { height: h.height, position: 0, time_ms: h.time_ms }
    };
    let read = Request { user: "alice".into(), session: sa, seq: 2, op: Op::Read { max: 10 } };
    let ctx = next(&mut h);
    let first = h.state.apply_body(&read, &body, ctx);
    assert!(matches!(&first.reply.outcome, Outcome::Messages { messages, .. } if messages.len() == 1));
    // The same body again: the same reply. Another body with the same numbers: a replay.
    let ctx = next(&mut h);
    assert_eq!(h.state.apply_body(&read, &body, ctx).reply, first.reply);
    assert_eq!(h.state.cached_reply("alice", sa, 2, &[8; 32]), None);
    assert!(h.state.is_replay("alice", sa, 2, &[8; 32]));
    let ctx = next(&mut h);
    assert_eq!(failed(&h.state.apply_body(&read, &[8; 32], ctx).reply.outcome), "replayed");
    // Alice deletes her account; a new "alice" signs the very same read body.
    h.run("alice", sa, 3, Op::DeleteAccount);
    h.create("alice", h.session(9));
    assert_eq!(h.state.cached_reply("alice", sa, 2, &body), None, "the first alice's reply is not the new alice's");
    assert!(h.state.is_replay("alice", sa, 2, &body));
    let ctx = next(&mut h);
    let again = h.state.apply_body(&read, &body, ctx);
    assert!(!matches!(again.reply.outcome, Outcome::Messages { .. }), "{:?}", again.reply.outcome);
}
