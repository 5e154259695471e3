//! Figures for the notebook (not timed tests): what the ordering protocol costs in CPU with
//! real ed25519 signatures and the real peer codec, without disks or a network.
//! - one protocol signature and one verification;
//! - five cores in one thread ordering 20,000 requests: every message is encoded, decoded
//!   and delivered at once, every Persist and StoreBlock is encoded (not written), and
//!   simulated time moves 1 ms per round so the 2Δ waits pass.
//!
//! Run: `cargo bench --bench consensus`.

use std::collections::VecDeque;
use std::time::Instant;

use quintet::consensus::{Action, Config, Core, Crypto, Input, Message, ReplicaId, Restored, digest};
use quintet::crypto::{PeerCrypto, SigningKey};
use quintet::wire::peer;

const N: usize = 5;
const REQUESTS: usize = 20_000;
const REQUEST_BYTES: usize = 200;
const T0_MS: u64 = 1_800_000_000_000;

fn keys() -> Vec<SigningKey> {
    (0..N as u8).map(|i| SigningKey::from_bytes(&[i + 1; 32])).collect()
}

fn crypto(me: usize) -> PeerCrypto {
    let keys = keys();
    PeerCrypto::new(keys[me].clone(), keys.iter().map(|k| k.verifying_key()).collect(), "00112233445566778899aabbccddeeff")
}

fn signatures() {
    let c = crypto(0);
    let bytes = [7u8; 80];
    let rounds = 5_000;
    let start = Instant::now();
    let mut signature = Vec::new();
    for _ in 0..rounds {
        signature = c.sign(&bytes);
    }
    let sign_us = start.elapsed().as_secs_f64() * 1e6 / rounds as f64;
    let start = Instant::now();
    for _ in 0..rounds {
        assert!(c.verify(0, &bytes, &signature));
    }
    let verify_us = start.elapsed().as_secs_f64() * 1e6 / rounds as f64;
    println!("ed25519 protocol signature: sign {sign_us:.1} µs, verify_strict {verify_us:.1} µs");
}

/// What the replicas hand each other and the disk.
#[derive(Default)]
struct Bus {
    wire: VecDeque<(usize, usize, Vec<u8>)>,
    feedback: Vec<(usize, Input)>,
    persists: u64,
    persist_bytes: u64,
    block_bytes: u64,
}

/// Runs the actions of replica `me`; returns how many requests it committed.
fn perform(me: usize, actions: Vec<Action>, bus: &mut Bus) -> usize {
    let mut committed = 0;
    for action in actions {
        match action {
            Action::Persist(p) => {
                bus.persists += 1;
                bus.persist_bytes += peer::encode_persistent(&p).len() as u64;
            }
            Action::StoreBlock(b) => bus.block_bytes += peer::encode_block(&b).len() as u64,
            Action::Send(to, m) => bus.wire.push_back((me, to as usize, peer::encode_message(&m))),
            Action::Broadcast(m) => {
                let bytes = peer::encode_message(&m);
                for to in (0..N).filter(|to| *to != me) {
                    bus.wire.push_back((me, to, bytes.clone()));
                }
            }
            Action::Commit(b) => committed += b.requests.len(),
            Action::TakeSnapshot { height, hash } => {
                bus.feedback.push((me, Input::Snapshot { height, hash, state: digest(&hash) }));
            }
            Action::Stable(_) | Action::SendState(..) | Action::InstallState(_) | Action::Evidence(_) | Action::KeepProof(_) => {}
        }
    }
    committed
}

fn cluster() {
    let mut cores: Vec<Core> =
        (0..N).map(|me| Core::new(Config::new(N, 100), me as ReplicaId, Box::new(crypto(me)), Restored::default())).collect();
    let requests: Vec<Vec<u8>> =
        (0..REQUESTS).map(|i| format!("{i:>width$}", width = REQUEST_BYTES).into_bytes()).collect();
    let mut bus = Bus::default();
    let mut committed = [0usize; N];
    let (mut messages, mut bytes) = (0u64, 0u64);
    let mut now = T0_MS;
    let start = Instant::now();
    let mut next = 0;
    while committed.iter().any(|c| *c < REQUESTS) {
        now += 1;
        assert!(now < T0_MS + 3_600_000, "the cluster stopped making progress");
        // Clients keep about 2,000 requests in flight, sent to every replica.
        while next < REQUESTS && next < committed[0] + 2_000 {
            for (me, core) in cores.iter_mut().enumerate() {
                let actions = core.handle(now, Input::Request(requests[next].clone()));
                committed[me] += perform(me, actions, &mut bus);
            }
            next += 1;
        }
        for (me, core) in cores.iter_mut().enumerate() {
            let actions = core.handle(now, Input::Tick);
            committed[me] += perform(me, actions, &mut bus);
        }
        for (me, input) in std::mem::take(&mut bus.feedback) {
            let actions = cores[me].handle(now, input);
            committed[me] += perform(me, actions, &mut bus);
        }
        while let Some((from, to, encoded)) = bus.wire.pop_front() {
            messages += 1;
            bytes += encoded.len() as u64;
            let message: Message = peer::decode_message(&encoded).expect("honest bytes decode");
            let actions = cores[to].handle(now, Input::Message(from as ReplicaId, message));
            committed[to] += perform(to, actions, &mut bus);
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let heights: Vec<u64> = cores.iter().map(|c| c.committed_height()).collect();
    println!(
        "five cores, one thread: {REQUESTS} requests of {REQUEST_BYTES} bytes committed by all five in {seconds:.2} s of CPU \
         ({:.0} requests/s for the whole cluster, {:.1} µs of CPU per request per replica); \
         {} blocks, {messages} messages ({:.1} MB), {} ms of simulated time",
        REQUESTS as f64 / seconds,
        seconds * 1e6 / (REQUESTS * N) as f64,
        heights[0],
        bytes as f64 / 1e6,
        now - T0_MS,
    );
    println!(
        "per replica: {:.0} Persist records ({:.1} MB, {:.0} bytes per request), {:.1} MB of stored blocks",
        bus.persists as f64 / N as f64,
        bus.persist_bytes as f64 / N as f64 / 1e6,
        bus.persist_bytes as f64 / (N * REQUESTS) as f64,
        bus.block_bytes as f64 / N as f64 / 1e6,
    );
}

fn main() {
    signatures();
    cluster();
}
