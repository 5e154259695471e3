//! Micro-benchmarks with figures for the notebook (not timed tests):
//! - applying 1M send operations to the chat state machine;
//! - writing and loading (with the digest check) a CSV snapshot of 1M messages;
//! - appending to the log with an fsync, one record per fsync and 100 per fsync;
//! - resident memory of a state holding 1M messages (printed before the timings).
//!
//! Run: `cargo bench --bench storage` (release build, real files under the temp folder).
//! `scripts/bench-replica-memory.sh` measures a real replica process holding 1M messages.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use quintet::chat::{ChatState, Context, Op, Request};
use quintet::storage::{LogEntry, RealFs, Storage, snapshot};

const MESSAGES: u64 = 1_000_000;
const USERS: u64 = 1_000;
const T0_MS: u64 = 1_800_000_000_000;

fn user(i: u64) -> String {
    format!("user{i:04}")
}

/// A state with `USERS` accounts, each with an open session; returns it and the next height.
fn accounts() -> (ChatState, u64) {
    let mut state = ChatState::new();
    for i in 0..USERS {
        let request = Request { user: user(i), session: T0_MS * 1000 + i, seq: 1, op: Op::CreateAccount { public_key: [1; 32] } };
        state.apply(&request, Context { height: i + 1, position: 0, time_ms: T0_MS });
    }
    (state, USERS + 1)
}

fn send(state: &mut ChatState, height: u64, n: u64) {
    let from = n % USERS;
    let request = Request {
        user: user(from),
        session: T0_MS * 1000 + from,
        seq: 2 + n / USERS,
        op: Op::Send { to: user(n * 7 % USERS), text: format!("message {n}: see you at the usual place at 7") },
    };
    state.apply(&request, Context { height, position: 0, time_ms: T0_MS + n });
}

fn full_state() -> &'static ChatState {
    static STATE: OnceLock<ChatState> = OnceLock::new();
    STATE.get_or_init(|| {
        let (mut state, first) = accounts();
        for n in 0..MESSAGES {
            send(&mut state, first + n, n);
        }
        state
    })
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("quintet-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

#[divan::bench(sample_count = 3, sample_size = 1)]
fn apply_1m_sends(bencher: divan::Bencher) {
    bencher.with_inputs(accounts).bench_local_values(|(mut state, first)| {
        for n in 0..MESSAGES {
            send(&mut state, first + n, n);
        }
        state
    });
}

#[divan::bench(sample_count = 3, sample_size = 1)]
fn snapshot_write_1m_messages(bencher: divan::Bencher) {
    let state = full_state();
    let dir = temp("write");
    bencher.bench_local(|| snapshot::write(&RealFs, &dir, state).unwrap());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The clone the driver makes, on the ordering path, when a state image starts (S11): the
/// worker then writes and hashes the copy off that path.
#[divan::bench(sample_count = 5, sample_size = 1)]
fn state_clone_for_an_image_1m_messages(bencher: divan::Bencher) {
    let state = full_state();
    bencher.bench_local(|| state.clone());
}

#[divan::bench(sample_count = 3, sample_size = 1)]
fn snapshot_load_1m_messages_with_digest_check(bencher: divan::Bencher) {
    let state = full_state();
    let dir = temp("load");
    snapshot::write(&RealFs, &dir, state).unwrap();
    bencher.bench_local(|| {
        let loaded = snapshot::load(&RealFs, &dir).unwrap();
        assert_eq!(loaded.message_count(), MESSAGES);
        loaded
    });
    std::fs::remove_dir_all(&dir).unwrap();
}

#[divan::bench(args = [1, 100], sample_count = 20, sample_size = 1)]
fn log_append_then_fsync(bencher: divan::Bencher, records: u64) {
    let dir = temp(&format!("log{records}"));
    let (mut storage, _) = Storage::open(Arc::new(RealFs), &dir, u64::MAX).unwrap();
    let bytes = vec![7u8; 200];
    bencher.bench_local(|| {
        for _ in 0..records {
            let height = storage.last_height() + 1;
            storage.append(&LogEntry { height, time_ms: height, bytes: bytes.clone() }).unwrap();
        }
        storage.sync().unwrap();
    });
    drop(storage);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn main() {
    // scripts/bench-replica-memory.sh asks for the 1M-message state as a replica data folder.
    if let Ok(out) = std::env::var("QUINTET_BENCH_DATA_OUT") {
        let state = full_state();
        let dir = PathBuf::from(out).join(format!("snap-{:020}", state.height()));
        std::fs::create_dir_all(&dir).unwrap();
        snapshot::write(&RealFs, &dir, state).unwrap();
        println!("wrote {}", dir.display());
        return;
    }
    let before = rss_mb();
    let state = full_state();
    let after = rss_mb();
    let snapshot_dir = temp("size");
    snapshot::write(&RealFs, &snapshot_dir, state).unwrap();
    let bytes: u64 = std::fs::read_dir(&snapshot_dir).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
    std::fs::remove_dir_all(&snapshot_dir).unwrap();
    println!(
        "state with {} messages in {} accounts: process RSS {after:.0} MB ({:.0} MB for the state); snapshot on disk {:.0} MB",
        state.message_count(),
        state.account_count(),
        after - before,
        bytes as f64 / 1e6
    );
    divan::main();
}
