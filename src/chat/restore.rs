//! Rebuilding a `ChatState` from the rows of a snapshot, checking each row as it comes.
//!
//! The snapshot's digest is checked by the caller afterwards; the checks here catch what
//! would otherwise break an invariant of the state (and so a later `apply`) first.

use std::collections::BTreeMap;

use super::sessions::SessionRecord;
use super::state::{Account, ChatState, HIDDEN_FOR_SENDER, StoredMessage};
use super::types::{BLOCKED_MAX, valid_name};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RestoreError {
    #[error("invalid account name {0:?}")]
    BadName(String),
    #[error("account {0:?} appears twice (names are unique without regard to case)")]
    DuplicateAccount(String),
    #[error("account {name:?} has number {number}, not below the next account number {next}")]
    AccountNumber { name: String, number: u64, next: u64 },
    #[error("message {id} is addressed to {to:?}, which has no account")]
    NoRecipient { id: u64, to: String },
    #[error("message {id} is not below the next message id {next}")]
    MessageId { id: u64, next: u64 },
    #[error("message {0} appears twice")]
    DuplicateMessage(u64),
    #[error("the block list of {0:?} is not one an account can have")]
    BadBlockList(String),
    #[error("session {session} of {user:?} appears twice")]
    DuplicateSession { user: String, session: u64 },
}

/// The counters of a snapshot (its meta.csv).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestoreMeta {
    pub height: u64,
    pub time_ms: u64,
    pub next_message_id: u64,
    pub next_account: u64,
}

pub struct Restorer {
    state: ChatState,
}

impl Restorer {
    pub fn new(meta: RestoreMeta) -> Self {
        let state = ChatState {
            height: meta.height,
            time_ms: meta.time_ms,
            next_message_id: meta.next_message_id,
            next_account: meta.next_account,
            ..ChatState::new()
        };
        Restorer { state }
    }

    pub fn account(&mut self, name: &str, number: u64, public_key: [u8; 32], created_ms: u64) -> Result<(), RestoreError> {
        if !valid_name(name) {
            return Err(RestoreError::BadName(name.to_owned()));
        }
        if number >= self.state.next_account {
            return Err(RestoreError::AccountNumber { name: name.to_owned(), number, next: self.state.next_account });
        }
        if self.state.accounts.contains_key(name) || !self.state.fold_insert(name) {
            return Err(RestoreError::DuplicateAccount(name.to_owned()));
        }
        let account = Account::new(number, public_key, created_ms);
        self.state.accounts.insert(name.to_owned(), std::sync::Arc::new(account));
        Ok(())
    }

    pub fn message(&mut self, id: u64, to: &str, message: StoredMessage, unread: bool) -> Result<(), RestoreError> {
        if id >= self.state.next_message_id {
            return Err(RestoreError::MessageId { id, next: self.state.next_message_id });
        }
        let account = self
            .state
            .accounts
            .get_mut(to)
            .map(std::sync::Arc::make_mut)
            .ok_or_else(|| RestoreError::NoRecipient { id, to: to.to_owned() })?;
        if account.mailbox.insert(id, message).is_some() {
            return Err(RestoreError::DuplicateMessage(id));
        }
        if unread {
            account.mark_unread(id);
        }
        self.state.message_count += 1;
        Ok(())
    }

    /// `name`'s block list: account numbers and the names they had (snapshot v3).
    pub fn blocked(&mut self, name: &str, blocked: BTreeMap<u64, String>) -> Result<(), RestoreError> {
        if blocked.len() > BLOCKED_MAX || blocked.values().any(|b| !valid_name(b)) {
            return Err(RestoreError::BadBlockList(name.to_owned()));
        }
        let account = self.state.accounts.get_mut(name).map(std::sync::Arc::make_mut).ok_or_else(|| RestoreError::BadName(name.to_owned()))?;
        account.blocked = blocked;
        Ok(())
    }

    pub fn session(&mut self, user: &str, session: u64, record: SessionRecord) -> Result<(), RestoreError> {
        if self.state.sessions.get(user, session).is_some() {
            return Err(RestoreError::DuplicateSession { user: user.to_owned(), session });
        }
        self.state.sessions.restore(user.to_owned(), session, record);
        Ok(())
    }

    /// The state, with what is derived from the mailboxes: each account's sent messages.
    pub fn finish(mut self) -> ChatState {
        let mut sent: Vec<(String, u64, String)> = Vec::new();
        for (to, account) in &self.state.accounts {
            for (id, m) in &account.mailbox {
                if m.hidden & HIDDEN_FOR_SENDER == 0 && self.state.sender(&m.from, m.from_account).is_some() {
                    sent.push((m.from.clone(), *id, to.clone()));
                }
            }
        }
        for (from, id, to) in sent {
            std::sync::Arc::make_mut(self.state.accounts.get_mut(&from).expect("found above")).sent.insert(id, to);
        }
        self.state
    }
}
