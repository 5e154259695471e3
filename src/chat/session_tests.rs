//! The session table's bounds: open sessions per user, eviction, records per user per
//! window (on the harness of `tests.rs`).

use super::*;
use crate::chat::sessions::Sessions;
use crate::chat::types::SESSIONS_PER_USER_MAX;

#[test]
fn open_sessions_are_bounded_per_user() {
    let mut h = Harness::new();
    let first = h.session(0);
    h.create("alice", first);
    for i in 1..OPEN_SESSIONS_MAX as u64 {
        let applied = h.run("alice", first + i, 1, Op::Login);
        assert!(matches!(applied.reply.outcome, Outcome::LoggedIn { .. }));
        assert_eq!(applied.closed, Vec::<u64>::new(), "within the limit nothing is closed");
    }
    let applied = h.run("alice", first + OPEN_SESSIONS_MAX as u64, 1, Op::Login);
    assert!(matches!(applied.reply.outcome, Outcome::LoggedIn { .. }));
    assert_eq!(applied.closed, vec![first], "the login past the limit reports the session it closed");
    assert_eq!(h.state.sessions.open_count("alice"), OPEN_SESSIONS_MAX);
    // The oldest session (the one create opened) was closed to make room.
    assert_eq!(failed(&h.outcome("alice", first, 2, Op::Login)), "session_closed");
    assert!(matches!(h.outcome("alice", first + 1, 2, Op::Login), Outcome::LoggedIn { .. }));
}

#[test]
fn closed_sessions_are_forgotten_after_the_window() {
    let mut h = Harness::new();
    let s = h.session(1);
    h.create("alice", s);
    h.outcome("alice", s, 2, Op::Logout);
    assert_eq!(h.state.session_count(), 1);
    h.time_ms += SESSION_WINDOW_MS + 1_000;
    h.outcome("alice", h.session(2), 1, Op::Login);
    assert_eq!(h.state.session_count(), 1, "the old closed session is gone, the new one is there");
    // A replay of the old login now fails on the clock, so forgetting it was safe.
    assert_eq!(failed(&h.outcome("alice", s, 1, Op::Login)), "clock_skew");
}

#[test]
fn a_new_session_with_the_smallest_id_closes_the_oldest_other_one_not_itself() {
    let mut h = Harness::new();
    let first = h.session(100);
    h.create("alice", first);
    for i in 1..OPEN_SESSIONS_MAX as u64 {
        h.run("alice", first + i, 1, Op::Login);
    }
    // A client whose clock is a little behind opens a session with the smallest id yet.
    let behind = first - 50;
    let applied = h.run("alice", behind, 1, Op::Login);
    assert!(matches!(applied.reply.outcome, Outcome::LoggedIn { .. }));
    assert_eq!(applied.closed, vec![first], "the oldest other session is closed");
    assert!(matches!(h.outcome("alice", behind, 2, Op::ListAccounts { pattern: "*".into(), after: String::new(), limit: 10 }), Outcome::Accounts { .. }),
        "the session just opened works");
    assert_eq!(h.state.sessions.open_count("alice"), OPEN_SESSIONS_MAX);
}

#[test]
fn one_account_flooding_logins_is_refused_past_the_cap_until_old_sessions_are_forgotten() {
    let mut h = Harness::new();
    let first = h.session(0);
    h.create("alice", first);
    h.create("bob", h.session(1));
    let mut opened = 1;
    let mut n = 10;
    let refused = loop {
        n += 1;
        let outcome = h.outcome("alice", h.session(n), 1, Op::Login);
        if !matches!(outcome, Outcome::LoggedIn { .. }) {
            break outcome;
        }
        opened += 1;
        assert!(opened <= SESSIONS_PER_USER_MAX, "the cap holds");
    };
    assert_eq!(failed(&refused), "too_many_sessions");
    assert_eq!(opened, SESSIONS_PER_USER_MAX, "every session up to the cap opened");
    assert!(h.state.session_count() <= SESSIONS_PER_USER_MAX + 1);
    // Other users are not affected.
    assert!(matches!(h.outcome("bob", h.session(9_999), 1, Op::Login), Outcome::LoggedIn { .. }));
    // The refused login left nothing behind, and a resend of it is refused the same way.
    assert_eq!(failed(&h.outcome("alice", h.session(n), 1, Op::Login)), "too_many_sessions");
    // Once the window has passed, the closed ones are forgotten and alice can log in again.
    h.time_ms += 2 * SESSION_WINDOW_MS + 1_000;
    assert!(matches!(h.outcome("alice", h.session(1), 1, Op::Login), Outcome::LoggedIn { .. }));
}

#[test]
fn the_session_indexes_survive_a_snapshot_round_trip() {
    let mut h = Harness::new();
    let first = h.session(0);
    h.create("alice", first);
    for i in 1..=OPEN_SESSIONS_MAX as u64 + 3 {
        h.run("alice", first + i, 1, Op::Login);
    }
    h.outcome("alice", first + 2 + OPEN_SESSIONS_MAX as u64, 2, Op::Logout);
    let mut restored = Sessions::default();
    for ((user, session), record) in h.state.sessions.iter() {
        restored.restore(user.clone(), *session, record.clone());
    }
    assert_eq!(restored, h.state.sessions, "records and both indexes rebuilt alike");
    assert_eq!(restored.open_count("alice"), OPEN_SESSIONS_MAX - 1);
}

#[test]
fn a_list_looks_at_a_bounded_number_of_names_and_returns_where_it_stopped() {
    use crate::chat::types::LIST_SCAN_MAX;
    let mut h = Harness::new();
    let s = h.session(0);
    let total = 2 * LIST_SCAN_MAX + 10;
    for i in 0..total {
        h.create(&format!("user{i:05}"), s + i as u64);
    }
    h.create("zed", s + total as u64);
    // A pattern that matches only the last name: each request scans at most LIST_SCAN_MAX
    // names and hands back its cursor; following the cursors finds "zed".
    let (mut after, mut requests, mut found) = (String::new(), 0, Vec::new());
    loop {
        requests += 1;
        let op = Op::ListAccounts { pattern: "z*".into(), after: after.clone(), limit: 20 };
        let Outcome::Accounts { names, next, .. } = h.outcome("zed", s + total as u64, requests + 1, op) else { panic!("a list") };
        found.extend(names);
        match next {
            Some(cursor) => after = cursor,
            None => break,
        }
        assert!(requests < 10, "the cursor moves forward");
    }
    assert_eq!(found, vec!["zed".to_string()]);
    assert_eq!(requests, 3, "{total} names in scans of {LIST_SCAN_MAX}");
}

#[test]
fn accounts_are_capped_for_the_whole_cluster_and_a_deletion_makes_room() {
    let mut h = Harness::new();
    for i in 0..crate::chat::types::ACCOUNTS_MAX - 1 {
        h.state.create_account(&format!("u{i}"), [7; 32]).expect("below the cap");
    }
    let s = h.session(0);
    h.create("alice", s);
    assert_eq!(h.state.account_count(), crate::chat::types::ACCOUNTS_MAX as u64);
    let refused = h.run("bob", h.session(1), 1, Op::CreateAccount { public_key: [2; 32] });
    assert_eq!(failed(&refused.reply.outcome), "too_many_accounts");
    assert!(h.state.public_key("bob").is_none(), "nothing changed");
    h.outcome("alice", s, 2, Op::DeleteAccount);
    let again = h.run("bob", h.session(2), 1, Op::CreateAccount { public_key: [2; 32] });
    assert!(matches!(again.reply.outcome, Outcome::AccountCreated { .. }), "{:?}", again.reply.outcome);
}
