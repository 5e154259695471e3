//! The gRPC face of a replica: each call becomes a job for the apply loop. What needs no
//! replicated state is done here, on the server's threads: a request is decoded once, and
//! one that is unreadable, for another cluster or forged is refused here, signed.

use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::driver::Job;
use super::hub::STREAM_BUFFER;
use super::keys::Signed;
use crate::crypto::{SigningKey, TAG_REPLY};
use crate::pb::replica_server::Replica;
use crate::{chat, pb, wire};

/// A request the service decoded and checked, for the driver.
pub struct Checked {
    /// What gets ordered.
    pub signed: pb::SignedRequest,
    pub request: chat::Request,
    /// SHA-256 of the request body (what replies and cached replies name).
    pub body_digest: [u8; 32],
    /// Its signature verified with its account's key (false: no such account yet).
    pub verified: bool,
    /// The client's network address, when known (account creations are counted by it).
    pub from: Option<std::net::IpAddr>,
}

/// This replica's reply body for the request whose body hashes to `body_digest`.
pub fn reply_body(replica: &str, body_digest: &[u8; 32], height: u64, outcome: pb::Outcome) -> pb::ReplyBody {
    pb::ReplyBody { replica: replica.to_owned(), request_digest: body_digest.to_vec(), height, outcome: Some(outcome), ..Default::default() }
}

pub fn sign_reply(key: &SigningKey, body: &pb::ReplyBody) -> pb::SignedReply {
    let body = prost::Message::encode_to_vec(body);
    let signature = crate::crypto::sign(key, TAG_REPLY, &body);
    pb::SignedReply { body, signature }
}

pub struct ReplicaService {
    pub jobs: mpsc::Sender<Job>,
    /// Published by the driver loop (answered without queuing behind its work).
    pub status: std::sync::Arc<std::sync::Mutex<pb::StatusReply>>,
    pub started: std::time::Instant,
    /// Signs each status answer (with the asker's nonce), so `status` can tell this
    /// replica from anything else at its address.
    pub key: crate::crypto::SigningKey,
    pub cluster: String,
    /// This replica's id, for the refusals signed here.
    pub id: String,
    /// The accounts' keys: requests are checked here, off the ordering path.
    pub keys: std::sync::Arc<super::keys::AccountKeys>,
    /// Issued here for subscriptions, used up by the driver.
    pub challenges: std::sync::Arc<super::challenges::Challenges>,
    /// What no account pays for, per connection and per host.
    pub unpaid: std::sync::Mutex<super::rate::UnpaidCalls>,
    /// Requests in an account's name that did not verify, per (account, host).
    pub failures: std::sync::Mutex<super::failures::FailedLogins>,
    /// The replicas' ids and keys: a status question signed by one is an operator's.
    pub operators: Vec<(String, crate::crypto::VerifyingKey)>,
    /// Misbehaviour on purpose (`--byzantine`): mute, forged and garbage replies are made
    /// here, where replies are signed.
    pub byzantine: Option<crate::byzantine::Modes>,
    /// Published by the driver loop: the proofs this replica holds.
    pub evidence: std::sync::Arc<std::sync::Mutex<pb::EvidenceReply>>,
    /// When the evidence call was last answered: it may be large (`FILE_BYTES_MAX`), so
    /// it is answered at most every `EVIDENCE_EVERY`, whoever asks.
    pub evidence_at: std::sync::Mutex<Option<std::time::Instant>>,
}

/// Least time between two answers of the evidence call (`quintet evidence`, `status` and
/// `up` ask about once a second).
const EVIDENCE_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// The longest status nonce accepted.
const NONCE_MAX: usize = 32;

fn stopped() -> Status {
    Status::unavailable("replica is stopping")
}

impl ReplicaService {
    /// Lets a call in while its connection and host may still make unpaid calls (a call
    /// whose address is unknown is let in: nothing to count it by).
    fn admit<T>(&self, request: &Request<T>) -> Result<Option<std::net::SocketAddr>, Status> {
        let from = request.remote_addr();
        let now = self.started.elapsed().as_millis() as u64;
        match from {
            Some(address) if !self.unpaid.lock().unwrap_or_else(|e| e.into_inner()).open(address, now) => Err(Status::resource_exhausted(
                "too many calls that no account pays for (unreadable, forged, for unknown accounts, challenges, statuses) from this connection or address; slow down",
            )),
            _ => Ok(from),
        }
    }

    /// Counts a call no account paid for against its connection and host.
    fn charge(&self, from: Option<std::net::SocketAddr>) {
        if let Some(address) = from {
            let now = self.started.elapsed().as_millis() as u64;
            self.unpaid.lock().unwrap_or_else(|e| e.into_inner()).charge(address, now);
        }
    }

    async fn ask<T>(&self, job: impl FnOnce(oneshot::Sender<T>) -> Job) -> Result<T, Status> {
        let (tx, rx) = oneshot::channel();
        self.jobs.send(job(tx)).await.map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())
    }

    /// Decodes and checks a request; the refusals are answered at height 0, as the driver
    /// and execution would (nothing is ordered for them).
    fn check(&self, signed: pb::SignedRequest, from: Option<std::net::IpAddr>) -> Result<Checked, pb::SignedReply> {
        let body_digest = wire::digest(&signed.body);
        let refuse = |code: &str, message: String| sign_reply(&self.key, &reply_body(&self.id, &body_digest, 0, wire::failure(code, message)));
        let (header, request) = wire::decode_request(&signed.body).map_err(|e| refuse(e.code(), e.to_string()))?;
        if header.cluster != self.cluster {
            return Err(refuse("wrong_cluster", wrong_cluster(&header.cluster, &self.cluster)));
        }
        let now = self.started.elapsed().as_millis() as u64;
        let failures = || self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(host) = from
            && let Some(wait_ms) = failures().locked(&request.user, host, now)
        {
            // Refused unchecked: a guess must not learn whether it was right.
            let message = format!(
                "too many requests in the name of {} from this address did not verify (wrong password?); try again in {} s",
                chat::quote(&request.user),
                wait_ms.div_ceil(1000)
            );
            return Err(refuse("too_many_failures", message));
        }
        match (self.keys.check(&signed, &request), from) {
            (Signed::Forged, host) => {
                if let Some(host) = host {
                    failures().failed(&request.user, host, now);
                }
                Err(refuse("bad_signature", "request signature does not verify with the account's key".into()))
            }
            (verdict, host) => {
                if let (Signed::Verified, Some(host)) = (verdict, host) {
                    failures().succeeded(&request.user, host);
                }
                Ok(Checked { signed, request, body_digest, verified: verdict == Signed::Verified, from })
            }
        }
    }
}

impl ReplicaService {
    /// Decodes a subscription and checks what needs no replicated state: its cluster, its
    /// replica, and its signature with the account's key.
    fn check_subscription(&self, signed: &pb::SignedSubscribe) -> Result<pb::SubscribeBody, Status> {
        let body = <pb::SubscribeBody as prost::Message>::decode(signed.body.as_slice())
            .map_err(|e| Status::invalid_argument(format!("malformed subscription: {e}")))?;
        if body.cluster != self.cluster {
            return Err(Status::invalid_argument(format!("subscription is for cluster {}", chat::quote(&body.cluster))));
        }
        let key = self.keys.key(&body.user).ok_or_else(|| Status::not_found(format!("no account named {}", chat::quote(&body.user))))?;
        let key = crate::crypto::public_key(&key).map_err(|e| Status::internal(e.to_string()))?;
        crate::crypto::verify(&key, crate::crypto::TAG_SUBSCRIBE, &signed.body, &signed.signature)
            .map_err(|e| Status::unauthenticated(format!("subscription signature refused: {e}")))?;
        if body.replica != self.id {
            return Err(Status::invalid_argument(format!("subscription is for replica {}", chat::quote(&body.replica))));
        }
        Ok(body)
    }
}

impl ReplicaService {
    /// A signed reply as `--byzantine` sends it: never (mute: the call waits until its
    /// client gives up), with a signature that does not verify (forge), or as bytes that
    /// do not decode (garbage).
    async fn misbehave(&self, mut reply: pb::SignedReply) -> pb::SignedReply {
        use crate::byzantine::Mode;
        let Some(modes) = &self.byzantine else { return reply };
        if modes.has(Mode::Mute) {
            std::future::pending::<()>().await;
        }
        if modes.has(Mode::Forge) {
            reply.signature = crate::byzantine::forge(&reply.signature);
        }
        if modes.has(Mode::Garbage) {
            reply.body = crate::byzantine::garbage(reply.body.len() as u64);
        }
        reply
    }
}

#[tonic::async_trait]
impl Replica for ReplicaService {
    async fn submit(&self, request: Request<pb::SignedRequest>) -> Result<Response<pb::SignedReply>, Status> {
        let from = self.admit(&request)?;
        let checked = self.check(request.into_inner(), from.map(|a| a.ip()));
        // Only a request verified as its account's is paid for (by the account's rate, in
        // the driver); anything else is this connection's.
        if !matches!(&checked, Ok(c) if c.verified) {
            self.charge(from);
        }
        match checked {
            Ok(checked) => {
                let body = self.ask(|reply| Job::Submit { checked, reply }).await?;
                // A request its account's rate refused was not paid for either.
                if matches!(&body.outcome, Some(pb::Outcome { kind: Some(pb::outcome::Kind::Failure(f)) }) if f.code == "rate_limited") {
                    self.charge(from);
                }
                Ok(Response::new(self.misbehave(sign_reply(&self.key, &body)).await))
            }
            Err(refusal) => Ok(Response::new(self.misbehave(refusal).await)),
        }
    }

    type SubscribeStream = ReceiverStream<Result<pb::SignedDelivery, Status>>;

    async fn subscribe(&self, request: Request<pb::SignedSubscribe>) -> Result<Response<Self::SubscribeStream>, Status> {
        self.charge(self.admit(&request)?);
        let body = self.check_subscription(&request.into_inner())?;
        let (stream, deliveries) = mpsc::channel(STREAM_BUFFER);
        self.ask(|reply| Job::Subscribe { body, stream, reply }).await??;
        Ok(Response::new(ReceiverStream::new(deliveries)))
    }

    async fn challenge(&self, request: Request<pb::ChallengeRequest>) -> Result<Response<pb::ChallengeReply>, Status> {
        self.charge(self.admit(&request)?);
        Ok(Response::new(pb::ChallengeReply { challenge: self.challenges.issue().to_vec() }))
    }

    async fn status(&self, request: Request<pb::StatusRequest>) -> Result<Response<pb::SignedStatus>, Status> {
        self.charge(self.admit(&request)?);
        let ask = request.into_inner();
        if ask.nonce.len() > NONCE_MAX {
            return Err(Status::invalid_argument(format!("status nonce of {} bytes; at most {NONCE_MAX}", ask.nonce.len())));
        }
        let operator = !ask.operator.is_empty() && crate::client::is_operator(&self.cluster, &ask, &self.operators);
        let nonce = ask.nonce;
        let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if !operator {
            // The size of the service is the operators' to know.
            (status.accounts, status.messages, status.pid, status.counts_hidden) = (0, 0, 0, true);
        }
        status.uptime_ms = self.started.elapsed().as_millis() as u64;
        status.cluster = self.cluster.clone();
        status.nonce = nonce;
        let body = prost::Message::encode_to_vec(&status);
        let signature = crate::crypto::sign(&self.key, crate::crypto::TAG_STATUS, &body);
        Ok(Response::new(pb::SignedStatus { body, signature }))
    }

    /// Unsigned: every proof checks on its own, and the per-link counts are only claims.
    async fn evidence(&self, request: Request<pb::EvidenceRequest>) -> Result<Response<pb::EvidenceReply>, Status> {
        self.charge(self.admit(&request)?);
        {
            let mut at = self.evidence_at.lock().unwrap_or_else(|e| e.into_inner());
            if at.is_some_and(|t| t.elapsed() < EVIDENCE_EVERY) {
                return Err(Status::resource_exhausted("the evidence call is answered ten times a second at most; try again"));
            }
            *at = Some(std::time::Instant::now());
        }
        Ok(Response::new(self.evidence.lock().unwrap_or_else(|e| e.into_inner()).clone()))
    }
}

/// The refusal of a request made for another cluster tag. The same cluster in another reset
/// epoch (`name#id@epoch`, `config::ClusterConfig::tag`) is told what to do.
pub fn wrong_cluster(theirs: &str, ours: &str) -> String {
    let split = |tag: &str| match tag.rsplit_once('@') {
        Some((cluster, epoch)) if epoch.parse::<u64>().is_ok() => (cluster.to_string(), epoch.parse::<u64>().unwrap_or(0)),
        _ => (tag.to_string(), 0),
    };
    let ((their_cluster, their_epoch), (our_cluster, our_epoch)) = (split(theirs), split(ours));
    if their_cluster != our_cluster {
        return format!("request is for cluster {}, this is {}", chat::quote(theirs), chat::quote(ours));
    }
    if their_epoch < our_epoch {
        format!(
            "this cluster was reset (reset epoch {our_epoch}) after your cluster.toml was written (epoch {their_epoch}): \
             get the new cluster.toml from the cluster's operator (reset.sh wrote it) and start again"
        )
    } else {
        format!(
            "your cluster.toml is from reset epoch {their_epoch}, but this replica runs epoch {our_epoch}: the operator \
             must restart it with the new cluster.toml"
        )
    }
}

#[cfg(test)]
mod wrong_cluster_tests {
    #[test]
    fn an_old_client_is_told_the_cluster_was_reset_and_a_new_one_that_the_replica_is_old() {
        let old = super::wrong_cluster("q#0011", "q#0011@2");
        assert!(old.contains("was reset (reset epoch 2)") && old.contains("new cluster.toml"), "{old}");
        let new = super::wrong_cluster("q#0011@3", "q#0011@2");
        assert!(new.contains("restart it with the new cluster.toml"), "{new}");
        let other = super::wrong_cluster("p#0022", "q#0011@2");
        assert!(other.starts_with("request is for cluster"), "{other}");
    }
}

