//! The replicas' signatures on protocol messages: ed25519 behind the consensus core's
//! [`Crypto`] trait. The bytes the core signs already begin with a tag per message kind
//! (`consensus::signed`); `TAG_PEER` in front of them sets every protocol signature apart
//! from client requests, replies and deliveries as well.

use super::{SigningKey, VerifyingKey, sign, verify};
use crate::consensus::{Crypto, ReplicaId};

/// A replica-protocol message (vote, proposal, blame, status, checkpoint).
pub const TAG_PEER: &[u8] = b"quintet/peer/v1\0";

pub struct PeerCrypto {
    key: SigningKey,
    /// Replica i's public key at index i.
    peers: Vec<VerifyingKey>,
    /// `TAG_PEER` followed by the cluster id: a signature made in another cluster never
    /// verifies here, even between the same keys.
    domain: Vec<u8>,
}

/// `TAG_PEER`, the cluster id and a zero byte: the domain of every protocol signature.
fn domain(cluster_id: &str) -> Vec<u8> {
    let mut domain = TAG_PEER.to_vec();
    domain.extend_from_slice(cluster_id.as_bytes());
    domain.push(0);
    domain
}

impl PeerCrypto {
    /// `peers[i]` is replica i's public key; `cluster_id` the config's.
    pub fn new(key: SigningKey, peers: Vec<VerifyingKey>, cluster_id: &str) -> Self {
        PeerCrypto { key, peers, domain: domain(cluster_id) }
    }

    /// Signs a peer frame (see `replica::peers`) under the same cluster domain.
    pub fn sign_frame(&self, bytes: &[u8]) -> Vec<u8> {
        let mut domain = self.domain.clone();
        domain.extend_from_slice(b"frame\0");
        sign(&self.key, &domain, bytes)
    }

    pub fn verify_frame(&self, signer: ReplicaId, bytes: &[u8], signature: &[u8]) -> bool {
        let mut domain = self.domain.clone();
        domain.extend_from_slice(b"frame\0");
        self.peers.get(signer as usize).is_some_and(|key| verify(key, &domain, bytes, signature).is_ok())
    }
}

impl Crypto for PeerCrypto {
    fn sign(&self, bytes: &[u8]) -> Vec<u8> {
        sign(&self.key, &self.domain, bytes)
    }

    fn verify(&self, signer: ReplicaId, bytes: &[u8], signature: &[u8]) -> bool {
        self.peers.get(signer as usize).is_some_and(|key| verify(key, &self.domain, bytes, signature).is_ok())
    }
}

/// The replicas' public keys alone: checks protocol signatures (proofs of misbehaviour,
/// `crate::evidence`) for anyone holding cluster.toml. It has no key to sign with: what it
/// "signs" is empty, which no check accepts.
pub struct PeerKeys {
    peers: Vec<VerifyingKey>,
    domain: Vec<u8>,
}

impl PeerKeys {
    pub fn new(peers: Vec<VerifyingKey>, cluster_id: &str) -> Self {
        PeerKeys { peers, domain: domain(cluster_id) }
    }
}

impl Crypto for PeerKeys {
    fn sign(&self, _bytes: &[u8]) -> Vec<u8> {
        Vec::new()
    }

    fn verify(&self, signer: ReplicaId, bytes: &[u8], signature: &[u8]) -> bool {
        self.peers.get(signer as usize).is_some_and(|key| verify(key, &self.domain, bytes, signature).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::{Action, Config, Core, Input, Message, Proposal, QuorumCert, Restored, signed};

    fn keys() -> Vec<SigningKey> {
        (0..5u8).map(|i| SigningKey::from_bytes(&[i + 1; 32])).collect()
    }

    fn crypto(me: usize) -> PeerCrypto {
        let keys = keys();
        PeerCrypto::new(keys[me].clone(), keys.iter().map(|k| k.verifying_key()).collect(), "c1")
    }

    #[test]
    fn a_signature_verifies_for_its_signer_and_bytes_only() {
        let (a, b) = (crypto(0), crypto(1));
        let s = a.sign(b"vote bytes");
        assert!(b.verify(0, b"vote bytes", &s));
        assert!(!b.verify(1, b"vote bytes", &s), "another replica's key");
        assert!(!b.verify(0, b"vote bytez", &s), "other bytes");
        assert!(!b.verify(7, b"vote bytes", &s), "no such replica");
        assert!(!b.verify(0, b"vote bytes", &s[..63]), "truncated");
        // A client-side signature of the same bytes is not a protocol signature.
        let other_domain = crate::crypto::sign(&keys()[0], crate::crypto::TAG_REPLY, b"vote bytes");
        assert!(!b.verify(0, b"vote bytes", &other_domain));
    }

    #[test]
    fn a_signature_from_before_a_reset_never_verifies_after_it() {
        let keys = keys();
        let public: Vec<_> = keys.iter().map(|k| k.verifying_key()).collect();
        let before = PeerCrypto::new(keys[0].clone(), public.clone(), &crate::config::signing_id("c1", 0));
        let after = PeerCrypto::new(keys[1].clone(), public.clone(), &crate::config::signing_id("c1", 1));
        let vote = before.sign(b"vote bytes");
        assert!(!after.verify(0, b"vote bytes", &vote), "reset epoch 1 refuses what epoch 0 signed");
        let again = PeerCrypto::new(keys[1].clone(), public, &crate::config::signing_id("c1", 0));
        assert!(again.verify(0, b"vote bytes", &vote), "the control: the same epoch verifies it");
    }

    #[test]
    fn another_clusters_signature_never_verifies_even_with_the_same_keys() {
        let keys = keys();
        let other = PeerCrypto::new(keys[0].clone(), keys.iter().map(|k| k.verifying_key()).collect(), "c2");
        let here = crypto(1);
        assert!(!here.verify(0, b"vote bytes", &other.sign(b"vote bytes")));
        assert!(!here.verify_frame(0, b"frame", &other.sign_frame(b"frame")));
        assert!(here.verify_frame(0, b"frame", &crypto(0).sign_frame(b"frame")));
        assert!(!here.verify(0, b"frame", &crypto(0).sign_frame(b"frame")), "a frame signature is not a vote");
    }

    #[test]
    fn the_core_votes_on_a_proposal_signed_with_the_leaders_real_key_and_not_on_a_forged_one() {
        let mut block = crate::consensus::Block {
            view: 0,
            height: 1,
            parent: crate::consensus::GENESIS,
            parent_qc: QuorumCert::genesis(),
            proposer: 0,
            time_ms: 1_000,
            requests: vec![b"request".to_vec()],
            hash: crate::consensus::GENESIS,
        };
        block.hash = block.compute_hash();
        let votes = |signer: usize| {
            let signature = crypto(signer).sign(&signed::proposal(&block.hash, None));
            let proposal = Proposal { block: block.clone(), signature, justification: None };
            let mut core = Core::new(Config::new(5, 100), 2, Box::new(crypto(2)), Restored::default());
            let actions = core.handle(1_000, Input::Message(0, Message::Propose(proposal)));
            actions.iter().any(|a| matches!(a, Action::Broadcast(Message::Vote(_))))
        };
        assert!(votes(0), "signed by the leader of view 0");
        assert!(!votes(1), "signed by another replica");
    }
}
