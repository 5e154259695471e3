//! How a client or a replica reaches a replica: `https` with the replica's pinned
//! certificate when the cluster has certificates (NOTEBOOK "TLS on every link"), plain
//! `http` (with a warning) when it has none. The server's side is in `replica::gate`.

use std::sync::Once;

use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

use crate::config::ReplicaEntry;
use crate::crypto::tls::{self, TlsIdentity};

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

/// Said once per process: the config has no certificates.
pub fn warn_plaintext() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| tracing::warn!("cluster.toml has no certificates: links are plaintext (make a cluster with `quintet init` for TLS)"));
}
