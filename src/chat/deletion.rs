//! Deleting a message deletes it for the one who deletes it, as in a chat service: a message
//! lives in its recipient's mailbox, and both its recipient and its sender see it (in
//! `read`, `history`, `inbox`). When one of them deletes it, it is hidden from that one only;
//! once both have (or the other no longer can see it: a note to oneself, a sender whose
//! account is gone), it is removed. Each account keeps, derived, the ids it sent and still
//! has (`Account::sent`), so a sender can name them.

use super::state::{Account, ChatState, HIDDEN_FOR_RECIPIENT, HIDDEN_FOR_SENDER};
use super::types::{ChatError, Outcome};

type OpResult<T = Outcome> = Result<T, ChatError>;

impl ChatState {
    /// `delete`: each id is a message in the caller's mailbox or one the caller sent, still
    /// shown to the caller; if any is neither, nothing changes. Returns how many.
    pub(super) fn delete_messages(&mut self, user: &str, ids: &[u64]) -> OpResult {
        super::ops::check_ids(ids)?;
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        // First every id is checked and told apart (received, or sent), with whether the
        // other side still shows it; then the state changes.
        let me = self.accounts.get(user).ok_or_else(|| ChatError::UnknownUser(user.to_owned()))?;
        let (mut received, mut sent) = (Vec::new(), Vec::new());
        for id in ids {
            if let Some(m) = me.mailbox.get(&id).filter(|m| m.hidden & HIDDEN_FOR_RECIPIENT == 0) {
                let sender_has = m.from_account != me.number && m.hidden & HIDDEN_FOR_SENDER == 0 && self.sender(&m.from, m.from_account).is_some();
                received.push((id, sender_has));
            } else if let Some(to) = me.sent.get(&id) {
                let recipient_has = self.accounts.get(to).and_then(|a| a.mailbox.get(&id)).is_some_and(|m| m.hidden & HIDDEN_FOR_RECIPIENT == 0);
                sent.push((id, to.clone(), recipient_has));
            } else {
                return Err(ChatError::NoSuchMessage(id));
            }
        }
        let count = (received.len() + sent.len()) as u64;
        for (id, sender_has) in received {
            if sender_has {
                let me = self.account_mut(user);
                me.mark_read(id);
                me.mailbox.get_mut(&id).expect("checked").hidden |= HIDDEN_FOR_RECIPIENT;
            } else {
                self.remove_message(user, id);
            }
        }
        for (id, to, recipient_has) in sent {
            self.account_mut(user).sent.remove(&id);
            if recipient_has {
                self.account_mut(&to).mailbox.get_mut(&id).expect("checked").hidden |= HIDDEN_FOR_SENDER;
            } else {
                self.remove_message(&to, id);
            }
        }
        Ok(Outcome::Deleted { count })
    }

    /// The account now named `from`, if it is the one numbered `from_account` (a later account
    /// of the name is another person).
    pub(super) fn sender(&self, from: &str, from_account: u64) -> Option<&Account> {
        self.accounts.get(from).map(|a| &**a).filter(|a| a.number == from_account)
    }

    fn account_mut(&mut self, name: &str) -> &mut Account {
        self.accounts.get_mut(name).map(std::sync::Arc::make_mut).expect("an account that exists")
    }

    /// Removes message `id` from `to`'s mailbox, and from its sender's sent messages.
    fn remove_message(&mut self, to: &str, id: u64) {
        let recipient = self.account_mut(to);
        recipient.mark_read(id);
        let Some(m) = recipient.mailbox.remove(&id) else { return };
        self.message_count -= 1;
        if self.sender(&m.from, m.from_account).is_some_and(|s| s.sent.contains_key(&id)) {
            self.account_mut(&m.from).sent.remove(&id);
        }
    }

    /// An account is being deleted: its mailbox goes (its senders' sent lists forget those
    /// messages), and what it sent that its recipients had already deleted goes too (nobody
    /// sees it any more). What it sent that its recipients still have stays theirs.
    pub(super) fn forget_account(&mut self, account: &Account) {
        for (id, m) in &account.mailbox {
            if m.from_account != account.number && self.sender(&m.from, m.from_account).is_some_and(|s| s.sent.contains_key(id)) {
                self.account_mut(&m.from).sent.remove(id);
            }
        }
        for (id, to) in &account.sent {
            let gone = self.accounts.get(to).and_then(|a| a.mailbox.get(id)).is_some_and(|m| m.hidden & HIDDEN_FOR_RECIPIENT != 0);
            if gone {
                self.remove_message(to, *id);
            }
        }
    }
}
