//! The user's key pair, derived on the client from (cluster id, user name, password) with
//! Argon2id. The password never leaves the client; any machine with the password derives the
//! same key. The salt is fixed by the cluster's random 128-bit id and the user name (it must
//! be fixed: there is nowhere to keep a random one before login), so a dictionary computed
//! for one cluster is no use against another; the memory cost is high for the same reason.
//! The seed is wiped from memory after use (the key itself wipes on drop).

use argon2::{Algorithm, Argon2, Params, Version};
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Argon2id cost. A cluster setting: every client of a cluster must use the same values, or
/// the same password gives different keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    pub memory_kib: u32,
    pub iterations: u32,
}

impl Default for KdfParams {
    /// 64 MiB and 3 passes: about a third of a second on one core of this project's machines,
    /// within RFC 9106's second recommended setting.
    fn default() -> Self {
        KdfParams { memory_kib: 64 * 1024, iterations: 3 }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("key derivation failed: {0}")]
pub struct KdfError(String);

/// `cluster` is the cluster id (`cluster.toml`).
pub fn derive_user_key(cluster: &str, user: &str, password: &str, params: KdfParams) -> Result<SigningKey, KdfError> {
    let mut salt = Sha256::new();
    for part in [b"quintet/user-key/v1".as_slice(), cluster.as_bytes(), user.as_bytes()] {
        salt.update((part.len() as u64).to_le_bytes());
        salt.update(part);
    }
    let salt = salt.finalize();
    let params = Params::new(params.memory_kib, params.iterations, 1, Some(32)).map_err(|e| KdfError(e.to_string()))?;
    let mut seed = zeroize::Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(password.as_bytes(), &salt[..16], seed.as_mut())
        .map_err(|e| KdfError(e.to_string()))?;
    Ok(SigningKey::from_bytes(&seed))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHEAP: KdfParams = KdfParams { memory_kib: 64, iterations: 1 };

    #[test]
    fn same_inputs_same_key_and_each_input_matters() {
        let key = |c, u, p| derive_user_key(c, u, p, CHEAP).unwrap().to_bytes();
        let base = key("c", "alice", "pw");
        assert_eq!(base, key("c", "alice", "pw"));
        assert_ne!(base, key("d", "alice", "pw"));
        assert_ne!(base, key("c", "alicf", "pw"));
        assert_ne!(base, key("c", "alice", "px"));
        // Length-prefixed salt: moving a character between fields changes the key.
        assert_ne!(key("ca", "lice", "pw"), key("c", "alice", "pw"));
        assert_ne!(base, derive_user_key("c", "alice", "pw", KdfParams { memory_kib: 128, iterations: 1 }).unwrap().to_bytes());
    }

    #[test]
    fn bad_parameters_are_an_error() {
        assert!(derive_user_key("c", "u", "p", KdfParams { memory_kib: 1, iterations: 1 }).is_err());
    }
}
