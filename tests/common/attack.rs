//! What an attacker can do from the network with sockets and calls (loopback; other
//! source addresses are other 127.0.0.x), shared by `hostile.rs` and `hostile_accounts.rs`:
//! the process figures they print, and raw calls to a replica.

use std::time::{Duration, Instant};

use prost::Message as _;
use quintet::chat::Op;
use quintet::crypto::{self, SigningKey, TAG_REQUEST};
use quintet::pb::{self, replica_client::ReplicaClient};
use quintet::wire;

use super::OneReplica;

/// The cluster tag of `common::config("test-cluster", ..)`.
pub const TAG: &str = "test-cluster#0f1e2d3c4b5a69788796a5b4c3d2e1f0";

/// CPU seconds (user + system) the process has used.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the replica runs");
    // Fields after the command name (which may hold spaces) start at field 3.
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf only reads a constant.
    ticks as f64 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

pub fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<f64>().unwrap() / 1024.0
}

pub fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// CPU cores the process used over `window`.
pub fn cpu_over(pid: u32, window: Duration) -> f64 {
    let before = cpu_seconds(pid);
    std::thread::sleep(window);
    (cpu_seconds(pid) - before) / window.as_secs_f64()
}

/// This test process needs thousands of sockets: its soft open-file limit goes to the hard one.
pub fn raise_own_open_file_limit() {
    let mut l = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit read and write only the struct given.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut l);
        l.rlim_cur = l.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &l);
    }
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

pub fn login_and_send(r: &OneReplica, user: &str, to: &str) -> Duration {
    let mut chat = r.chat(user, "pw");
    let created = chat.run("create");
    assert!(created["error"].is_null(), "{created}");
    let t = Instant::now();
    let sent = chat.run(&format!("send {to} hello"));
    assert!(sent["id"].is_u64(), "{sent}");
    t.elapsed()
}

/// A connection to `r` from the local address `from` (another 127.0.0.x is another host).
pub async fn connect_from(r: &OneReplica, from: &str) -> ReplicaClient<tonic::transport::Channel> {
    ReplicaClient::new(r.endpoint().local_address(Some(from.parse().unwrap())).connect().await.unwrap())
}

/// The code of a submit's answer: the failure's code, "ok", or "resource_exhausted" when the
/// call was refused unread.
pub async fn submit_code(rpc: &mut ReplicaClient<tonic::transport::Channel>, user: &str, key: &SigningKey, (session, seq): (u64, u64), op: Op) -> String {
    let body = pb::RequestBody { cluster: TAG.into(), user: user.into(), session, seq, op: Some(wire::encode_op(&op)) }.encode_to_vec();
    let signature = crypto::sign(key, TAG_REQUEST, &body);
    match rpc.submit(pb::SignedRequest { body, signature }).await {
        Ok(reply) => match pb::ReplyBody::decode(reply.into_inner().body.as_slice()).unwrap().outcome.and_then(|o| o.kind) {
            Some(pb::outcome::Kind::Failure(f)) => f.code,
            _ => "ok".to_string(),
        },
        Err(status) if status.code() == tonic::Code::ResourceExhausted => "resource_exhausted".to_string(),
        Err(status) => panic!("{status}"),
    }
}

