//! Executing a committed block on the chat state: the one place where ordered request bytes
//! become chat operations, replies and deliveries. The replica driver and the simulator both
//! call [`execute_block`]; only the signature primitive differs ([`RequestAuth`]).
//!
//! Every request is checked here again, deterministically, against the replicated state at
//! its place in the log: it must decode, name this cluster, and carry a valid signature by
//! the account's key (or by the key a create names). A Byzantine leader can order bytes that
//! no user signed ("send as alice", "delete alice"); they change nothing, and every honest
//! replica answers them with the same refusal at the same height. Voters cannot do this
//! check at vote time: the key that must verify a request may come from a block that is not
//! executed yet (a create in the block just before), so only execution knows it.

use prost::Message as _;

use crate::chat::{self, ChatState, Context, Op};
use crate::{crypto, pb, wire};

/// Checks a user's signature over a request body.
pub trait RequestAuth {
    fn verify(&self, public_key: &[u8; 32], body: &[u8], signature: &[u8]) -> bool;
}

/// The product's rule: ed25519 with the request domain tag, `verify_strict`.
pub struct Ed25519Requests;

impl RequestAuth for Ed25519Requests {
    fn verify(&self, public_key: &[u8; 32], body: &[u8], signature: &[u8]) -> bool {
        crypto::public_key(public_key).is_ok_and(|key| crypto::verify(&key, crypto::TAG_REQUEST, body, signature).is_ok())
    }
}

/// The simulator's rule: a keyed hash of (public key, body). Deterministic and cheap; a
/// simulated replica never computes one in a user's name (the adversary signs only as
/// itself), exactly as with [`crate::consensus::SimCrypto`].
pub struct SimRequests;

impl SimRequests {
    pub fn sign(public_key: &[u8; 32], body: &[u8]) -> Vec<u8> {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(b"quintet/sim-request\0");
        h.update(public_key);
        h.update(body);
        h.finalize()[..16].to_vec()
    }
}

impl RequestAuth for SimRequests {
    fn verify(&self, public_key: &[u8; 32], body: &[u8], signature: &[u8]) -> bool {
        Self::sign(public_key, body) == signature
    }
}

/// One executed request, for the client that sent it.
#[derive(Clone, Debug)]
pub struct Executed {
    pub user: String,
    /// The session the request ran in.
    pub session: u64,
    /// SHA-256 of the signed request bytes as ordered (what the core de-duplicates by).
    pub digest: [u8; 32],
    pub height: u64,
    pub outcome: pb::Outcome,
    /// Messages for the recipients' live streams, once the block is durable.
    pub deliveries: Vec<chat::Message>,
    /// Other sessions of `user` this request closed, and why (told on the user's streams).
    pub closed: Vec<(u64, &'static str)>,
    /// False when the request was refused here and changed nothing (not signed by the
    /// user, another cluster, unknown account).
    pub applied: bool,
    /// The outcome was made by this execution, at `height` (not the reply kept from an
    /// earlier one, as for a request ordered twice): only such an answer is `executed`.
    pub fresh: bool,
}

/// Where and how a block executes.
pub struct BlockContext<'a> {
    pub height: u64,
    pub time_ms: u64,
    pub cluster: &'a str,
    pub auth: &'a dyn RequestAuth,
    /// Planted bug (negative control): skip the cluster and signature checks.
    pub unchecked: bool,
}

/// Executes a committed block: the context from the block itself (what both drivers, the
/// replica's and the simulator's, do with every `Commit`).
pub fn execute_committed(
    state: &mut ChatState,
    block: &crate::consensus::Block,
    cluster: &str,
    auth: &dyn RequestAuth,
    unchecked: bool,
) -> Vec<Executed> {
    let context = BlockContext { height: block.height, time_ms: block.time_ms, cluster, auth, unchecked };
    execute_block(state, &context, &block.requests)
}

/// Executes a committed block's requests in order. Bytes that do not decode as a request
/// are skipped (there is nobody to answer); every other request gets a result.
pub fn execute_block(state: &mut ChatState, block: &BlockContext, requests: &[Vec<u8>]) -> Vec<Executed> {
    let mut out = Vec::with_capacity(requests.len());
    for (i, bytes) in requests.iter().enumerate() {
        let Ok(signed) = pb::SignedRequest::decode(bytes.as_slice()) else { continue };
        let Ok((header, request)) = wire::decode_request(&signed.body) else { continue };
        let digest = crate::consensus::digest(bytes);
        let refuse = |code: &str, message: String| Executed {
            user: request.user.clone(),
            session: request.session,
            digest,
            height: block.height,
            outcome: wire::failure(code, message),
            deliveries: Vec::new(),
            closed: Vec::new(),
            applied: false,
            fresh: true,
        };
        if !block.unchecked {
            if header.cluster != block.cluster {
                out.push(refuse("wrong_cluster", format!("request is for cluster {}", chat::quote(&header.cluster))));
                continue;
            }
            let key = match &request.op {
                Op::CreateAccount { public_key } => Some(*public_key),
                _ => state.public_key(&request.user).copied(),
            };
            let Some(key) = key else {
                out.push(refuse("unknown_user", format!("no account named {}", chat::quote(&request.user))));
                continue;
            };
            if !block.auth.verify(&key, &signed.body, &signed.signature) {
                out.push(refuse("bad_signature", "request signature does not verify with the account's key".into()));
                continue;
            }
        }
        let ctx = Context { height: block.height, position: i as u64 + 1, time_ms: block.time_ms };
        let applied = state.apply_body(&request, &wire::digest(&signed.body), ctx);
        let reason = match applied.reply.outcome {
            chat::Outcome::AccountDeleted { .. } => "the account was deleted",
            _ => "a newer login closed it (too many open sessions)",
        };
        out.push(Executed {
            closed: applied.closed.iter().map(|s| (*s, reason)).collect(),
            session: request.session,
            user: request.user,
            digest,
            height: applied.reply.height,
            outcome: wire::encode_outcome(&applied.reply.outcome),
            deliveries: applied.deliveries,
            applied: true,
            fresh: !applied.cached,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(user: &str, seq: u64, op: Op, key: &[u8; 32], cluster: &str) -> Vec<u8> {
        let body = pb::RequestBody {
            cluster: cluster.into(),
            user: user.into(),
            session: 1_800_000_000_000_000,
            seq,
            op: Some(wire::encode_op(&op)),
        }
        .encode_to_vec();
        let signature = SimRequests::sign(key, &body);
        pb::SignedRequest { body, signature }.encode_to_vec()
    }

    fn at(height: u64) -> BlockContext<'static> {
        BlockContext { height, time_ms: 1_800_000_000_000, cluster: "c", auth: &SimRequests, unchecked: false }
    }

    #[test]
    fn a_request_nobody_signed_changes_nothing_and_is_refused_the_same_way_everywhere() {
        let alice = [1; 32];
        let mut state = ChatState::new();
        let create = signed("alice", 1, Op::CreateAccount { public_key: alice }, &alice, "c");
        let out = execute_block(&mut state, &at(1), &[create]);
        assert!(out[0].applied);
        let digest = state.digest();
        // A Byzantine leader orders "delete alice" signed with another key, and a request
        // of another cluster: both refused, nothing changes.
        let forged = signed("alice", 2, Op::DeleteAccount, &[9; 32], "c");
        let other = signed("alice", 2, Op::DeleteAccount, &alice, "other");
        let out = execute_block(&mut state, &at(2), &[forged, other, b"junk".to_vec()]);
        assert_eq!(out.len(), 2, "undecodable bytes are skipped");
        assert_eq!(out[0].outcome, wire::failure("bad_signature", "request signature does not verify with the account's key"));
        assert!(!out[0].applied && !out[1].applied);
        assert_eq!(state.digest(), digest, "nothing changed");
        assert!(state.account("alice").is_some());
        // With the check planted away, the forgery deletes the account.
        let forged = signed("alice", 2, Op::DeleteAccount, &[9; 32], "c");
        let mut unchecked = at(3);
        unchecked.unchecked = true;
        execute_block(&mut state, &unchecked, &[forged]);
        assert!(state.account("alice").is_none());
    }

    #[test]
    fn a_request_ordered_again_is_answered_from_what_was_kept_and_says_so() {
        // Evidence compares only answers made by the execution itself (`fresh`): a second
        // ordering answers with the reply kept from the first, at the first's height.
        let alice = [1; 32];
        let mut state = ChatState::new();
        let create = signed("alice", 1, Op::CreateAccount { public_key: alice }, &alice, "c");
        let first = execute_block(&mut state, &at(1), std::slice::from_ref(&create));
        assert!(first[0].fresh && first[0].height == 1);
        let again = execute_block(&mut state, &at(2), &[create]);
        assert_eq!((again[0].fresh, again[0].height, &again[0].outcome), (false, 1, &first[0].outcome));
    }

    #[test]
    fn a_block_of_more_than_two_to_the_twenty_requests_executes_and_the_next_block_too() {
        // Review of 2026-11-22: positions packed as height << 20 | position made the
        // heights of such a block collide with the next one's, and the state machine's
        // assertion stopped every replica, again at every restart.
        let key = [2; 32];
        let mut state = ChatState::new();
        let mut junk: Vec<Vec<u8>> = vec![Vec::new(); (1 << 20) + 5];
        junk.push(signed("bob", 1, Op::CreateAccount { public_key: key }, &key, "c"));
        let out = execute_block(&mut state, &at(7), &junk);
        assert_eq!(out.len(), 1);
        assert!(out[0].applied);
        let login = signed("bob", 2, Op::Login, &key, "c");
        let out = execute_block(&mut state, &at(8), &[login]);
        assert!(out[0].applied && out[0].height == 8);
    }
}
