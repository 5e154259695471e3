//! The apply loop: one thread owns the chat state, the storage and the live-delivery hub.
//!
//! Call order per batch: take every queued job (up to `BATCH_MAX`); admit each request
//! (decode, cluster, signature, replay cache); append the admitted ones to the log and apply
//! them in order; fsync once; only then send the replies and the live deliveries. A reply is
//! never sent for a request that is not durable. If the fsync fails, the replica stops.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prost::Message as _;
use tokio::sync::{mpsc, oneshot};
use tonic::Status;

use super::hub::{DeliverySender, Hub};
use crate::chat::{ChatState, Context, Op, Outcome};
use crate::crypto::{self, SigningKey, TAG_REPLY, TAG_REQUEST, TAG_SUBSCRIBE};
use crate::storage::{LogEntry, Storage, StorageError};
use crate::{pb, wire};

/// Most jobs handled between two fsyncs.
const BATCH_MAX: usize = 512;
/// A subscription must be signed within this long of the replica's clock.
const SUBSCRIBE_SKEW_MAX_MS: u64 = 5 * 60 * 1000;

pub enum Job {
    Submit { request: pb::SignedRequest, reply: oneshot::Sender<pb::SignedReply> },
    Subscribe { request: pb::SignedSubscribe, stream: DeliverySender, reply: oneshot::Sender<Result<(), Status>> },
    Status { reply: oneshot::Sender<pb::StatusReply> },
    Shutdown,
}

pub struct Core {
    pub id: String,
    pub cluster: String,
    pub key: SigningKey,
    pub state: ChatState,
    pub storage: Storage,
    pub hub: Hub,
    pub started: Instant,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_millis() as u64
}

/// A reply waiting for the batch's fsync.
struct Pending {
    reply: oneshot::Sender<pb::SignedReply>,
    body: pb::ReplyBody,
}

impl Core {
    /// Runs until `Shutdown` or until every sender is gone; writes a snapshot on the way out.
    pub fn run(mut self, mut jobs: mpsc::Receiver<Job>) -> Result<(), StorageError> {
        let mut shutdown = false;
        while !shutdown {
            let Some(first) = jobs.blocking_recv() else { break };
            let mut batch = vec![first];
            while batch.len() < BATCH_MAX {
                match jobs.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            let mut pending = Vec::new();
            let mut deliveries = Vec::new();
            let height_before = self.storage.last_height();
            for job in batch {
                match job {
                    Job::Submit { request, reply } => {
                        let body = self.submit(&request, &mut deliveries)?;
                        pending.push(Pending { reply, body });
                    }
                    Job::Subscribe { request, stream, reply } => {
                        let _ = reply.send(self.subscribe(&request, stream));
                    }
                    Job::Status { reply } => {
                        let _ = reply.send(self.status());
                    }
                    Job::Shutdown => shutdown = true,
                }
            }
            if self.storage.last_height() > height_before {
                self.storage.sync()?;
            }
            for Pending { reply, body } in pending {
                let _ = reply.send(self.sign_reply(body));
            }
            for (height, message) in deliveries {
                self.hub.deliver(&self.id, &self.key, height, &message);
            }
            if self.storage.snapshot_due(&self.state) {
                self.storage.write_snapshot(&self.state)?;
            }
        }
        self.storage.write_snapshot(&self.state)?;
        tracing::info!(height = self.state.height(), "snapshot written; replica core stopped");
        Ok(())
    }

    fn sign_reply(&self, body: pb::ReplyBody) -> pb::SignedReply {
        let body = body.encode_to_vec();
        let signature = crypto::sign(&self.key, TAG_REPLY, &body);
        pb::SignedReply { body, signature }
    }

    /// Admits, logs and applies one request; the reply body is sent after the fsync.
    fn submit(
        &mut self,
        signed: &pb::SignedRequest,
        deliveries: &mut Vec<(u64, crate::chat::Message)>,
    ) -> Result<pb::ReplyBody, StorageError> {
        let digest = wire::digest(&signed.body).to_vec();
        let refuse = |code: &str, message: String| pb::ReplyBody {
            replica: self.id.clone(),
            request_digest: digest.clone(),
            height: 0,
            outcome: Some(wire::failure(code, message)),
        };
        let (header, request) = match wire::decode_request(&signed.body) {
            Ok(decoded) => decoded,
            Err(e) => return Ok(refuse(e.code(), e.to_string())),
        };
        if header.cluster != self.cluster {
            let message = format!("request is for cluster {:?}, this is {:?}", header.cluster, self.cluster);
            return Ok(refuse("wrong_cluster", message));
        }
        let key = match &request.op {
            Op::CreateAccount { public_key } => crypto::public_key(public_key),
            _ => match self.state.public_key(&request.user) {
                Some(key) => crypto::public_key(key),
                None => return Ok(refuse("unknown_user", format!("no account named {:?}", request.user))),
            },
        };
        let key = match key {
            Ok(key) => key,
            Err(e) => return Ok(refuse("invalid_key", e.to_string())),
        };
        if let Err(e) = crypto::verify(&key, TAG_REQUEST, &signed.body, &signed.signature) {
            return Ok(refuse("bad_signature", format!("request signature refused: {e}")));
        }
        if let Some(cached) = self.state.cached_reply(&request.user, request.session, request.seq) {
            let (height, outcome) = (cached.height, wire::encode_outcome(&cached.outcome));
            return Ok(pb::ReplyBody { replica: self.id.clone(), request_digest: digest, height, outcome: Some(outcome) });
        }
        if self.state.is_replay(&request.user, request.session, request.seq) {
            let error = crate::chat::ChatError::Replayed { seq: request.seq };
            return Ok(refuse(error.code(), error.to_string()));
        }
        let ctx = Context { height: self.storage.last_height() + 1, position: 0, time_ms: self.state.time_ms().max(now_ms()) };
        self.storage.append(&LogEntry { height: ctx.height, time_ms: ctx.time_ms, bytes: signed.encode_to_vec() })?;
        let applied = self.state.apply(&request, ctx);
        if matches!(applied.reply.outcome, Outcome::AccountDeleted { .. }) {
            self.hub.drop_user(&request.user);
        }
        deliveries.extend(applied.deliveries.into_iter().map(|m| (ctx.height, m)));
        Ok(pb::ReplyBody {
            replica: self.id.clone(),
            request_digest: digest,
            height: applied.reply.height,
            outcome: Some(wire::encode_outcome(&applied.reply.outcome)),
        })
    }

    fn subscribe(&mut self, signed: &pb::SignedSubscribe, stream: DeliverySender) -> Result<(), Status> {
        let body = pb::SubscribeBody::decode(signed.body.as_slice())
            .map_err(|e| Status::invalid_argument(format!("malformed subscription: {e}")))?;
        if body.cluster != self.cluster {
            return Err(Status::invalid_argument(format!("subscription is for cluster {:?}", body.cluster)));
        }
        let key = self
            .state
            .public_key(&body.user)
            .ok_or_else(|| Status::not_found(format!("no account named {:?}", body.user)))?;
        let key = crypto::public_key(key).map_err(|e| Status::internal(e.to_string()))?;
        crypto::verify(&key, TAG_SUBSCRIBE, &signed.body, &signed.signature)
            .map_err(|e| Status::unauthenticated(format!("subscription signature refused: {e}")))?;
        if body.time_ms.abs_diff(now_ms()) > SUBSCRIBE_SKEW_MAX_MS {
            return Err(Status::unauthenticated("subscription is stale or from the future: check the clock"));
        }
        self.hub.add(&body.user, stream);
        Ok(())
    }

    fn status(&self) -> pb::StatusReply {
        pb::StatusReply {
            replica: self.id.clone(),
            height: self.state.height(),
            snapshot_height: self.storage.snapshot_height(),
            accounts: self.state.account_count(),
            messages: self.state.message_count(),
            uptime_ms: self.started.elapsed().as_millis() as u64,
        }
    }
}
