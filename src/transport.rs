//! How a client or a replica reaches a replica, and how a replica serves: `https` with the
//! replica's pinned certificate when the cluster has certificates (NOTEBOOK "TLS on every
//! link"), plain `http` (with a warning) when it has none.

use std::sync::Once;

use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig};

use crate::config::{ClusterConfig, ReplicaEntry};
use crate::crypto::tls::{self, TlsIdentity};

/// Time a TLS handshake may take on the server, from its first byte.
pub const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The endpoint of one replica. A client presents no certificate; a replica presents its
/// own (`identity`) to its peers, which accept a peer link only from a certificate of the
/// config.
pub fn endpoint(entry: &ReplicaEntry, identity: Option<&TlsIdentity>) -> Result<Endpoint, String> {
    let Some(der) = entry.certificate_der() else {
        warn_plaintext();
        return Endpoint::from_shared(format!("http://{}", entry.address)).map_err(|e| e.to_string());
    };
    let mut config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(tls::certificate_pem(&der))).domain_name(tls::SERVER_NAME);
    if let Some(identity) = identity {
        config = config.identity(Identity::from_pem(&identity.certificate_pem, identity.key_pem.as_bytes()));
    }
    Endpoint::from_shared(format!("https://{}", entry.address)).and_then(|e| e.tls_config(config)).map_err(|e| e.to_string())
}

/// The server's TLS: its identity, and the config's certificates as the only ones a peer
/// may present (clients present none).
pub fn server_tls(config: &ClusterConfig, identity: &TlsIdentity) -> ServerTlsConfig {
    let members: String = config.replicas.iter().filter_map(|r| r.certificate_der()).map(|der| tls::certificate_pem(&der)).collect();
    ServerTlsConfig::new()
        .identity(Identity::from_pem(&identity.certificate_pem, identity.key_pem.as_bytes()))
        .client_ca_root(Certificate::from_pem(members))
        .client_auth_optional(true)
        .timeout(TLS_HANDSHAKE_TIMEOUT)
}

/// Said once per process: the config has no certificates.
pub fn warn_plaintext() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| tracing::warn!("cluster.toml has no certificates: links are plaintext (make a cluster with `quintet init` for TLS)"));
}
