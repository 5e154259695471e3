//! The chat state and its one entry point, `apply`.
//!
//! Call order: `cached_reply` (a resent request is answered without touching the log), then
//! `apply` for everything that was written to the log, in log order, with strictly
//! increasing (height, position). `apply` is a pure function of (state, request, context).

use std::collections::{BTreeMap, BTreeSet};

use super::sessions::{Held, HeldRead, SessionRecord, Sessions};
use super::types::{
    ChatError, Context, HELD_PER_USER_MAX, HELD_REPLY_MAX, Message, Op, Outcome, PRESENCE_MS_DEFAULT, Reply, Request, SESSION_IDLE_MAX_MS,
    SESSION_WINDOW_MS, folded,
};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// Unique forever; see `Message::from_account`.
    pub number: u64,
    pub public_key: [u8; 32],
    pub created_ms: u64,
    /// The messages addressed to this account, by id (ids grow with time).
    pub mailbox: BTreeMap<u64, StoredMessage>,
    /// Ids in `mailbox` not yet read.
    pub unread: BTreeSet<u64>,
    /// Accounts whose messages this one refuses, by number (a later account that takes the
    /// name is another person), with the name they had when blocked.
    pub blocked: BTreeMap<u64, String>,
    /// Unread messages in `mailbox` per sender account: (count, text bytes). Derived (not
    /// in the digest or the snapshot; rebuilt on restore): what `UNREAD_FROM_ONE_MAX` bounds.
    pub(crate) unread_from: BTreeMap<u64, (u64, u64)>,
    /// The messages this account sent that it still has (not deleted for itself), by id,
    /// with the recipient's name: its side of its conversations. Derived from the mailboxes
    /// (rebuilt on restore).
    pub(crate) sent: BTreeMap<u64, String>,
}

impl Account {
    pub(crate) fn new(number: u64, public_key: [u8; 32], created_ms: u64) -> Account {
        Account {
            number,
            public_key,
            created_ms,
            mailbox: BTreeMap::new(),
            unread: BTreeSet::new(),
            blocked: BTreeMap::new(),
            unread_from: BTreeMap::new(),
            sent: BTreeMap::new(),
        }
    }

    /// Message `id` (in the mailbox) is unread from now on.
    pub(crate) fn mark_unread(&mut self, id: u64) {
        let m = &self.mailbox[&id];
        let (count, bytes) = self.unread_from.entry(m.from_account).or_default();
        *count += 1;
        *bytes += m.text.len() as u64;
        self.unread.insert(id);
    }

    /// Message `id` is no longer unread (it was read, or deleted); false if it was not.
    pub(crate) fn mark_read(&mut self, id: u64) -> bool {
        if !self.unread.remove(&id) {
            return false;
        }
        let m = &self.mailbox[&id];
        let entry = self.unread_from.get_mut(&m.from_account).expect("an unread message is counted");
        entry.0 -= 1;
        entry.1 -= m.text.len() as u64;
        if entry.0 == 0 {
            self.unread_from.remove(&m.from_account);
        }
        true
    }
}

/// A message as kept in a mailbox (the recipient and id are the mailbox's key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMessage {
    pub from: String,
    pub from_account: u64,
    pub time_ms: u64,
    pub text: String,
    /// Who deleted it for themselves (`HIDDEN_FOR_RECIPIENT`, `HIDDEN_FOR_SENDER`): it is
    /// kept while the other one still has it (`chat/deletion.rs`).
    pub hidden: u8,
}

/// The recipient deleted the message for themselves.
pub const HIDDEN_FOR_RECIPIENT: u8 = 1;
/// The sender deleted it for themselves.
pub const HIDDEN_FOR_SENDER: u8 = 2;

impl StoredMessage {
    /// The message as a reply shows it: message `id` in `to`'s mailbox.
    pub fn to_message(&self, id: u64, to: &str) -> super::Message {
        super::Message { id, from: self.from.clone(), from_account: self.from_account, to: to.to_owned(), time_ms: self.time_ms, text: self.text.clone() }
    }
}

/// What applying one request produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    pub reply: Reply,
    /// Messages to push to their recipients' live streams once the reply is durable.
    pub deliveries: Vec<Message>,
    /// Other open sessions of the request's user that this request closed (a login past
    /// the open-session limit closes the oldest; deleting the account closes them all):
    /// their clients are told on their live streams at once.
    pub closed: Vec<u64>,
    /// The reply is the one kept from an earlier execution of this request (ordered twice),
    /// not made by this one.
    pub cached: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChatState {
    /// Shared, copied on write (`Arc::make_mut`): the clone a state image starts from costs
    /// one pointer per account, and only an account changed while the image is written is
    /// copied (NOTEBOOK, the state clone).
    pub(crate) accounts: BTreeMap<String, std::sync::Arc<Account>>,
    /// Case-folded names of `accounts` (derived, rebuilt on restore).
    pub(crate) folded_names: BTreeSet<String>,
    pub(crate) sessions: Sessions,
    pub(crate) next_message_id: u64,
    pub(crate) next_account: u64,
    /// Height and committed time of the last applied request.
    pub(crate) height: u64,
    /// Its position within that height (not part of the digest or the snapshot: after a
    /// restore the next request is at a later height, or later in the same one).
    pub(crate) position: u64,
    pub(crate) time_ms: u64,
    /// Total messages in all mailboxes (derived).
    pub(crate) message_count: u64,
    /// How long a session stays online after its last request (a cluster setting, the same
    /// on every replica; not part of the digest or the snapshot).
    pub(crate) presence_ms: u64,
}

impl ChatState {
    pub fn new() -> Self {
        ChatState { next_message_id: 1, next_account: 1, presence_ms: PRESENCE_MS_DEFAULT, ..Default::default() }
    }

    /// The cluster's presence setting (`cluster.toml` `presence_ms`).
    pub fn set_presence_ms(&mut self, presence_ms: u64) {
        self.presence_ms = presence_ms;
    }

    pub fn presence_ms(&self) -> u64 {
        self.presence_ms
    }

    pub fn height(&self) -> u64 {
        self.height
    }

    pub fn time_ms(&self) -> u64 {
        self.time_ms
    }

    pub fn account_count(&self) -> u64 {
        self.accounts.len() as u64
    }

    pub fn message_count(&self) -> u64 {
        self.message_count
    }

    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// The key that signs `user`'s requests, if the account exists.
    pub fn public_key(&self, user: &str) -> Option<&[u8; 32]> {
        self.accounts.get(user).map(|a| &a.public_key)
    }

    /// Whether `session` is an open session of the current account named `user`.
    pub fn session_is_open(&self, user: &str, session: u64) -> bool {
        self.sessions.get(user, session).is_some_and(|record| self.open_for(user, record))
    }

    /// Whether `record` is an open session of the current account named `user` (a later
    /// account of the same name never inherits a session).
    fn open_for(&self, user: &str, record: &SessionRecord) -> bool {
        record.open && self.accounts.get(user).is_some_and(|a| a.number == record.account)
    }

    pub fn account(&self, user: &str) -> Option<&Account> {
        self.accounts.get(user).map(|a| &**a)
    }

    /// The reply already given to this exact request, if it is the last one applied in its
    /// session: a resent request is answered from here and never applied twice. Only for
    /// the body that was applied (`body` is its SHA-256), and only while no other account
    /// has taken the name since (a later "alice" signs the same body bytes with her own key,
    /// and must not get the first alice's reply: her read of a private message, say).
    /// A `read` is rebuilt from the ids it kept; a read-only result that was not kept is
    /// `NotHeld` (see `Held`).
    pub fn cached_reply(&self, user: &str, session: u64, seq: u64, body: &[u8; 32]) -> Option<Reply> {
        Some(match &self.answered(user, session, seq, body)?.reply {
            Held::Reply(reply) => reply.clone(),
            Held::Read { read } => {
                // Still the account that read them (checked above), or gone: then nothing is left.
                let mailbox = self.accounts.get(user).map(|a| &a.mailbox);
                let messages = read
                    .ids
                    .iter()
                    .filter_map(|id| mailbox.and_then(|m| m.get(id)).filter(|m| m.hidden & HIDDEN_FOR_RECIPIENT == 0).map(|stored| stored.to_message(*id, user)))
                    .collect();
                Reply { height: read.height, outcome: Outcome::Messages { messages, unread_left: read.unread_left } }
            }
        })
    }

    /// The record whose kept reply answers this exact request (`cached_reply`).
    fn answered(&self, user: &str, session: u64, seq: u64, body: &[u8; 32]) -> Option<&SessionRecord> {
        let account = self.accounts.get(user).map(|a| a.number);
        self.sessions
            .get(user, session)
            .filter(|r| r.last_seq == seq && r.request == *body && account.is_none_or(|a| a == r.account))
    }

    /// True when the request's sequence number is below the last one applied in its session:
    /// it would be refused as a replay, so it need not be ordered or logged at all.
    /// Also true for the last sequence number when its cached reply is not this request's.
    pub fn is_replay(&self, user: &str, session: u64, seq: u64, body: &[u8; 32]) -> bool {
        self.sessions.get(user, session).is_some_and(|r| {
            seq < r.last_seq || (seq == r.last_seq && self.answered(user, session, seq, body).is_none())
        })
    }

    /// `apply_body` for a request whose body digest does not matter (tests, benchmarks).
    pub fn apply(&mut self, request: &Request, ctx: Context) -> Applied {
        self.apply_body(request, &[0; 32], ctx)
    }

    /// Applies one ordered request whose body hashes to `body`. Deterministic: same state,
    /// request and context give the same reply and the same next state on every replica.
    pub fn apply_body(&mut self, request: &Request, body: &[u8; 32], ctx: Context) -> Applied {
        let (at, last) = ((ctx.height, ctx.position), (self.height, self.position));
        assert!(at > last, "(height, position) must increase: {at:?} after {last:?}");
        self.height = ctx.height;
        self.position = ctx.position;
        // Committed time never runs backwards inside the state, whatever the orderer says.
        self.time_ms = self.time_ms.max(ctx.time_ms);
        self.sessions.prune(self.time_ms);
        self.sessions.expire_idle(self.time_ms, SESSION_IDLE_MAX_MS);
        if let Some(reply) = self.cached_reply(&request.user, request.session, request.seq, body) {
            // Ordered twice (a resend raced its original): same answer, applied once.
            return Applied { reply, deliveries: Vec::new(), closed: Vec::new(), cached: true };
        }

        let (mut deliveries, mut closed) = (Vec::new(), Vec::new());
        let outcome = match self.admit(request) {
            Err(error) => Outcome::Failed(error),
            Ok(()) => {
                self.sessions.touch(&request.user, request.session, self.time_ms);
                self.execute(request, &mut deliveries, &mut closed)
            }
        };
        let reply = Reply { height: ctx.height, outcome };
        closed.extend(self.remember(request, body, &reply));
        // The requester's own session gets the reply, not a notice.
        closed.retain(|s| *s != request.session);
        debug_assert_eq!(self.message_count, self.accounts.values().map(|a| a.mailbox.len() as u64).sum::<u64>());
        Applied { reply, deliveries, closed, cached: false }
    }

    /// The session rules: a request runs only in an open session of its account, with a
    /// sequence number above the last one applied there; create and login may open one.
    fn admit(&self, request: &Request) -> Result<(), ChatError> {
        match self.sessions.get(&request.user, request.session) {
            Some(record) if request.seq <= record.last_seq => Err(ChatError::Replayed { seq: request.seq }),
            Some(record) if !self.open_for(&request.user, record) => Err(ChatError::SessionClosed),
            Some(_) => Ok(()),
            None if !request.op.opens_session() => Err(ChatError::NotLoggedIn),
            None if (request.session / 1000).abs_diff(self.time_ms) > SESSION_WINDOW_MS => {
                Err(ChatError::SessionClockSkew)
            }
            None if !self.sessions.may_open(&request.user) => Err(ChatError::TooManySessions),
            None => Ok(()),
        }
    }

    /// Updates the de-duplication table after a request ran; returns the session that
    /// opening this one closed, if any (the open-session limit).
    fn remember(&mut self, request: &Request, body: &[u8; 32], reply: &Reply) -> Option<u64> {
        let Some(account) = self.accounts.get(&request.user).map(|a| a.number).or_else(|| {
            // The account is gone (it was just deleted): keep the session, closed.
            self.sessions.get(&request.user, request.session).map(|r| r.account)
        }) else {
            return None;
        };
        let known = self.sessions.get(&request.user, request.session).is_some();
        let failed = matches!(reply.outcome, Outcome::Failed(_));
        if !known && failed {
            return None; // a refused create or login opens nothing
        }
        if known && matches!(reply.outcome, Outcome::Failed(ChatError::Replayed { .. } | ChatError::SessionClosed)) {
            return None; // refused by the session rules: the record stays as it was
        }
        let open = match reply.outcome {
            Outcome::LoggedOut | Outcome::AccountDeleted { .. } => false,
            _ => self.sessions.get(&request.user, request.session).is_none_or(|r| r.open),
        };
        let held = self.held(request, reply);
        let record = SessionRecord { account, last_seq: request.seq, reply: held, request: *body, open, active_ms: self.time_ms };
        self.sessions.record(&request.user, request.session, record)
    }

    /// What the session keeps of `reply` to answer a resend: a read's ids; a read-only
    /// result while it fits the session's and the user's budget (the bytes this session's
    /// previous reply holds are given back first), else `NotHeld`; anything else whole.
    fn held(&self, request: &Request, reply: &Reply) -> Held {
        match &reply.outcome {
            Outcome::Messages { messages, unread_left } => {
                let ids = messages.iter().map(|m| m.id).collect();
                Held::Read { read: HeldRead { height: reply.height, ids, unread_left: *unread_left } }
            }
            Outcome::Failed(_) => Held::Reply(reply.clone()),
            _ if request.op.reads_only() => {
                let whole = Held::Reply(reply.clone());
                let previous = self.sessions.get(&request.user, request.session).map_or(0, |r| r.reply.bytes());
                let others = self.sessions.held_bytes(&request.user) - previous;
                if whole.bytes() <= HELD_REPLY_MAX && others + whole.bytes() <= HELD_PER_USER_MAX {
                    whole
                } else {
                    let outcome = Outcome::Failed(ChatError::NotHeld { seq: request.seq });
                    Held::Reply(Reply { height: reply.height, outcome })
                }
            }
            _ => Held::Reply(reply.clone()),
        }
    }

    fn execute(&mut self, request: &Request, deliveries: &mut Vec<Message>, closed: &mut Vec<u64>) -> Outcome {
        let user = request.user.as_str();
        let result = match &request.op {
            Op::CreateAccount { public_key } => self.create_account(user, *public_key),
            Op::Login => self.login(user),
            Op::Logout => Ok(Outcome::LoggedOut),
            Op::ListAccounts { pattern, after, limit } => self.list_accounts(pattern, after, *limit),
            Op::Send { to, text } => self.send(user, to, text).map(|message| {
                let id = message.id;
                deliveries.push(message);
                Outcome::Sent { id }
            }),
            Op::Read { max } => self.read(user, *max),
            Op::MarkRead { ids } => self.mark_read(user, ids),
            Op::DeleteMessages { ids } => self.delete_messages(user, ids),
            Op::DeleteAccount => self.delete_account(user, closed),
            Op::Who { after, limit } => self.who(after, *limit),
            Op::Inbox { limit } => self.inbox(user, *limit),
            Op::Block { user: other, unblock } => self.block(user, other, *unblock),
            Op::Heartbeat => Ok(Outcome::Alive { until_ms: self.time_ms + self.presence_ms }),
            Op::History { with, before, limit } => self.history(user, with, *before, *limit),
        };
        result.unwrap_or_else(Outcome::Failed)
    }

    pub(crate) fn fold_insert(&mut self, name: &str) -> bool {
        self.folded_names.insert(folded(name))
    }
}
