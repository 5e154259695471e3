//! The replicated de-duplication table: one record per (user, session).
//!
//! It makes every request apply at most once. A record remembers the last sequence number
//! applied in the session and its reply, so a resent request gets the same reply and an
//! older one is refused. Closed sessions are kept until no request of theirs could be
//! accepted anyway (see `SESSION_WINDOW_MS`), then forgotten, so the table stays bounded.

use std::collections::{BTreeMap, BTreeSet};

use super::types::{OPEN_SESSIONS_MAX, Reply, SESSION_WINDOW_MS};

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
}

impl Sessions {
    pub fn get(&self, user: &str, session: u64) -> Option<&SessionRecord> {
        self.records.get(&(user.to_owned(), session))
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&(String, u64), &SessionRecord)> {
        self.records.iter()
    }

    /// Records what a session applied last. Opening a session beyond `OPEN_SESSIONS_MAX`
    /// for one user closes that user's oldest open session, which is returned.
    pub fn record(&mut self, user: &str, session: u64, record: SessionRecord) -> Option<u64> {
        let key = (user.to_owned(), session);
        let is_new = !self.records.contains_key(&key);
        let open = record.open;
        self.records.insert(key, record);
        if !open {
            self.closed.insert((session, user.to_owned()));
        } else if is_new {
            let open_ids = self.open_ids(user);
            if open_ids.len() > OPEN_SESSIONS_MAX {
                self.close(user, open_ids[0]);
                return Some(open_ids[0]);
            }
        }
        None
    }

    /// The user's open sessions, oldest first.
    fn open_ids(&self, user: &str) -> Vec<u64> {
        self.user_sessions(user).filter(|(_, r)| r.open).map(|(s, _)| s).collect()
    }

    pub fn close(&mut self, user: &str, session: u64) {
        if let Some(record) = self.records.get_mut(&(user.to_owned(), session)) {
            record.open = false;
            self.closed.insert((session, user.to_owned()));
        }
    }

    /// Closes every session of `user` (the account was deleted); returns those that were open.
    pub fn close_all(&mut self, user: &str) -> Vec<u64> {
        let ids: Vec<(u64, bool)> = self.user_sessions(user).map(|(s, r)| (s, r.open)).collect();
        let mut open = Vec::new();
        for (id, was_open) in ids {
            self.close(user, id);
            if was_open {
                open.push(id);
            }
        }
        open
    }

    #[cfg(test)]
    pub fn open_count(&self, user: &str) -> usize {
        self.user_sessions(user).filter(|(_, r)| r.open).count()
    }

    /// Forgets closed sessions that began more than the window before `now_ms`: a request
    /// of theirs would be refused as clock-skewed if it tried to open the session again.
    pub fn prune(&mut self, now_ms: u64) {
        while let Some((session, user)) = self.closed.first().cloned() {
            if session / 1000 + SESSION_WINDOW_MS >= now_ms {
                break;
            }
            self.closed.pop_first();
            self.records.remove(&(user, session));
        }
    }

    fn user_sessions<'a>(&'a self, user: &str) -> impl Iterator<Item = (u64, &'a SessionRecord)> + 'a {
        let user = user.to_owned();
        self.records
            .range((user.clone(), 0)..=(user, u64::MAX))
            .map(|((_, s), r)| (*s, r))
    }

    /// Inserts a record read back from a snapshot.
    pub fn restore(&mut self, user: String, session: u64, record: SessionRecord) {
        if !record.open {
            self.closed.insert((session, user.clone()));
        }
        self.records.insert((user, session), record);
    }
}
