//! The chat state machine's vocabulary: operations, outcomes, errors and limits.
//!
//! These are domain types, independent of the wire format (`crate::wire` converts). Every
//! limit a user can run into lives here, so the CLI, the replica and the tests agree.

use serde::{Deserialize, Serialize};

/// Accounts a cluster holds at most: account creation needs no invitation, so the state
/// (and every replica's memory and images) is bounded here, the same on every replica.
pub const ACCOUNTS_MAX: usize = 1_000_000;

/// Longest user name, in characters (all of them ASCII).
pub const NAME_LEN_MAX: usize = 32;
/// Longest message text, in bytes of UTF-8.
pub const TEXT_LEN_MAX: usize = 65_536;
/// Longest wildcard pattern for listing accounts.
pub const PATTERN_LEN_MAX: usize = 64;
/// Largest page of account names.
pub const PAGE_LIMIT_MAX: u32 = 100;
/// Names one `list` request looks at, matching or not (its cost is bounded).
pub const LIST_SCAN_MAX: usize = 1_000;
/// Most messages one read returns.
pub const READ_LIMIT_MAX: u32 = 100;
/// A read stops adding messages once their texts pass this many bytes (at least one is
/// always returned), so a cached reply stays small.
pub const READ_BYTES_MAX: usize = 1 << 20;
/// Most message ids one delete or mark-read names.
pub const IDS_MAX: usize = 1_000;
/// Unread messages one sender may have waiting in one recipient's mailbox, and their bytes:
/// past it, the sender waits until the recipient reads (nobody fills another's mailbox).
pub const UNREAD_FROM_ONE_MAX: u64 = 1_000;
pub const UNREAD_BYTES_FROM_ONE_MAX: u64 = 16 << 20;
/// Accounts one user may block.
pub const BLOCKED_MAX: usize = 1_000;
/// Open sessions one user may hold; opening one more closes the oldest.
pub const OPEN_SESSIONS_MAX: usize = 8;
/// Sessions one user may have on record (open, or closed and not yet forgotten: begun
/// within about the last window). A login past it is refused until old ones are forgotten.
pub const SESSIONS_PER_USER_MAX: usize = 256;
/// Bytes one session keeps of a read-only request's result (`list`, `who`, `history`,
/// `inbox`) to answer a resend of it; a larger result is not kept, and the resend is told
/// to ask again (`ChatError::NotHeld`). A read changes nothing, so asking again is safe.
pub const HELD_REPLY_MAX: usize = 64 * 1024;
/// Bytes all of one user's sessions keep of read-only results together (the same rule past
/// it). Every other reply is small and always kept (NOTEBOOK, cached replies).
pub const HELD_PER_USER_MAX: usize = 256 * 1024;
/// A user is online (`who`) while one of their open sessions made a request within this
/// long (clients renew it with `Op::Heartbeat`); `cluster.toml` may set another value.
pub const PRESENCE_MS_DEFAULT: u64 = 60_000;
/// An open session with no request for this long is closed (its client died without
/// logging out; a live client renews far more often).
pub const SESSION_IDLE_MAX_MS: u64 = 60 * 60 * 1000;
/// A session id is the client's clock (µs) when it began. A session may only be opened
/// while that is within this window of the committed time; closed sessions are forgotten
/// once they are older than the window, since their requests can no longer be replayed.
pub const SESSION_WINDOW_MS: u64 = 60 * 60 * 1000;

/// The committed context of one operation: where and when it was ordered. Time comes from
/// here, never from a clock, so every replica computes the same result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Context {
    /// Log height that orders this operation (the block's height in a replicated log).
    pub height: u64,
    /// Its place within that height (a block holds many requests). A separate field, never
    /// packed into `height`: a block of any size cannot make heights collide.
    pub position: u64,
    /// Committed time in milliseconds since the Unix epoch (non-decreasing along the log).
    pub time_ms: u64,
}

/// One authenticated request: the signature was checked before it reached the state
/// machine, against the key of `user` (or the key inside `CreateAccount`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub user: String,
    pub session: u64,
    pub seq: u64,
    pub op: Op,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    CreateAccount { public_key: [u8; 32] },
    Login,
    Logout,
    ListAccounts { pattern: String, after: String, limit: u32 },
    Send { to: String, text: String },
    Read { max: u32 },
    MarkRead { ids: Vec<u64> },
    DeleteMessages { ids: Vec<u64> },
    DeleteAccount,
    /// Users with an open session, by name, a page at a time.
    Who { after: String, limit: u32 },
    /// The messages between the caller and `with`, both directions, newest first from
    /// below message id `before` (0: from the newest).
    History { with: String, before: u64, limit: u32 },
    /// The caller's conversations (who wrote to them, and to whom they wrote), the latest
    /// first, with how many of each one's messages are unread: at most `limit`.
    Inbox { limit: u32 },
    /// Refuse (`unblock`: accept again) messages from the account now named `user`; with
    /// an empty `user`, only list who is blocked. Answered with the block list.
    Block { user: String, unblock: bool },
    /// "Still here": keeps the session online (`PRESENCE_MS_DEFAULT`) and open.
    Heartbeat,
}

impl Op {
    /// Operations that change nothing in the state but the session's record: their result
    /// may be dropped from the reply cache (a resend is told to ask again).
    pub fn reads_only(&self) -> bool {
        matches!(self, Op::ListAccounts { .. } | Op::Who { .. } | Op::History { .. } | Op::Inbox { .. })
    }

    /// Operations that may open a session; every other one needs an open session.
    pub fn opens_session(&self) -> bool {
        matches!(self, Op::CreateAccount { .. } | Op::Login)
    }

    pub fn name(&self) -> &'static str {
        match self {
            Op::CreateAccount { .. } => "create",
            Op::Login => "login",
            Op::Logout => "logout",
            Op::ListAccounts { .. } => "list",
            Op::Send { .. } => "send",
            Op::Read { .. } => "read",
            Op::MarkRead { .. } => "mark-read",
            Op::DeleteMessages { .. } => "delete",
            Op::DeleteAccount => "delete-account",
            Op::Who { .. } => "who",
            Op::History { .. } => "history",
            Op::Inbox { .. } => "inbox",
            Op::Block { user, .. } if user.is_empty() => "blocked",
            Op::Block { unblock: false, .. } => "block",
            Op::Block { unblock: true, .. } => "unblock",
            Op::Heartbeat => "heartbeat",
        }
    }
}

/// A stored message. It lives in the recipient's mailbox; the sender keeps no copy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: u64,
    pub from: String,
    /// Account numbers are never reused, so a message from a deleted account is never
    /// mistaken for one from a later account that took the same name.
    pub from_account: u64,
    pub to: String,
    pub time_ms: u64,
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    AccountCreated { account: u64 },
    LoggedIn { unread: u64 },
    LoggedOut,
    /// `total`: accounts in the cluster (images older than the field read it as 0).
    Accounts {
        names: Vec<String>,
        next: Option<String>,
        #[serde(default)]
        total: u64,
    },
    /// `who`: users with an open session; `total` of them.
    Online { names: Vec<String>, next: Option<String>, total: u64 },
    /// `history`: oldest first; `before` is the cursor for older messages, if any.
    History { messages: Vec<Message>, before: Option<u64> },
    /// `inbox`: senders, the latest first; `unread` in the whole mailbox; `complete` when
    /// the walk saw every message (else only the newest `LIST_SCAN_MAX` were looked at).
    Inbox { senders: Vec<InboxEntry>, unread: u64, complete: bool },
    Sent { id: u64 },
    Messages { messages: Vec<Message>, unread_left: u64 },
    MarkedRead { count: u64 },
    Deleted { count: u64 },
    AccountDeleted { unread_dropped: u64 },
    /// The caller's block list after a block, unblock or list: names as they were when
    /// blocked, in block order.
    Blocked { names: Vec<String> },
    /// A heartbeat was applied: the session is online until `until_ms` (committed time).
    Alive { until_ms: u64 },
    Failed(ChatError),
}

/// One conversation in an `inbox` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxEntry {
    /// The other person (who wrote, or to whom the caller wrote).
    pub from: String,
    /// Their messages not yet read (among those the walk looked at).
    pub unread: u64,
    /// Their newest message: its id and time.
    pub newest: u64,
    pub time_ms: u64,
}

/// The reply to one request, as the state machine decided it at `height`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    pub height: u64,
    pub outcome: Outcome,
}

/// Everything a request can be refused for. Each has a stable code and one readable line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ChatError {
    #[error("invalid user name {}: use 1 to 32 letters, digits, '_', '-' or '.'", quote(.0))]
    InvalidName(String),
    #[error("the name {} is taken", quote(.0))]
    NameTaken(String),
    #[error("no account named {}", quote(.0))]
    UnknownUser(String),
    #[error("not logged in: log in first")]
    NotLoggedIn,
    #[error("this session was closed (logout, account deleted, or too many sessions): log in again")]
    SessionClosed,
    #[error("session start time is more than an hour away from the cluster's time: check this machine's clock")]
    SessionClockSkew,
    #[error("too many logins: {SESSIONS_PER_USER_MAX} sessions of this account began within the last hour or two; try again later")]
    TooManySessions,
    #[error("request {seq} was already applied in this session (replay refused)")]
    Replayed { seq: u64 },
    #[error("replayed: the result of request {seq} is no longer held (results past {HELD_REPLY_MAX} bytes a session, {HELD_PER_USER_MAX} a user, are not kept for resends); ask again")]
    NotHeld { seq: u64 },
    #[error("message text is empty")]
    EmptyText,
    #[error("message text is {0} bytes; the limit is 65536")]
    TextTooLong(usize),
    #[error("invalid pattern {}: use name characters with '*' and '?', at most 64", quote(.0))]
    InvalidPattern(String),
    #[error("invalid limit {0}: use 1 to 100")]
    InvalidLimit(u32),
    #[error("no message ids given")]
    NoIds,
    #[error("too many message ids ({0}); the limit is 1000")]
    TooManyIds(usize),
    #[error("message {0} is not in your mailbox")]
    NoSuchMessage(u64),
    #[error("the public key is not a valid ed25519 key")]
    InvalidKey,
    #[error("this cluster holds {ACCOUNTS_MAX} accounts, its limit: no more can be created")]
    TooManyAccounts,
    #[error("{} does not accept messages from you", quote(.0))]
    NotAccepted(String),
    #[error("{} has {UNREAD_FROM_ONE_MAX} unread messages (or 16 MiB) from you waiting: send more once some are read", quote(.0))]
    TooManyUnread(String),
    #[error("you cannot block yourself")]
    BlockYourself,
    #[error("you block {BLOCKED_MAX} accounts, the limit: unblock one first")]
    TooManyBlocked,
}

impl ChatError {
    /// Stable machine-readable code (for `--json` and for tests).
    pub fn code(&self) -> &'static str {
        match self {
            ChatError::InvalidName(_) => "invalid_name",
            ChatError::NameTaken(_) => "name_taken",
            ChatError::UnknownUser(_) => "unknown_user",
            ChatError::NotLoggedIn => "not_logged_in",
            ChatError::SessionClosed => "session_closed",
            ChatError::SessionClockSkew => "clock_skew",
            ChatError::TooManySessions => "too_many_sessions",
            ChatError::Replayed { .. } => "replayed",
            ChatError::NotHeld { .. } => "result_not_held",
            ChatError::EmptyText => "empty_text",
            ChatError::TextTooLong(_) => "text_too_long",
            ChatError::InvalidPattern(_) => "invalid_pattern",
            ChatError::InvalidLimit(_) => "invalid_limit",
            ChatError::NoIds => "no_ids",
            ChatError::TooManyIds(_) => "too_many_ids",
            ChatError::NoSuchMessage(_) => "no_such_message",
            ChatError::InvalidKey => "invalid_key",
            ChatError::TooManyAccounts => "too_many_accounts",
            ChatError::NotAccepted(_) => "not_accepted",
            ChatError::TooManyUnread(_) => "too_many_unread",
            ChatError::BlockYourself => "block_yourself",
            ChatError::TooManyBlocked => "too_many_blocked",
        }
    }
}

/// A user-supplied string in double quotes for a reply text, the same on every replica and
/// toolchain: printable ASCII as is; `"`, `\` and everything else as `\u{hex}`. (Rust's
/// `{:?}` escaping has changed between versions; replies must match byte for byte.)
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if (c.is_ascii_graphic() || c == ' ') && c != '"' && c != '\\' {
            out.push(c);
        } else {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
    }
    out.push('"');
    out
}

/// User names: 1..=32 of ASCII letters, digits, `_`, `-`, `.`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= NAME_LEN_MAX
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Names are unique without regard to case, so "Alice" cannot pose as "alice".
pub fn folded(name: &str) -> String {
    name.to_ascii_lowercase()
}
