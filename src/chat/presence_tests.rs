//! Presence (on the harness of `tests.rs`): a user is online while a session of theirs made
//! a request within the presence time; a heartbeat renews it; a session idle for an hour is
//! closed. All from committed time, so every replica answers `who` alike.

use super::*;
use crate::chat::types::{PRESENCE_MS_DEFAULT, SESSION_IDLE_MAX_MS};

fn online(h: &mut Harness, user: &str, session: u64, seq: u64) -> (Vec<String>, u64) {
    match h.outcome(user, session, seq, Op::Who { after: String::new(), limit: 10 }) {
        Outcome::Online { names, total, .. } => (names, total),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_user_is_online_while_a_session_of_theirs_was_active_within_the_presence_time() {
    let mut h = Harness::new();
    let (sa, sb) = h.alice_and_bob();
    assert_eq!(online(&mut h, "alice", sa, 2), (vec!["alice".into(), "bob".into()], 2));
    // Bob's client dies (no logout): a minute later he is no longer online; alice, who asks,
    // is (her own request renews her).
    h.time_ms += PRESENCE_MS_DEFAULT + 1;
    assert_eq!(online(&mut h, "alice", sa, 3), (vec!["alice".into()], 1));
    // A heartbeat brings him back, until the next minute of silence.
    assert_eq!(h.outcome("bob", sb, 2, Op::Heartbeat), Outcome::Alive { until_ms: h.time_ms + PRESENCE_MS_DEFAULT });
    assert_eq!(online(&mut h, "alice", sa, 4).0, vec!["alice".to_string(), "bob".into()]);
    // A shorter presence time (a cluster setting).
    h.state.set_presence_ms(5_000);
    h.time_ms += 6_000;
    assert_eq!(online(&mut h, "alice", sa, 5).0, vec!["alice".to_string()]);
}

#[test]
fn a_session_idle_for_an_hour_is_closed_and_its_requests_refused() {
    let mut h = Harness::new();
    let (sa, sb) = h.alice_and_bob();
    h.time_ms += SESSION_IDLE_MAX_MS / 2;
    h.outcome("alice", sa, 2, Op::Heartbeat);
    h.time_ms += SESSION_IDLE_MAX_MS / 2 + 1_000;
    // Any request applies the expiry: bob's session (idle an hour) closes, alice's stays.
    h.outcome("alice", sa, 3, Op::Heartbeat);
    assert!(!h.state.session_is_open("bob", sb));
    assert!(h.state.session_is_open("alice", sa));
    // Closed, and begun more than the window ago, so forgotten: not logged in.
    assert_eq!(failed(&h.outcome("bob", sb, 2, Op::Read { max: 1 })), "not_logged_in");
}

#[test]
fn activity_survives_a_snapshot_and_older_snapshots_read_as_the_start_time() {
    let mut h = Harness::new();
    let (sa, _) = h.alice_and_bob();
    h.time_ms += 30_000;
    h.outcome("alice", sa, 2, Op::Heartbeat);
    let fs = crate::storage::MemFs::new();
    let dir = std::path::Path::new("/s");
    crate::storage::Fs::create_dir_all(&fs, dir).unwrap();
    crate::storage::snapshot::write(&fs, dir, &h.state).unwrap();
    let loaded = crate::storage::snapshot::load(&fs, dir).unwrap();
    assert_eq!(loaded.digest(), h.state.digest());
    assert_eq!(loaded.sessions.get("alice", sa).unwrap().active_ms, h.time_ms);
    // A session whose activity is its start adds nothing to the digest (so a snapshot from
    // before presence, where every session reads that way, hashes as it did).
    let mut started = h.state.clone();
    let record = started.sessions.get("alice", sa).unwrap().clone();
    started.sessions.record("alice", sa, SessionRecord { active_ms: sa / 1000, ..record.clone() });
    let mut other = started.clone();
    other.sessions.record("alice", sa, SessionRecord { active_ms: sa / 1000 + 1, ..record });
    assert_ne!(started.digest(), other.digest(), "activity is in the digest");
}
