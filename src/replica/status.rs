//! What the driver loop publishes after each batch: the status the `Status` call answers
//! (without queuing behind work), a line when the view changes, and at debug level the
//! core's state every few seconds.
//!
//! A status costs the same whatever the state holds: the state digest it shows is the
//! newest image's, computed where the image was written (off this thread), and the
//! committed block's hash names the history up to `height`.

use std::time::{Duration, Instant};

use super::driver::Driver;
use crate::pb;

/// How often the core's state is traced (at debug level).
const DESCRIBE_EVERY: Duration = Duration::from_secs(2);

impl Driver {
    /// After a batch: publish the status, say so when the view changed, and trace the core
    /// now and then.
    pub(super) fn publish(&mut self) {
        if self.described_at.elapsed() >= DESCRIBE_EVERY {
            self.described_at = Instant::now();
            tracing::debug!(core = %self.core.describe(), waiting = self.waiting.len(), "progress");
        }
        let status = self.status();
        let view = status.view;
        let unverifiable = self.unverifiable_counts();
        {
            let mut published = self.evidence_out.lock().unwrap_or_else(|e| e.into_inner());
            if published.unverifiable != unverifiable {
                published.unverifiable = unverifiable;
            }
        }
        let before = std::mem::replace(&mut *self.status.lock().unwrap_or_else(|e| e.into_inner()), status).view;
        if view != before {
            tracing::info!(view, leader = %self.ids[self.core.leader(view) as usize], height = self.core.committed_height(), "entered a new view");
        }
    }

    /// Peers heard from within the last 4Δ (at least a second).
    fn peers_heard(&self) -> usize {
        let within = Duration::from_millis((4 * self.core.delta_ms()).max(1_000));
        self.heard.iter().flatten().filter(|t| t.elapsed() <= within).count()
    }

    /// The status as of now: counters and the core's position, nothing that walks the state.
    pub fn status(&self) -> pb::StatusReply {
        let view = self.core.view();
        let (state_height, state_digest) = self.store.newest_state();
        pb::StatusReply {
            replica: self.id.clone(),
            height: self.core.committed_height(),
            committed_hash: self.core.committed_hash().to_vec(),
            snapshot_height: state_height,
            accounts: self.chat.account_count(),
            messages: self.chat.message_count(),
            uptime_ms: 0, // filled in by the status call
            view,
            leader: self.ids.get(self.core.leader(view) as usize).cloned().unwrap_or_default(),
            state_digest: state_digest.to_vec(),
            peers_reachable: self.peers.reachable() as u32,
            peers_heard: self.peers_heard() as u32,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            pid: std::process::id(),
            last_commit_age_ms: self.last_commit.map_or(0, |t| t.elapsed().as_millis() as u64),
            state_height,
            byzantine: self.byzantine.as_ref().map_or_else(Vec::new, |b| b.modes.names()),
            ..Default::default() // cluster and nonce: set per answer by the status call
        }
    }
}
