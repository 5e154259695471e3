//! Hostile and broken requests over raw gRPC: malformed bytes, no signature, a wrong
//! signature, oversized bodies, another cluster's requests, unknown users and replays. Each
//! gets a clear, signed refusal (or a transport error for what cannot even be read), and
//! none changes the state.

mod common;

use prost::Message as _;
use quintet::crypto::{self, SigningKey, TAG_REPLY, TAG_REQUEST};
use quintet::pb::{self, replica_client::ReplicaClient};
use quintet::{chat::Op, wire};

struct Raw {
    rpc: ReplicaClient<tonic::transport::Channel>,
    replica_key: quintet::crypto::VerifyingKey,
    /// A's key: the status question is an operator's (to be shown the counters).
    operator: SigningKey,
}

impl Raw {
    async fn submit(&mut self, body: Vec<u8>, signature: Vec<u8>) -> Result<pb::ReplyBody, tonic::Status> {
        let reply = self.rpc.submit(pb::SignedRequest { body, signature }).await?.into_inner();
        crypto::verify(&self.replica_key, TAG_REPLY, &reply.body, &reply.signature).expect("replies are signed");
        Ok(pb::ReplyBody::decode(reply.body.as_slice()).unwrap())
    }

    async fn status(&mut self) -> (u64, u64, u64) {
        let nonce = b"bad-input".to_vec();
        let ask = quintet::client::status_ask(TAG, nonce.clone(), Some(&("A".to_string(), self.operator.clone())));
        let signed = self.rpc.status(ask).await.unwrap().into_inner();
        let s = quintet::client::check_status("A", &self.replica_key, TAG, &nonce, signed).expect("A's signed status");
        (s.height, s.accounts, s.messages)
    }
}

/// The cluster tag of `common::config("test-cluster", ..)`: its name and random id.
const TAG: &str = "test-cluster#0f1e2d3c4b5a69788796a5b4c3d2e1f0";

fn body(cluster: &str, user: &str, session: u64, seq: u64, op: &Op) -> Vec<u8> {
    pb::RequestBody { cluster: cluster.into(), user: user.into(), session, seq, op: Some(wire::encode_op(op)) }.encode_to_vec()
}

fn code(reply: &pb::ReplyBody) -> String {
    match reply.outcome.as_ref().and_then(|o| o.kind.as_ref()) {
        Some(pb::outcome::Kind::Failure(f)) => {
            assert!(!f.message.is_empty() && !f.message.contains("Error {"), "readable message: {}", f.message);
            f.code.clone()
        }
        other => format!("ok: {other:?}"),
    }
}

/// One replica with alice's account created in a session of now: the replica, a raw client,
/// alice's key, her session and the create's reply.
async fn alice_created(name: &str) -> (common::OneReplica, Raw, SigningKey, u64, pb::ReplyBody) {
    let cluster = common::OneReplica::start(name);
    let mut raw = Raw {
        rpc: ReplicaClient::new(cluster.endpoint().connect().await.unwrap()),
        replica_key: cluster.key.verifying_key(),
        operator: cluster.key.clone(),
    };
    let alice = SigningKey::from_bytes(&[1; 32]);
    let session = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as u64;
    let create = body(TAG, "alice", session, 1, &Op::CreateAccount { public_key: alice.verifying_key().to_bytes() });
    let created = raw.submit(create.clone(), crypto::sign(&alice, TAG_REQUEST, &create)).await.unwrap();
    (cluster, raw, alice, session, created)
}

#[tokio::test]
async fn bad_requests_get_clear_errors_and_change_nothing() {
    let (_cluster, mut raw, alice, session, created) = alice_created("badinput").await;
    assert!(created.height >= 1, "executed in a committed block");
    let send = body(TAG, "alice", session, 2, &Op::Send { to: "alice".into(), text: "hi".into() });
    let sent = raw.submit(send.clone(), crypto::sign(&alice, TAG_REQUEST, &send)).await.unwrap();
    let before = raw.status().await;
    assert_eq!((before.1, before.2), (1, 1));
    // A resend of the last request gets the cached reply and applies nothing.
    let again = raw.submit(send.clone(), crypto::sign(&alice, TAG_REQUEST, &send)).await.unwrap();
    assert_eq!((again.height, again.outcome), (sent.height, sent.outcome.clone()));
    assert_eq!(raw.status().await, before, "nothing was ordered for it");

    // Malformed bytes.
    let reply = raw.submit(vec![0xff, 0x01, 0x02], vec![]).await.unwrap();
    assert_eq!((code(&reply), reply.height), ("malformed".into(), 0));
    // A body with no operation.
    let no_op = pb::RequestBody { cluster: TAG.into(), user: "alice".into(), ..Default::default() }.encode_to_vec();
    assert_eq!(code(&raw.submit(no_op, vec![]).await.unwrap()), "malformed");
    // Unsigned.
    let next = body(TAG, "alice", session, 3, &Op::Send { to: "alice".into(), text: "x".into() });
    assert_eq!(code(&raw.submit(next.clone(), vec![]).await.unwrap()), "bad_signature");
    // Signed by someone else, and signed for another purpose (a reply's domain tag).
    let mallory = SigningKey::from_bytes(&[2; 32]);
    assert_eq!(code(&raw.submit(next.clone(), crypto::sign(&mallory, TAG_REQUEST, &next)).await.unwrap()), "bad_signature");
    assert_eq!(code(&raw.submit(next.clone(), crypto::sign(&alice, TAG_REPLY, &next)).await.unwrap()), "bad_signature");
    // Another cluster's request, also one of the same name made elsewhere (another id).
    for other in ["other-cluster", "test-cluster", "test-cluster#00000000000000000000000000000000"] {
        let foreign = body(other, "alice", session, 3, &Op::Login);
        let reply = raw.submit(foreign.clone(), crypto::sign(&alice, TAG_REQUEST, &foreign)).await.unwrap();
        assert_eq!((code(&reply), reply.height), ("wrong_cluster".into(), 0), "{other}");
    }
    // An unknown user.
    let ghost = body(TAG, "ghost", session, 1, &Op::Login);
    assert_eq!(code(&raw.submit(ghost.clone(), crypto::sign(&alice, TAG_REQUEST, &ghost)).await.unwrap()), "unknown_user");
    // Oversized: a body over the request limit gets a signed refusal...
    let big = body(TAG, "alice", session, 3, &Op::Send { to: "alice".into(), text: "x".repeat(100_000) });
    assert_eq!(code(&raw.submit(big.clone(), crypto::sign(&alice, TAG_REQUEST, &big)).await.unwrap()), "too_large");
    // ...a text just over 64 KiB is refused by the state machine, and logged as refused...
    let long = body(TAG, "alice", session, 3, &Op::Send { to: "alice".into(), text: "x".repeat(65_537) });
    let reply = raw.submit(long.clone(), crypto::sign(&alice, TAG_REQUEST, &long)).await.unwrap();
    assert_eq!(code(&reply), "text_too_long");
    // ...and a message past the transport limit is refused before it is even decoded.
    let huge = raw.submit(vec![0; 300_000], vec![]).await.expect_err("transport refuses");
    assert_eq!(huge.code(), tonic::Code::OutOfRange, "{huge:?}");
    // Replays of older requests of the session are refused without reaching the log.
    assert_eq!(code(&raw.submit(send.clone(), crypto::sign(&alice, TAG_REQUEST, &send)).await.unwrap()), "replayed");
    let create = body(TAG, "alice", session, 1, &Op::CreateAccount { public_key: alice.verifying_key().to_bytes() });
    let replayed_create = raw.submit(create.clone(), crypto::sign(&alice, TAG_REQUEST, &create)).await.unwrap();
    assert_eq!(code(&replayed_create), "replayed");

    let (_, accounts, messages) = raw.status().await;
    assert_eq!((accounts, messages), (before.1, before.2), "no refused request changed the state");
}

/// A subscription is good once, at the replica it names, for an open session of the
/// account, with a challenge that replica issued; its stream ends at logout. (Before, a
/// subscription named no replica and no nonce: anyone who saw one could replay it
/// anywhere for 5 minutes and get a stream that outlived the logout.)
#[tokio::test]
async fn a_subscription_is_bound_to_its_replica_a_fresh_challenge_and_an_open_session() {
    use tokio_stream::StreamExt as _;
    let (_cluster, mut raw, alice, session, _) = alice_created("subscriptions").await;
    let signed = |replica: &str, session: u64, challenge: Vec<u8>| {
        let body = pb::SubscribeBody { cluster: TAG.into(), user: "alice".into(), replica: replica.into(), session, challenge }
            .encode_to_vec();
        pb::SignedSubscribe { signature: crypto::sign(&alice, quintet::crypto::TAG_SUBSCRIBE, &body), body }
    };
    let mut rpc = raw.rpc.clone();
    let challenge = rpc.challenge(pb::ChallengeRequest {}).await.unwrap().into_inner().challenge;
    let good = signed("A", session, challenge);
    let mut stream = rpc.subscribe(good.clone()).await.expect("a good subscription").into_inner();
    // The same subscription again (a replay, here or anywhere): its challenge is used up.
    let replayed = rpc.subscribe(good).await.expect_err("a replay");
    assert!(replayed.message().contains("challenge"), "{replayed:?}");
    // A challenge this replica never issued.
    assert!(rpc.subscribe(signed("A", session, vec![7; 32])).await.is_err());
    // Signed with another key (checked on the service's threads, off the apply loop).
    let fresh = rpc.challenge(pb::ChallengeRequest {}).await.unwrap().into_inner().challenge;
    let mut forged = signed("A", session, fresh);
    forged.signature = crypto::sign(&crypto::SigningKey::from_bytes(&[99; 32]), quintet::crypto::TAG_SUBSCRIBE, &forged.body);
    let forged = rpc.subscribe(forged).await.expect_err("signed by another key");
    assert!(forged.message().contains("signature"), "{forged:?}");
    // Meant for another replica.
    let fresh = rpc.challenge(pb::ChallengeRequest {}).await.unwrap().into_inner().challenge;
    let other = rpc.subscribe(signed("B", session, fresh)).await.expect_err("for replica B");
    assert!(other.message().contains("replica"), "{other:?}");
    // A session that was never opened.
    let fresh = rpc.challenge(pb::ChallengeRequest {}).await.unwrap().into_inner().challenge;
    let closed = rpc.subscribe(signed("A", session + 1, fresh)).await.expect_err("no such session");
    assert!(closed.message().contains("session"), "{closed:?}");
    // The good stream carries deliveries...
    let send = body(TAG, "alice", session, 2, &Op::Send { to: "alice".into(), text: "to myself".into() });
    raw.submit(send.clone(), crypto::sign(&alice, TAG_REQUEST, &send)).await.unwrap();
    let delivered = tokio::time::timeout(std::time::Duration::from_secs(10), stream.next()).await.expect("in time");
    assert!(matches!(delivered, Some(Ok(_))), "{delivered:?}");
    // ...and ends when its session logs out.
    let logout = body(TAG, "alice", session, 3, &Op::Logout);
    raw.submit(logout.clone(), crypto::sign(&alice, TAG_REQUEST, &logout)).await.unwrap();
    let end = tokio::time::timeout(std::time::Duration::from_secs(10), stream.next()).await.expect("the stream ends in time");
    assert!(end.as_ref().is_none_or(|r| r.is_err()), "{end:?}");
}
