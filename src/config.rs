//! `cluster.toml`: the cluster's name, Δ, the password-derivation cost, and for each replica
//! its id, address and public key. Every replica and client of a cluster reads the same file.
//!
//! ```toml
//! name = "quintet-local"
//! delta_ms = 200
//! [kdf]
//! memory_kib = 65536
//! iterations = 3
//! [[replica]]
//! id = "A"
//! address = "127.0.0.1:7101"
//! public_key = "3b6a27bc…"   # 64 hex digits
//! certificate = "MIIB…"      # its TLS certificate, base64 DER (made by `quintet init`)
//! ```
//!
//! A config whose replicas have no `certificate` runs every link in plaintext (each replica
//! and client warns); either all replicas have one or none does.

use std::net::SocketAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::crypto::{KdfParams, VerifyingKey, decode_hex, public_key, tls};

pub const CHECKPOINT_EVERY_DEFAULT: u64 = 1_000;

fn checkpoint_every_default() -> u64 {
    CHECKPOINT_EVERY_DEFAULT
}

fn presence_default() -> u64 {
    crate::chat::PRESENCE_MS_DEFAULT
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    pub name: String,
    /// 128 random bits in hex, made with the cluster: part of every request's cluster tag
    /// and of every replica-to-replica signature, so no other cluster's messages verify here.
    #[serde(default)]
    pub cluster_id: String,
    /// Δ: the bound on message delay plus processing that the ordering protocol waits on.
    pub delta_ms: u64,
    #[serde(default)]
    pub kdf: KdfParams,
    /// Blocks between state images (S11): a replica that falls further behind than the
    /// newest stable image is sent the image instead of the blocks.
    #[serde(default = "checkpoint_every_default")]
    pub checkpoint_every: u64,
    /// How long a user stays online (`who`) after their client's last request; clients
    /// send a heartbeat every third of it. Every replica must have the same value.
    #[serde(default = "presence_default")]
    pub presence_ms: u64,
    /// Set by `quintet recover` (`reset.sh`) when it re-seeds the replicas: where the
    /// cluster's history starts again. Absent on a cluster never reset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset: Option<Reset>,
    #[serde(rename = "replica")]
    pub replicas: Vec<ReplicaEntry>,
}

/// A reset epoch (`quintet recover`): the number of resets that re-seeded this cluster, and
/// the committed block every replica starts again from. The epoch is part of every replica
/// signature's domain, so nothing signed before the reset verifies after it; the user-key
/// salt does not include it, so accounts keep their keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reset {
    pub epoch: u64,
    /// The height of the block the history starts again from (its state image).
    pub height: u64,
    /// That block's hash, 64 hex digits.
    pub hash: String,
    /// The sha256 of the state image at that block (what state CHECKPOINTs sign), 64 hex
    /// digits: the one image recovery and the replicas trust without a state certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicaEntry {
    pub id: String,
    pub address: String,
    pub public_key: String,
    /// The replica's TLS certificate, pinned: base64 of its DER (`crypto::tls`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub certificate: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {reason}")]
    Read { path: String, reason: String },
    #[error("cluster config: {0}")]
    Invalid(String),
}

impl ReplicaEntry {
    /// The entry of a replica with this key: its public key and its TLS certificate.
    pub fn for_key(id: &str, address: &str, key: &crate::crypto::SigningKey) -> ReplicaEntry {
        ReplicaEntry {
            id: id.to_string(),
            address: address.to_string(),
            public_key: crate::crypto::encode_hex(key.verifying_key().as_bytes()),
            certificate: tls::certificate_text(key),
        }
    }

    pub fn socket_addr(&self) -> SocketAddr {
        self.address.parse().expect("checked by ClusterConfig::validate")
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        let bytes = decode_hex(&self.public_key).expect("checked by ClusterConfig::validate");
        public_key(&bytes).expect("checked by ClusterConfig::validate")
    }

    /// The pinned TLS certificate (DER), if the cluster uses TLS.
    pub fn certificate_der(&self) -> Option<Vec<u8>> {
        (!self.certificate.is_empty()).then(|| tls::decode_certificate(&self.certificate).expect("checked by ClusterConfig::validate"))
    }
}

/// The signature domain's name for a cluster id in a reset epoch (epoch 0: the id alone).
pub fn signing_id(cluster_id: &str, epoch: u64) -> String {
    match epoch {
        0 => cluster_id.to_string(),
        epoch => format!("{cluster_id}@{epoch}"),
    }
}

/// A TOML parse error as " at line N: what is wrong", without the parser's quote of the
/// line: the file named by mistake may be a key file.
pub fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let line = e.span().map(|span| text.as_bytes()[..span.start.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1);
    format!("{}: {}", line.map(|l| format!(" at line {l}")).unwrap_or_default(), e.message())
}

impl ClusterConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let read_err = |reason: String| ConfigError::Read { path: path.display().to_string(), reason };
        let text = std::fs::read_to_string(path).map_err(|e| read_err(e.to_string()))?;
        // The parser's message quotes the offending line: not shown, since the file named by
        // mistake may be a key file (found by a new user: `--config A.key` printed the key).
        let config: ClusterConfig = toml::from_str(&text).map_err(|e| read_err(format!("not a cluster.toml{}", toml_error(&text, &e))))?;
        config.validate().map_err(|e| read_err(e.to_string()))?;
        Ok(config)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a config always encodes")
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |reason: String| Err(ConfigError::Invalid(reason));
        if self.name.is_empty() || self.name.len() > 64 || self.name.chars().any(|c| c.is_control()) {
            return bad(format!("cluster name {:?} must be 1 to 64 printable characters", self.name));
        }
        if self.cluster_id.len() != 32 || decode_hex(&self.cluster_id).is_none() {
            return bad(format!(
                "cluster_id {:?} must be 32 hex digits (a config made by `quintet init` has one)",
                self.cluster_id
            ));
        }
        if !(1..=60_000).contains(&self.delta_ms) {
            return bad(format!("delta_ms {} must be between 1 and 60000", self.delta_ms));
        }
        if !(1_000..=3_600_000).contains(&self.presence_ms) {
            return bad(format!("presence_ms {} must be between 1000 and 3600000", self.presence_ms));
        }
        if !(10..=1_000_000).contains(&self.checkpoint_every) {
            return bad(format!("checkpoint_every {} must be between 10 and 1000000", self.checkpoint_every));
        }
        if self.kdf.memory_kib < 8 || self.kdf.iterations < 1 {
            return bad("kdf needs memory_kib >= 8 and iterations >= 1".into());
        }
        if let Some(reset) = &self.reset
            && (reset.epoch == 0
                || decode_hex(&reset.hash).is_none_or(|h| h.len() != 32 || (reset.height == 0) != h.iter().all(|b| *b == 0)))
        {
            return bad("[reset] needs epoch >= 1 and the 64-hex-digit hash of the block at its height (`reset.sh` writes it)".into());
        }
        if let Some(image) = self.reset.as_ref().and_then(|r| r.image.as_ref())
            && decode_hex(image).is_none_or(|h| h.len() != 32)
        {
            return bad("[reset] image must be the 64-hex-digit sha256 of the reset's state image (`reset.sh` writes it)".into());
        }
        let n = self.replicas.len();
        if n == 0 || n.is_multiple_of(2) || n > 9 {
            return bad(format!("{n} replicas: use an odd number from 1 to 9 (n = 2f + 1)"));
        }
        for (i, r) in self.replicas.iter().enumerate() {
            if r.id.is_empty() || r.id.len() > 8 || !r.id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return bad(format!("replica id {:?} must be 1 to 8 letters or digits", r.id));
            }
            if self.replicas[..i].iter().any(|o| o.id == r.id) {
                return bad(format!("replica id {:?} appears twice", r.id));
            }
            let Ok(address) = r.address.parse::<SocketAddr>() else {
                return bad(format!("replica {}: address {:?} is not ip:port", r.id, r.address));
            };
            // One replica listed twice would count twice in every quorum.
            if address.port() != 0
                && let Some(o) = self.replicas[..i].iter().find(|o| o.address.parse::<SocketAddr>().ok() == Some(address))
            {
                return bad(format!("replicas {} and {} have one address, {address}", o.id, r.id));
            }
            let key = decode_hex(&r.public_key).ok_or(()).and_then(|b| public_key(&b).map_err(|_| ()));
            let Ok(key) = key else {
                return bad(format!("replica {}: public_key is not a valid ed25519 key in hex", r.id));
            };
            if let Some(o) = self.replicas[..i].iter().find(|o| decode_hex(&o.public_key).as_deref() == Some(key.as_bytes().as_slice())) {
                return bad(format!("replicas {} and {} have one public key", o.id, r.id));
            }
        }
        let with_certificate = self.replicas.iter().filter(|r| !r.certificate.is_empty()).count();
        if with_certificate != 0 && with_certificate != n {
            return bad(format!("{with_certificate} of {n} replicas have a certificate: all must have one (TLS) or none (plaintext)"));
        }
        let mut seen: Vec<(&str, Vec<u8>)> = Vec::new();
        for r in self.replicas.iter().filter(|r| !r.certificate.is_empty()) {
            let der = tls::decode_certificate(&r.certificate).map_err(|e| ConfigError::Invalid(format!("replica {}: {e}", r.id)))?;
            if let Some((other, _)) = seen.iter().find(|(_, d)| *d == der) {
                return bad(format!("replicas {other} and {} have one certificate", r.id));
            }
            seen.push((&r.id, der));
        }
        Ok(())
    }

    /// Whether every link of the cluster is TLS (the replicas have certificates).
    pub fn tls(&self) -> bool {
        self.replicas.iter().all(|r| !r.certificate.is_empty())
    }

    /// What a request's `cluster` field must say: the name and the random id, so a request
    /// made for another cluster of the same name is refused.
    /// After a reset, the epoch too: an old client's requests are refused with a line that
    /// says the cluster was reset (`replica::service`).
    pub fn tag(&self) -> String {
        match self.epoch() {
            0 => format!("{}#{}", self.name, self.cluster_id),
            epoch => format!("{}#{}@{epoch}", self.name, self.cluster_id),
        }
    }

    /// The reset epoch (0 for a cluster never reset).
    pub fn epoch(&self) -> u64 {
        self.reset.as_ref().map_or(0, |r| r.epoch)
    }

    /// What every replica signature's domain names: the cluster id, and the reset epoch
    /// after a reset.
    pub fn signing_id(&self) -> String {
        signing_id(&self.cluster_id, self.epoch())
    }

    /// The committed block the ordering protocol starts from: genesis, or the reset's block.
    /// The sha256 of the reset's state image, when the config names it.
    pub fn base_image(&self) -> Option<[u8; 32]> {
        self.reset.as_ref()?.image.as_ref().and_then(|h| decode_hex(h)).and_then(|h| h.try_into().ok())
    }

    pub fn base(&self) -> (u64, [u8; 32]) {
        match &self.reset {
            None => (0, [0; 32]),
            Some(r) => {
                let hash = decode_hex(&r.hash).and_then(|h| h.try_into().ok()).expect("checked by ClusterConfig::validate");
                (r.height, hash)
            }
        }
    }

    /// A fresh random cluster id.
    pub fn new_id() -> String {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).expect("the operating system has no random source");
        crate::crypto::encode_hex(&bytes)
    }

    /// Matching signed replies a client needs: f + 1 of n = 2f + 1, so at least one honest.
    pub fn quorum(&self) -> usize {
        (self.replicas.len() - 1) / 2 + 1
    }

    pub fn replica(&self, id: &str) -> Option<&ReplicaEntry> {
        self.replicas.iter().find(|r| r.id == id)
    }

    /// An operator's credential: the first replica key of this cluster kept beside its
    /// config (`<folder>/<id>.key`, as `init` writes them) whose public key the config
    /// lists. Whoever holds one operates the cluster (`client::status_ask`).
    pub fn operator_key(&self, config_path: &Path) -> Option<(String, crate::crypto::SigningKey)> {
        let folder = config_path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        self.replicas.iter().find_map(|r| {
            let key = crate::crypto::read_key_file(&folder.join(format!("{}.key", r.id))).ok()?;
            (key.verifying_key() == r.verifying_key()).then(|| (r.id.clone(), key))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SigningKey;

    fn config(n: usize) -> ClusterConfig {
        let replicas = (0..n)
            .map(|i| {
                let id = ((b'A' + i as u8) as char).to_string();
                ReplicaEntry::for_key(&id, &format!("127.0.0.1:{}", 7101 + i), &SigningKey::from_bytes(&[i as u8 + 1; 32]))
            })
            .collect();
        ClusterConfig { name: "test".into(), cluster_id: "00112233445566778899aabbccddeeff".into(), delta_ms: 200, kdf: KdfParams::default(), checkpoint_every: 1_000, presence_ms: crate::chat::PRESENCE_MS_DEFAULT, reset: None, replicas }
    }

    #[test]
    fn round_trips_through_toml_and_validates() {
        let c = config(5);
        c.validate().unwrap();
        let back: ClusterConfig = toml::from_str(&c.to_toml()).unwrap();
        assert_eq!(back, c);
        assert_eq!((config(1).quorum(), config(3).quorum(), config(5).quorum()), (1, 2, 3));
        assert!(c.tls());
    }

    #[test]
    fn certificates_are_all_or_none_and_distinct() {
        let mut c = config(5);
        for r in &mut c.replicas {
            r.certificate.clear();
        }
        c.validate().unwrap();
        assert!(!c.tls(), "no certificates: plaintext");
        assert!(!c.to_toml().contains("certificate"));
        let mut c = config(5);
        c.replicas[2].certificate.clear();
        assert_eq!(c.validate().unwrap_err().to_string(), "cluster config: 4 of 5 replicas have a certificate: all must have one (TLS) or none (plaintext)");
        let mut c = config(5);
        c.replicas[2].certificate = c.replicas[0].certificate.clone();
        assert_eq!(c.validate().unwrap_err().to_string(), "cluster config: replicas A and C have one certificate");
        let mut c = config(5);
        c.replicas[1].certificate = "%%%".into();
        assert!(c.validate().unwrap_err().to_string().starts_with("cluster config: replica B: certificate is not base64"));
    }

    #[test]
    fn refuses_what_would_break_later() {
        let mut c = config(5);
        c.replicas[1].id = "A".into();
        assert!(c.validate().unwrap_err().to_string().contains("twice"));
        let mut c = config(5);
        c.replicas[0].address = "localhost".into();
        assert!(c.validate().unwrap_err().to_string().contains("ip:port"));
        // One replica listed twice, under another name: its address or its key repeats.
        let mut c = config(5);
        c.replicas[3].address = "127.0.0.1:7102".into();
        assert_eq!(c.validate().unwrap_err().to_string(), "cluster config: replicas B and D have one address, 127.0.0.1:7102");
        let mut c = config(5);
        c.replicas[4].public_key = c.replicas[0].public_key.to_uppercase();
        assert_eq!(c.validate().unwrap_err().to_string(), "cluster config: replicas A and E have one public key");
        let mut c = config(5);
        c.replicas[0].public_key = "00".into();
        assert!(c.validate().is_err());
        assert!(config(4).validate().is_err());
        let mut c = config(1);
        c.delta_ms = 0;
        assert!(c.validate().is_err());
        assert!(toml::from_str::<ClusterConfig>("name = 'x'\ndelta_ms = 1\nreplica = []\nextra = 1").is_err());
    }
}
