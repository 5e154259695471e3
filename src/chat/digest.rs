//! The state digest: sha256 over a canonical encoding of the whole chat state.
//!
//! Two replicas that applied the same requests at the same heights have the same digest; a
//! snapshot's digest is checked after it is loaded. The encoding is only ever hashed, never
//! decoded, so it only needs to be unambiguous: every variable-length field carries its
//! length, every collection its count, in the map's (sorted) order.
//!
//! ```text
//! "quintet/state/v1" height time_ms next_message_id next_account
//! n_accounts { name number public_key created_ms
//!              n_messages { id from from_account time_ms unread:u8 text } }
//! n_sessions { user session account last_seq open:u8 reply_json request_digest }
//! [ "blocked" n_blocking { name n { number name } } ]   only when some account blocks one
//! [ "active" n { user session active_ms } ]   sessions whose last activity is not their start
//! [ "hidden" n { id hidden } ]               messages deleted by their recipient or sender
//! integers: u64 little-endian; strings and bytes: u64 length, then the bytes
//! ```
//! The block lists come last, and only when there are some, so a state without them has
//! the digest it had before they existed (older images still check).

use sha2::{Digest, Sha256};

use super::state::ChatState;

/// Bytes gathered before each hasher update (updates per field would dominate).
const CHUNK: usize = 64 * 1024;

#[cfg(test)]
thread_local! {
    /// Bytes this thread's digests hashed (tests: what a status computation walks).
    pub static WALKED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

struct Encoder {
    hasher: Sha256,
    buf: Vec<u8>,
}

impl Encoder {
    fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u64(b.len() as u64);
        self.buf.extend_from_slice(b);
        if self.buf.len() >= CHUNK {
            self.flush();
        }
    }
    fn flush(&mut self) {
        #[cfg(test)]
        WALKED.with(|w| w.set(w.get() + self.buf.len() as u64));
        self.hasher.update(&self.buf);
        self.buf.clear();
    }
}

impl ChatState {
    pub fn digest(&self) -> [u8; 32] {
        let mut e = Encoder { hasher: Sha256::new(), buf: Vec::with_capacity(CHUNK * 2) };
        e.bytes(b"quintet/state/v1");
        for v in [self.height, self.time_ms, self.next_message_id, self.next_account] {
            e.u64(v);
        }
        e.u64(self.accounts.len() as u64);
        for (name, account) in &self.accounts {
            e.bytes(name.as_bytes());
            e.u64(account.number);
            e.bytes(&account.public_key);
            e.u64(account.created_ms);
            e.u64(account.mailbox.len() as u64);
            for (id, m) in &account.mailbox {
                e.u64(*id);
                e.bytes(m.from.as_bytes());
                e.u64(m.from_account);
                e.u64(m.time_ms);
                e.u64(account.unread.contains(id) as u64);
                e.bytes(m.text.as_bytes());
            }
        }
        e.u64(self.sessions.len() as u64);
        for ((user, session), r) in self.sessions.iter() {
            e.bytes(user.as_bytes());
            for v in [*session, r.account, r.last_seq, r.open as u64] {
                e.u64(v);
            }
            let reply = serde_json::to_vec(&r.reply).expect("replies always encode");
            e.bytes(&reply);
            e.bytes(&r.request);
        }
        // Presence: a session's last activity, where it is not its start time (which a
        // snapshot from before presence gives every session).
        let active: Vec<_> = self.sessions.iter().filter(|((_, session), r)| r.active_ms != session / 1000).collect();
        if !active.is_empty() {
            e.bytes(b"active");
            e.u64(active.len() as u64);
            for ((user, session), r) in active {
                e.bytes(user.as_bytes());
                e.u64(*session);
                e.u64(r.active_ms);
            }
        }
        // Messages one side deleted for itself (none in a state from before that existed).
        let hidden: Vec<(u64, u8)> =
            self.accounts.values().flat_map(|a| a.mailbox.iter().filter(|(_, m)| m.hidden != 0).map(|(id, m)| (*id, m.hidden))).collect();
        if !hidden.is_empty() {
            e.bytes(b"hidden");
            e.u64(hidden.len() as u64);
            for (id, flags) in hidden {
                e.u64(id);
                e.u64(flags as u64);
            }
        }
        let blocking: Vec<_> = self.accounts.iter().filter(|(_, a)| !a.blocked.is_empty()).collect();
        if !blocking.is_empty() {
            e.bytes(b"blocked");
            e.u64(blocking.len() as u64);
            for (name, account) in blocking {
                e.bytes(name.as_bytes());
                e.u64(account.blocked.len() as u64);
                for (number, blocked) in &account.blocked {
                    e.u64(*number);
                    e.bytes(blocked.as_bytes());
                }
            }
        }
        e.flush();
        e.hasher.finalize().into()
    }
}
