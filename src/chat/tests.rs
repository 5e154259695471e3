//! Tests of the chat state machine: every operation, every refusal, and seeded random
//! sequences checked for determinism and for an exact rebuild through `Restorer`.

use super::*;
use crate::rng::Rng;

const T0_MS: u64 = 1_800_000_000_000;

/// A little harness: one state, a clock, and per-user sessions with sequence numbers.
struct Harness {
    state: ChatState,
    height: u64,
    time_ms: u64,
}

impl Harness {
    fn new() -> Self {
        Harness { state: ChatState::new(), height: 0, time_ms: T0_MS }
    }

    fn run(&mut self, user: &str, session: u64, seq: u64, op: Op) -> Applied {
        self.height += 1;
        self.time_ms += 10;
        let request = Request { user: user.into(), session, seq, op };
        self.state.apply(&request, Context { height: self.height, position: 0, time_ms: self.time_ms })
    }

    fn outcome(&mut self, user: &str, session: u64, seq: u64, op: Op) -> Outcome {
        self.run(user, session, seq, op).reply.outcome
    }

    /// A session id that is "now" on the client's clock.
    fn session(&self, n: u64) -> u64 {
        self.time_ms * 1000 + n
    }

    /// Accounts alice and bob, each logged in; their session ids.
    fn alice_and_bob(&mut self) -> (u64, u64) {
        let (sa, sb) = (self.session(1), self.session(2));
        self.create("alice", sa);
        self.create("bob", sb);
        (sa, sb)
    }

    fn create(&mut self, user: &str, session: u64) -> Outcome {
        self.outcome(user, session, 1, Op::CreateAccount { public_key: [user.len() as u8; 32] })
    }
}

fn failed(outcome: &Outcome) -> &str {
    match outcome {
        Outcome::Failed(e) => e.code(),
        other => panic!("expected a failure, got {other:?}"),
    }
}

fn send(to: &str, text: &str) -> Op {
    Op::Send { to: to.into(), text: text.into() }
}

#[test]
fn create_login_logout() {
    let mut h = Harness::new();
    let s = h.session(1);
    assert_eq!(h.create("alice", s), Outcome::AccountCreated { account: 1 });
    assert_eq!(h.outcome("alice", s, 2, Op::Login), Outcome::LoggedIn { unread: 0 });
    assert_eq!(h.outcome("alice", s, 3, Op::Logout), Outcome::LoggedOut);
    // The closed session accepts nothing more.
    assert_eq!(failed(&h.outcome("alice", s, 4, Op::Login)), "session_closed");
    // A new session logs in again.
    let s2 = h.session(2);
    assert_eq!(h.outcome("alice", s2, 1, Op::Login), Outcome::LoggedIn { unread: 0 });
}

#[test]
fn create_refuses_bad_and_taken_names() {
    let mut h = Harness::new();
    assert_eq!(failed(&h.create("", h.session(1))), "invalid_name");
    assert_eq!(failed(&h.create("a b", h.session(2))), "invalid_name");
    assert_eq!(failed(&h.create(&"x".repeat(33), h.session(3))), "invalid_name");
    assert_eq!(failed(&h.create("émile", h.session(4))), "invalid_name");
    assert!(matches!(h.create(&"x".repeat(32), h.session(5)), Outcome::AccountCreated { .. }));
    assert!(matches!(h.create("al.ice_-9", h.session(6)), Outcome::AccountCreated { .. }));
    assert!(matches!(h.create("alice", h.session(7)), Outcome::AccountCreated { .. }));
    assert_eq!(failed(&h.create("alice", h.session(8))), "name_taken");
    assert_eq!(failed(&h.create("ALICE", h.session(9))), "name_taken");
    assert_eq!(h.state.account_count(), 3);
}

#[test]
fn requests_need_an_open_session() {
    let mut h = Harness::new();
    let s = h.session(1);
    h.create("alice", s);
    let other = h.session(2);
    assert_eq!(failed(&h.outcome("alice", other, 1, send("alice", "hi"))), "not_logged_in");
    assert_eq!(failed(&h.outcome("alice", other, 1, Op::Logout)), "not_logged_in");
    assert_eq!(failed(&h.outcome("bob", h.session(3), 1, Op::Login)), "unknown_user");
}

#[test]
fn session_start_far_from_committed_time_is_refused() {
    let mut h = Harness::new();
    h.create("alice", h.session(1));
    let two_hours_us = 2 * 3600 * 1000 * 1000;
    assert_eq!(failed(&h.outcome("alice", h.session(2) - two_hours_us, 1, Op::Login)), "clock_skew");
    assert_eq!(failed(&h.outcome("alice", h.session(2) + two_hours_us, 1, Op::Login)), "clock_skew");
    assert!(matches!(h.outcome("alice", h.session(2), 1, Op::Login), Outcome::LoggedIn { .. }));
}

#[test]
fn send_and_read_in_order_n_at_a_time() {
    let mut h = Harness::new();
    let (sa, sb) = h.alice_and_bob();
    for i in 0..5 {
        let applied = h.run("alice", sa, 2 + i, send("bob", &format!("m{i}")));
        assert_eq!(applied.reply.outcome, Outcome::Sent { id: i + 1 });
        assert_eq!(applied.deliveries.len(), 1);
        assert_eq!(applied.deliveries[0].to, "bob");
    }
    assert_eq!(h.outcome("bob", h.session(3), 1, Op::Login), Outcome::LoggedIn { unread: 5 });
    let Outcome::Messages { messages, unread_left } = h.outcome("bob", sb, 2, Op::Read { max: 2 }) else {
        panic!("read failed")
    };
    assert_eq!(messages.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(), ["m0", "m1"]);
    assert_eq!(messages[0].from, "alice");
    assert_eq!(messages[0].from_account, 1);
    assert_eq!(unread_left, 3);
    let Outcome::Messages { messages, unread_left } = h.outcome("bob", sb, 3, Op::Read { max: 10 }) else {
        panic!("read failed")
    };
    assert_eq!(messages.len(), 3);
    assert_eq!(unread_left, 0);
    assert_eq!(h.outcome("bob", sb, 4, Op::Read { max: 10 }), Outcome::Messages { messages: vec![], unread_left: 0 });
    // History stays after reading.
    assert_eq!(h.state.account("bob").map(|a| a.mailbox.len()), Some(5));
}

#[test]
fn send_refusals() {
    let mut h = Harness::new();
    let s = h.session(1);
    h.create("alice", s);
    assert_eq!(failed(&h.outcome("alice", s, 2, send("nobody", "hi"))), "unknown_user");
    assert_eq!(failed(&h.outcome("alice", s, 3, send("alice", ""))), "empty_text");
    assert_eq!(failed(&h.outcome("alice", s, 4, send("alice", &"x".repeat(TEXT_LEN_MAX + 1)))), "text_too_long");
    assert_eq!(h.outcome("alice", s, 5, send("alice", &"x".repeat(TEXT_LEN_MAX))), Outcome::Sent { id: 1 });
    assert_eq!(failed(&h.outcome("alice", s, 6, Op::Read { max: 0 })), "invalid_limit");
    assert_eq!(failed(&h.outcome("alice", s, 7, Op::Read { max: READ_LIMIT_MAX + 1 })), "invalid_limit");
}

#[test]
fn read_stops_at_the_byte_budget_but_returns_at_least_one() {
    let mut h = Harness::new();
    let s = h.session(1);
    h.create("alice", s);
    let big = "y".repeat(TEXT_LEN_MAX);
    for seq in 2..40 {
        h.run("alice", s, seq, send("alice", &big));
    }
    let Outcome::Messages { messages, unread_left } = h.outcome("alice", s, 40, Op::Read { max: 100 }) else {
        panic!("read failed")
    };
    assert_eq!(messages.len(), READ_BYTES_MAX / TEXT_LEN_MAX);
    assert_eq!(unread_left, 38 - messages.len() as u64);
}

#[test]
fn list_accounts_with_wildcards_and_pages() {
    let mut h = Harness::new();
    let s = h.session(0);
    for (i, name) in ["carol", "alice", "bob", "alfred", "albert", "dave"].iter().enumerate() {
        h.create(name, s + i as u64);
    }
    let list = |h: &mut Harness, seq, pattern: &str, after: &str, limit| {
        h.outcome("carol", s, seq, Op::ListAccounts { pattern: pattern.into(), after: after.into(), limit })
    };
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        list(&mut h, 2, "", "", 100),
        Outcome::Accounts { names: names(&["albert", "alfred", "alice", "bob", "carol", "dave"]), next: None, total: 6 }
    );
    assert_eq!(
        list(&mut h, 3, "al*", "", 2),
        Outcome::Accounts { names: names(&["albert", "alfred"]), next: Some("alfred".into()), total: 6 }
    );
    assert_eq!(list(&mut h, 4, "al*", "alfred", 2), Outcome::Accounts { names: names(&["alice"]), next: None, total: 6 });
    assert_eq!(list(&mut h, 5, "?o?", "", 10), Outcome::Accounts { names: names(&["bob"]), next: None, total: 6 });
    assert_eq!(list(&mut h, 6, "zz*", "", 10), Outcome::Accounts { names: vec![], next: None, total: 6 });
    assert_eq!(failed(&list(&mut h, 7, "a b", "", 10)), "invalid_pattern");
    assert_eq!(failed(&list(&mut h, 8, "*", "", 0)), "invalid_limit");
    assert_eq!(failed(&list(&mut h, 9, "*", "", 101)), "invalid_limit");
}

#[test]
fn mark_read_and_delete_touch_only_your_own_messages() {
    let mut h = Harness::new();
    let (sa, sb) = h.alice_and_bob();
    for seq in 2..6 {
        h.run("alice", sa, seq, send("bob", "x"));
    }
    h.run("bob", sb, 2, send("alice", "to alice"));
    // Message 999 is nobody's of bob's: the refusal changes nothing (not even message 1).
    assert_eq!(failed(&h.outcome("bob", sb, 3, Op::DeleteMessages { ids: vec![1, 999] })), "no_such_message");
    assert_eq!(h.state.account("bob").map(|a| a.mailbox.len()), Some(4));
    assert_eq!(h.outcome("bob", sb, 4, Op::MarkRead { ids: vec![1, 2] }), Outcome::MarkedRead { count: 2 });
    assert_eq!(h.outcome("bob", sb, 5, Op::MarkRead { ids: vec![2] }), Outcome::MarkedRead { count: 0 });
    assert_eq!(h.outcome("bob", sb, 6, Op::DeleteMessages { ids: vec![1, 3] }), Outcome::Deleted { count: 2 });
    assert_eq!(h.outcome("bob", sb, 7, Op::Login), Outcome::LoggedIn { unread: 1 });
    assert_eq!(h.outcome("bob", sb, 8, Op::DeleteMessages { ids: vec![4] }), Outcome::Deleted { count: 1 });
    assert_eq!(failed(&h.outcome("bob", sb, 9, Op::DeleteMessages { ids: vec![4] })), "no_such_message");
    assert_eq!(failed(&h.outcome("bob", sb, 10, Op::DeleteMessages { ids: vec![] })), "no_ids");
    assert_eq!(failed(&h.outcome("bob", sb, 11, Op::MarkRead { ids: vec![2; IDS_MAX + 1] })), "too_many_ids");
    // Deleted for bob; alice, who sent them, still has them (chat/deletion.rs).
    assert_eq!(h.state.message_count(), 5);
    // Marking skips what is not in the mailbox (another's message, one deleted, none): a
    // client's batch of shown messages does not fail on one of them.
    let Outcome::Sent { id } = h.outcome("alice", sa, 6, send("bob", "y")) else { panic!() };
    assert_eq!(h.outcome("bob", sb, 12, Op::MarkRead { ids: vec![5, 3, 999, id] }), Outcome::MarkedRead { count: 1 });
    assert!(h.state.account("alice").unwrap().unread.contains(&5), "alice's message is not bob's to mark");
}

#[test]
fn deleted_account_drops_its_mailbox_keeps_sent_messages_and_never_returns_by_login() {
    let mut h = Harness::new();
    let (sa, sb) = h.alice_and_bob();
    h.run("alice", sa, 2, send("bob", "from alice"));
    h.run("bob", sb, 2, send("alice", "to alice, unread"));
    let other = h.session(6);
    assert!(matches!(h.outcome("alice", other, 1, Op::Login), Outcome::LoggedIn { .. }));
    let applied = h.run("alice", sa, 3, Op::DeleteAccount);
    assert_eq!(applied.reply.outcome, Outcome::AccountDeleted { unread_dropped: 1 });
    assert_eq!(applied.closed, vec![other], "her other open session is reported closed (her own gets the reply)");
    assert!(h.state.account("alice").is_none());
    assert_eq!(h.state.message_count(), 1, "alice's message to bob stays with bob");
    // Her session is closed, and neither login nor logout brings the name back.
    assert_eq!(failed(&h.outcome("alice", sa, 4, Op::Login)), "session_closed");
    assert_eq!(failed(&h.outcome("alice", h.session(3), 1, Op::Login)), "unknown_user");
    assert_eq!(failed(&h.outcome("alice", h.session(4), 1, Op::Logout)), "not_logged_in");
    assert!(h.state.account("alice").is_none());
    assert_eq!(failed(&h.outcome("bob", sb, 3, send("alice", "hello?"))), "unknown_user");
    // The name is free again, for a new account with a new number.
    assert_eq!(h.create("alice", h.session(5)), Outcome::AccountCreated { account: 3 });
    let Outcome::Messages { messages, .. } = h.outcome("bob", sb, 4, Op::Read { max: 10 }) else { panic!() };
    assert_eq!((messages[0].from.as_str(), messages[0].from_account), ("alice", 1));
}

// ------------------------------------------------------------------ random sequences

/// A random but valid-looking workload: a few users doing everything, including mistakes.
pub(crate) fn random_requests(seed: u64, count: usize) -> Vec<(Request, Context)> {
    let mut rng = Rng::new(seed);
    let users = ["ann", "ben", "cat", "dan"];
    let mut time_ms = T0_MS;
    let mut seqs = [0u64; 4];
    let mut sessions = [0u64; 4];
    let mut out = Vec::with_capacity(count);
    for height in 1..=count as u64 {
        time_ms += rng.below(50_000);
        let u = rng.below(4) as usize;
        if sessions[u] == 0 || rng.chance(1, 30) {
            sessions[u] = time_ms * 1000 + u as u64;
            seqs[u] = 0;
        }
        seqs[u] += 1;
        let ids = |rng: &mut Rng| (0..1 + rng.below(3)).map(|_| 1 + rng.below(height)).collect::<Vec<_>>();
        let op = match rng.below(12) {
            0 => Op::CreateAccount { public_key: [u as u8; 32] },
            1 => Op::Login,
            2 => Op::Logout,
            3 => Op::ListAccounts { pattern: rng.pick(&["", "*a*", "?e?", "x*"]).to_string(), after: String::new(), limit: 2 },
            4..=6 => Op::Send { to: rng.pick(&users).to_string(), text: format!("t{}", rng.below(1000)) },
            7 => Op::Read { max: 1 + rng.below(3) as u32 },
            8 => Op::MarkRead { ids: ids(&mut rng) },
            9 => Op::DeleteMessages { ids: ids(&mut rng) },
            10 if rng.chance(1, 4) => Op::DeleteAccount,
            _ => Op::Login,
        };
        // Sometimes resend or replay an old sequence number.
        let seq = if rng.chance(1, 20) { seqs[u].saturating_sub(rng.below(2)).max(1) } else { seqs[u] };
        let request = Request { user: users[u].into(), session: sessions[u], seq, op };
        out.push((request, Context { height, position: 0, time_ms }));
    }
    out
}

/// Rebuilds a state through `Restorer`, as loading a snapshot does.
pub(crate) fn rebuild(state: &ChatState) -> ChatState {
    let mut r = Restorer::new(RestoreMeta {
        height: state.height,
        time_ms: state.time_ms,
        next_message_id: state.next_message_id,
        next_account: state.next_account,
    });
    for (name, a) in &state.accounts {
        r.account(name, a.number, a.public_key, a.created_ms).unwrap();
        for (id, m) in &a.mailbox {
            r.message(*id, name, m.clone(), a.unread.contains(id)).unwrap();
        }
    }
    for ((user, session), record) in state.sessions.iter() {
        r.session(user, *session, record.clone()).unwrap();
    }
    r.finish()
}

#[test]
fn random_sequences_give_one_digest_on_two_instances_and_after_rebuild() {
    for seed in 0..40 {
        let requests = random_requests(seed, 400);
        let (mut a, mut b) = (ChatState::new(), ChatState::new());
        for (i, (request, ctx)) in requests.iter().enumerate() {
            let ra = a.apply(request, *ctx);
            let rb = b.apply(request, *ctx);
            assert_eq!(ra, rb, "seed {seed}: replies differ at {i}");
            if i % 97 == 0 {
                assert_eq!(a.digest(), b.digest(), "seed {seed}: digests differ at {i}");
                let rebuilt = rebuild(&a);
                assert_eq!(rebuilt, a, "seed {seed}: rebuild differs at {i}");
                assert_eq!(rebuilt.digest(), a.digest());
            }
        }
        assert_eq!(a, b);
        assert_eq!(a.digest(), b.digest());
        // The rebuilt state goes on exactly like the original.
        let mut rebuilt = rebuild(&a);
        for (request, ctx) in random_requests(seed + 1000, 50) {
            let ctx = Context { height: ctx.height + 400, position: 0, time_ms: ctx.time_ms.max(a.time_ms) };
            assert_eq!(a.apply(&request, ctx), rebuilt.apply(&request, ctx));
        }
        assert_eq!(a.digest(), rebuilt.digest());
    }
}

#[test]
fn digest_sees_every_kind_of_change() {
    let mut h = Harness::new();
    let s = h.session(1);
    h.create("alice", s);
    let mut seen = vec![h.state.digest()];
    for (seq, op) in [
        send("alice", "a"),
        Op::MarkRead { ids: vec![1] },
        Op::DeleteMessages { ids: vec![1] },
        Op::Logout,
    ]
    .into_iter()
    .enumerate()
    {
        h.run("alice", s, seq as u64 + 2, op);
        let d = h.state.digest();
        assert!(!seen.contains(&d), "digest did not change");
        seen.push(d);
    }
}

#[path = "reply_tests.rs"]
mod replies;

#[path = "session_tests.rs"]
mod session_rules;

#[path = "conversation_tests.rs"]
mod conversations;

#[path = "held_tests.rs"]
mod held;

#[path = "blocking_tests.rs"]
mod blocking;

#[path = "presence_tests.rs"]
mod presence;

#[path = "deletion_tests.rs"]
mod deletion;
