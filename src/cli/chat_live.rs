//! The chat client's live streams: deliveries a quorum sent, shown as they come (with who
//! delivered them) and marked read; session-closed notices.

use super::{ClientError, Op, Session, render};
use crate::client::{Agreement, Live, Subscription};
use crate::pb;

impl Session {
    /// Shows what a quorum told on the live streams.
    pub(super) async fn live(&mut self, live: Live) -> Result<(), ClientError> {
        match live {
            Live::Message(height, message, agreement) => self.delivered(height, message, agreement).await,
            Live::SessionClosed { height, session, reason } => {
                if self.closed_by_server(session) {
                    let value = serde_json::json!({"type": "session_closed", "height": height, "reason": reason});
                    self.print(&[format!("your session was closed by the server ({reason}): log in again")], &value);
                }
                Ok(())
            }
        }
    }

    /// Shows a live delivery, then marks it read (the user has seen it).
    async fn delivered(&mut self, height: u64, message: pb::Message, agreement: Agreement) -> Result<(), ClientError> {
        let mut value = render::message_json(&message);
        value["type"] = "delivery".into();
        value["height"] = height.into();
        let line = render::message_line(&message);
        let line = if self.colour { format!("\x1b[1mnew\x1b[0m {line}") } else { format!("new {line}") };
        let mut lines = [line];
        self.add_agreement(&mut lines, &mut value, &agreement);
        self.names.lock().unwrap_or_else(|e| e.into_inner()).insert(message.from.clone());
        self.print(&lines, &value);
        self.request(&Op::MarkRead { ids: vec![message.id] }).await.map(|_| ())
    }
}

pub(super) async fn next_delivery(deliveries: &mut Option<Subscription>) -> Option<Live> {
    match deliveries {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
