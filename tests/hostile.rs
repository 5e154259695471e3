//! Resource attacks on a real replica process (loopback; other source addresses are other
//! 127.0.0.x): idle sockets past a small open-file limit, 2,000 idle HTTP/2 connections
//! held, one account flooding logins, floods of what no account pays for (forged requests,
//! requests for unknown accounts, challenges). Each shows the attack failing harmlessly: the
//! replica neither spins nor poisons its storage, and other users are served. The CPU,
//! memory and latency figures are printed (`--nocapture`); the only bound asserted on CPU
//! is half a core, far above idle and far below the busy loop this used to cause.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use prost::Message as _;
use quintet::chat::Op;
use quintet::crypto::{self, SigningKey, TAG_REQUEST};
use quintet::pb::{self, replica_client::ReplicaClient};
use quintet::wire;

/// The cluster tag of `common::config("test-cluster", ..)`.
const TAG: &str = "test-cluster#0f1e2d3c4b5a69788796a5b4c3d2e1f0";

/// CPU seconds (user + system) the process has used.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the replica runs");
    // Fields after the command name (which may hold spaces) start at field 3.
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // SAFETY: sysconf only reads a constant.
    ticks as f64 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<f64>().unwrap() / 1024.0
}

fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// CPU cores the process used over `window`.
fn cpu_over(pid: u32, window: Duration) -> f64 {
    let before = cpu_seconds(pid);
    std::thread::sleep(window);
    (cpu_seconds(pid) - before) / window.as_secs_f64()
}

/// This test process needs thousands of sockets: its soft open-file limit goes to the hard one.
fn raise_own_open_file_limit() {
    let mut l = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit read and write only the struct given.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut l);
        l.rlim_cur = l.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &l);
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// A raw TCP connection from `from` that never sends a byte.
async fn idle_socket(from: IpAddr, to: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(to).await
}

/// Whether the replica has closed the connection (end of stream or reset).
fn closed_by_server(stream: &tokio::net::TcpStream) -> bool {
    let mut buf = [0u8; 64];
    match stream.try_read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    }
}

fn login_and_send(r: &common::OneReplica, user: &str, to: &str) -> Duration {
    let mut chat = r.chat(user, "pw");
    let created = chat.run("create");
    assert!(created["error"].is_null(), "{created}");
    let t = Instant::now();
    let sent = chat.run(&format!("send {to} hello"));
    assert!(sent["id"].is_u64(), "{sent}");
    t.elapsed()
}

#[test]
fn idle_sockets_past_a_small_open_file_limit_are_shed_and_timed_out_and_storage_stays_healthy() {
    raise_own_open_file_limit();
    let mut r = common::OneReplica::start_limited("gate-small", Some(256));
    let pid = r.pid();
    let rt = runtime();
    // 600 sockets from two other addresses, against room for 128 connections (16 per address).
    let sockets: Vec<_> = rt.block_on(async {
        let mut sockets = Vec::new();
        for i in 0..600 {
            let from: IpAddr = if i % 2 == 0 { "127.0.0.2" } else { "127.0.0.3" }.parse().unwrap();
            sockets.push(idle_socket(from, r.addr).await.expect("the kernel completes the TCP handshake"));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        sockets
    });
    let held = sockets.iter().filter(|s| !closed_by_server(s)).count();
    let cpu = cpu_over(pid, Duration::from_secs(2));
    println!("600 idle sockets, open-file limit 256: {held} held (cap 2 x 16), replica CPU {:.1}% of a core", cpu * 100.0);
    assert!(held <= 32, "{held} connections held from two addresses, past the per-address cap");
    assert!(cpu < 0.5, "the replica spins: {:.0}% of a core while sockets sit idle", cpu * 100.0);

    // Real clients are served meanwhile: alice creates her account and leaves, bob sends
    // her a message (it waits, unread, in her mailbox).
    let mut alice = r.chat("alice", "pw");
    assert!(alice.run("create")["error"].is_null());
    let (status, _) = alice.finish();
    assert_eq!(status, Some(0));
    let latency = login_and_send(&r, "bob", "alice");
    println!("a client's send during the attack: {latency:?}");

    // The ones held never sent the HTTP/2 preface: closed once the handshake time is up.
    let deadline = Instant::now() + Duration::from_secs(25);
    while sockets.iter().any(|s| !closed_by_server(s)) {
        assert!(Instant::now() < deadline, "idle sockets still held 25 s after they connected");
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(sockets);

    // A clean stop writes its snapshot: no descriptor ran out, nothing was poisoned.
    assert!(r.stop().success(), "the replica stops cleanly; its log:\n{}", r.logs());
    assert!(!r.logs().contains("storage failed"), "{}", r.logs());
    r.restart();
    let mut alice = r.chat("alice", "pw");
    assert_eq!(alice.run("login")["unread"], 1, "alice's message survived");
}

#[test]
fn two_thousand_idle_http2_connections_are_held_cheaply_while_chat_goes_on() {
    raise_own_open_file_limit();
    let r = common::OneReplica::start("gate-held");
    let pid = r.pid();
    let quiet = login_and_send(&r, "bob", "bob");
    let (rss_before, fds_before) = (rss_mib(pid), open_descriptors(pid));
    let rt = runtime();
    let started = Instant::now();
    // 2,000 real HTTP/2 connections (they answer the server's pings), 250 from each of eight
    // addresses, within the per-address cap.
    let channels: Vec<_> = rt.block_on(async {
        let mut channels = Vec::new();
        for i in 0..2_000u32 {
            let from: IpAddr = format!("127.0.0.{}", 2 + i % 8).parse().unwrap();
            let endpoint = r.endpoint().local_address(Some(from));
            channels.push(endpoint.connect().await.expect("a connection within the caps"));
        }
        channels
    });
    let opened_in = started.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    let cpu = cpu_over(pid, Duration::from_secs(3));
    let (rss_after, fds_after) = (rss_mib(pid), open_descriptors(pid));
    let during = login_and_send(&r, "carol", "bob");
    println!(
        "2,000 idle HTTP/2 connections opened in {opened_in:?}: replica descriptors {fds_before} -> {fds_after}, \
         RSS {rss_before:.1} -> {rss_after:.1} MiB ({:.1} KiB per connection), CPU while held {:.1}% of a core; \
         a send before {quiet:?}, during {during:?}",
        (rss_after - rss_before) * 1024.0 / 2_000.0,
        cpu * 100.0
    );
    // (The first client's own connection may have closed meanwhile.)
    assert!(fds_after >= fds_before + 1_990, "the connections are held: {fds_before} -> {fds_after} descriptors");
    assert!(cpu < 0.5, "{:.0}% of a core while connections sit idle", cpu * 100.0);
    drop(channels);
}

#[test]
fn one_account_flooding_logins_is_capped_and_other_users_are_served() {
    let r = common::OneReplica::start("login-flood");
    let pid = r.pid();
    let rt = runtime();
    let alice = SigningKey::from_bytes(&[7; 32]);
    let quiet = login_and_send(&r, "bob", "bob");
    let rss_before = rss_mib(pid);
    let flood = async {
        let mut rpc = ReplicaClient::new(r.endpoint().connect().await.unwrap());
        let now_us = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as u64;
        let create = Op::CreateAccount { public_key: alice.verifying_key().to_bytes() };
        assert_eq!(submit_code(&mut rpc, "alice", &alice, (now_us, 1), create).await, "ok");
        let cpu_before = cpu_seconds(pid);
        let started = Instant::now();
        let mut outcomes = Vec::new();
        for i in 1..=400u64 {
            outcomes.push(submit_code(&mut rpc, "alice", &alice, (now_us + i, 1), Op::Login).await);
        }
        (outcomes, cpu_seconds(pid) - cpu_before, started.elapsed())
    };
    // Carol creates an account and sends two seconds into the flood.
    let ((outcomes, cpu, took), during) = std::thread::scope(|s| {
        let carol = s.spawn(|| {
            std::thread::sleep(Duration::from_secs(2));
            login_and_send(&r, "carol", "bob")
        });
        (rt.block_on(flood), carol.join().unwrap())
    });
    let rss_after = rss_mib(pid);
    let ok = outcomes.iter().filter(|o| *o == "ok").count();
    let refused = outcomes.iter().filter(|o| *o == "too_many_sessions").count();
    println!(
        "400 logins by one account in {took:?}: {ok} opened, {refused} refused; {:?} per login, replica CPU {cpu:.2} s in all \
         ({:.0}% of a core), RSS {rss_before:.1} -> {rss_after:.1} MiB; another user's send before {quiet:?}, during {during:?}",
        took / 400,
        cpu * 100.0 / took.as_secs_f64()
    );
    assert_eq!(ok, 255, "256 sessions in all, with the one create opened");
    assert_eq!(refused, 400 - 255, "{outcomes:?}");
}

#[test]
fn a_flood_is_limited_per_user_and_forged_junk_in_a_users_name_is_refused_without_slowing_them() {
    let r = common::OneReplica::start("rate-limit");
    let rt = runtime();
    let (alice, bob, mallory) = (SigningKey::from_bytes(&[7; 32]), SigningKey::from_bytes(&[8; 32]), SigningKey::from_bytes(&[9; 32]));
    let codes = rt.block_on(async {
        // Alice, Mallory and Bob each on their own connection from their own host, as three
        // clients would be.
        let connect = |from| connect_from(&r, from);
        let (alice_rpc, mallory_rpc, bob_rpc) = (connect("127.0.0.2").await, connect("127.0.0.3").await, connect("127.0.0.4").await);
        let now_us = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as u64;
        for (user, key, s) in [("alice", &alice, now_us), ("bob", &bob, now_us + 1)] {
            let create = Op::CreateAccount { public_key: key.verifying_key().to_bytes() };
            assert_eq!(submit_code(&mut bob_rpc.clone(), user, key, (s, 1), create).await, "ok");
        }
        // 1,500 logins of alice's own at once (each a new session, so each is ordered unless
        // limited), and 1,500 forged requests in bob's name.
        let started = Instant::now();
        let mut flood = tokio::task::JoinSet::new();
        for i in 0..1_500 {
            let (mut rpc, key) = (alice_rpc.clone(), alice.clone());
            flood.spawn(async move { (true, submit_code(&mut rpc, "alice", &key, (now_us + 10 + i, 1), Op::Login).await) });
            let (mut rpc, key) = (mallory_rpc.clone(), mallory.clone());
            flood.spawn(async move { (false, submit_code(&mut rpc, "bob", &key, (now_us + 1, 2 + i), Op::Read { max: 1 }).await) });
        }
        let codes: Vec<(bool, String)> = flood.join_all().await;
        let took = started.elapsed();
        let bob_after = submit_code(&mut bob_rpc.clone(), "bob", &bob, (now_us + 1, 5_000), Op::Read { max: 1 }).await;
        (codes, bob_after, took)
    });
    let (codes, bob_after, took) = codes;
    let count = |alices: bool, c: &str| codes.iter().filter(|(a, x)| *a == alices && x == c).count();
    let admitted = count(true, "ok") + count(true, "too_many_sessions");
    let (limited, unread) = (count(true, "rate_limited"), count(true, "resource_exhausted"));
    println!(
        "3,000 requests at once, over {took:?}: alice {} logged in, {} too_many_sessions, {limited} rate_limited, {unread} refused unread; \
         forged: {} refused as bad_signature, {} refused unread",
        count(true, "ok"),
        count(true, "too_many_sessions"),
        count(false, "bad_signature"),
        count(false, "resource_exhausted"),
    );
    // Her burst is 500 and she refills at 100/s while the flood lasts; what her rate refuses
    // is unpaid, so past her connection's unpaid burst the rest are refused unread.
    let allowed = 500 + (100.0 * (took.as_secs_f64() + 1.0)) as usize;
    assert_eq!(admitted + limited + unread, 1_500, "{codes:?}");
    assert!(admitted <= allowed, "{admitted} of alice's requests admitted in {took:?}; at most {allowed}");
    // The connection's unpaid burst and rate, and the calls that were in flight (up to the
    // gate's 64 per connection) when it ran out.
    let unpaid = 200 + (50.0 * (took.as_secs_f64() + 1.0)) as usize + 64;
    assert!(limited <= unpaid, "{limited} of alice's requests refused for her rate, each checked; at most {unpaid}");
    if took < Duration::from_secs(9) {
        assert!(limited > 0 && unread > 0, "past the burst within seconds, some are limited, then refused unread");
    }
    // Every forged request is refused before ordering: the connection's unpaid burst is
    // checked (each a signature verification), then the rest are refused unread.
    let forged = count(false, "bad_signature");
    assert_eq!(forged + count(false, "resource_exhausted"), 1_500, "{codes:?}");
    assert!((200..=unpaid).contains(&forged), "{forged} forged requests verified; at most {unpaid}");

    assert_eq!(bob_after, "ok", "junk in bob's name did not use up his rate");
}

#[test]
fn one_address_creating_accounts_without_end_is_limited_and_other_addresses_are_not() {
    let r = common::OneReplica::start("create-flood");
    let rt = runtime();
    let (created, other) = rt.block_on(async {
        let now_us = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as u64;
        let connect = |from| connect_from(&r, from);
        let create = |mut rpc: ReplicaClient<tonic::transport::Channel>, i: u64| async move {
            let key = SigningKey::from_bytes(&[(i % 250) as u8 + 1; 32]);
            let op = Op::CreateAccount { public_key: key.verifying_key().to_bytes() };
            submit_code(&mut rpc, &format!("fresh{i}"), &key, (now_us + i, 1), op).await
        };
        let flooder = connect("127.0.0.2").await;
        let mut created = Vec::new();
        for i in 0..100 {
            created.push(create(flooder.clone(), i).await);
        }
        let other = create(connect("127.0.0.3").await, 1_000).await;
        (created, other)
    });
    let ok = created.iter().filter(|c| *c == "ok").count();
    let limited = created.iter().filter(|c| *c == "rate_limited").count();
    println!("100 account creations from one address: {ok} created, {limited} rate_limited; another address: {other}");
    assert_eq!(ok + limited, 100, "{created:?}");
    // The burst of 30, and at most one more for each two seconds the flood took.
    assert!((30..=40).contains(&ok), "{ok} created");
    assert_eq!(other, "ok", "another address creates as usual");
}

/// A connection to `r` from the local address `from` (another 127.0.0.x is another host).
async fn connect_from(r: &common::OneReplica, from: &str) -> ReplicaClient<tonic::transport::Channel> {
    ReplicaClient::new(r.endpoint().local_address(Some(from.parse().unwrap())).connect().await.unwrap())
}

/// The code of a submit's answer: the failure's code, "ok", or "resource_exhausted" when the
/// call was refused unread.
async fn submit_code(rpc: &mut ReplicaClient<tonic::transport::Channel>, user: &str, key: &SigningKey, (session, seq): (u64, u64), op: Op) -> String {
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

#[test]
fn unpaid_calls_are_limited_per_connection_and_per_host_and_other_hosts_are_served() {
    let r = common::OneReplica::start("unpaid-flood");
    let rt = runtime();
    let mallory = SigningKey::from_bytes(&[9; 32]);
    let (ghosts, took, challenges, other) = rt.block_on(async {
        let connect = |from| connect_from(&r, from);
        // 600 requests at once, each for an account that does not exist (nothing verifies
        // them, and each would be ordered and executed by every replica), on one connection.
        let started = Instant::now();
        let flooder = connect("127.0.0.5").await;
        let mut flood = tokio::task::JoinSet::new();
        for i in 0..600 {
            let (mut rpc, key) = (flooder.clone(), mallory.clone());
            flood.spawn(async move { submit_code(&mut rpc, &format!("ghost{i}"), &key, (1, 1), Op::Read { max: 1 }).await });
        }
        let ghosts = flood.join_all().await;
        let took = started.elapsed();
        // Then 40 more connections of the same host, 50 challenges each at once (fewer than
        // the 64 streams a connection may hold).
        let mut flood = tokio::task::JoinSet::new();
        for _ in 0..40 {
            let rpc = connect("127.0.0.5").await;
            for _ in 0..50 {
                let mut rpc = rpc.clone();
                flood.spawn(async move { rpc.challenge(pb::ChallengeRequest {}).await.map(|_| ()).map_err(|s| s.code()) });
            }
        }
        let challenges = flood.join_all().await;
        let took = (took, started.elapsed());
        // Another host is served as usual.
        let mut other = connect("127.0.0.6").await;
        let other = (other.challenge(pb::ChallengeRequest {}).await.is_ok(), submit_code(&mut other, "nobody", &mallory, (1, 1), Op::Read { max: 1 }).await);
        (ghosts, took, challenges, other)
    });
    let read = ghosts.iter().filter(|c| *c != "resource_exhausted").count();
    let issued = challenges.iter().filter(|c| c.is_ok()).count();
    println!(
        "600 requests for unknown accounts on one connection, in {:?}: {read} read ({} unknown_user), the rest refused unread; \
         2,000 challenges on 40 more connections of the host: {issued} issued; another host: {other:?}",
        took.0,
        ghosts.iter().filter(|c| *c == "unknown_user").count()
    );
    assert!(ghosts.iter().all(|c| c == "unknown_user" || c == "resource_exhausted"), "{ghosts:?}");
    // The connection's burst of 200 and 50/s, and what was in flight (64) when it ran out.
    let per_connection = 200 + (50.0 * (took.0.as_secs_f64() + 1.0)) as usize + 64;
    assert!((200..=per_connection).contains(&read), "{read} read; at most {per_connection}");
    let others: Vec<_> = challenges.iter().filter(|c| !matches!(c, Ok(()) | Err(tonic::Code::ResourceExhausted))).collect();
    assert!(others.is_empty(), "{others:?}");
    // The host's burst of 1,000 (the ghosts took `read` of it) and 200/s: far below the 40
    // connections' own bursts (8,000).
    let per_host = (1_000 + (200.0 * (took.1.as_secs_f64() + 1.0)) as usize + 64).saturating_sub(read);
    assert!(issued <= per_host, "{issued} challenges issued; at most {per_host}");
    assert_eq!(other, (true, "unknown_user".to_string()), "another host is served");
}

#[test]
fn guesses_at_a_password_lock_out_the_guessers_address_and_not_the_account() {
    let r = common::OneReplica::start("guesses");
    let mut alice = r.chat("alice", "pw");
    assert!(alice.run("create")["error"].is_null());
    let rt = runtime();
    // The key alice's password derives (the test config's cheap derivation), and guesses.
    let config = quintet::config::ClusterConfig::load(&r.client_config).unwrap();
    let right = crypto::derive_user_key(&config.cluster_id, "alice", "pw", config.kdf).unwrap();
    let (codes, right_during_lockout) = rt.block_on(async {
        let mut stranger = connect_from(&r, "127.0.0.7").await;
        let mut codes = Vec::new();
        for guess in 0..12u8 {
            let wrong = SigningKey::from_bytes(&[guess + 100; 32]);
            codes.push(submit_code(&mut stranger, "alice", &wrong, (1_800_000_000_000_000 + guess as u64, 1), Op::Login).await);
        }
        // Even the right password is refused from there now, unchecked: a guess learns nothing.
        let during = submit_code(&mut stranger, "alice", &right, (1_800_000_000_000_100, 1), Op::Login).await;
        // Control: the right key is the one the replica checks with (from another address).
        let mut elsewhere = connect_from(&r, "127.0.0.8").await;
        assert_eq!(submit_code(&mut elsewhere, "alice", &right, (1_800_000_000_000_200, 1), Op::Read { max: 1 }).await, "not_logged_in");
        (codes, during)
    });
    println!("12 wrong guesses at alice's password from one address: {codes:?}; then the right one: {right_during_lockout}");
    assert!(codes[..6].iter().all(|c| c == "bad_signature"), "{codes:?}");
    assert!(codes[6..].iter().all(|c| c == "too_many_failures"), "{codes:?}");
    assert_eq!(right_during_lockout, "too_many_failures");
    // Alice, from her own address, is served as before.
    let t = Instant::now();
    let sent = alice.run("send alice still here");
    assert!(sent["id"].is_u64(), "{sent}");
    println!("alice's send during the stranger's lockout: {:?}", t.elapsed());
}

#[test]
fn the_counters_are_for_operators_only() {
    let r = common::OneReplica::start("counters");
    let mut alice = r.chat("alice", "pw");
    assert!(alice.run("create")["error"].is_null());
    assert!(alice.run("send alice a note")["id"].is_u64());
    let rt = runtime();
    let counts = |operator: Option<(String, SigningKey)>| {
        rt.block_on(async {
            let mut rpc = connect_from(&r, "127.0.0.1").await;
            let nonce = b"counters".to_vec();
            let ask = quintet::client::status_ask(TAG, nonce.clone(), operator.as_ref());
            let signed = rpc.status(ask).await.unwrap().into_inner();
            let s = quintet::client::check_status("A", &r.key.verifying_key(), TAG, &nonce, signed).unwrap();
            (s.accounts, s.messages, s.counts_hidden, s.height > 0)
        })
    };
    assert_eq!(counts(None), (0, 0, true, true), "a stranger sees the height, not the counters");
    assert_eq!(counts(Some(("A".into(), SigningKey::from_bytes(&[5; 32])))), (0, 0, true, true), "a claim without A's key");
    assert_eq!(counts(Some(("A".into(), r.key.clone()))), (1, 1, false, true), "the holder of a replica key");
    // `quintet status` beside the keys shows them; elsewhere it says whose they are.
    let status = |config: &std::path::Path| {
        let out = std::process::Command::new(common::bin()).args(["status", "--config"]).arg(config).output().unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let beside = r.server_config.with_file_name("beside-the-key.toml");
    std::fs::copy(&r.client_config, &beside).unwrap();
    assert!(status(&beside).contains("1 accounts, 1 messages"), "{}", status(&beside));
    let elsewhere = common::TempDir::new("counters-client");
    let copy = elsewhere.0.join("cluster.toml");
    std::fs::copy(&r.client_config, &copy).unwrap();
    assert!(status(&copy).contains("counts for operators only"), "{}", status(&copy));
}

/// The second review's attack: notes of 64 KiB to oneself, then `login` + `history self 100`
/// (a reply of about 1 MiB) in every session one account may open.
async fn read_large_results_in_every_session(r: &common::OneReplica) -> (usize, usize) {
    let mallory = SigningKey::from_bytes(&[13; 32]);
    let now_us = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as u64;
    let mut rpc = connect_from(r, "127.0.0.9").await;
    let create = Op::CreateAccount { public_key: mallory.verifying_key().to_bytes() };
    assert_eq!(submit_code(&mut rpc, "mallory", &mallory, (now_us, 1), create).await, "ok");
    for seq in 2..19 {
        let note = Op::Send { to: "mallory".into(), text: "n".repeat(quintet::chat::TEXT_LEN_MAX) };
        assert_eq!(submit_code(&mut rpc, "mallory", &mallory, (now_us, seq), note).await, "ok");
    }
    // 255 more sessions, 4 at a time (a ninth open session closes the oldest, which is then
    // done); a request refused for the user's rate waits and is sent again (the rate is not
    // what is under test).
    let (mut whole, mut refused) = (0, 0);
    for batch in (1..=255u64).collect::<Vec<_>>().chunks(4) {
        let mut tasks = tokio::task::JoinSet::new();
        for &i in batch {
            let (mut rpc, key) = (connect_from(r, "127.0.0.9").await, mallory.clone());
            tasks.spawn(async move {
                assert_eq!(submit_patiently(&mut rpc, &key, (now_us + i, 1), Op::Login).await, "ok");
                let history = Op::History { with: "mallory".into(), before: 0, limit: 100 };
                let first = submit_patiently(&mut rpc, &key, (now_us + i, 2), history.clone()).await;
                // Resent: 1 MiB is past a session's budget, so not kept: "ask again".
                (first, submit_patiently(&mut rpc, &key, (now_us + i, 2), history).await)
            });
        }
        for (first, again) in tasks.join_all().await {
            assert_eq!(again, "result_not_held");
            match first.as_str() {
                "ok" => whole += 1,
                _ => refused += 1,
            }
        }
    }
    (whole, refused)
}

/// `submit_code` for mallory, sent again while refused for the user's or the connection's
/// rate (the rates are not what is under test).
async fn submit_patiently(rpc: &mut ReplicaClient<tonic::transport::Channel>, key: &SigningKey, at: (u64, u64), op: Op) -> String {
    loop {
        match submit_code(rpc, "mallory", key, at, op.clone()).await.as_str() {
            "rate_limited" | "resource_exhausted" => tokio::time::sleep(Duration::from_millis(200)).await,
            code => return code.to_string(),
        }
    }
}

/// One create-and-send by a fresh user (the latency another user sees), three times.
fn others_latency(r: &common::OneReplica, tag: &str) -> Vec<Duration> {
    (0..3).map(|i| login_and_send(r, &format!("{tag}{i}"), &format!("{tag}{i}"))).collect()
}

#[test]
fn one_account_reading_large_results_in_every_session_leaves_the_replica_small_and_others_fast() {
    // The attacked cluster and a control beside it, measured at the same moments.
    let (attacked, control) = (common::OneReplica::start("held-attack"), common::OneReplica::start("held-control"));
    let rt = runtime();
    let (rss_before, control_before) = (rss_mib(attacked.pid()), rss_mib(control.pid()));
    let started = Instant::now();
    let cpu_before = cpu_seconds(attacked.pid());
    let (whole, refused) = rt.block_on(read_large_results_in_every_session(&attacked));
    let (took, cpu) = (started.elapsed(), cpu_seconds(attacked.pid()) - cpu_before);
    assert_eq!((whole, refused), (255, 0), "every history was answered whole");
    let status = |r: &common::OneReplica| {
        let t = Instant::now();
        let out = std::process::Command::new(common::bin()).args(["status", "--config"]).arg(&r.client_config).output().unwrap();
        assert!(out.status.success());
        t.elapsed()
    };
    let (status_attacked, status_control) = (status(&attacked), status(&control));
    let (latency, latency_control) = (others_latency(&attacked, "bob"), others_latency(&control, "bob"));
    let (rss, rss_control) = (rss_mib(attacked.pid()), rss_mib(control.pid()));
    println!(
        "255 sessions of login + history of 1 MiB, in {took:.1?} ({cpu:.1} s of replica CPU): RSS {rss_before:.1} -> {rss:.1} MiB, \
         control {control_before:.1} -> {rss_control:.1} MiB; `quintet status` {status_attacked:?}, control {status_control:?}; \
         another user's send {latency:?}, control {latency_control:?}"
    );
    // Before, every one of those replies stayed in the replicated state: about +360 MiB and
    // a 350 ms digest on every status. Now only the mailbox (1.1 MiB) and small records stay;
    // the bound leaves room for the allocator keeping freed reply buffers.
    assert!(rss - rss_control < 100.0, "the attacked replica holds {:.0} MiB more than the control", rss - rss_control);
}
