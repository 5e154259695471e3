//! Live delivery: the streams of users who are subscribed at this replica, one per open
//! session, and the fan-out of each committed message to its recipient's streams. A
//! delivery is signed and encoded once; every stream gets the same shared bytes.

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
/// Streams one user may hold at one replica (one per open session, and those are fewer).
const STREAMS_PER_USER_MAX: usize = 16;

#[derive(Default)]
pub struct Hub {
    /// Each user's streams, with the session each belongs to.
    streams: HashMap<String, Vec<(u64, DeliverySender)>>,
}

impl Hub {
    /// A new stream for `session` replaces that session's old one (a reconnect).
    pub fn add(&mut self, user: &str, session: u64, stream: DeliverySender) {
        let streams = self.streams.entry(user.to_owned()).or_default();
        streams.retain(|(s, tx)| *s != session && !tx.is_closed());
        if streams.len() >= STREAMS_PER_USER_MAX {
            streams.remove(0);
        }
        streams.push((session, stream));
    }

    /// The session closed (logout, eviction): its stream ends.
    pub fn end_session(&mut self, user: &str, session: u64) {
        if let Some(streams) = self.streams.get_mut(user) {
            streams.retain(|(s, _)| *s != session);
            if streams.is_empty() {
                self.streams.remove(user);
            }
        }
    }

    #[cfg(test)]
    pub fn stream_count(&self, user: &str) -> usize {
        self.streams.get(user).map_or(0, Vec::len)
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
        let signature = sign(key, TAG_DELIVERY, &body).into();
        // `Bytes`: each stream's copy is a reference to the same buffer.
        let delivery = pb::SignedDelivery { body: body.into(), signature };
        streams.retain(|(_, s)| s.try_send(Ok(delivery.clone())).is_ok());
        if streams.is_empty() {
            self.streams.remove(user);
        }
    }

    /// A deleted account's streams end.
    pub fn drop_user(&mut self, user: &str) {
        self.streams.remove(user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(to: &str) -> chat::Message {
        chat::Message { id: 1, from: "bob".into(), from_account: 2, to: to.into(), time_ms: 5, text: "hi".into() }
    }

    #[test]
    fn one_stream_per_session_ended_with_it_and_each_delivery_shared_not_copied() {
        let key = SigningKey::from_bytes(&[3; 32]);
        let mut hub = Hub::default();
        let (old, _old_rx) = mpsc::channel(4);
        let (first, mut first_rx) = mpsc::channel(4);
        let (second, mut second_rx) = mpsc::channel(4);
        hub.add("alice", 10, old);
        hub.add("alice", 10, first); // a reconnect of session 10 replaces its stream
        hub.add("alice", 11, second);
        assert_eq!(hub.stream_count("alice"), 2);
        hub.deliver("A", &key, 7, &message("alice"));
        let (a, b) = (first_rx.try_recv().unwrap().unwrap(), second_rx.try_recv().unwrap().unwrap());
        assert_eq!(a.body.as_ptr(), b.body.as_ptr(), "both streams hold the same bytes");
        hub.end_session("alice", 10);
        assert_eq!(hub.stream_count("alice"), 1);
        hub.deliver("A", &key, 8, &message("alice"));
        assert!(first_rx.try_recv().is_err(), "the logged-out session's stream got nothing more");
        assert!(second_rx.try_recv().is_ok());
        hub.end_session("alice", 11);
        assert_eq!(hub.stream_count("alice"), 0);
    }
}
