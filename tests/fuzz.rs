//! Seeded fuzzing of every decoder that takes bytes from outside: signed requests, replies
//! and deliveries (as a client checks them), subscriptions, the peer codec, log records,
//! state images with their CSV snapshots, and `cluster.toml`. Inputs are valid encodings
//! mutated (bit flips, cuts, inserted and repeated bytes, runs of 0xff that make huge
//! lengths and varints) and plain random bytes. Each must give a value or an error: no
//! panic, and no allocation beyond a linear bound of its size (counted by this binary's
//! allocator). `QUINTET_FUZZ_ITERS` (default 300 per target) and `QUINTET_FUZZ_SEED` set
//! the run; the notebook records a long one.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use prost::Message as _;
use quintet::chat::Op;
use quintet::client::{DeliveryTally, Tally};
use quintet::consensus::{self as qop, Block, QuorumCert};
use quintet::crypto::{self, SigningKey, TAG_DELIVERY, TAG_REPLY};
use quintet::rng::Rng;
use quintet::storage::{Fs, MemFs, OnDamage, ReplicaStore, image_of};
use quintet::{pb, wire};

/// Counts live heap bytes and their peak, so a decoder's allocations can be bounded.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            let live = LIVE.fetch_add(new_size - layout.size(), Ordering::Relaxed) + new_size - layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        } else {
            LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The counters are process-wide: the tests of this binary take turns.
static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `decode` on `input`; panics (failing the test) with the input's hex if the decoder
/// panics or allocates more than 16 bytes per input byte plus 2 MiB at its peak.
fn check(target: &str, input: &[u8], decode: &mut dyn FnMut(&[u8])) {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| decode(input)));
    let extra = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    let shown: String = input.iter().take(64).map(|b| format!("{b:02x}")).collect();
    assert!(outcome.is_ok(), "{target}: the decoder panicked on {} bytes: {shown}…", input.len());
    let bound = 16 * input.len() + (2 << 20);
    assert!(extra <= bound, "{target}: {extra} bytes allocated for {} bytes of input (bound {bound}): {shown}…", input.len());
}

fn mutate(rng: &mut Rng, valid: &[u8]) -> Vec<u8> {
    let mut v = valid.to_vec();
    match rng.below(7) {
        0 => {
            for _ in 0..=rng.below(8) {
                if !v.is_empty() {
                    let i = rng.below(v.len() as u64) as usize;
                    v[i] ^= 1 << rng.below(8);
                }
            }
        }
        1 => v.truncate(rng.below(v.len() as u64 + 1) as usize),
        2 => {
            let at = rng.below(v.len() as u64 + 1) as usize;
            let extra: Vec<u8> = (0..rng.below(64)).map(|_| rng.next_u64() as u8).collect();
            v.splice(at..at, extra);
        }
        3 => {
            // A run of 0xff: huge lengths and overlong varints.
            let at = rng.below(v.len() as u64 + 1) as usize;
            let run = 1 + rng.below(12) as usize;
            v.splice(at..at, std::iter::repeat_n(0xff, run));
        }
        4 if !v.is_empty() => {
            // A chunk repeated many times: repeated fields and elements.
            let from = rng.below(v.len() as u64) as usize;
            let len = (1 + rng.below(16) as usize).min(v.len() - from);
            let chunk = v[from..from + len].to_vec();
            for _ in 0..rng.below(2_000) {
                v.extend_from_slice(&chunk);
            }
        }
        5 => v = (0..rng.below(512)).map(|_| rng.next_u64() as u8).collect(),
        _ => {
            if !v.is_empty() {
                let i = rng.below(v.len() as u64) as usize;
                v[i] = *rng.pick(&[0x00, 0x7f, 0x80, 0xff]);
            }
        }
    }
    v
}

fn fuzz(target: &str, seeds: &[Vec<u8>], rng: &mut Rng, iters: u64, decode: &mut dyn FnMut(&[u8])) {
    for seed in seeds {
        check(target, seed, decode);
    }
    for _ in 0..iters {
        let valid = rng.pick(seeds).clone();
        let input = mutate(rng, &valid);
        check(target, &input, decode);
    }
}

const TAG: &str = "fuzz#00000000000000000000000000000000";

fn request_bodies() -> Vec<Vec<u8>> {
    let ops = [
        Op::CreateAccount { public_key: [3; 32] },
        Op::Login,
        Op::Logout,
        Op::ListAccounts { pattern: "a*".into(), after: "al".into(), limit: 20 },
        Op::Send { to: "bob".into(), text: "hello".into() },
        Op::Read { max: 10 },
        Op::MarkRead { ids: vec![1, 2, 3] },
        Op::DeleteMessages { ids: vec![4] },
        Op::DeleteAccount,
    ];
    ops.iter()
        .map(|op| pb::RequestBody { cluster: TAG.into(), user: "alice".into(), session: 1 << 50, seq: 3, op: Some(wire::encode_op(op)) }.encode_to_vec())
        .collect()
}

fn blocks() -> Vec<Block> {
    let mut parent = [0u8; 32];
    (1..=3)
        .map(|height| {
            let mut b = Block {
                view: 2,
                height,
                parent,
                parent_qc: QuorumCert::genesis(),
                proposer: 2,
                time_ms: 1_000 + height,
                requests: request_bodies().into_iter().take(height as usize * 2).collect(),
                hash: [0; 32],
            };
            b.hash = b.compute_hash();
            parent = b.hash;
            b
        })
        .collect()
}

fn peer_messages() -> Vec<Vec<u8>> {
    let b = blocks().pop().unwrap();
    let vote = qop::Vote { view: 2, height: 3, hash: b.hash, voter: 1, signature: vec![9; 64] };
    let qc = QuorumCert { view: 2, height: 3, hash: b.hash, votes: (0..3).map(|v| (v, vec![v; 64])).collect() };
    let mut messages = vec![
        qop::Message::Propose(qop::Proposal { block: b.clone(), signature: vec![1; 64], justification: None }),
        qop::Message::Vote(vote),
        qop::Message::Fetch(b.hash),
        qop::Message::Block(Box::new(Block { parent_qc: qc, ..b.clone() })),
        qop::Message::FetchState(100),
    ];
    let cert = qop::StateCert { height: 3, hash: b.hash, state: [5; 32], signatures: vec![(0, vec![0; 64])] };
    messages.push(qop::Message::State(Box::new(qop::StateTransfer { cert, block: b, image: vec![1, 2, 3] })));
    messages.iter().map(wire::peer::encode_message).collect()
}

fn iterations() -> u64 {
    std::env::var("QUINTET_FUZZ_ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(300)
}

#[test]
fn every_outside_decoder_survives_mutated_and_random_bytes_within_a_linear_allocation_bound() {
    let _turn = turn();
    let iters = iterations();
    let seed = std::env::var("QUINTET_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(20261201);
    let mut rng = Rng::new(seed);
    let started = std::time::Instant::now();

    // Client requests, as a replica decodes them.
    fuzz("request", &request_bodies(), &mut rng, iters, &mut |b| {
        let _ = wire::decode_request(b);
    });
    // Replies and deliveries, as a client checks them (signed by the replica, so the bytes
    // reach the decoder).
    let replica = SigningKey::from_bytes(&[4; 32]);
    let key = replica.verifying_key();
    let reply = pb::ReplyBody { replica: "A".into(), request_digest: vec![0; 32], height: 9, outcome: Some(wire::failure("x", "y")), ..Default::default() };
    fuzz("reply", &[reply.encode_to_vec()], &mut rng, iters, &mut |b| {
        let signed = pb::SignedReply { body: b.to_vec(), signature: crypto::sign(&replica, TAG_REPLY, b) };
        let _ = Tally::new(3, [0; 32]).add(0, "A", &key, &signed);
    });
    let message = quintet::chat::Message { id: 7, from: "bob".into(), from_account: 2, to: "alice".into(), time_ms: 5, text: "hi".into() };
    let delivery = pb::DeliveryBody { replica: "A".into(), height: 3, message: Some(wire::encode_message(&message)), closed: None };
    let mut tally = DeliveryTally::new(3);
    fuzz("delivery", &[delivery.encode_to_vec()], &mut rng, iters, &mut |b| {
        let signed = pb::SignedDelivery { body: b.to_vec().into(), signature: crypto::sign(&replica, TAG_DELIVERY, b).into() };
        let _ = tally.add(0, "A", &key, &signed);
    });
    // Subscriptions, as a replica decodes them.
    let subscribe = pb::SubscribeBody { cluster: TAG.into(), user: "alice".into(), replica: "A".into(), session: 1, challenge: vec![1; 32] };
    fuzz("subscription", &[subscribe.encode_to_vec()], &mut rng, iters, &mut |b| {
        let _ = pb::SubscribeBody::decode(b);
    });
    // The peer codec: messages, batches, blocks, certificates, persisted consensus state.
    let messages = peer_messages();
    fuzz("peer message", &messages, &mut rng, iters, &mut |b| {
        let _ = wire::peer::decode_message(b);
    });
    let batch = wire::peer::encode_batch(messages.clone());
    fuzz("peer batch", &[batch], &mut rng, iters, &mut |b| {
        let _ = wire::peer::decode_batch(b);
    });
    let encoded_blocks: Vec<Vec<u8>> = blocks().iter().map(wire::peer::encode_block).collect();
    fuzz("block", &encoded_blocks, &mut rng, iters, &mut |b| {
        let _ = wire::peer::decode_block(b);
        let _ = wire::peer::decode_persistent(b);
        let _ = wire::peer::decode_state_cert(b);
    });

    // Log records: a store's chain segment with its bytes replaced, then opened.
    let fs = MemFs::new();
    let dir = Path::new("/r");
    {
        let (mut store, _) = ReplicaStore::open(Arc::new(fs.clone()), dir, OnDamage::Repair).unwrap();
        for b in blocks() {
            store.commit(&b).unwrap();
        }
        store.sync().unwrap();
    }
    let segment = fs.list(dir).unwrap().into_iter().find(|n| n.starts_with("chain-")).expect("a chain segment");
    let segment = dir.join(segment);
    let mut valid = Vec::new();
    std::io::Read::read_to_end(&mut fs.open_read(&segment).unwrap(), &mut valid).unwrap();
    fuzz("log records", &[valid.clone()], &mut rng, iters / 4, &mut |b| {
        let copy = MemFs::new();
        let mut f = copy.create(&segment).unwrap();
        f.write_all(b).unwrap();
        f.sync().unwrap();
        let _ = ReplicaStore::open(Arc::new(copy.clone()), dir, OnDamage::Refuse);
        let _ = ReplicaStore::open(Arc::new(copy), dir, OnDamage::Repair);
    });

    // State images and their CSV snapshots, as a state transfer installs them.
    let mut state = quintet::chat::ChatState::new();
    let ctx = |h| quintet::chat::Context { height: h, position: 0, time_ms: 1_000 };
    let alice = quintet::chat::Request { user: "alice".into(), session: 1_000_000, seq: 1, op: Op::CreateAccount { public_key: [1; 32] } };
    state.apply(&alice, ctx(1));
    let send = quintet::chat::Request { seq: 2, op: Op::Send { to: "alice".into(), text: "a,\"quoted\"\nline".into() }, ..alice.clone() };
    state.apply(&send, ctx(2));
    let image = image_of(&state).unwrap();
    let block = blocks().remove(0);
    fuzz("state image", &[image], &mut rng, iters / 4, &mut |b| {
        let (mut store, _) = ReplicaStore::open(Arc::new(MemFs::new()), dir, OnDamage::Repair).unwrap();
        let cert = qop::StateCert { height: 1, hash: block.hash, state: qop::digest(b), signatures: Vec::new() };
        let _ = store.install(&qop::StateTransfer { cert, block: block.clone(), image: b.to_vec() });
    });

    // cluster.toml.
    let config = quintet::config::ClusterConfig {
        name: "fuzz".into(),
        cluster_id: "00000000000000000000000000000000".into(),
        delta_ms: 200,
        kdf: quintet::crypto::KdfParams { memory_kib: 64, iterations: 1 },
        checkpoint_every: 1_000,
        presence_ms: quintet::chat::PRESENCE_MS_DEFAULT,
        reset: None,
        replicas: ["A", "B", "C", "D", "E"]
            .iter()
            .enumerate()
            .map(|(i, id)| quintet::config::ReplicaEntry::for_key(id, &format!("127.0.0.1:{}", 7000 + i), &SigningKey::from_bytes(&[i as u8; 32])))
            .collect(),
    };
    fuzz("cluster.toml", &[config.to_toml().into_bytes()], &mut rng, iters, &mut |b| {
        if let Ok(c) = toml::from_str::<quintet::config::ClusterConfig>(&String::from_utf8_lossy(b)) {
            let _ = c.validate();
        }
    });
    println!("fuzz: {iters} inputs per target (a quarter for the storage ones), seed {seed}, {:?}", started.elapsed());
}

/// Controls: the checker above reports a decoder that panics on some mutated input, and
/// one that allocates far past the bound.
#[test]
#[should_panic(expected = "the decoder panicked")]
fn control_a_decoder_that_panics_on_a_run_of_0xff_is_caught() {
    let _turn = turn();
    let mut rng = Rng::new(1);
    fuzz("planted panic", &request_bodies(), &mut rng, iterations(), &mut |b| {
        assert!(!b.windows(3).any(|w| w == [0xff; 3]), "planted");
    });
}

#[test]
#[should_panic(expected = "bytes allocated for")]
fn control_a_decoder_that_allocates_64_bytes_per_input_byte_is_caught() {
    let _turn = turn();
    let mut rng = Rng::new(1);
    fuzz("planted allocation", &request_bodies(), &mut rng, iterations(), &mut |b| {
        let v = vec![1u8; 64 * b.len() + (3 << 20)];
        std::hint::black_box(&v);
    });
}
