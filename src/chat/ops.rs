//! One handler per chat operation. Each checks everything before it changes anything, so a
//! refused operation leaves the state untouched.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::state::{Account, ChatState, HIDDEN_FOR_RECIPIENT, HIDDEN_FOR_SENDER, StoredMessage};
use super::types::{
    ACCOUNTS_MAX, BLOCKED_MAX, ChatError, IDS_MAX, InboxEntry, LIST_SCAN_MAX, Message, Outcome, PAGE_LIMIT_MAX, READ_BYTES_MAX, READ_LIMIT_MAX,
    TEXT_LEN_MAX, UNREAD_BYTES_FROM_ONE_MAX, UNREAD_FROM_ONE_MAX, folded, valid_name,
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
        let account = Account::new(number, public_key, self.time_ms);
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
        Ok(Outcome::Accounts { names, next, total: self.accounts.len() as u64 })
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
        let recipient = self.accounts.get(to).ok_or_else(|| ChatError::UnknownUser(to.to_owned()))?;
        if recipient.blocked.contains_key(&from_account) {
            return Err(ChatError::NotAccepted(to.to_owned()));
        }
        let (waiting, bytes) = recipient.unread_from.get(&from_account).copied().unwrap_or_default();
        if waiting >= UNREAD_FROM_ONE_MAX || bytes + text.len() as u64 > UNREAD_BYTES_FROM_ONE_MAX {
            return Err(ChatError::TooManyUnread(to.to_owned()));
        }
        let recipient = self.accounts.get_mut(to).map(std::sync::Arc::make_mut).expect("found above");
        self.next_message_id += 1;
        let stored = StoredMessage { from: user.to_owned(), from_account, time_ms, text: text.to_owned(), hidden: 0 };
        recipient.mailbox.insert(id, stored);
        recipient.mark_unread(id);
        self.accounts.get_mut(user).map(std::sync::Arc::make_mut).expect("the sender").sent.insert(id, to.to_owned());
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
            let Some(id) = account.unread.first().copied() else { break };
            account.mark_read(id);
            let stored = account.mailbox.get(&id).expect("unread id missing from mailbox");
            bytes += stored.text.len();
            messages.push(stored.to_message(id, user));
        }
        Ok(Outcome::Messages { messages, unread_left: account.unread.len() as u64 })
    }

    /// Marks messages read. An id that is not (or no longer) in the mailbox is skipped, not
    /// refused: marking is idempotent, and a client's batch of shown messages must not fail
    /// on one the user deleted meanwhile. Only ids of the caller's own mailbox change.
    pub(super) fn mark_read(&mut self, user: &str, ids: &[u64]) -> OpResult {
        check_ids(ids)?;
        let account = self.accounts.get_mut(user).map(std::sync::Arc::make_mut).ok_or_else(|| ChatError::UnknownUser(user.to_owned()))?;
        let count = ids.iter().filter(|id| account.mark_read(**id)).count();
        Ok(Outcome::MarkedRead { count: count as u64 })
    }

    /// Deleting an account drops its whole mailbox (read and unread); messages it sent stay
    /// with their recipients, who own them. Its sessions close (those that were open go to
    /// `closed`); its name becomes free.
    pub(super) fn delete_account(&mut self, user: &str, closed: &mut Vec<u64>) -> OpResult {
        let account = self.accounts.remove(user).ok_or_else(|| ChatError::UnknownUser(user.to_owned()))?;
        self.folded_names.remove(&folded(user));
        self.message_count -= account.mailbox.len() as u64;
        self.forget_account(&account);
        closed.extend(self.sessions.close_all(user));
        Ok(Outcome::AccountDeleted { unread_dropped: account.unread.len() as u64 })
    }

    /// `who`: users online (an open session that made a request within the presence time),
    /// a page at a time (names ascending, cursor).
    pub(super) fn who(&self, after: &str, limit: u32) -> OpResult {
        if limit == 0 || limit > PAGE_LIMIT_MAX {
            return Err(ChatError::InvalidLimit(limit));
        }
        let (names, next) = self.sessions.online(after, self.time_ms, self.presence_ms, limit as usize, LIST_SCAN_MAX);
        Ok(Outcome::Online { names, next, total: self.sessions.online_count(self.time_ms, self.presence_ms) as u64 })
    }

    /// `history`: the messages between `user` and `with`, both directions. The sender keeps
    /// no copy, so they are `with`'s messages in `user`'s mailbox and `user`'s in `with`'s
    /// (matched by account number: a deleted account's namesake is another person). When no
    /// account has the name any more, what it sent `user` is still shown (the recipient owns
    /// it) and what `user` sent it went with its mailbox; a name that wrote nothing and has
    /// no account is `unknown_user`. Each
    /// mailbox is walked from the newest id below `before`, at most `LIST_SCAN_MAX` entries
    /// a request, so the cost is bounded however large a mailbox is; `before` in the answer
    /// is where to go on from. Nothing is marked read.
    pub(super) fn history(&self, user: &str, with: &str, before: u64, limit: u32) -> OpResult {
        if limit == 0 || limit > READ_LIMIT_MAX {
            return Err(ChatError::InvalidLimit(limit));
        }
        let me = self.accounts.get(user).ok_or_else(|| ChatError::UnknownUser(user.to_owned()))?;
        let other = self.accounts.get(with);
        let below = if before == 0 { u64::MAX } else { before };
        // Matches newest first from one mailbox, and the lowest id its walk covered when it
        // stopped at the scan bound (below that id, nothing of it was looked at).
        // `gone`: what the caller deleted for itself, on that side (`chat/deletion.rs`).
        // `from_account`: the sender's account number, `None` for a name no account has now.
        let walk = |mailbox: &BTreeMap<u64, StoredMessage>, from: &str, from_account: Option<u64>, to: &str, gone: u8| {
            let mut found = Vec::new();
            let mut cutoff = 0;
            for (scanned, (id, m)) in mailbox.range(..below).rev().enumerate() {
                if scanned == LIST_SCAN_MAX || found.len() == limit as usize {
                    cutoff = *id + 1;
                    break;
                }
                if from_account.is_none_or(|n| m.from_account == n) && m.from == from && m.hidden & gone == 0 {
                    found.push(m.to_message(*id, to));
                }
            }
            (found, cutoff)
        };
        let (mut messages, mine_cut) = walk(&me.mailbox, with, other.map(|o| o.number), user, HIDDEN_FOR_RECIPIENT);
        if other.is_none() && messages.is_empty() && before == 0 {
            return Err(ChatError::UnknownUser(with.to_owned()));
        }
        // Notes to oneself are in one mailbox: walked once.
        let (theirs, their_cut) = match other {
            Some(other) if user != with => walk(&other.mailbox, user, Some(me.number), with, HIDDEN_FOR_SENDER),
            _ => (Vec::new(), 0),
        };
        messages.extend(theirs);
        // Only ids at or above both cut-offs were seen in both mailboxes.
        let cutoff = mine_cut.max(their_cut);
        messages.retain(|m| m.id >= cutoff);
        messages.sort_by_key(|m| std::cmp::Reverse(m.id));
        let mut bytes = 0;
        let mut kept = 0;
        while kept < messages.len() && kept < limit as usize && (kept == 0 || bytes < READ_BYTES_MAX) {
            bytes += messages[kept].text.len();
            kept += 1;
        }
        // Older ones left: below the last one shown, if the page filled up; else below
        // where a walk stopped (everything at or above the cut-off was seen).
        let before = if kept < messages.len() { Some(messages[kept - 1].id) } else { (cutoff > 0).then_some(cutoff) };
        messages.truncate(kept);
        messages.reverse();
        Ok(Outcome::History { messages, before })
    }

    /// `inbox`: who wrote to `user`, the latest first, with their unread counts. Two bounded
    /// walks: the newest `LIST_SCAN_MAX` messages (who wrote lately) and the newest
    /// `LIST_SCAN_MAX` unread ones (what waits, however old). Senders are told apart by
    /// name, as a person reads them. Nothing is marked read.
    pub(super) fn inbox(&self, user: &str, limit: u32) -> OpResult {
        if limit == 0 || limit > PAGE_LIMIT_MAX {
            return Err(ChatError::InvalidLimit(limit));
        }
        let me = self.accounts.get(user).ok_or_else(|| ChatError::UnknownUser(user.to_owned()))?;
        // One entry per person: who wrote (the newest of the mailbox, and every unread one),
        // and to whom the caller wrote (its newest sent), deleted ones left out.
        let mut senders: BTreeMap<&str, InboxEntry> = BTreeMap::new();
        let recent = me.mailbox.iter().rev().take(LIST_SCAN_MAX).filter(|(_, m)| m.hidden & HIDDEN_FOR_RECIPIENT == 0).map(|(id, m)| (*id, m.from.as_str(), m.time_ms, false));
        let waiting = me.unread.iter().rev().take(LIST_SCAN_MAX).map(|id| (*id, me.mailbox[id].from.as_str(), me.mailbox[id].time_ms, true));
        let wrote = me.sent.iter().rev().take(LIST_SCAN_MAX).filter_map(|(id, to)| {
            let time_ms = self.accounts.get(to)?.mailbox.get(id)?.time_ms;
            Some((*id, to.as_str(), time_ms, false))
        });
        for (id, who, time_ms, unread) in recent.chain(waiting).chain(wrote) {
            let entry = senders.entry(who).or_insert_with(|| InboxEntry { from: who.to_owned(), unread: 0, newest: id, time_ms });
            if id > entry.newest {
                (entry.newest, entry.time_ms) = (id, time_ms);
            }
            entry.unread += unread as u64;
        }
        let mut senders: Vec<InboxEntry> = senders.into_values().collect();
        senders.sort_by_key(|e| std::cmp::Reverse(e.newest));
        senders.truncate(limit as usize);
        let complete = me.mailbox.len() <= LIST_SCAN_MAX && me.unread.len() <= LIST_SCAN_MAX && me.sent.len() <= LIST_SCAN_MAX;
        Ok(Outcome::Inbox { senders, unread: me.unread.len() as u64, complete })
    }

    /// `block`, `unblock`, `blocked`: the block list, by account number.
    pub(super) fn block(&mut self, user: &str, other: &str, unblock: bool) -> OpResult {
        let number = if other.is_empty() {
            None
        } else if unblock {
            // By name as blocked (the account may be gone, or the name taken by another).
            Some(self.accounts.get(other).map(|a| a.number))
        } else {
            let account = self.accounts.get(other).ok_or_else(|| ChatError::UnknownUser(other.to_owned()))?;
            Some(Some(account.number))
        };
        let me = self.accounts.get_mut(user).map(std::sync::Arc::make_mut).ok_or_else(|| ChatError::UnknownUser(user.to_owned()))?;
        match number {
            None => {}
            Some(number) if unblock => me.blocked.retain(|n, name| Some(*n) != number && name != other),
            Some(Some(number)) if number == me.number => return Err(ChatError::BlockYourself),
            Some(Some(number)) if !me.blocked.contains_key(&number) && me.blocked.len() >= BLOCKED_MAX => return Err(ChatError::TooManyBlocked),
            Some(Some(number)) => {
                me.blocked.insert(number, other.to_owned());
            }
            Some(None) => unreachable!("a block names an existing account"),
        }
        Ok(Outcome::Blocked { names: me.blocked.values().cloned().collect() })
    }
}

/// Some ids, and not too many.
pub(super) fn check_ids(ids: &[u64]) -> Result<(), ChatError> {
    if ids.is_empty() {
        return Err(ChatError::NoIds);
    }
    if ids.len() > IDS_MAX {
        return Err(ChatError::TooManyIds(ids.len()));
    }
    Ok(())
}
