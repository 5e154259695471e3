//! The chat client's live streams: deliveries a quorum sent, shown as they come (with who
//! delivered them) and marked read once surely shown; session-closed notices.
//!
//! A message is marked read only once it is on the screen: written out, or queued with the
//! line editor and shown by it since (`Shown`). The marks go in batches (one `mark-read`
//! for all shown since the last), between commands, so a user who is also receiving does
//! not wait for one ordered request per message before each command.

use std::time::Duration;

use super::show::Shown;
use super::{ClientError, Op, Session, render};
use crate::client::{Agreement, Live, Subscription};
use crate::pb;

/// How often shown messages are marked read.
pub(super) const MARK_EVERY: Duration = Duration::from_millis(500);

impl Session {
    /// Shows what a quorum told on the live streams.
    pub(super) async fn live(&mut self, live: Live) -> Result<(), ClientError> {
        match live {
            Live::Message(height, message, agreement) => self.delivered(height, message, agreement).await,
            Live::SessionClosed { height, session, reason } => {
                if self.closed_by_server(session) {
                    let value = serde_json::json!({"type": "session_closed", "height": height, "reason": reason});
                    // Logging in again is no help once the account is gone.
                    let next = if reason.contains("deleted") { "create it again, or quit" } else { "log in again" };
                    self.print(&[format!("your session was closed by the server ({reason}): {next}")], &value);
                }
                Ok(())
            }
        }
    }

    /// Shows a live delivery; it is marked read once surely shown (`mark_shown`).
    async fn delivered(&mut self, height: u64, message: pb::Message, agreement: Agreement) -> Result<(), ClientError> {
        let mut value = render::message_json(&message);
        value["type"] = "delivery".into();
        value["height"] = height.into();
        let line = render::message_line(&message);
        let line = if self.colour { format!("\x1b[1mnew\x1b[0m {line}") } else { format!("new {line}") };
        let mut lines = [line];
        self.add_agreement(&mut lines, &mut value, &agreement);
        self.names.lock().unwrap_or_else(|e| e.into_inner()).insert(message.from.clone());
        let shown = self.print(&lines, &value);
        self.unmarked.push((message.id, shown));
        Ok(())
    }

    /// An idle logged-in session says it is still here (`Op::Heartbeat`), so the user stays
    /// online for others, and the session open. `None` when none was due; otherwise what
    /// changed: `Some(Err)` when the replicas stopped answering, `Some(Ok)` when they answer
    /// again. A heartbeat without a quorum is not fatal: nothing the user asked for waits on
    /// it, and it is tried again.
    pub(super) async fn heartbeat_if_idle(&mut self) -> Option<Result<(), ClientError>> {
        if !self.logged_in || self.last_request.elapsed() < self.heartbeat_every {
            return None;
        }
        match self.request(&Op::Heartbeat).await {
            Ok(_) if self.heartbeat_failed => {
                self.heartbeat_failed = false;
                Some(Ok(()))
            }
            Err(e) if !self.heartbeat_failed => {
                self.heartbeat_failed = true;
                Some(Err(e))
            }
            _ => None,
        }
    }

    /// The line client's heartbeat: a change of connection is printed.
    pub(super) async fn keep_alive(&mut self) {
        match self.heartbeat_if_idle().await {
            Some(Ok(())) => {
                self.print(&["connected again".to_string()], &serde_json::json!({"type": "connected"}));
            }
            Some(Err(e)) => {
                self.print(&[format!("disconnected, retrying ({e})")], &serde_json::json!({"type": "disconnected", "message": e.to_string()}));
            }
            None => {}
        }
    }

    /// Marks read, in one request, the live messages surely on the screen by now. One
    /// queued with the line editor and not yet shown (the person quit at that instant)
    /// stays unread: the next `read` has it.
    pub(super) async fn mark_shown(&mut self) -> Result<(), ClientError> {
        let (reading, printer) = (self.reading.clone(), self.printer.as_ref());
        let on_screen = |shown: &Shown| match shown {
            Shown::Written => true,
            Shown::Queued(read, number) => reading.as_ref().is_some_and(|r| {
                r.shown(*read) || (r.current() == Some(*read) && printer.is_some_and(|p| p.taken_long_ago(*number)))
            }),
        };
        let ids: Vec<u64> = self.unmarked.iter().filter(|(_, s)| on_screen(s)).map(|(id, _)| *id).take(crate::chat::IDS_MAX).collect();
        if ids.is_empty() || !self.logged_in {
            return Ok(());
        }
        self.unmarked.retain(|(id, _)| !ids.contains(id));
        self.request(&Op::MarkRead { ids }).await.map(|_| ())
    }
}

pub(super) async fn next_delivery(deliveries: &mut Option<Subscription>) -> Option<Live> {
    match deliveries {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
