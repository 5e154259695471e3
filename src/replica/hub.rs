//! Live delivery: the streams of users who are subscribed at this replica, and the fan-out
//! of each committed message to its recipient's streams.

use std::collections::HashMap;

use prost::Message as _;
use tokio::sync::mpsc;
use tonic::Status;

use crate::chat;
use crate::crypto::{SigningKey, TAG_DELIVERY, sign};
use crate::{pb, wire};

pub type DeliverySender = mpsc::Sender<Result<pb::SignedDelivery, Status>>;

/// Deliveries a slow subscriber may fall behind by before it is dropped (it can reconnect,
/// and the messages stay unread in the mailbox meanwhile).
pub const STREAM_BUFFER: usize = 256;
/// Streams one user may hold at one replica.
const STREAMS_PER_USER_MAX: usize = 16;

#[derive(Default)]
pub struct Hub {
    streams: HashMap<String, Vec<DeliverySender>>,
}

impl Hub {
    pub fn add(&mut self, user: &str, stream: DeliverySender) {
        let streams = self.streams.entry(user.to_owned()).or_default();
        streams.retain(|s| !s.is_closed());
        if streams.len() >= STREAMS_PER_USER_MAX {
            streams.remove(0);
        }
        streams.push(stream);
    }

    /// Signs the delivery once and offers it to every stream of the recipient.
    pub fn deliver(&mut self, replica: &str, key: &SigningKey, height: u64, message: &chat::Message) {
        let body = pb::DeliveryBody { replica: replica.into(), height, message: Some(wire::encode_message(message)), closed: None };
        self.offer(key, &message.to, body);
    }

    /// Tells the user's streams that a committed request closed one of its sessions.
    pub fn session_closed(&mut self, replica: &str, key: &SigningKey, height: u64, user: &str, session: u64, reason: &str) {
        let closed = pb::SessionClosed { user: user.into(), session, reason: reason.into() };
        self.offer(key, user, pb::DeliveryBody { replica: replica.into(), height, message: None, closed: Some(closed) });
    }

    fn offer(&mut self, key: &SigningKey, user: &str, body: pb::DeliveryBody) {
        let Some(streams) = self.streams.get_mut(user) else { return };
        let body = body.encode_to_vec();
        let signature = sign(key, TAG_DELIVERY, &body);
        let delivery = pb::SignedDelivery { body, signature };
        streams.retain(|s| s.try_send(Ok(delivery.clone())).is_ok());
        if streams.is_empty() {
            self.streams.remove(user);
        }
    }

    /// A deleted account's streams end.
    pub fn drop_user(&mut self, user: &str) {
        self.streams.remove(user);
    }
}
