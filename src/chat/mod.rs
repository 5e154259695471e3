//! The chat state machine: deterministic and pure (no I/O, no clock, no randomness).
//!
//! `ChatState::apply(request, context)` is the only way the state changes. Everything that
//! varies between replicas (time, the order of requests) arrives in the committed
//! `Context`, so replicas that apply the same log reach the same state and `digest`.

mod deletion;
pub(crate) mod digest;
mod ops;
mod restore;
mod sessions;
mod state;
mod types;
mod wildcard;

#[cfg(test)]
pub(crate) mod tests;

pub use restore::{RestoreError, RestoreMeta, Restorer};
pub use sessions::{HELD_SMALL_MAX, Held, HeldRead, SessionRecord};
pub use state::{Account, Applied, ChatState, StoredMessage};
pub use types::*;
pub use wildcard::{matches as wildcard_matches, valid_pattern};
