//! The replicated de-duplication table: one record per (user, session).
//!
//! It makes every request apply at most once. A record remembers the last sequence number
//! applied in the session and its reply, so a resent request gets the same reply and an
//! older one is refused. Closed sessions are kept until no request of theirs could be
//! accepted anyway (see `SESSION_WINDOW_MS`), then forgotten, so the table stays bounded.

use std::collections::{BTreeMap, BTreeSet};

use super::types::{OPEN_SESSIONS_MAX, Reply, SESSION_WINDOW_MS, SESSIONS_PER_USER_MAX};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    /// The account the session was opened for: a later account with the same name never
    /// inherits it.
    pub account: u64,
    pub last_seq: u64,
    /// The reply to `last_seq`, returned again when that request is resent.
    pub reply: Reply,
    /// SHA-256 of the body of request `last_seq`: the reply is for that body only. Another
    /// body with the same (user, session, seq) — a forgery, or a later account of the same
    /// name — is a replay, never answered with this reply.
    pub request: [u8; 32],
    pub open: bool,
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
}

impl Sessions {
    pub fn get(&self, user: &str, session: u64) -> Option<&SessionRecord> {
        self.records.get(&(user.to_owned(), session))
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Users with at least one open session, by name, strictly after `after` (`who`).
    pub fn online_after<'a>(&'a self, after: &'a str) -> impl Iterator<Item = &'a String> + 'a {
        let start = if after.is_empty() { std::ops::Bound::Unbounded } else { std::ops::Bound::Excluded(after) };
        self.open.range::<str, _>((start, std::ops::Bound::Unbounded)).map(|(user, _)| user)
    }

    /// How many users have an open session.
    pub fn online_count(&self) -> usize {
        self.open.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&(String, u64), &SessionRecord)> {
        self.records.iter()
    }

    /// Records what a session applied last. Opening a session beyond `OPEN_SESSIONS_MAX`
    /// for one user closes that user's oldest other open session, which is returned.
    pub fn record(&mut self, user: &str, session: u64, record: SessionRecord) -> Option<u64> {
        let open = record.open;
        if self.records.insert((user.to_owned(), session), record).is_none() {
            *self.per_user.entry(user.to_owned()).or_default() += 1;
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

    /// Whether `user` may open one more session: the records of the sessions they began
    /// within the last window or two (open, or closed and not yet forgotten) are bounded,
    /// so one account cannot fill the table or slow every login down.
    pub fn may_open(&self, user: &str) -> bool {
        self.per_user.get(user).copied().unwrap_or(0) < SESSIONS_PER_USER_MAX
    }

    pub fn close(&mut self, user: &str, session: u64) {
        if let Some(record) = self.records.get_mut(&(user.to_owned(), session)) {
            record.open = false;
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
            self.records.remove(&(user.clone(), session));
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
        } else {
            self.closed.insert((session, user.clone()));
        }
        if self.records.insert((user.clone(), session), record).is_none() {
            *self.per_user.entry(user).or_default() += 1;
        }
    }
}
