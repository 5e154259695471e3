//! Keys and signatures. One rule everywhere: a signature covers (domain tag || body bytes)
//! and is checked with `verify_strict`, so a signature made for one kind of message can never
//! pass as another kind, and malleable or small-order encodings are refused.

mod hex;
mod kdf;
mod peer;
pub mod tls;

pub use ed25519_dalek::{SigningKey, VerifyingKey};
pub use hex::{decode_hex, encode_hex};
pub use kdf::{KdfParams, derive_user_key};
pub use peer::{PeerCrypto, PeerKeys, TAG_PEER};

use ed25519_dalek::{Signature, Signer};

/// A client request (`RequestBody`), signed by the user.
pub const TAG_REQUEST: &[u8] = b"quintet/request/v1\0";
/// A replica's reply (`ReplyBody`).
pub const TAG_REPLY: &[u8] = b"quintet/reply/v1\0";
/// A user's live-delivery subscription (`SubscribeBody`).
pub const TAG_SUBSCRIBE: &[u8] = b"quintet/subscribe/v1\0";
/// A replica's live delivery (`DeliveryBody`).
pub const TAG_DELIVERY: &[u8] = b"quintet/delivery/v1\0";
/// A replica's status (`StatusReply`), with the asker's nonce.
pub const TAG_STATUS: &[u8] = b"quintet/status/v1\0";
/// An operator's status question (its signature shows it holds a replica key).
pub const TAG_STATUS_ASK: &[u8] = b"quintet/status-ask/v1\0";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("signature is {0} bytes, not 64")]
    SignatureLength(usize),
    #[error("signature does not verify")]
    BadSignature,
    #[error("public key is {0} bytes, not 32")]
    KeyLength(usize),
    #[error("public key is not a valid ed25519 point")]
    BadKey,
    #[error("key file {path}: {reason}")]
    KeyFile { path: String, reason: String },
}

fn tagged(tag: &[u8], body: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(tag.len() + body.len());
    message.extend_from_slice(tag);
    message.extend_from_slice(body);
    message
}

pub fn sign(key: &SigningKey, tag: &[u8], body: &[u8]) -> Vec<u8> {
    key.sign(&tagged(tag, body)).to_bytes().to_vec()
}

pub fn verify(key: &VerifyingKey, tag: &[u8], body: &[u8], signature: &[u8]) -> Result<(), CryptoError> {
    let bytes: [u8; 64] = signature.try_into().map_err(|_| CryptoError::SignatureLength(signature.len()))?;
    let signature = Signature::from_bytes(&bytes);
    key.verify_strict(&tagged(tag, body), &signature).map_err(|_| CryptoError::BadSignature)
}

pub fn public_key(bytes: &[u8]) -> Result<VerifyingKey, CryptoError> {
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| CryptoError::KeyLength(bytes.len()))?;
    let key = VerifyingKey::from_bytes(&bytes).map_err(|_| CryptoError::BadKey)?;
    // Small-order keys would let one signature verify for many messages.
    if key.is_weak() {
        return Err(CryptoError::BadKey);
    }
    Ok(key)
}

/// A fresh random key from the operating system's generator.
pub fn generate_key() -> SigningKey {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).expect("the operating system has no random source");
    SigningKey::from_bytes(&seed)
}

/// Reads a replica key file: the 32-byte secret seed as 64 hex digits.
pub fn read_key_file(path: &std::path::Path) -> Result<SigningKey, CryptoError> {
    let err = |reason: String| CryptoError::KeyFile { path: path.display().to_string(), reason };
    // The text, the bytes and the seed are wiped once the key is made.
    let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?);
    let bytes = zeroize::Zeroizing::new(decode_hex(text.trim()).ok_or_else(|| err("not hex".into()))?);
    let seed: zeroize::Zeroizing<[u8; 32]> =
        zeroize::Zeroizing::new(bytes.as_slice().try_into().map_err(|_| err("not 32 bytes".into()))?);
    Ok(SigningKey::from_bytes(&seed))
}

/// Writes a key file readable by its owner only.
pub fn write_key_file(path: &std::path::Path, key: &SigningKey) -> Result<(), CryptoError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let err = |e: std::io::Error| CryptoError::KeyFile { path: path.display().to_string(), reason: e.to_string() };
    let mut file =
        std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(err)?;
    let text = zeroize::Zeroizing::new(encode_hex(key.as_bytes()));
    writeln!(file, "{}", text.as_str()).map_err(err)?;
    file.sync_all().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_domain_separation() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let public = key.verifying_key();
        let sig = sign(&key, TAG_REQUEST, b"body");
        assert_eq!(verify(&public, TAG_REQUEST, b"body", &sig), Ok(()));
        assert_eq!(verify(&public, TAG_REPLY, b"body", &sig), Err(CryptoError::BadSignature));
        assert_eq!(verify(&public, TAG_REQUEST, b"bodz", &sig), Err(CryptoError::BadSignature));
        let other = SigningKey::from_bytes(&[8; 32]).verifying_key();
        assert_eq!(verify(&other, TAG_REQUEST, b"body", &sig), Err(CryptoError::BadSignature));
        assert_eq!(verify(&public, TAG_REQUEST, b"body", &sig[..63]), Err(CryptoError::SignatureLength(63)));
        let mut flipped = sig.clone();
        flipped[10] ^= 1;
        assert_eq!(verify(&public, TAG_REQUEST, b"body", &flipped), Err(CryptoError::BadSignature));
    }

    #[test]
    fn public_keys_are_checked() {
        assert!(public_key(SigningKey::from_bytes(&[1; 32]).verifying_key().as_bytes()).is_ok());
        assert_eq!(public_key(&[1; 31]).err(), Some(CryptoError::KeyLength(31)));
        // The identity point has small order.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(public_key(&identity).err(), Some(CryptoError::BadKey));
    }

    #[test]
    fn key_files_round_trip_and_refuse_overwrite() {
        let dir = std::env::temp_dir().join(format!("quintet-key-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.key");
        let _ = std::fs::remove_file(&path);
        let key = generate_key();
        write_key_file(&path, &key).unwrap();
        assert_eq!(read_key_file(&path).unwrap().to_bytes(), key.to_bytes());
        assert!(write_key_file(&path, &key).is_err(), "an existing key is never overwritten");
        std::fs::write(&path, "zz").unwrap();
        assert!(read_key_file(&path).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
