//! The accounts' public keys, shared by the driver (which keeps them in step with the chat
//! state) and the gRPC service, so a request's signature is checked on the service's
//! threads before the request reaches the ordering path. A forged or garbled request is
//! refused there at once; only signed ones are ordered, counted against their user's rate,
//! and executed (where every replica checks the signature again: the refusal here only
//! spares the work).

use std::collections::HashMap;
use std::sync::RwLock;

use crate::chat::{ChatState, Op, Request};
use crate::crypto::{self, TAG_REQUEST};
use crate::pb;

/// What the service learned of a request before handing it on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signed {
    /// Signed by its account's key (or, for a create, by the key it registers).
    Verified,
    /// Not checked here: no such account (execution answers).
    Unchecked,
    /// The signature does not verify with the account's key.
    Forged,
}

#[derive(Default)]
pub struct AccountKeys {
    keys: RwLock<HashMap<String, [u8; 32]>>,
}

impl AccountKeys {
    /// Every account's key, from `chat` (at start and after a state transfer).
    pub fn fill(&self, chat: &ChatState) {
        let all = chat.accounts.iter().map(|(name, a)| (name.clone(), a.public_key)).collect();
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = all;
    }

    /// `user`'s key as `chat` now has it (created, deleted).
    pub fn update(&self, chat: &ChatState, user: &str) {
        let mut keys = self.keys.write().unwrap_or_else(|p| p.into_inner());
        match chat.public_key(user) {
            Some(key) => keys.insert(user.to_owned(), *key),
            None => keys.remove(user),
        };
    }

    /// `user`'s key, if this replica knows the account.
    pub fn key(&self, user: &str) -> Option<[u8; 32]> {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).get(user).copied()
    }

    /// Checks `signed`, whose body decodes to `decoded`.
    pub fn check(&self, signed: &pb::SignedRequest, decoded: &Request) -> Signed {
        let key = match &decoded.op {
            Op::CreateAccount { public_key } => Some(*public_key),
            _ => self.keys.read().unwrap_or_else(|p| p.into_inner()).get(&decoded.user).copied(),
        };
        let Some(key) = key else { return Signed::Unchecked };
        let verified = crypto::public_key(&key)
            .is_ok_and(|key| crypto::verify(&key, TAG_REQUEST, &signed.body, &signed.signature).is_ok());
        if verified { Signed::Verified } else { Signed::Forged }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::Context;
    use crate::crypto::SigningKey;
    use crate::wire;
    use prost::Message as _;

    /// `user`'s request `op`, signed with `key`, and what its body decodes to.
    fn signed(user: &str, op: Op, key: &SigningKey) -> (pb::SignedRequest, Request) {
        let body = pb::RequestBody { cluster: "c".into(), user: user.into(), session: 1, seq: 2, op: Some(wire::encode_op(&op)) }.encode_to_vec();
        let decoded = wire::decode_request(&body).unwrap().1;
        (pb::SignedRequest { signature: crypto::sign(key, TAG_REQUEST, &body), body }, decoded)
    }

    fn check(keys: &AccountKeys, (signed, decoded): (pb::SignedRequest, Request)) -> Signed {
        keys.check(&signed, &decoded)
    }

    #[test]
    fn a_request_is_verified_with_its_accounts_key_forged_with_another_and_unchecked_without_one() {
        let (alice, mallory) = (SigningKey::from_bytes(&[1; 32]), SigningKey::from_bytes(&[2; 32]));
        let mut chat = ChatState::new();
        let create = Op::CreateAccount { public_key: alice.verifying_key().to_bytes() };
        chat.apply(&Request { user: "alice".into(), session: 1_000_000, seq: 1, op: create.clone() }, Context { height: 1, position: 0, time_ms: 1_000 });
        let keys = AccountKeys::default();
        assert_eq!(check(&keys, signed("alice", Op::Login, &alice)), Signed::Unchecked, "not filled yet");
        keys.fill(&chat);
        assert_eq!(check(&keys, signed("alice", Op::Login, &alice)), Signed::Verified);
        assert_eq!(check(&keys, signed("alice", Op::Login, &mallory)), Signed::Forged);
        assert_eq!(check(&keys, signed("bob", Op::Login, &mallory)), Signed::Unchecked, "no such account");
        assert_eq!(check(&keys, signed("bob", create.clone(), &mallory)), Signed::Forged, "a create is checked with its own key");
        chat.apply(&Request { user: "alice".into(), session: 1_000_000, seq: 2, op: Op::DeleteAccount }, Context { height: 2, position: 0, time_ms: 1_001 });
        keys.update(&chat, "alice");
        assert_eq!(check(&keys, signed("alice", Op::Login, &alice)), Signed::Unchecked, "deleted");
    }
}
