//! The driver's side facing clients: requests in (answered at once, or handed to the
//! core), replies and stream endings out once a block executed, and subscriptions.

use std::time::Instant;

use prost::Message as _;
use tokio::sync::oneshot;
use tonic::Status;

use super::super::hub::DeliverySender;
use super::super::service::{Checked, reply_body};
use super::{Driver, Outbox, WAITING_MAX};

/// Calls one request may have waiting here (a client asks again after each failed call);
/// past it the oldest is dropped.
const WAITERS_PER_REQUEST_MAX: usize = 8;
/// Signatures of relayed requests checked per peer and second (`relay_admitted`).
const RELAY_CHECKS_PER_SECOND: u64 = 1_000;
use crate::consensus::{self, Action, Input};
use crate::execute::Executed;
use crate::{pb, wire};

impl Driver {
    /// Replies to the clients waiting here for what a block executed, and its deliveries.
    pub(super) fn answer(&mut self, executed: Vec<Executed>, out: &mut Outbox) {
        for mut e in executed {
            out.closed.extend(e.closed.iter().map(|(session, reason)| (e.height, e.user.clone(), *session, *reason)));
            match e.outcome.kind {
                Some(pb::outcome::Kind::AccountCreated(_)) => self.keys.update(&self.chat, &e.user),
                Some(pb::outcome::Kind::AccountDeleted(_)) => {
                    self.keys.update(&self.chat, &e.user);
                    out.deleted.push(e.user.clone());
                }
                // A stream lives only as long as its session: logout ends it.
                Some(pb::outcome::Kind::LoggedOut(_)) if e.applied => out.ended.push((e.user.clone(), e.session)),
                _ => {}
            }
            out.deliveries.extend(e.deliveries.drain(..).map(|m| (e.height, m)));
            if matches!(e.outcome.kind, Some(pb::outcome::Kind::Failure(_))) {
                self.refused.keep(e.digest, e.height, e.outcome.clone());
            }
            if let Some((body_digest, _, waiters)) = self.waiting.remove(&e.digest) {
                // The answer of the execution itself (`executed`): what evidence compares.
                let body = pb::ReplyBody { executed: e.fresh, ordered: e.digest.to_vec(), ..self.reply_body(&body_digest, e.height, e.outcome.clone()) };
                for reply in waiters {
                    out.replies.push((reply, body.clone()));
                }
            }
        }
    }

    /// A client request (decoded and checked by the service): an already executed or
    /// replayed one is answered at once, one over its user's rate (or an account creation
    /// over its address's) refused; anything else goes to the core and is answered when it
    /// commits here.
    pub(super) fn submit(&mut self, now: u64, checked: Checked, reply: oneshot::Sender<pb::ReplyBody>, actions: &mut Vec<Action>, out: &mut Outbox) {
        let Checked { signed, request, body_digest, verified, from } = checked;
        let bytes = signed.encode_to_vec();
        let digest = consensus::digest(&bytes);
        // A resend of a request already waiting here (its client asked again: its call
        // failed, or others refused for the moment) waits with it and is charged nothing
        // again; past a few calls, the oldest is let go (its client stopped waiting on it).
        if let Some(waiting) = self.waiting.get_mut(&digest) {
            if waiting.2.len() >= WAITERS_PER_REQUEST_MAX {
                waiting.2.remove(0);
            }
            waiting.2.push(reply);
            if !self.admits(&request.user) {
                return;
            }
            return actions.extend(self.core.handle(now, Input::Request(bytes)));
        }
        if let Some(cached) = self.chat.cached_reply(&request.user, request.session, request.seq, &body_digest) {
            let body = self.reply_body(&body_digest, cached.height, wire::encode_outcome(&cached.outcome));
            return out.replies.push((reply, body));
        }
        // A sequence number below the session's last applied one can only be refused, and
        // the core never orders a request it committed before: answered here. Safe at
        // height 0 because it is monotone: a replica says it only after executing a later
        // request of the session, so three such answers include an honest one that did.
        if self.chat.is_replay(&request.user, request.session, request.seq, &body_digest) {
            let error = crate::chat::ChatError::Replayed { seq: request.seq };
            return out.replies.push((reply, self.refusal(&body_digest, error.code(), error.to_string())));
        }
        // Executed and refused here (a refusal the session record does not keep), or executed
        // so long ago that only the core remembers it: answered here, since the core drops a
        // request it committed. The refusal is the one every replica gave at its height;
        // `replayed` is monotone as above (this replica executed it).
        if let Some((height, outcome)) = self.refused.get(&digest) {
            return out.replies.push((reply, self.reply_body(&body_digest, *height, outcome.clone())));
        }
        if self.core.committed_recently(&digest) {
            // Committed by the core earlier in this batch but not executed yet (the batch's
            // actions run after all its jobs): its execution answers it, as for any waiter.
            // Answering `replayed` here instead made one honest replica differ from the
            // others, which two liars turn into no quorum (the Byzantine nemesis).
            if self.core.committed_height() > self.store.committed_height() {
                let waiting = self.waiting.entry(digest).or_insert_with(|| (body_digest, Instant::now(), Vec::new()));
                waiting.2.push(reply);
                return;
            }
            let message = "this request was ordered already; its answer is no longer kept here (history and read show what it did)";
            return out.replies.push((reply, self.refusal(&body_digest, "replayed", message.into())));
        }
        // Only requests signed by their account count against its rate: anyone can send
        // junk in alice's name, and that must not slow alice down.
        if verified && !self.rates.allow(&request.user, now) {
            let message = format!("too many requests from {} at this replica; slow down", crate::chat::quote(&request.user));
            return out.replies.push((reply, self.refusal(&body_digest, "rate_limited", message)));
        }
        // Creating an account costs the cluster for good (up to `ACCOUNTS_MAX`): a few a
        // minute per network address.
        if let (crate::chat::Op::CreateAccount { .. }, Some(address)) = (&request.op, from)
            && !self.creations.allow_address(address, now)
        {
            let message = format!("too many accounts created from {address} at this replica; try again in a minute");
            return out.replies.push((reply, self.refusal(&body_digest, "rate_limited", message)));
        }
        if self.waiting.len() >= WAITING_MAX {
            return out.replies.push((reply, self.refusal(&body_digest, "busy", "too many requests waiting here; try again".into())));
        }
        let waiting = self.waiting.entry(digest).or_insert_with(|| (body_digest, Instant::now(), Vec::new()));
        waiting.2.push(reply);
        if self.admits(&request.user) {
            actions.extend(self.core.handle(now, Input::Request(bytes)));
        }
    }

    /// Whether this user's requests reach the core (a censor, `--byzantine censor`, leaves
    /// some out: as leader it never orders them, and it relays none).
    pub(super) fn admits(&self, user: &str) -> bool {
        self.byzantine.as_ref().is_none_or(|b| b.admits(user))
    }

    /// A request a peer relayed to this replica as leader (S10) goes to the core only if it
    /// could be pooled, is for this cluster, and its signature is not forged (as a client's
    /// request at the service). Each peer gets at most `RELAY_CHECKS_PER_SECOND` signature
    /// checks: an honest replica relays only what waited half a request timeout.
    pub(super) fn relay_admitted(&mut self, now: u64, from: consensus::ReplicaId, bytes: &[u8]) -> bool {
        match self.core.admit_relay(from, &consensus::digest(bytes)) {
            consensus::RelayAdmission::Drop => return false,
            // The relayer is behind: the core nudges (S10), no signature to check.
            consensus::RelayAdmission::Committed => return true,
            consensus::RelayAdmission::Check => {}
        }
        let Some(checks) = self.relay_checks.get_mut(from as usize) else { return false };
        if checks.left(now, 1_000, RELAY_CHECKS_PER_SECOND) == 0 {
            return false;
        }
        checks.spend(1);
        let Ok(signed) = pb::SignedRequest::decode(bytes) else { return false };
        let Ok((header, request)) = wire::decode_request(&signed.body) else { return false };
        self.admits(&request.user) && header.cluster == self.cluster && self.keys.check(&signed, &request) != super::super::keys::Signed::Forged
    }

    /// This replica's answer to the request whose body hashes to `body_digest`.
    fn reply_body(&self, body_digest: &[u8; 32], height: u64, outcome: pb::Outcome) -> pb::ReplyBody {
        reply_body(&self.id, body_digest, height, outcome)
    }

    /// A refusal answered at once, at height 0 (nothing was ordered).
    fn refusal(&self, body_digest: &[u8; 32], code: &str, message: String) -> pb::ReplyBody {
        self.reply_body(body_digest, 0, wire::failure(code, message))
    }

    /// A subscription the service decoded and checked (cluster, replica, signature): it
    /// must name an open session and carry a challenge this replica issued.
    pub(super) fn subscribe(&mut self, body: &pb::SubscribeBody, stream: DeliverySender) -> Result<(), Status> {
        if !self.chat.session_is_open(&body.user, body.session) {
            return Err(Status::unauthenticated("subscription names no open session of this account: log in first"));
        }
        if !self.challenges.take(&body.challenge) {
            return Err(Status::unauthenticated("subscription challenge unknown, used or expired: ask for a new one"));
        }
        self.hub.add(&body.user, body.session, stream);
        Ok(())
    }
}
