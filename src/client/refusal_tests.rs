//! The client rule for height-0 refusals, against five in-process replicas that answer as
//! each test scripts them (plaintext gRPC on loopback, port 0): a refusal is "no answer
//! yet", asked again with the same bytes; only a result or `replayed` settles a request.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::{ClientError, QuorumClient};
use crate::config::{ClusterConfig, ReplicaEntry};
use crate::crypto::{SigningKey, TAG_REPLY, sign};
use crate::pb::replica_server::{Replica, ReplicaServer};
use crate::{pb, wire};

/// How a scripted replica answers its n-th submit (from 0).
type Script = Arc<dyn Fn(usize) -> Answer + Send + Sync>;

#[derive(Clone)]
enum Answer {
    /// A signed reply at this height with this outcome, after a delay.
    Reply(u64, pb::Outcome, Duration),
    /// The call fails with this text (and so does every status call).
    Fail(&'static str),
}

struct Scripted {
    id: String,
    key: SigningKey,
    script: Script,
    /// The request bodies it was sent, in order.
    seen: Arc<Mutex<Vec<Vec<u8>>>>,
}

#[tonic::async_trait]
impl Replica for Scripted {
    async fn submit(&self, request: Request<pb::SignedRequest>) -> Result<Response<pb::SignedReply>, Status> {
        let body = request.into_inner().body;
        let n = {
            let mut seen = self.seen.lock().unwrap();
            seen.push(body.clone());
            seen.len() - 1
        };
        let (height, outcome, after) = match (self.script)(n) {
            Answer::Reply(height, outcome, after) => (height, outcome, after),
            Answer::Fail(text) => return Err(Status::unavailable(text)),
        };
        tokio::time::sleep(after).await;
        let reply = pb::ReplyBody { replica: self.id.clone(), request_digest: wire::digest(&body).to_vec(), height, outcome: Some(outcome), ..Default::default() };
        let reply = prost::Message::encode_to_vec(&reply);
        Ok(Response::new(pb::SignedReply { signature: sign(&self.key, TAG_REPLY, &reply), body: reply }))
    }
    type SubscribeStream = ReceiverStream<Result<pb::SignedDelivery, Status>>;
    async fn subscribe(&self, _: Request<pb::SignedSubscribe>) -> Result<Response<Self::SubscribeStream>, Status> {
        Err(Status::unimplemented("scripted"))
    }
    async fn challenge(&self, _: Request<pb::ChallengeRequest>) -> Result<Response<pb::ChallengeReply>, Status> {
        Err(Status::unimplemented("scripted"))
    }
    async fn status(&self, _: Request<pb::StatusRequest>) -> Result<Response<pb::SignedStatus>, Status> {
        match (self.script)(0) {
            Answer::Fail(text) => Err(Status::unavailable(text)),
            Answer::Reply(..) => Err(Status::unimplemented("scripted")),
        }
    }
    async fn evidence(&self, _: Request<pb::EvidenceRequest>) -> Result<Response<pb::EvidenceReply>, Status> {
        Err(Status::unimplemented("scripted"))
    }
}

fn refusal(code: &str) -> pb::Outcome {
    wire::failure(code, format!("scripted {code}"))
}

fn sent(id: u64) -> pb::Outcome {
    wire::encode_outcome(&crate::chat::Outcome::Sent { id })
}

fn always(answer: Answer) -> Script {
    Arc::new(move |_| answer.clone())
}

/// Five scripted replicas and a client of them (deadline `deadline`); what each was sent.
async fn cluster(scripts: Vec<Script>, deadline: Duration) -> (QuorumClient, Vec<Arc<Mutex<Vec<Vec<u8>>>>>) {
    let mut entries = Vec::new();
    let mut seen = Vec::new();
    for (i, script) in scripts.into_iter().enumerate() {
        let id = ["A", "B", "C", "D", "E"][i].to_string();
        let key = SigningKey::from_bytes(&[i as u8 + 1; 32]);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        // No certificate: plaintext links (the rule under test is above the transport).
        entries.push(ReplicaEntry { certificate: String::new(), ..ReplicaEntry::for_key(&id, &address, &key) });
        let log = Arc::new(Mutex::new(Vec::new()));
        seen.push(log.clone());
        let service = ReplicaServer::new(Scripted { id, key, script, seen: log });
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        tokio::spawn(tonic::transport::Server::builder().add_service(service).serve_with_incoming(incoming));
    }
    let config = ClusterConfig {
        name: "scripted".into(),
        cluster_id: "00112233445566778899aabbccddeeff".into(),
        delta_ms: 20,
        kdf: Default::default(),
        checkpoint_every: 1_000,
        presence_ms: crate::chat::PRESENCE_MS_DEFAULT,
        reset: None,
        replicas: entries,
    };
    let mut client = QuorumClient::new(&config).unwrap();
    client.deadline = deadline;
    (client, seen)
}

fn request() -> pb::SignedRequest {
    pb::SignedRequest { body: b"a request body".to_vec(), signature: vec![1; 64] }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_liars_and_one_local_refusal_cannot_make_a_committed_request_look_not_sent() {
    let quick = Duration::from_millis(1);
    // D and E lie: "rate_limited" at once, every time. C refuses locally the first time
    // (its bucket was empty), then holds the resend until it commits. A and B commit it
    // at height 7 after 300 ms.
    let liar = always(Answer::Reply(0, refusal("rate_limited"), quick));
    let honest = always(Answer::Reply(7, sent(42), Duration::from_millis(300)));
    let c: Script = Arc::new(move |n| match n {
        0 => Answer::Reply(0, refusal("rate_limited"), quick),
        _ => Answer::Reply(7, sent(42), Duration::from_millis(100)),
    });
    let (client, seen) = cluster(vec![honest.clone(), honest, c, liar.clone(), liar], Duration::from_secs(10)).await;
    let agreed = client.submit(request()).await.expect("the committed result, not a refusal");
    assert_eq!((agreed.height, agreed.outcome, agreed.settled), (7, sent(42), true));
    assert_eq!(agreed.agreement.agreed, vec![0, 1, 2]);
    // C was asked again, with the same bytes: the resend can apply only once.
    let at_c = seen[2].lock().unwrap().clone();
    assert!(at_c.len() >= 2 && at_c.iter().all(|b| *b == request().body), "{}", at_c.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_refusals_until_the_deadline_is_not_known_whether_sent_and_resends_the_same_request() {
    let busy = always(Answer::Reply(0, refusal("busy"), Duration::from_millis(1)));
    let silent = always(Answer::Reply(7, sent(1), Duration::from_secs(60)));
    let scripts = vec![busy.clone(), busy.clone(), busy, silent.clone(), silent];
    let (client, seen) = cluster(scripts, Duration::from_millis(1_500)).await;
    let error = client.submit(request()).await.expect_err("nothing settles it");
    assert!(matches!(error, ClientError::Unconfirmed { refused: 3, .. }), "{error}");
    let text = error.to_string();
    assert!(text.starts_with("not known whether applied: busy at 3 replica(s)"), "{text}");
    assert!(text.contains("A: refused for now (busy: scripted busy)"), "{text}");
    for log in &seen[..3] {
        let log = log.lock().unwrap();
        assert!(log.len() >= 2, "asked again: {}", log.len());
        assert!(log.iter().all(|b| *b == request().body));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_every_replica_gives_ends_the_wait_at_once_unsettled_and_replayed_settles() {
    let quick = Duration::from_millis(1);
    let wrong = always(Answer::Reply(0, refusal("bad_signature"), quick));
    let (client, _) = cluster(vec![wrong.clone(), wrong.clone(), wrong.clone(), wrong.clone(), wrong], Duration::from_secs(10)).await;
    let started = std::time::Instant::now();
    let refused = client.submit(request()).await.expect("every replica answered");
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert_eq!((refused.height, refused.outcome, refused.settled), (0, refusal("bad_signature"), false));
    // `replayed` at height 0 is a result: the number is spent.
    let replayed = always(Answer::Reply(0, refusal("replayed"), quick));
    let (client, _) = cluster(vec![replayed.clone(), replayed.clone(), replayed.clone(), replayed.clone(), replayed], Duration::from_secs(10)).await;
    let agreed = client.submit(request()).await.unwrap();
    assert!(agreed.settled);
    // Three alike "busy" refusals are not an answer, even when every replica gave one.
    let busy = always(Answer::Reply(0, refusal("busy"), quick));
    let (client, _) = cluster(vec![busy.clone(), busy.clone(), busy.clone(), busy.clone(), busy], Duration::from_millis(800)).await;
    assert!(matches!(client.submit(request()).await, Err(ClientError::Unconfirmed { refused: 5, .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replicas_own_error_text_reaches_no_terminal_raw() {
    // A lying replica (or anyone on a plaintext link) answers with escape codes that would
    // clear the screen and a line break that fakes a line.
    let lie = always(Answer::Fail("\u{1b}[2J\u{1b}]0;pwned\u{7}\nquintet chat: all is well"));
    let (client, _) = cluster(vec![lie.clone(), lie.clone(), lie.clone(), lie.clone(), lie], Duration::from_millis(600)).await;
    let report = client.submit(request()).await.expect_err("no quorum").to_string();
    assert!(!report.chars().any(|c| c.is_control()), "{report:?}");
    assert!(report.contains("\\u{1b}[2J"), "shown escaped: {report}");
    for (id, status) in client.status().await {
        let text = status.expect_err("down").to_string();
        assert!(!text.chars().any(|c| c.is_control()) && text.contains("\\u{a}quintet chat"), "{id}: {text:?}");
    }
}
