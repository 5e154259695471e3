//! Simulated clients: each sends its operations one at a time to every replica, resends
//! after a timeout, and accepts a result with the real client voting rule (`Tally`).

use prost::Message as _;

use crate::chat::Op;
use crate::client::Tally;
use crate::rng::Rng;
use crate::{pb, wire};

/// An operation a client accepted: what the checkers compare with the committed history.
#[derive(Clone, Debug)]
pub struct Accepted {
    pub client: usize,
    pub digest: [u8; 32],
    pub height: u64,
    pub outcome: Vec<u8>,
    pub submitted_ms: u64,
    pub accepted_ms: u64,
}

pub struct Pending {
    pub bytes: Vec<u8>,
    pub digest: [u8; 32],
    pub tally: Tally,
    pub submitted_ms: u64,
}

pub struct SimClient {
    pub id: usize,
    pub user: String,
    session: u64,
    seq: u64,
    pub ops_left: usize,
    pub current: Option<Pending>,
    pub accepted: Vec<Accepted>,
}

pub fn user_name(client: usize) -> String {
    format!("u{client}")
}

/// A simulated user's key (the simulator's request signatures are keyed hashes of it).
pub fn public_key(client: usize) -> [u8; 32] {
    [client as u8 + 1; 32]
}

/// A simulated request's bytes: `op` as `user`'s, signed with `key` (a keyed hash).
pub fn signed_request(user: &str, session: u64, seq: u64, op: &Op, key: &[u8; 32]) -> Vec<u8> {
    let body = pb::RequestBody { cluster: super::node::CLUSTER.into(), user: user.into(), session, seq, op: Some(wire::encode_op(op)) }
        .encode_to_vec();
    let signature = crate::execute::SimRequests::sign(key, &body);
    pb::SignedRequest { body, signature }.encode_to_vec()
}

impl SimClient {
    pub fn new(id: usize, ops: usize, start_ms: u64) -> Self {
        SimClient {
            id,
            user: user_name(id),
            session: start_ms * 1000 + id as u64,
            seq: 0,
            ops_left: ops,
            current: None,
            accepted: Vec::new(),
        }
    }

    /// The next operation, as signed-request bytes.
    pub fn next_op(&mut self, rng: &mut Rng, clients: usize, quorum: usize, now: u64) -> Option<&Pending> {
        if self.current.is_some() || self.ops_left == 0 {
            return self.current.as_ref();
        }
        self.ops_left -= 1;
        self.seq += 1;
        let op = if self.seq == 1 {
            Op::CreateAccount { public_key: public_key(self.id) }
        } else {
            match rng.below(10) {
                0..=5 => Op::Send { to: user_name(rng.below(clients as u64) as usize), text: format!("m{}", rng.below(1000)) },
                6..=8 => Op::Read { max: 5 },
                _ => Op::ListAccounts { pattern: "*".into(), after: String::new(), limit: 10 },
            }
        };
        let bytes = signed_request(&self.user, self.session, self.seq, &op, &public_key(self.id));
        let digest = crate::consensus::digest(&bytes);
        self.current = Some(Pending { bytes, digest, tally: Tally::new(quorum, [0; 32]), submitted_ms: now });
        self.current.as_ref()
    }

    /// Counts one replica's reply; true when the operation is now accepted.
    pub fn on_reply(&mut self, replica: usize, digest: [u8; 32], height: u64, outcome: pb::Outcome, now: u64) -> bool {
        let Some(pending) = &mut self.current else { return false };
        if pending.digest != digest {
            return false;
        }
        let Ok(Some(agreed)) = pending.tally.add_vote(replica, height, outcome) else { return false };
        self.accepted.push(Accepted {
            client: self.id,
            digest,
            height: agreed.height,
            outcome: agreed.outcome.encode_to_vec(),
            submitted_ms: pending.submitted_ms,
            accepted_ms: now,
        });
        self.current = None;
        true
    }

    pub fn done(&self) -> bool {
        self.ops_left == 0 && self.current.is_none()
    }
}
