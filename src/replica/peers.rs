//! Replica-to-replica links over tonic (NOTEBOOK "Peers"): per peer, a task that owns one
//! long-lived client stream of signed frames, made lazily and re-made with backoff after
//! the peer dies, fed by a bounded queue — a dead or slow peer only loses its own messages
//! (the protocol retransmits what matters, S10), never blocks the driver or grows memory.
//! Inbound, the `Peer` service checks each frame (sender, addressee, signature, sizes) off
//! the driver thread and hands the decoded messages to the driver.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tonic::{Request, Response, Status, Streaming};

use super::driver::Job;
use crate::consensus::{Message, ReplicaId};
use crate::crypto::PeerCrypto;
use crate::pb;
use crate::wire::peer::{FRAME_MESSAGES_MAX, PEER_MESSAGE_MAX, decode_batch, decode_message, encode_batch, encode_message, frame_signed_bytes};

/// Encoded messages waiting for one peer (beyond: dropped).
pub const PEER_QUEUE: usize = 4096;
/// A frame's bytes, at most (a state transfer goes alone in its frame).
pub const FRAME_MAX: usize = PEER_MESSAGE_MAX + 64 * 1024;
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// An encoded message and when it was queued (unix µs).
type Queued = (u64, Arc<[u8]>);

/// Now, in unix microseconds (frames carry it; on one host the clocks agree).
pub fn unix_us() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

struct Link {
    queue: mpsc::Sender<Queued>,
    up: Arc<AtomicBool>,
}

/// The outbound side, used by the driver thread.
pub struct Peers {
    links: Vec<Option<Link>>,
}

impl Peers {
    /// Starts one link task per other replica (`addresses[i]` is replica i's).
    pub fn start(me: ReplicaId, addresses: &[String], crypto: Arc<PeerCrypto>) -> Peers {
        let links = addresses
            .iter()
            .enumerate()
            .map(|(i, address)| {
                if i == me as usize {
                    return None;
                }
                let (queue, pending) = mpsc::channel(PEER_QUEUE);
                let up = Arc::new(AtomicBool::new(false));
                tokio::spawn(link(me, i as ReplicaId, address.clone(), crypto.clone(), pending, up.clone()));
                Some(Link { queue, up })
            })
            .collect();
        Peers { links }
    }

    pub fn send(&self, to: ReplicaId, message: &Message) {
        if let Some(Some(link)) = self.links.get(to as usize) {
            let _ = link.queue.try_send((unix_us(), encode_message(message).into()));
        }
    }

    pub fn broadcast(&self, message: &Message) {
        let bytes: Arc<[u8]> = encode_message(message).into();
        let now = unix_us();
        for link in self.links.iter().flatten() {
            let _ = link.queue.try_send((now, bytes.clone()));
        }
    }

    /// Peers whose stream is open now.
    pub fn reachable(&self) -> usize {
        self.links.iter().flatten().filter(|l| l.up.load(Ordering::Relaxed)).count()
    }
}

/// One peer's link: connect, stream frames until the stream breaks, back off, again.
async fn link(me: ReplicaId, to: ReplicaId, address: String, crypto: Arc<PeerCrypto>, mut pending: mpsc::Receiver<Queued>, up: Arc<AtomicBool>) {
    let mut backoff = BACKOFF_MIN;
    let Ok(endpoint) = tonic::transport::Endpoint::from_shared(format!("http://{address}")) else {
        tracing::error!(%address, "peer address is not usable");
        return;
    };
    let endpoint = endpoint.connect_timeout(Duration::from_secs(1)).tcp_nodelay(true);
    loop {
        if let Ok(channel) = endpoint.connect().await {
            let mut client = pb::peer_client::PeerClient::new(channel).max_encoding_message_size(FRAME_MAX);
            let (frames, outgoing) = mpsc::channel::<pb::PeerFrame>(4);
            let call = tokio::spawn(async move { client.stream(tokio_stream::wrappers::ReceiverStream::new(outgoing)).await });
            up.store(true, Ordering::Relaxed);
            backoff = BACKOFF_MIN;
            loop {
                let Some((sent_at_us, first)) = pending.recv().await else { return };
                let mut messages = vec![first.to_vec()];
                let mut bytes = messages[0].len();
                while messages.len() < FRAME_MESSAGES_MAX && bytes < (1 << 20) {
                    match pending.try_recv() {
                        Ok((_, m)) => {
                            bytes += m.len();
                            messages.push(m.to_vec());
                        }
                        Err(_) => break,
                    }
                }
                let batch = encode_batch(messages);
                let mut frame = pb::PeerFrame { from: me as u32, to: to as u32, batch, signature: Vec::new(), sent_at_us };
                frame.signature = crypto.sign_frame(&frame_signed_bytes(&frame));
                if call.is_finished() || frames.send(frame).await.is_err() {
                    break;
                }
            }
            call.abort();
            up.store(false, Ordering::Relaxed);
            tracing::debug!(peer = to, "peer stream ended; reconnecting");
        }
        // The peer is unreachable: what waits for it is stale (the protocol sends again
        // what still matters, S10), and thousands of old messages replayed on its return
        // only make it echo old proposals (NOTEBOOK, the fetch storm).
        while pending.try_recv().is_ok() {}
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// The inbound side: frames from the other replicas.
pub struct PeerService {
    pub me: ReplicaId,
    pub n: usize,
    pub crypto: Arc<PeerCrypto>,
    pub jobs: mpsc::Sender<Job>,
}

impl PeerService {
    /// Checks one frame; the decoded messages, or why it is refused.
    pub fn check(&self, frame: &pb::PeerFrame) -> Result<(ReplicaId, Vec<Message>), Status> {
        let from = frame.from as usize;
        if from >= self.n || from == self.me as usize || frame.to != self.me as u32 {
            return Err(Status::permission_denied(format!("frame from {} to {} refused here", frame.from, frame.to)));
        }
        if !self.crypto.verify_frame(from as ReplicaId, &frame_signed_bytes(frame), &frame.signature) {
            return Err(Status::unauthenticated("peer frame signature does not verify"));
        }
        let messages = decode_batch(&frame.batch).map_err(|e| Status::invalid_argument(format!("peer frame refused: {e}")))?;
        let messages = messages
            .iter()
            .map(|m| decode_message(m).map_err(|e| Status::invalid_argument(format!("peer message refused: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((from as ReplicaId, messages))
    }
}

#[tonic::async_trait]
impl pb::peer_server::Peer for PeerService {
    async fn stream(&self, request: Request<Streaming<pb::PeerFrame>>) -> Result<Response<pb::PeerAck>, Status> {
        let mut frames = request.into_inner();
        while let Some(frame) = frames.message().await? {
            let (from, messages) = self.check(&frame).inspect_err(|e| tracing::warn!(from = frame.from, "{}", e.message()))?;
            if self.jobs.send(Job::Peer { from, messages, sent_at_us: frame.sent_at_us }).await.is_err() {
                return Err(Status::unavailable("replica is stopping"));
            }
        }
        Ok(Response::new(pb::PeerAck {}))
    }
}
