//! One handler per chat operation. Each checks everything before it changes anything, so a
//! refused operation leaves the state untouched.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::state::{Account, ChatState, StoredMessage};
use super::types::{
    ACCOUNTS_MAX, ChatError, IDS_MAX, LIST_SCAN_MAX, Message, Outcome, PAGE_LIMIT_MAX, READ_BYTES_MAX, READ_LIMIT_MAX, TEXT_LEN_MAX, folded,
    valid_name,
};
use super::wildcard;

type OpResult<T = Outcome> = Result<T, ChatError>;

impl ChatState {
    pub(super) fn create_account(&mut self, user: &str, public_key: [u8; 32]) -> OpResult {
        if !valid_name(user) {
            return Err(ChatError::InvalidName(user.to_owned()));
        }
        if self.folded_names.contains(&folded(user)) {
            return Err(ChatError::NameTaken(user.to_owned()));
        }
        if self.accounts.len() >= ACCOUNTS_MAX {
            return Err(ChatError::TooManyAccounts);
        }
        let number = self.next_account;
        self.next_account += 1;
        let account = Account {
            number,
            public_key,
            created_ms: self.time_ms,
            mailbox: BTreeMap::new(),
            unread: Default::default(),
        };
        self.accounts.insert(user.to_owned(), std::sync::Arc::new(account));
        let fresh = self.fold_insert(user);
        assert!(fresh, "folded name set out of step with accounts");
        Ok(Outcome::AccountCreated { account: number })
    }

    pub(super) fn login(&mut self, user: &str) -> OpResult {
        let account = self.accounts.get(user).ok_or_else(|| ChatError::UnknownUser(user.to_owned()))?;
        Ok(Outcome::LoggedIn { unread: account.unread.len() as u64 })
    }

    pub(super) fn list_accounts(&self, pattern: &str, after: &str, limit: u32) -> OpResult {
        if !wildcard::valid_pattern(pattern) {
            return Err(ChatError::InvalidPattern(pattern.to_owned()));
        }
        if limit == 0 || limit > PAGE_LIMIT_MAX {
            return Err(ChatError::InvalidLimit(limit));
        }
        let start = if after.is_empty() { Bound::Unbounded } else { Bound::Excluded(after) };
        // At most LIST_SCAN_MAX names are looked at per request, matching or not: a pattern
        // that matches nothing costs no more than a full page. `next` is then the cursor
        // where the scan stopped, and the page may hold fewer names than asked, even none.
        let mut names = Vec::new();
        let mut last_scanned = None;
        let mut more = false;
        for (scanned, (name, _)) in self.accounts.range::<str, _>((start, Bound::Unbounded)).enumerate() {
            if names.len() == limit as usize || scanned == LIST_SCAN_MAX {
                more = true;
                break;
            }
            last_scanned = Some(name);
            if wildcard::matches(pattern, name) {
                names.push(name.clone());
            }
        }
        let next = if more { last_scanned.cloned() } else { None };
        Ok(Outcome::Accounts { names, next })
    }

    pub(super) fn send(&mut self, user: &str, to: &str, text: &str) -> OpResult<Message> {
        if text.is_empty() {
            return Err(ChatError::EmptyText);
        }
        if text.len() > TEXT_LEN_MAX {
            return Err(ChatError::TextTooLong(text.len()));
        }
        let from_account = self.accounts.get(user).ok_or_else(|| ChatError::UnknownUser(user.to_owned()))?.number;
        let time_ms = self.time_ms;
        let id = self.next_message_id;
        let recipient = self.accounts.get_mut(to).map(std::sync::Arc::make_mut).ok_or_else(|| ChatError::UnknownUser(to.to_owned()))?;
        self.next_message_id += 1;
        let stored = StoredMessage { from: user.to_owned(), from_account, time_ms, text: text.to_owned() };
        recipient.mailbox.insert(id, stored);
        recipient.unread.insert(id);
        self.message_count += 1;
        Ok(Message { id, from: user.to_owned(), from_account, to: to.to_owned(), time_ms, text: text.to_owned() })
    }

    /// Returns the oldest unread messages and marks them read; they stay in the mailbox.
    pub(super) fn read(&mut self, user: &str, max: u32) -> OpResult {
        if max == 0 || max > READ_LIMIT_MAX {
            return Err(ChatError::InvalidLimit(max));
        }
        let account = self.accounts.get_mut(user).map(std::sync::Arc::make_mut).ok_or_else(|| ChatError::UnknownUser(user.to_owned()))?;
        let mut messages = Vec::new();
        let mut bytes = 0;
        while messages.len() < max as usize && (messages.is_empty() || bytes < READ_BYTES_MAX) {
            let Some(id) = account.unread.pop_first() else { break };
            let stored = account.mailbox.get(&id).expect("unread id missing from mailbox");
            bytes += stored.text.len();
            messages.push(Message {
                id,
                from: stored.from.clone(),
                from_account: stored.from_account,
                to: user.to_owned(),
                time_ms: stored.time_ms,
                text: stored.text.clone(),
            });
        }
        Ok(Outcome::Messages { messages, unread_left: account.unread.len() as u64 })
    }

    pub(super) fn mark_read(&mut self, user: &str, ids: &[u64]) -> OpResult {
        let account = self.own_messages(user, ids)?;
        let count = ids.iter().filter(|id| account.unread.remove(id)).count();
        Ok(Outcome::MarkedRead { count: count as u64 })
    }

    pub(super) fn delete_messages(&mut self, user: &str, ids: &[u64]) -> OpResult {
        let account = self.own_messages(user, ids)?;
        let mut count = 0;
        for id in ids {
            if account.mailbox.remove(id).is_some() {
                account.unread.remove(id);
                count += 1;
            }
        }
        self.message_count -= count;
        Ok(Outcome::Deleted { count })
    }

    /// Deleting an account drops its whole mailbox (read and unread); messages it sent stay
    /// with their recipients, who own them. Its sessions close (those that were open go to
    /// `closed`); its name becomes free.
    pub(super) fn delete_account(&mut self, user: &str, closed: &mut Vec<u64>) -> OpResult {
        let account = self.accounts.remove(user).ok_or_else(|| ChatError::UnknownUser(user.to_owned()))?;
        self.folded_names.remove(&folded(user));
        self.message_count -= account.mailbox.len() as u64;
        closed.extend(self.sessions.close_all(user));
        Ok(Outcome::AccountDeleted { unread_dropped: account.unread.len() as u64 })
    }

    /// The caller's account, once every id is checked to be in its mailbox.
    fn own_messages(&mut self, user: &str, ids: &[u64]) -> OpResult<&mut Account> {
        if ids.is_empty() {
            return Err(ChatError::NoIds);
        }
        if ids.len() > IDS_MAX {
            return Err(ChatError::TooManyIds(ids.len()));
        }
        let account = self.accounts.get_mut(user).map(std::sync::Arc::make_mut).ok_or_else(|| ChatError::UnknownUser(user.to_owned()))?;
        if let Some(missing) = ids.iter().find(|id| !account.mailbox.contains_key(id)) {
            return Err(ChatError::NoSuchMessage(*missing));
        }
        Ok(account)
    }
}
