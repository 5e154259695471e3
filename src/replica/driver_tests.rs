//! The driver with a store whose image files wait at a gate: ordering must go on while a
//! state image is being written (S11 off the ordering path).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use prost::Message as _;
use tokio::sync::{mpsc, oneshot};

use super::{Driver, Job};
use crate::replica::service::Checked;
use crate::chat::Op;
use crate::consensus::{Config, Core};
use crate::crypto::{PeerCrypto, SigningKey, TAG_REQUEST, sign};
use crate::replica::peers::Peers;
use crate::storage::{Fs, MemFs, ReplicaStore, WriteFile};
use crate::{pb, wire};

const CLUSTER_ID: &str = "00112233445566778899aabbccddeeff";
const TAG: &str = "gate#00112233445566778899aabbccddeeff";

/// A MemFs on which creating a file inside an image's temp folder waits until `open`.
struct GatedFs {
    inner: MemFs,
    open: AtomicBool,
    reached: AtomicBool,
}

impl Fs for GatedFs {
    fn create_dir_all(&self, path: &Path) -> std::io::Result<()> {
        self.inner.create_dir_all(path)
    }
    fn list(&self, dir: &Path) -> std::io::Result<Vec<String>> {
        self.inner.list(dir)
    }
    fn open_read(&self, path: &Path) -> std::io::Result<Box<dyn std::io::Read + Send>> {
        self.inner.open_read(path)
    }
    fn create(&self, path: &Path) -> std::io::Result<Box<dyn WriteFile>> {
        if path.parent().is_some_and(|d| d.extension().is_some_and(|e| e == "tmp")) {
            self.reached.store(true, Ordering::SeqCst);
            for _ in 0..30_000 {
                if self.open.load(Ordering::SeqCst) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        self.inner.create(path)
    }
    fn open_append(&self, path: &Path) -> std::io::Result<Box<dyn WriteFile>> {
        self.inner.open_append(path)
    }
    fn truncate(&self, path: &Path, len: u64) -> std::io::Result<()> {
        self.inner.truncate(path, len)
    }
    fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        self.inner.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> std::io::Result<()> {
        self.inner.remove_file(path)
    }
    fn remove_dir_all(&self, path: &Path) -> std::io::Result<()> {
        self.inner.remove_dir_all(path)
    }
    fn sync_dir(&self, dir: &Path) -> std::io::Result<()> {
        self.inner.sync_dir(dir)
    }
}

/// alice's request number `seq` (1: her account; then sends to herself), signed.
fn request(alice: &SigningKey, seq: u64) -> pb::SignedRequest {
    let op = match seq {
        1 => Op::CreateAccount { public_key: alice.verifying_key().to_bytes() },
        _ => Op::Send { to: "alice".into(), text: format!("m{seq}") },
    };
    let body = pb::RequestBody { cluster: TAG.into(), user: "alice".into(), session: 7, seq, op: Some(wire::encode_op(&op)) }
        .encode_to_vec();
    pb::SignedRequest { signature: sign(alice, TAG_REQUEST, &body), body }
}

/// Submits one request and waits (bounded) for this replica's reply: its height.
async fn submit(jobs: &mpsc::Sender<Job>, request: pb::SignedRequest) -> u64 {
    let (reply, answer) = oneshot::channel();
    let (_, decoded) = wire::decode_request(&request.body).unwrap();
    let checked = Checked { body_digest: wire::digest(&request.body), signed: request, request: decoded, verified: true, from: None };
    jobs.send(Job::Submit { checked, reply }).await.unwrap();
    let body = tokio::time::timeout(Duration::from_secs(10), answer).await.expect("answered within 10 s").unwrap();
    body.height
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_keep_committing_while_a_state_image_is_written() {
    let fs = Arc::new(GatedFs { inner: MemFs::new(), open: AtomicBool::new(false), reached: AtomicBool::new(false) });
    let (store, opened) = ReplicaStore::open(fs.clone(), Path::new("/data"), crate::storage::OnDamage::Repair).unwrap();
    let key = SigningKey::from_bytes(&[9; 32]);
    let crypto = Arc::new(PeerCrypto::new(key.clone(), vec![key.verifying_key()], CLUSTER_ID));
    let mut cfg = Config::new(1, 5);
    cfg.checkpoint_every = 4;
    let core = Core::new(cfg, 0, Box::new(crypto.clone()), opened.restored);
    let (jobs, queue) = mpsc::channel(1024);
    let peers = Peers::start(0, &[crate::config::ReplicaEntry::for_key("A", "127.0.0.1:1", &key)], None, crypto);
    let driver = Driver::new("A", vec!["A".into()], TAG.into(), key, core, store, opened.state, peers, &jobs);
    let status = driver.status.clone();
    let loop_thread = std::thread::spawn(move || driver.run(queue));
    let ticks = {
        let jobs = jobs.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(1)).await;
                let _ = jobs.try_send(Job::Tick);
            }
        })
    };
    let alice = SigningKey::from_bytes(&[1; 32]);
    let mut seq = 0;
    // Up to the first checkpoint height: the image starts and its files wait at the gate.
    while !fs.reached.load(Ordering::SeqCst) {
        seq += 1;
        assert!(seq < 50, "no state image was started");
        submit(&jobs, request(&alice, seq)).await;
    }
    // Ordering goes on meanwhile: more requests commit above the image's height.
    let mut heights = Vec::new();
    for _ in 0..6 {
        seq += 1;
        heights.push(submit(&jobs, request(&alice, seq)).await);
    }
    assert!(heights.iter().all(|h| *h > 4), "{heights:?}");
    assert_eq!(status.lock().unwrap().snapshot_height, 0, "the image is not kept before its files are written");
    // The gate opens: the image is kept and the core hears of it.
    fs.open.store(true, Ordering::SeqCst);
    for _ in 0..1000 {
        if status.lock().unwrap().snapshot_height > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(status.lock().unwrap().snapshot_height, 4);
    assert!(fs.inner.paths().iter().any(|p| p.ends_with("snap-00000000000000000004/image.sha256")), "{:?}", fs.inner.paths());
    ticks.abort();
    jobs.send(Job::Shutdown).await.unwrap();
    tokio::task::spawn_blocking(move || loop_thread.join().unwrap().unwrap()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_walks_none_of_the_state_whatever_it_holds() {
    // A state of 1,000 messages of 2 KB (2 MB): the status shows the newest image's digest
    // and the committed block's hash, and hashes nothing itself.
    let mut chat = crate::chat::ChatState::new();
    let ctx = |height| crate::chat::Context { height, position: 0, time_ms: 1_800_000_000_000 };
    let request = |seq, op| crate::chat::Request { user: "alice".into(), session: 1_800_000_000_000_000, seq, op };
    chat.apply(&request(1, Op::CreateAccount { public_key: [3; 32] }), ctx(1));
    for seq in 2..1_002 {
        chat.apply(&request(seq, Op::Send { to: "alice".into(), text: "t".repeat(2_000) }), ctx(seq));
    }
    let (store, opened) = ReplicaStore::open(Arc::new(MemFs::new()), Path::new("/data"), crate::storage::OnDamage::Repair).unwrap();
    let key = SigningKey::from_bytes(&[9; 32]);
    let crypto = Arc::new(PeerCrypto::new(key.clone(), vec![key.verifying_key()], CLUSTER_ID));
    let core = Core::new(Config::new(1, 5), 0, Box::new(crypto.clone()), opened.restored);
    let (jobs, _queue) = mpsc::channel(16);
    let peers = Peers::start(0, &[crate::config::ReplicaEntry::for_key("A", "127.0.0.1:1", &key)], None, crypto);
    let walked = || crate::chat::digest::WALKED.with(|w| w.get());
    let before = walked();
    let driver = Driver::new("A", vec!["A".into()], TAG.into(), key, core, store, chat, peers, &jobs);
    let status = driver.status();
    assert_eq!(walked() - before, 0, "a status hashed the state");
    assert_eq!((status.state_height, status.state_digest), (0, crate::chat::ChatState::new().digest().to_vec()), "the (empty) image's");
    assert_eq!(status.messages, 1_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resend_of_a_waiting_request_is_not_charged_to_its_users_rate_again() {
    // No ticks: nothing commits, so every request stays waiting here.
    let (store, opened) = ReplicaStore::open(Arc::new(MemFs::new()), Path::new("/data"), crate::storage::OnDamage::Repair).unwrap();
    let key = SigningKey::from_bytes(&[9; 32]);
    let crypto = Arc::new(PeerCrypto::new(key.clone(), vec![key.verifying_key()], CLUSTER_ID));
    let core = Core::new(Config::new(1, 5), 0, Box::new(crypto.clone()), opened.restored);
    let (jobs, queue) = mpsc::channel(4096);
    let peers = Peers::start(0, &[crate::config::ReplicaEntry::for_key("A", "127.0.0.1:1", &key)], None, crypto);
    let driver = Driver::new("A", vec!["A".into()], TAG.into(), key, core, store, opened.state, peers, &jobs);
    let loop_thread = std::thread::spawn(move || driver.run(queue));
    let alice = SigningKey::from_bytes(&[1; 32]);
    // Every call is answered at once only when refused; a waiting one hears nothing.
    let ask = |request: pb::SignedRequest| {
        let jobs = jobs.clone();
        async move {
            let (reply, answer) = oneshot::channel();
            let (_, decoded) = wire::decode_request(&request.body).unwrap();
            let checked = Checked { body_digest: wire::digest(&request.body), signed: request, request: decoded, verified: true, from: None };
            jobs.send(Job::Submit { checked, reply }).await.unwrap();
            answer
        }
    };
    let refused = |mut answer: oneshot::Receiver<pb::ReplyBody>| async move {
        tokio::time::sleep(Duration::from_millis(1)).await;
        matches!(answer.try_recv(), Ok(body) if matches!(&body.outcome, Some(pb::Outcome { kind: Some(pb::outcome::Kind::Failure(f)) }) if f.code == "rate_limited"))
    };
    // One request asked 2 x the burst times: never refused.
    let mut answers = Vec::new();
    for _ in 0..2 * crate::replica::rate::USER_BURST {
        answers.push(ask(request(&alice, 2)).await);
    }
    let mut charged = 0;
    for answer in answers {
        charged += refused(answer).await as u64;
    }
    assert_eq!(charged, 0, "resends of a waiting request were charged");
    // Control: distinct requests spend the bucket, then are refused (four bursts' worth,
    // so that even a slow machine sends them faster than the bucket refills).
    let mut answers = Vec::new();
    for seq in 3..3 + 4 * crate::replica::rate::USER_BURST {
        answers.push(ask(request(&alice, seq)).await);
    }
    let mut refusals = 0;
    for answer in answers {
        refusals += refused(answer).await as u64;
    }
    assert!(refusals > 0, "none of {} distinct requests refused", 4 * crate::replica::rate::USER_BURST);
    jobs.send(Job::Shutdown).await.unwrap();
    tokio::task::spawn_blocking(move || loop_thread.join().unwrap().unwrap()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resent_request_that_was_refused_when_executed_is_answered_again_not_dropped() {
    // The core drops a request it committed; a refusal of the session rules is not kept in
    // the session record. Before, such a resend waited here until WAIT_MAX (60 s).
    let (store, opened) = ReplicaStore::open(Arc::new(MemFs::new()), Path::new("/data"), crate::storage::OnDamage::Repair).unwrap();
    let key = SigningKey::from_bytes(&[9; 32]);
    let crypto = Arc::new(PeerCrypto::new(key.clone(), vec![key.verifying_key()], CLUSTER_ID));
    let core = Core::new(Config::new(1, 5), 0, Box::new(crypto.clone()), opened.restored);
    let (jobs, queue) = mpsc::channel(1024);
    let peers = Peers::start(0, &[crate::config::ReplicaEntry::for_key("A", "127.0.0.1:1", &key)], None, crypto);
    let driver = Driver::new("A", vec!["A".into()], TAG.into(), key, core, store, opened.state, peers, &jobs);
    let loop_thread = std::thread::spawn(move || driver.run(queue));
    let ticks = {
        let jobs = jobs.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(1)).await;
                let _ = jobs.try_send(Job::Tick);
            }
        })
    };
    let alice = SigningKey::from_bytes(&[1; 32]);
    submit(&jobs, request(&alice, 1)).await;
    // A read by alice: refused when executed.
    let body = pb::RequestBody { cluster: TAG.into(), user: "alice".into(), session: 8, seq: 1, op: Some(wire::encode_op(&Op::Read { max: 1 })) }
        .encode_to_vec();
    let read = pb::SignedRequest { signature: sign(&alice, TAG_REQUEST, &body), body };
    let ask = |request: pb::SignedRequest| {
        let jobs = jobs.clone();
        async move {
            let (reply, answer) = oneshot::channel();
            let (_, decoded) = wire::decode_request(&request.body).unwrap();
            let checked = Checked { body_digest: wire::digest(&request.body), signed: request, request: decoded, verified: true, from: None };
            jobs.send(Job::Submit { checked, reply }).await.unwrap();
            tokio::time::timeout(Duration::from_secs(5), answer).await.expect("answered within 5 s").unwrap()
        }
    };
    let first = ask(read.clone()).await;
    let code = |b: &pb::ReplyBody| match &b.outcome {
        Some(pb::Outcome { kind: Some(pb::outcome::Kind::Failure(f)) }) => f.code.clone(),
        other => format!("{other:?}"),
    };
    // (alice's create in session 7 was itself refused, clock_skew: the read is refused as
    // from an unknown account; any refusal made when executing is kept nowhere else.)
    assert_eq!((code(&first), first.height > 0), ("unknown_user".to_string(), true));
    let again = ask(read).await;
    // The first answer is the execution's own (`executed`, naming the ordered bytes); the
    // resend's comes from what was kept, so it is not (evidence compares only the first).
    assert!(first.executed && first.ordered.len() == 32 && !again.executed);
    let kept = pb::ReplyBody { executed: true, ordered: first.ordered.clone(), ..again };
    assert_eq!(kept, first, "the same refusal at the same height");
    ticks.abort();
    jobs.send(Job::Shutdown).await.unwrap();
    tokio::task::spawn_blocking(move || loop_thread.join().unwrap().unwrap()).await.unwrap();
}
