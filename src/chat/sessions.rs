//! The replicated de-duplication table: one record per (user, session).
//!
//! It makes every request apply at most once. A record remembers the last sequence number
//! applied in the session and its reply, so a resent request gets the same reply and an
//! older one is refused. Closed sessions are kept until no request of theirs could be
//! accepted anyway (see `SESSION_WINDOW_MS`), then forgotten, so the table stays bounded.
//!
//! What a record keeps of its reply is bounded too (`Held`): a `read` keeps the ids it
//! returned (the texts stay in the mailbox), a read-only request keeps its result only
//! within `HELD_REPLY_MAX` a session and `HELD_PER_USER_MAX` a user, everything else is
//! small and kept whole. One user's records therefore hold at most
//! `HELD_PER_USER_MAX + SESSIONS_PER_USER_MAX * HELD_SMALL_MAX` bytes of replies, whatever
//! the user reads.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::types::{OPEN_SESSIONS_MAX, Outcome, Reply, SESSION_WINDOW_MS, SESSIONS_PER_USER_MAX};

/// What a session record keeps of the reply to its last request, to answer a resend.
///
/// In `sessions.csv` and the state digest it is JSON: a plain `Reply` as before this type
/// existed (so older snapshots read, and hash, the same), or `{"read": ...}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Held {
    /// A `read`: the messages it returned and marked read, by id. A resend gets them again
    /// from the mailbox; one the user deleted since is left out (it is gone).
    Read { read: HeldRead },
    /// The reply as given; for a read-only request whose result did not fit the budget,
    /// `Failed(NotHeld)` at the request's height.
    Reply(Reply),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldRead {
    pub height: u64,
    pub ids: Vec<u64>,
    pub unread_left: u64,
}

/// Bytes a kept reply is counted as, besides its strings: per reply, and per item in it
/// (a message, a name, an inbox entry). An estimate, but the same on every replica: the
/// budget decides what is kept, so it must be deterministic.
const HELD_REPLY_BASE: usize = 64;
const HELD_ITEM: usize = 48;
/// The largest reply that is always kept (a read of `READ_LIMIT_MAX` ids; a refusal that
/// quotes a name or a pattern).
pub const HELD_SMALL_MAX: usize = HELD_REPLY_BASE + 100 * 8 + 2 * 1024;

impl Held {
    /// The bytes this kept reply counts for against its user's budget.
    pub fn bytes(&self) -> usize {
        match self {
            Held::Read { read } => HELD_REPLY_BASE + 8 * read.ids.len(),
            Held::Reply(reply) => HELD_REPLY_BASE + outcome_bytes(&reply.outcome),
        }
    }
}

fn outcome_bytes(outcome: &Outcome) -> usize {
    let names = |names: &[String]| names.iter().map(|n| n.len() + HELD_ITEM).sum::<usize>();
    let messages = |ms: &[super::Message]| ms.iter().map(|m| m.text.len() + m.from.len() + m.to.len() + HELD_ITEM).sum::<usize>();
    match outcome {
        Outcome::Accounts { names: n, .. } | Outcome::Online { names: n, .. } => names(n) + HELD_ITEM,
        Outcome::History { messages: m, .. } | Outcome::Messages { messages: m, .. } => messages(m),
        Outcome::Inbox { senders, .. } => senders.iter().map(|e| e.from.len() + HELD_ITEM).sum(),
        Outcome::Failed(e) => e.to_string().len(),
        _ => 0,
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    /// The account the session was opened for: a later account with the same name never
    /// inherits it.
    pub account: u64,
    pub last_seq: u64,
    /// What is kept of the reply to `last_seq`, to answer that request again when resent.
    pub reply: Held,
    /// SHA-256 of the body of request `last_seq`: the reply is for that body only. Another
    /// body with the same (user, session, seq) — a forgery, or a later account of the same
    /// name — is a replay, never answered with this reply.
    pub request: [u8; 32],
    pub open: bool,
    /// The committed time of the last request applied in the session: who is online
    /// (`Sessions::online`), and when an idle session closes (`Sessions::expire_idle`).
    /// A record read from a snapshot written before presence existed has its start time.
    pub active_ms: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sessions {
    records: BTreeMap<(String, u64), SessionRecord>,
    /// Closed sessions by start time, so pruning looks only at the oldest.
    closed: BTreeSet<(u64, String)>,
    /// Each user's open sessions (at most `OPEN_SESSIONS_MAX`), so opening one never walks
    /// the closed records a user piles up.
    open: BTreeMap<String, BTreeSet<u64>>,
    /// How many records (open or closed) each user has: at most `SESSIONS_PER_USER_MAX`.
    per_user: BTreeMap<String, usize>,
    /// Bytes of kept replies (`Held::bytes`) over each user's records (derived).
    held: BTreeMap<String, usize>,
    /// Open sessions by last activity (derived): who is online, and which are idle.
    active: BTreeSet<(u64, String, u64)>,
}

impl Sessions {
    pub fn get(&self, user: &str, session: u64) -> Option<&SessionRecord> {
        self.records.get(&(user.to_owned(), session))
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Users online at `now_ms` (an open session active within `presence_ms`), by name,
    /// strictly after `after`, at most `limit` (`who`), and the cursor for the next page if
    /// there may be more. At most `scan` users with an open session are looked at: past
    /// that the cursor is where the walk stopped.
    pub fn online(&self, after: &str, now_ms: u64, presence_ms: u64, limit: usize, scan: usize) -> (Vec<String>, Option<String>) {
        let start = if after.is_empty() { std::ops::Bound::Unbounded } else { std::ops::Bound::Excluded(after) };
        let since = now_ms.saturating_sub(presence_ms);
        let mut names: Vec<String> = Vec::new();
        let mut last_scanned = None;
        for (scanned, (user, ids)) in self.open.range::<str, _>((start, std::ops::Bound::Unbounded)).enumerate() {
            if scanned == scan {
                return (names, last_scanned);
            }
            last_scanned = Some(user.clone());
            if ids.iter().any(|s| self.records.get(&(user.clone(), *s)).is_some_and(|r| r.active_ms >= since)) {
                if names.len() == limit {
                    // One more is online: the next page starts after this one's last name.
                    let next = names.last().cloned();
                    return (names, next);
                }
                names.push(user.clone());
            }
        }
        (names, None)
    }

    /// How many users are online at `now_ms` (see `online`).
    pub fn online_count(&self, now_ms: u64, presence_ms: u64) -> usize {
        let since = now_ms.saturating_sub(presence_ms);
        let users: BTreeSet<&String> = self.active.range((since, String::new(), 0)..).map(|(_, user, _)| user).collect();
        users.len()
    }

    /// An open session made a request at `now_ms`: it is active from now (before the request
    /// runs, so a `who` counts its own asker).
    pub fn touch(&mut self, user: &str, session: u64, now_ms: u64) {
        let key = (user.to_owned(), session);
        if let Some(record) = self.records.get_mut(&key).filter(|r| r.open) {
            self.active.remove(&(record.active_ms, key.0.clone(), session));
            record.active_ms = now_ms;
            self.active.insert((now_ms, key.0, session));
        }
    }

    /// Closes the open sessions with no request for `idle_ms` (a client that died without
    /// logging out); returns them as (user, session).
    pub fn expire_idle(&mut self, now_ms: u64, idle_ms: u64) -> Vec<(String, u64)> {
        let mut closed = Vec::new();
        while let Some((active, user, session)) = self.active.first().cloned() {
            if active.saturating_add(idle_ms) >= now_ms {
                break;
            }
            self.close(&user, session);
            closed.push((user, session));
        }
        closed
    }

    pub fn iter(&self) -> impl Iterator<Item = (&(String, u64), &SessionRecord)> {
        self.records.iter()
    }

    /// Records what a session applied last. Opening a session beyond `OPEN_SESSIONS_MAX`
    /// for one user closes that user's oldest other open session, which is returned.
    pub fn record(&mut self, user: &str, session: u64, record: SessionRecord) -> Option<u64> {
        let (open, active) = (record.open, record.active_ms);
        self.add_held(user, record.reply.bytes());
        match self.records.insert((user.to_owned(), session), record) {
            Some(old) => {
                self.remove_held(user, old.reply.bytes());
                self.active.remove(&(old.active_ms, user.to_owned(), session));
            }
            None => *self.per_user.entry(user.to_owned()).or_default() += 1,
        }
        if open {
            self.active.insert((active, user.to_owned(), session));
        }
        if !open {
            self.mark_closed(user, session);
            return None;
        }
        let ids = self.open.entry(user.to_owned()).or_default();
        if !ids.insert(session) || ids.len() <= OPEN_SESSIONS_MAX {
            return None;
        }
        // The oldest open session other than the one just opened: a new session whose id
        // (its client's clock) is the smallest must not close itself.
        let oldest = ids.iter().copied().find(|s| *s != session)?;
        self.close(user, oldest);
        Some(oldest)
    }

    /// Bytes of replies `user`'s records keep (`Held::bytes`).
    pub fn held_bytes(&self, user: &str) -> usize {
        self.held.get(user).copied().unwrap_or(0)
    }

    fn add_held(&mut self, user: &str, bytes: usize) {
        *self.held.entry(user.to_owned()).or_default() += bytes;
    }

    fn remove_held(&mut self, user: &str, bytes: usize) {
        let held = self.held.get_mut(user).expect("a record's bytes were counted");
        *held -= bytes;
        if *held == 0 {
            self.held.remove(user);
        }
    }

    /// Whether `user` may open one more session: the records of the sessions they began
    /// within the last window or two (open, or closed and not yet forgotten) are bounded,
    /// so one account cannot fill the table or slow every login down.
    pub fn may_open(&self, user: &str) -> bool {
        self.per_user.get(user).copied().unwrap_or(0) < SESSIONS_PER_USER_MAX
    }

    pub fn close(&mut self, user: &str, session: u64) {
        if let Some(record) = self.records.get_mut(&(user.to_owned(), session)) {
            record.open = false;
            self.active.remove(&(record.active_ms, user.to_owned(), session));
            self.mark_closed(user, session);
        }
    }

    fn mark_closed(&mut self, user: &str, session: u64) {
        self.closed.insert((session, user.to_owned()));
        if let Some(ids) = self.open.get_mut(user) {
            ids.remove(&session);
            if ids.is_empty() {
                self.open.remove(user);
            }
        }
    }

    /// Closes every session of `user` (the account was deleted); returns those that were open.
    pub fn close_all(&mut self, user: &str) -> Vec<u64> {
        let open: Vec<u64> = self.open.get(user).map(|ids| ids.iter().copied().collect()).unwrap_or_default();
        for id in &open {
            self.close(user, *id);
        }
        open
    }

    #[cfg(test)]
    pub fn open_count(&self, user: &str) -> usize {
        let counted = self.open.get(user).map_or(0, |ids| ids.len());
        let walked = self.records.range((user.to_owned(), 0)..=(user.to_owned(), u64::MAX)).filter(|(_, r)| r.open).count();
        assert_eq!(counted, walked, "the open-session index matches the records");
        counted
    }

    /// Forgets closed sessions that began more than the window before `now_ms`: a request
    /// of theirs would be refused as clock-skewed if it tried to open the session again.
    pub fn prune(&mut self, now_ms: u64) {
        while let Some((session, user)) = self.closed.first().cloned() {
            if session / 1000 + SESSION_WINDOW_MS >= now_ms {
                break;
            }
            self.closed.pop_first();
            if let Some(record) = self.records.remove(&(user.clone(), session)) {
                self.remove_held(&user, record.reply.bytes());
            }
            if let Some(count) = self.per_user.get_mut(&user) {
                *count -= 1;
                if *count == 0 {
                    self.per_user.remove(&user);
                }
            }
        }
    }

    /// Inserts a record read back from a snapshot.
    pub fn restore(&mut self, user: String, session: u64, record: SessionRecord) {
        if record.open {
            self.open.entry(user.clone()).or_default().insert(session);
            self.active.insert((record.active_ms, user.clone(), session));
        } else {
            self.closed.insert((session, user.clone()));
        }
        self.add_held(&user, record.reply.bytes());
        if let Some(old) = self.records.insert((user.clone(), session), record) {
            self.remove_held(&user, old.reply.bytes());
        } else {
            *self.per_user.entry(user).or_default() += 1;
        }
    }
}
