//! Each replica's signed status: the question (with an operator's signature when the
//! client holds a replica key, to be shown the counters) and the check that the answer is
//! that replica's, for this cluster and this question.

use std::time::Duration;

use super::{QuorumClient, failure};
use crate::crypto::VerifyingKey;
use crate::pb;

/// The body an operator signs to ask for the counters: the cluster tag and the nonce,
/// each length-prefixed.
fn status_ask_body(cluster: &str, nonce: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(16 + cluster.len() + nonce.len());
    for part in [cluster.as_bytes(), nonce] {
        body.extend_from_slice(&(part.len() as u64).to_le_bytes());
        body.extend_from_slice(part);
    }
    body
}

/// A status question with `nonce`, signed by `operator` (a replica id and its key) when
/// given.
pub fn status_ask(cluster: &str, nonce: Vec<u8>, operator: Option<&(String, crate::crypto::SigningKey)>) -> pb::StatusRequest {
    let (operator, operator_signature) = match operator {
        Some((id, key)) => (id.clone(), crate::crypto::sign(key, crate::crypto::TAG_STATUS_ASK, &status_ask_body(cluster, &nonce))),
        None => (String::new(), Vec::new()),
    };
    pb::StatusRequest { nonce, operator, operator_signature }
}

/// Whether `ask` carries a valid operator signature by one of `replicas` (ids and keys).
pub fn is_operator(cluster: &str, ask: &pb::StatusRequest, replicas: &[(String, VerifyingKey)]) -> bool {
    replicas.iter().any(|(id, key)| {
        *id == ask.operator
            && crate::crypto::verify(key, crate::crypto::TAG_STATUS_ASK, &status_ask_body(cluster, &ask.nonce), &ask.operator_signature).is_ok()
    })
}

impl QuorumClient {
    /// Every replica's signed status, or why it could not be had, asked at once, in the
    /// config's order.
    pub async fn status(&self) -> Vec<(String, Result<pb::StatusReply, StatusError>)> {
        let mut asks = tokio::task::JoinSet::new();
        for (i, remote) in self.remotes.iter().enumerate() {
            let (mut rpc, id, key, cluster) = (remote.rpc.clone(), remote.id.clone(), remote.key, self.cluster.clone());
            let operator = self.operator.clone();
            asks.spawn(async move {
                let mut nonce = vec![0u8; 16];
                getrandom::fill(&mut nonce).expect("the operating system has no random source");
                let ask = status_ask(&cluster, nonce.clone(), operator.as_ref());
                let asked = tokio::time::timeout(Duration::from_secs(2), rpc.status(ask)).await;
                let result = match asked {
                    Ok(Ok(reply)) => check_status(&id, &key, &cluster, &nonce, reply.into_inner()),
                    Ok(Err(status)) => Err(StatusError::Down(failure(&status))),
                    Err(_) => Err(StatusError::Down("timed out".to_owned())),
                };
                (i, id, result)
            });
        }
        let mut out: Vec<_> = asks.join_all().await;
        out.sort_by_key(|(i, _, _)| *i);
        out.into_iter().map(|(_, id, result)| (id, result)).collect()
    }
}

impl QuorumClient {
    /// Every replica's evidence answer (unsigned: each proof checks on its own), or why it
    /// could not be had, asked at once, in the config's order.
    pub async fn evidence(&self) -> Vec<(String, Result<pb::EvidenceReply, String>)> {
        let mut asks = tokio::task::JoinSet::new();
        for (i, remote) in self.remotes.iter().enumerate() {
            let limit = crate::evidence::FILE_BYTES_MAX + (1 << 20);
            let (mut rpc, id) = (remote.rpc.clone().max_decoding_message_size(limit), remote.id.clone());
            asks.spawn(async move {
                // A replica answers the call a few times a second at most (others may be
                // asking too, `up` for one): asked again after a moment.
                let mut result = Err("not asked".to_owned());
                for _ in 0..4 {
                    let asked = tokio::time::timeout(Duration::from_secs(2), rpc.evidence(pb::EvidenceRequest {})).await;
                    result = match asked {
                        Ok(Ok(reply)) => Ok(reply.into_inner()),
                        Ok(Err(status)) if status.code() == tonic::Code::ResourceExhausted => {
                            tokio::time::sleep(Duration::from_millis(150)).await;
                            continue;
                        }
                        Ok(Err(status)) => Err(failure(&status)),
                        Err(_) => Err("timed out".to_owned()),
                    };
                    break;
                }
                (i, id, result)
            });
        }
        let mut out: Vec<_> = asks.join_all().await;
        out.sort_by_key(|(i, _, _)| *i);
        out.into_iter().map(|(_, id, result)| (id, result)).collect()
    }
}

/// Why a replica's status is not shown as up.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StatusError {
    #[error("down ({0})")]
    Down(String),
    /// It answered, but not as the replica the config names: another key, another
    /// cluster, or an answer not made for this question.
    #[error("wrong identity ({0})")]
    WrongIdentity(String),
}

/// A status answer is `id`'s only if `key` signed it, for this cluster and this nonce.
pub fn check_status(id: &str, key: &VerifyingKey, cluster: &str, nonce: &[u8], signed: pb::SignedStatus) -> Result<pb::StatusReply, StatusError> {
    use prost::Message as _;
    let wrong = |why: String| Err(StatusError::WrongIdentity(why));
    if crate::crypto::verify(key, crate::crypto::TAG_STATUS, &signed.body, &signed.signature).is_err() {
        return wrong(format!("its answer is not signed with {id}'s key from the config"));
    }
    let Ok(status) = pb::StatusReply::decode(signed.body.as_slice()) else {
        return wrong("its signed answer does not decode".into());
    };
    if status.cluster != cluster {
        return wrong(format!("it serves cluster {:?}, the config names {cluster:?}", status.cluster));
    }
    if status.replica != id {
        return wrong(format!("it says it is {:?}", status.replica));
    }
    if status.nonce != nonce {
        return wrong("its answer was made for another question (replayed)".into());
    }
    Ok(status)
}
