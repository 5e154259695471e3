//! Peer messages too large for a frame (a state transfer of up to `IMAGE_MAX`): sent as
//! parts of `PART_MAX` bytes, each in a frame of its own, in order on one stream, and put
//! together at the receiver, which holds only the bytes that arrived.

use prost::Message as _;

use super::peer::{MESSAGE_MAX, PART_MAX, PEER_MESSAGE_MAX, PeerWireError};
use crate::pb;

type Result<T> = std::result::Result<T, PeerWireError>;

/// The batches that carry one encoded message larger than `MESSAGE_MAX`, part by part.
pub fn parts(message: &[u8]) -> impl Iterator<Item = Vec<u8>> + '_ {
    message.chunks(PART_MAX).enumerate().map(|(i, data)| {
        let part = pb::StatePart { total: message.len() as u64, offset: (i * PART_MAX) as u64, data: data.to_vec() };
        pb::PeerBatch { messages: Vec::new(), part: Some(part) }.encode_to_vec()
    })
}

/// One stream's message being put together from its parts. Its buffer grows only with
/// the bytes that arrived (never to a length a part merely claims), and a part out of
/// order, of another length, or of a message that would fit a frame is refused.
#[derive(Default)]
pub struct Reassembly {
    bytes: Vec<u8>,
    total: usize,
    /// Parts taken for the message being put together.
    pub parts: usize,
}

impl Reassembly {
    /// Adds a part; the whole message once its last part is in.
    pub fn add(&mut self, part: pb::StatePart) -> Result<Option<Vec<u8>>> {
        let total = usize::try_from(part.total).unwrap_or(usize::MAX);
        if total > PEER_MESSAGE_MAX {
            return Err(PeerWireError::TooLarge(total, PEER_MESSAGE_MAX));
        }
        if part.offset == 0 {
            (self.bytes, self.total, self.parts) = (Vec::new(), total, 0);
        }
        let fits = self.bytes.len().checked_add(part.data.len()).is_some_and(|end| end <= total);
        if total <= MESSAGE_MAX || total != self.total || part.offset != self.bytes.len() as u64 || part.data.is_empty() || part.data.len() > PART_MAX || !fits {
            *self = Reassembly::default();
            return Err(PeerWireError::Malformed("a message part out of order, or of another length".into()));
        }
        self.bytes.extend_from_slice(&part.data);
        self.parts += 1;
        Ok((self.bytes.len() == total).then(|| std::mem::take(&mut self.bytes)))
    }
}

#[cfg(test)]
#[path = "parts_tests.rs"]
mod tests;
