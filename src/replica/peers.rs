//! Replica-to-replica links over tonic (NOTEBOOK "Peers"): per peer, a task that owns one
//! long-lived client stream of signed frames, made lazily and re-made with backoff after
//! the peer dies, fed by a bounded queue — a dead or slow peer only loses its own messages
//! (the protocol retransmits what matters, S10), never blocks the driver or grows memory.
//! Inbound, the `Peer` service checks each frame (sender, addressee, signature, sizes) off
//! the driver thread and hands the decoded messages to the driver.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tonic::transport::{CertificateDer, Endpoint};
use tonic::{Request, Response, Status, Streaming};

use super::driver::Job;
use crate::config::ReplicaEntry;
use crate::consensus::{Message, ReplicaId};
use crate::crypto::tls::TlsIdentity;
use crate::crypto::PeerCrypto;
use crate::pb;
use crate::wire::peer::{BATCH_MAX, PEER_VERSION, FRAME_MESSAGES_MAX, MESSAGE_MAX, Reassembly, decode_batch, decode_message, encode_batch, encode_message, frame_signed_bytes, parts};

/// Encoded messages waiting for one peer (beyond: dropped).
pub const PEER_QUEUE: usize = 4096;
/// A frame's bytes, at most (a state transfer goes alone in its frame).
pub const FRAME_MAX: usize = BATCH_MAX + 64 * 1024;
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
    /// Starts one link task per other replica (`replicas[i]` is replica i), presenting
    /// `identity` to each when the cluster uses TLS.
    pub fn start(me: ReplicaId, replicas: &[ReplicaEntry], identity: Option<&TlsIdentity>, crypto: Arc<PeerCrypto>) -> Peers {
        let links = replicas
            .iter()
            .enumerate()
            .map(|(i, entry)| {
                if i == me as usize {
                    return None;
                }
                let (queue, pending) = mpsc::channel(PEER_QUEUE);
                let up = Arc::new(AtomicBool::new(false));
                let endpoint = match crate::transport::endpoint(entry, identity) {
                    Ok(endpoint) => endpoint,
                    Err(e) => {
                        tracing::error!(peer = %entry.id, address = %entry.address, "peer address is not usable: {e}");
                        return None;
                    }
                };
                tokio::spawn(link(me, i as ReplicaId, endpoint, crypto.clone(), pending, up.clone()));
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

    /// Bytes that are no message of ours, to one peer or all (`--byzantine garbage`).
    pub fn send_bytes(&self, to: Option<ReplicaId>, bytes: Vec<u8>) {
        let bytes: Arc<[u8]> = bytes.into();
        for (i, link) in self.links.iter().enumerate() {
            if let Some(link) = link
                && to.is_none_or(|to| to as usize == i)
            {
                let _ = link.queue.try_send((unix_us(), bytes.clone()));
            }
        }
    }

    /// Peers whose stream is open now.
    pub fn reachable(&self) -> usize {
        self.links.iter().flatten().filter(|l| l.up.load(Ordering::Relaxed)).count()
    }
}

/// One peer's link: connect, stream frames until the stream breaks, back off, again.
async fn link(me: ReplicaId, to: ReplicaId, endpoint: Endpoint, crypto: Arc<PeerCrypto>, mut pending: mpsc::Receiver<Queued>, up: Arc<AtomicBool>) {
    let mut backoff = BACKOFF_MIN;
    let endpoint = endpoint.connect_timeout(Duration::from_secs(1)).tcp_nodelay(true);
    loop {
        if let Ok(channel) = endpoint.connect().await {
            let mut client = pb::peer_client::PeerClient::new(channel).max_encoding_message_size(FRAME_MAX);
            let (frames, outgoing) = mpsc::channel::<pb::PeerFrame>(4);
            let call = tokio::spawn(async move { client.stream(tokio_stream::wrappers::ReceiverStream::new(outgoing)).await });
            up.store(true, Ordering::Relaxed);
            backoff = BACKOFF_MIN;
            // A message too large for a frame (a state transfer) found while batching
            // waits for its own frames.
            let mut large: Option<Queued> = None;
            'stream: loop {
                let (sent_at_us, first) = match large.take() {
                    Some(queued) => queued,
                    None => match pending.recv().await {
                        Some(queued) => queued,
                        None => return,
                    },
                };
                // Parts are made one at a time as they are sent (an image is not copied whole).
                let batches: Box<dyn Iterator<Item = Vec<u8>> + Send + '_> = if first.len() > MESSAGE_MAX {
                    Box::new(parts(&first))
                } else {
                    let mut messages = vec![first.to_vec()];
                    let mut bytes = messages[0].len();
                    while messages.len() < FRAME_MESSAGES_MAX && bytes < (1 << 20) {
                        match pending.try_recv() {
                            Ok(queued) if queued.1.len() > MESSAGE_MAX => {
                                large = Some(queued);
                                break;
                            }
                            Ok((_, m)) => {
                                bytes += m.len();
                                messages.push(m.to_vec());
                            }
                            Err(_) => break,
                        }
                    }
                    Box::new(std::iter::once(encode_batch(messages)))
                };
                for batch in batches {
                    let mut frame = pb::PeerFrame { from: me as u32, to: to as u32, batch, signature: Vec::new(), sent_at_us, version: PEER_VERSION };
                    frame.signature = crypto.sign_frame(&frame_signed_bytes(&frame));
                    if call.is_finished() || frames.send(frame).await.is_err() {
                        break 'stream;
                    }
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
    /// With TLS, each replica's certificate (DER): a peer link must present the one of the
    /// replica whose frames it carries.
    pub certificates: Option<Vec<Vec<u8>>>,
    /// With TLS, the peer streams each replica has open here.
    pub open: Arc<Vec<AtomicUsize>>,
}

/// Peer streams one replica may hold open at a replica at once: its link, and the next
/// one while the old one is being torn down. A frame may be as large as a state image, so
/// this bounds what one lying replica can make a replica hold in memory.
pub const STREAMS_PER_PEER: usize = 2;

/// One open peer stream of a replica, given back when the stream ends.
struct OpenStream(Arc<Vec<AtomicUsize>>, usize);

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0[self.1].fetch_sub(1, Ordering::Relaxed);
    }
}

impl PeerService {
    /// With TLS, the replica whose certificate the link presented; a link with none or
    /// with another is refused.
    pub fn link_of(&self, presented: Option<&[CertificateDer<'static>]>) -> Result<Option<ReplicaId>, Status> {
        let Some(certificates) = &self.certificates else { return Ok(None) };
        let first = presented.and_then(|c| c.first()).map(|c| c.as_ref());
        match first.and_then(|der| certificates.iter().position(|c| c.as_slice() == der)) {
            Some(i) if i != self.me as usize => Ok(Some(i as ReplicaId)),
            _ => {
                tracing::warn!("a peer link without a certificate of another replica, refused");
                Err(Status::unauthenticated("peer links need the certificate of another replica of the cluster"))
            }
        }
    }

    /// Checks one frame that came on the link of `link_of` (with TLS); the decoded
    /// messages (with a message whose last part it carried), or why it is refused.
    pub fn check(&self, frame: &pb::PeerFrame, link_of: Option<ReplicaId>, parts: &mut Reassembly) -> Result<(ReplicaId, Vec<Message>), Status> {
        let from = frame.from as usize;
        if from >= self.n || from == self.me as usize || frame.to != self.me as u32 {
            return Err(Status::permission_denied(format!("frame from {} to {} refused here", frame.from, frame.to)));
        }
        if link_of.is_some_and(|replica| replica as usize != from) {
            return Err(Status::permission_denied(format!("a frame from {} on the link of {}", frame.from, link_of.unwrap_or_default())));
        }
        if frame.version > PEER_VERSION {
            return Err(Status::failed_precondition(format!(
                "replica {from} speaks peer protocol version {}; this replica reads versions up to {PEER_VERSION}: run one release \
                 of quintet on every replica",
                frame.version
            )));
        }
        if !self.crypto.verify_frame(from as ReplicaId, &frame_signed_bytes(frame), &frame.signature) {
            return Err(Status::unauthenticated("peer frame signature does not verify"));
        }
        let refused = |e: crate::wire::peer::PeerWireError| Status::invalid_argument(format!("peer frame refused: {e}"));
        let (messages, part) = decode_batch(&frame.batch).map_err(refused)?;
        let mut messages = messages.iter().map(|m| decode_message(m).map_err(refused)).collect::<Result<Vec<_>, _>>()?;
        if let Some(part) = part
            && let Some(whole) = parts.add(part).map_err(refused)?
        {
            // Only a state transfer is ever that large.
            match decode_message(&whole).map_err(refused)? {
                m @ Message::State(_) => {
                    tracing::info!(from, bytes = whole.len(), parts = parts.parts, "state transfer received in parts");
                    messages.push(m);
                }
                _ => return Err(Status::invalid_argument("peer frame refused: a message in parts that is not a state transfer")),
            }
        }
        Ok((from as ReplicaId, messages))
    }
}

#[tonic::async_trait]
impl pb::peer_server::Peer for PeerService {
    async fn stream(&self, request: Request<Streaming<pb::PeerFrame>>) -> Result<Response<pb::PeerAck>, Status> {
        let link_of = self.link_of(request.peer_certs().as_deref().map(|c| c.as_slice()))?;
        let _open = match link_of {
            Some(replica) => {
                let open = OpenStream(self.open.clone(), replica as usize);
                if self.open[replica as usize].fetch_add(1, Ordering::Relaxed) >= STREAMS_PER_PEER {
                    tracing::warn!(peer = replica, "a peer stream past {STREAMS_PER_PEER} open ones, refused");
                    return Err(Status::resource_exhausted(format!("replica {replica} has {STREAMS_PER_PEER} peer streams open here")));
                }
                Some(open)
            }
            None => None,
        };
        let mut frames = request.into_inner();
        let mut parts = Reassembly::default();
        while let Some(frame) = frames.message().await? {
            let (from, messages) = self.check(&frame, link_of, &mut parts).inspect_err(|e| tracing::warn!(from = frame.from, "{}", e.message()))?;
            if self.jobs.send(Job::Peer { from, messages, sent_at_us: frame.sent_at_us }).await.is_err() {
                return Err(Status::unavailable("replica is stopping"));
            }
        }
        Ok(Response::new(pb::PeerAck {}))
    }
}
