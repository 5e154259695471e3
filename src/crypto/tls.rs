//! TLS identities (NOTEBOOK "TLS on every link"). Each replica's TLS key is derived from its
//! replica key (a hash with its own label, so no signature made for the protocol can serve
//! in a handshake or the reverse), and its certificate is a self-signed X.509 certificate
//! made from that key alone: deterministic, so a replica can check that the certificate
//! `cluster.toml` pins for it is the one its key makes. There is no certificate authority:
//! a client trusts, for each replica, exactly the certificate the config lists for it, and a
//! replica accepts a peer link only from a certificate of the config.
//!
//! The certificate is built here (about sixty lines of DER) rather than with a certificate
//! crate: it has one fixed shape, an Ed25519 key and the name `SERVER_NAME`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::Signer;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::SigningKey;

/// The name every replica certificate carries and every client asks for. Which replica is
/// which is told by the pinned certificate, not by the name.
pub const SERVER_NAME: &str = "quintet";
/// What the TLS key is derived with, from the replica key's seed.
const TLS_KEY_LABEL: &[u8] = b"quintet/tls-key/v1\0";
/// A certificate in the config, at most (ours are about 300 bytes).
const CERTIFICATE_MAX: usize = 4_096;

/// A replica's TLS identity: its certificate (DER and PEM) and private key (PEM).
pub struct TlsIdentity {
    pub certificate_der: Vec<u8>,
    pub certificate_pem: String,
    pub key_pem: Zeroizing<String>,
}

fn tls_key(replica_key: &SigningKey) -> SigningKey {
    let mut hash = Sha256::new();
    hash.update(TLS_KEY_LABEL);
    hash.update(replica_key.as_bytes());
    let seed = Zeroizing::new(<[u8; 32]>::from(hash.finalize()));
    SigningKey::from_bytes(&seed)
}

/// One DER element: tag, length, contents.
fn der(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = contents.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = n.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
    out.extend_from_slice(contents);
    out
}

fn sequence(parts: &[&[u8]]) -> Vec<u8> {
    der(0x30, &parts.concat())
}

/// The certificate (DER) of the replica with this replica key.
pub fn certificate_der(replica_key: &SigningKey) -> Vec<u8> {
    let key = tls_key(replica_key);
    let public = key.verifying_key().to_bytes();
    let ed25519 = sequence(&[&der(0x06, &[0x2b, 0x65, 0x70])]); // 1.3.101.112
    let common_name = der(0x06, &[0x55, 0x04, 0x03]); // 2.5.4.3
    let name = sequence(&[&der(0x31, &sequence(&[&common_name, &der(0x0c, b"quintet replica")]))]);
    // A positive serial number (first byte 0x01), unique per key.
    let mut serial = vec![0x01];
    serial.extend_from_slice(&Sha256::digest(public)[..15]);
    let validity = sequence(&[&der(0x17, b"000101000000Z"), &der(0x18, b"99991231235959Z")]);
    let spki = sequence(&[&ed25519, &der(0x03, &[&[0u8][..], &public].concat())]);
    let dns_name = der(0x82, SERVER_NAME.as_bytes());
    let san = sequence(&[&der(0x06, &[0x55, 0x1d, 0x11]), &der(0x04, &sequence(&[&dns_name]))]); // 2.5.29.17
    let extensions = der(0xa3, &sequence(&[&san]));
    let version = der(0xa0, &der(0x02, &[2]));
    let tbs = sequence(&[&version, &der(0x02, &serial), &ed25519, &name, &validity, &name, &spki, &extensions]);
    let signature = key.sign(&tbs).to_bytes();
    sequence(&[&tbs, &ed25519, &der(0x03, &[&[0u8][..], &signature].concat())])
}

/// The certificate as `cluster.toml` holds it: base64 of the DER, one line.
pub fn certificate_text(replica_key: &SigningKey) -> String {
    STANDARD.encode(certificate_der(replica_key))
}

/// The DER of a certificate as `cluster.toml` holds it, or why it is not one.
pub fn decode_certificate(text: &str) -> Result<Vec<u8>, String> {
    if text.len() > CERTIFICATE_MAX * 4 / 3 + 4 {
        return Err(format!("certificate is {} characters, more than a replica certificate", text.len()));
    }
    let der = STANDARD.decode(text.trim()).map_err(|e| format!("certificate is not base64: {e}"))?;
    if der.first() != Some(&0x30) || der.len() > CERTIFICATE_MAX {
        return Err("certificate is not a DER certificate".into());
    }
    Ok(der)
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ascii"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A certificate from the config, as PEM (what the TLS library reads).
pub fn certificate_pem(der: &[u8]) -> String {
    pem("CERTIFICATE", der)
}

/// The TLS identity of the replica with this replica key.
pub fn identity(replica_key: &SigningKey) -> TlsIdentity {
    let key = tls_key(replica_key);
    // PKCS #8 v1 (RFC 8410): version 0, algorithm Ed25519, the seed in an octet string.
    let mut pkcs8 = Zeroizing::new(vec![0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]);
    pkcs8.extend_from_slice(key.as_bytes());
    let certificate_der = certificate_der(replica_key);
    TlsIdentity { certificate_pem: certificate_pem(&certificate_der), certificate_der, key_pem: Zeroizing::new(pem("PRIVATE KEY", &pkcs8)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_are_deterministic_per_key_and_round_trip_through_the_config() {
        let a = SigningKey::from_bytes(&[1; 32]);
        let b = SigningKey::from_bytes(&[2; 32]);
        assert_eq!(certificate_der(&a), certificate_der(&a));
        assert_ne!(certificate_der(&a), certificate_der(&b));
        assert_eq!(decode_certificate(&certificate_text(&a)).unwrap(), certificate_der(&a));
        assert!(decode_certificate("not base64!").unwrap_err().contains("base64"));
        assert!(decode_certificate(&STANDARD.encode(b"junk")).unwrap_err().contains("DER"));
        // The TLS key is not the replica key: the certificate never shows the replica key.
        let der = certificate_der(&a);
        let replica_public = a.verifying_key().to_bytes();
        assert!(!der.windows(32).any(|w| w == replica_public));
        let pem = certificate_pem(&der);
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n") && pem.ends_with("-----END CERTIFICATE-----\n"));
        assert!(identity(&a).key_pem.contains("BEGIN PRIVATE KEY"));
    }

    #[test]
    fn long_der_lengths_use_the_long_form() {
        assert_eq!(der(0x04, &[7; 3])[..2], [0x04, 3]);
        assert_eq!(der(0x04, &[7; 200])[..3], [0x04, 0x81, 200]);
        assert_eq!(der(0x04, &[7; 300])[..4], [0x04, 0x82, 0x01, 0x2c]);
    }
}
