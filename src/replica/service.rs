//! The gRPC face of a replica: each call becomes a job for the apply loop.

use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::driver::Job;
use super::hub::STREAM_BUFFER;
use crate::pb;
use crate::pb::replica_server::Replica;

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
}

/// The longest status nonce accepted.
const NONCE_MAX: usize = 32;

fn stopped() -> Status {
    Status::unavailable("replica is stopping")
}

impl ReplicaService {
    async fn ask<T>(&self, job: impl FnOnce(oneshot::Sender<T>) -> Job) -> Result<T, Status> {
        let (tx, rx) = oneshot::channel();
        self.jobs.send(job(tx)).await.map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())
    }
}

#[tonic::async_trait]
impl Replica for ReplicaService {
    async fn submit(&self, request: Request<pb::SignedRequest>) -> Result<Response<pb::SignedReply>, Status> {
        let request = request.into_inner();
        let signed = self.keys.check(&request);
        if signed == super::keys::Signed::Forged {
            // Answered as execution would, at height 0: nothing is ordered for it.
            let outcome = crate::wire::failure("bad_signature", "request signature does not verify with the account's key");
            let body = pb::ReplyBody { replica: self.id.clone(), request_digest: crate::wire::digest(&request.body).to_vec(), height: 0, outcome: Some(outcome) };
            let body = prost::Message::encode_to_vec(&body);
            let signature = crate::crypto::sign(&self.key, crate::crypto::TAG_REPLY, &body);
            return Ok(Response::new(pb::SignedReply { body, signature }));
        }
        self.ask(|reply| Job::Submit { request, signed, reply }).await.map(Response::new)
    }

    type SubscribeStream = ReceiverStream<Result<pb::SignedDelivery, Status>>;

    async fn subscribe(&self, request: Request<pb::SignedSubscribe>) -> Result<Response<Self::SubscribeStream>, Status> {
        let (stream, deliveries) = mpsc::channel(STREAM_BUFFER);
        let request = request.into_inner();
        self.ask(|reply| Job::Subscribe { request, stream, reply }).await??;
        Ok(Response::new(ReceiverStream::new(deliveries)))
    }

    async fn challenge(&self, _: Request<pb::ChallengeRequest>) -> Result<Response<pb::ChallengeReply>, Status> {
        Ok(Response::new(pb::ChallengeReply { challenge: self.challenges.issue().to_vec() }))
    }

    async fn status(&self, request: Request<pb::StatusRequest>) -> Result<Response<pb::SignedStatus>, Status> {
        let nonce = request.into_inner().nonce;
        if nonce.len() > NONCE_MAX {
            return Err(Status::invalid_argument(format!("status nonce of {} bytes; at most {NONCE_MAX}", nonce.len())));
        }
        let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner()).clone();
        status.uptime_ms = self.started.elapsed().as_millis() as u64;
        status.cluster = self.cluster.clone();
        status.nonce = nonce;
        let body = prost::Message::encode_to_vec(&status);
        let signature = crate::crypto::sign(&self.key, crate::crypto::TAG_STATUS, &body);
        Ok(Response::new(pb::SignedStatus { body, signature }))
    }
}
