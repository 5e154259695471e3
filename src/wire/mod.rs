//! Between the wire (`pb`) and the chat types: every shape and size check on bytes that came
//! off the network happens here, and every refusal is a `WireError` with a readable line.

pub mod census;
pub mod parts;
pub mod peer;

use prost::Message as _;
use sha2::{Digest, Sha256};

use crate::chat::{self, Op, Outcome};
use crate::pb;

/// Largest request body accepted: a 64 KiB text with room for its envelope.
pub const REQUEST_BODY_MAX: usize = 96 * 1024;
/// gRPC message limit on the server, above every valid message, so oversized input is
/// refused by the transport before it is decoded.
pub const GRPC_MESSAGE_MAX: usize = 256 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error("request body is {0} bytes; the limit is {REQUEST_BODY_MAX}")]
    TooLarge(usize),
    #[error("request body is not a valid protobuf RequestBody: {0}")]
    Malformed(String),
    #[error("request has no operation")]
    NoOp,
    #[error("create_account public key is {0} bytes, not 32")]
    KeyLength(usize),
}

impl WireError {
    pub fn code(&self) -> &'static str {
        match self {
            WireError::TooLarge(_) => "too_large",
            WireError::Malformed(_) | WireError::NoOp | WireError::KeyLength(_) => "malformed",
        }
    }
}

pub fn digest(body: &[u8]) -> [u8; 32] {
    Sha256::digest(body).into()
}

/// Decodes a request body into its header and the chat request it carries.
pub fn decode_request(body: &[u8]) -> Result<(pb::RequestBody, chat::Request), WireError> {
    if body.len() > REQUEST_BODY_MAX {
        return Err(WireError::TooLarge(body.len()));
    }
    let decoded = pb::RequestBody::decode(body).map_err(|e| WireError::Malformed(e.to_string()))?;
    let op = decoded.op.as_ref().and_then(|op| op.kind.as_ref()).ok_or(WireError::NoOp)?;
    let op = match op {
        pb::op::Kind::CreateAccount(c) => {
            Op::CreateAccount { public_key: c.public_key.as_slice().try_into().map_err(|_| WireError::KeyLength(c.public_key.len()))? }
        }
        pb::op::Kind::Login(_) => Op::Login,
        pb::op::Kind::Logout(_) => Op::Logout,
        pb::op::Kind::ListAccounts(l) => {
            Op::ListAccounts { pattern: l.pattern.clone(), after: l.after.clone(), limit: l.limit }
        }
        pb::op::Kind::Send(s) => Op::Send { to: s.to.clone(), text: s.text.clone() },
        pb::op::Kind::Read(r) => Op::Read { max: r.max },
        pb::op::Kind::MarkRead(m) => Op::MarkRead { ids: m.ids.clone() },
        pb::op::Kind::DeleteMessages(d) => Op::DeleteMessages { ids: d.ids.clone() },
        pb::op::Kind::DeleteAccount(_) => Op::DeleteAccount,
        pb::op::Kind::Who(w) => Op::Who { after: w.after.clone(), limit: w.limit },
        pb::op::Kind::History(h) => Op::History { with: h.with.clone(), before: h.before, limit: h.limit },
        pb::op::Kind::Inbox(i) => Op::Inbox { limit: i.limit },
        pb::op::Kind::Block(b) => Op::Block { user: b.user.clone(), unblock: b.unblock },
        pb::op::Kind::Heartbeat(_) => Op::Heartbeat,
    };
    let request = chat::Request { user: decoded.user.clone(), session: decoded.session, seq: decoded.seq, op };
    Ok((decoded, request))
}

/// The wire form of an operation (the client builds requests with it).
pub fn encode_op(op: &Op) -> pb::Op {
    use pb::op::Kind;
    let kind = match op {
        Op::CreateAccount { public_key } => Kind::CreateAccount(pb::CreateAccount { public_key: public_key.to_vec() }),
        Op::Login => Kind::Login(pb::Login {}),
        Op::Logout => Kind::Logout(pb::Logout {}),
        Op::ListAccounts { pattern, after, limit } => {
            Kind::ListAccounts(pb::ListAccounts { pattern: pattern.clone(), after: after.clone(), limit: *limit })
        }
        Op::Send { to, text } => Kind::Send(pb::SendMessage { to: to.clone(), text: text.clone() }),
        Op::Read { max } => Kind::Read(pb::ReadMessages { max: *max }),
        Op::MarkRead { ids } => Kind::MarkRead(pb::MarkRead { ids: ids.clone() }),
        Op::DeleteMessages { ids } => Kind::DeleteMessages(pb::DeleteMessages { ids: ids.clone() }),
        Op::DeleteAccount => Kind::DeleteAccount(pb::DeleteAccount {}),
        Op::Who { after, limit } => Kind::Who(pb::Who { after: after.clone(), limit: *limit }),
        Op::History { with, before, limit } => Kind::History(pb::History { with: with.clone(), before: *before, limit: *limit }),
        Op::Inbox { limit } => Kind::Inbox(pb::Inbox { limit: *limit }),
        Op::Block { user, unblock } => Kind::Block(pb::BlockSender { user: user.clone(), unblock: *unblock }),
        Op::Heartbeat => Kind::Heartbeat(pb::Heartbeat {}),
    };
    pb::Op { kind: Some(kind) }
}

pub fn encode_message(m: &chat::Message) -> pb::Message {
    pb::Message {
        id: m.id,
        from: m.from.clone(),
        from_account: m.from_account,
        to: m.to.clone(),
        time_ms: m.time_ms,
        text: m.text.clone(),
    }
}

pub fn failure(code: &str, message: impl ToString) -> pb::Outcome {
    pb::Outcome { kind: Some(pb::outcome::Kind::Failure(pb::Failure { code: code.into(), message: message.to_string() })) }
}

pub fn encode_outcome(outcome: &Outcome) -> pb::Outcome {
    use pb::outcome::Kind;
    let kind = match outcome {
        Outcome::AccountCreated { account } => Kind::AccountCreated(pb::AccountCreated { account: *account }),
        Outcome::LoggedIn { unread } => Kind::LoggedIn(pb::LoggedIn { unread: *unread }),
        Outcome::LoggedOut => Kind::LoggedOut(pb::LoggedOut {}),
        Outcome::Accounts { names, next, total } => {
            Kind::Accounts(pb::AccountPage { names: names.clone(), next: next.clone().unwrap_or_default(), total: *total })
        }
        Outcome::Online { names, next, total } => {
            Kind::Online(pb::AccountPage { names: names.clone(), next: next.clone().unwrap_or_default(), total: *total })
        }
        Outcome::History { messages, before } => Kind::Conversation(pb::Conversation {
            messages: messages.iter().map(encode_message).collect(),
            before: before.unwrap_or(0),
        }),
        Outcome::Inbox { senders, unread, complete } => Kind::Inbox(pb::InboxPage {
            senders: senders
                .iter()
                .map(|e| pb::InboxEntry { from: e.from.clone(), unread: e.unread, newest: e.newest, time_ms: e.time_ms })
                .collect(),
            unread: *unread,
            complete: *complete,
        }),
        Outcome::Sent { id } => Kind::Sent(pb::MessageSent { id: *id }),
        Outcome::Messages { messages, unread_left } => Kind::Messages(pb::Messages {
            messages: messages.iter().map(encode_message).collect(),
            unread_left: *unread_left,
        }),
        Outcome::MarkedRead { count } => Kind::MarkedRead(pb::Count { count: *count }),
        Outcome::Deleted { count } => Kind::Deleted(pb::Count { count: *count }),
        Outcome::AccountDeleted { unread_dropped } => {
            Kind::AccountDeleted(pb::AccountDeleted { unread_dropped: *unread_dropped })
        }
        Outcome::Blocked { names } => Kind::Blocked(pb::BlockList { names: names.clone() }),
        Outcome::Alive { until_ms } => Kind::Alive(pb::Alive { until_ms: *until_ms }),
        Outcome::Failed(e) => return failure(e.code(), e),
    };
    pb::Outcome { kind: Some(kind) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(op: Option<pb::Op>) -> Vec<u8> {
        pb::RequestBody { cluster: "c".into(), user: "alice".into(), session: 5, seq: 6, op }.encode_to_vec()
    }

    #[test]
    fn every_op_round_trips() {
        let ops = [
            Op::CreateAccount { public_key: [9; 32] },
            Op::Login,
            Op::Logout,
            Op::ListAccounts { pattern: "a*".into(), after: "b".into(), limit: 7 },
            Op::Send { to: "bob".into(), text: "hi".into() },
            Op::Read { max: 3 },
            Op::MarkRead { ids: vec![1, 2] },
            Op::DeleteMessages { ids: vec![3] },
            Op::Block { user: "mallory".into(), unblock: false },
            Op::Block { user: "mallory".into(), unblock: true },
            Op::Block { user: String::new(), unblock: false },
            Op::Heartbeat,
            Op::DeleteAccount,
            Op::Who { after: "a".into(), limit: 5 },
            Op::History { with: "bob".into(), before: 9, limit: 4 },
            Op::Inbox { limit: 8 },
        ];
        for op in ops {
            let (header, request) = decode_request(&body(Some(encode_op(&op)))).unwrap();
            assert_eq!((header.cluster.as_str(), request.session, request.seq), ("c", 5, 6));
            assert_eq!(request.op, op);
        }
    }

    #[test]
    fn bad_bodies_are_refused_with_a_reason() {
        assert_eq!(decode_request(&body(None)), Err(WireError::NoOp));
        assert!(matches!(decode_request(&[0xff, 0xff, 0xff]), Err(WireError::Malformed(_))));
        assert_eq!(decode_request(&vec![0; REQUEST_BODY_MAX + 1]), Err(WireError::TooLarge(REQUEST_BODY_MAX + 1)));
        let short_key = pb::Op { kind: Some(pb::op::Kind::CreateAccount(pb::CreateAccount { public_key: vec![1; 5] })) };
        assert_eq!(decode_request(&body(Some(short_key))), Err(WireError::KeyLength(5)));
    }
}
