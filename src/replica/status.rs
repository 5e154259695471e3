//! What the driver loop publishes after each batch: the status the `Status` call answers
//! (without queuing behind work), a line when the view changes, and at debug level the
//! core's state every few seconds.

use std::time::{Duration, Instant};

use super::driver::Driver;
use crate::pb;

/// How often the state digest may be refreshed under load.
const STATUS_EVERY: Duration = Duration::from_millis(300);
/// How often the core's state is traced (at debug level).
const DESCRIBE_EVERY: Duration = Duration::from_secs(2);

impl Driver {
    /// After a batch (`idle`: it committed nothing): publish the status, say so when the
    /// view changed, and trace the core now and then.
    pub(super) fn publish(&mut self, idle: bool) {
        if self.described_at.elapsed() >= DESCRIBE_EVERY {
            self.described_at = Instant::now();
            tracing::debug!(core = %self.core.describe(), waiting = self.waiting.len(), "progress");
        }
        let status = self.status(idle);
        let view = status.view;
        let before = std::mem::replace(&mut *self.status.lock().unwrap_or_else(|e| e.into_inner()), status).view;
        if view != before {
            tracing::info!(view, leader = %self.ids[self.core.leader(view) as usize], height = self.core.committed_height(), "entered a new view");
        }
    }

    /// The status as of now. The state digest (a walk of the whole state) is refreshed
    /// after a batch that committed nothing, or at most every `STATUS_EVERY` under load.
    pub fn status(&mut self, idle: bool) -> pb::StatusReply {
        let height = self.core.committed_height();
        let stale = self.status_digest_height != Some(height);
        if stale && (idle || self.status_at.is_none_or(|t| t.elapsed() >= STATUS_EVERY)) {
            self.status_at = Some(Instant::now());
            self.status_digest = self.chat.digest();
            self.status_digest_height = Some(height);
        }
        let view = self.core.view();
        pb::StatusReply {
            replica: self.id.clone(),
            height: self.core.committed_height(),
            snapshot_height: self.image_height,
            accounts: self.chat.account_count(),
            messages: self.chat.message_count(),
            uptime_ms: 0, // filled in by the status call
            view,
            leader: self.ids.get(self.core.leader(view) as usize).cloned().unwrap_or_default(),
            state_digest: self.status_digest.to_vec(),
            peers_reachable: self.peers.reachable() as u32,
            last_commit_age_ms: self.last_commit.map_or(0, |t| t.elapsed().as_millis() as u64),
            state_height: self.status_digest_height.unwrap_or(0),
            ..Default::default() // cluster and nonce: set per answer by the status call
        }
    }
}
