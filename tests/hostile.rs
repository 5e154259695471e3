//! Resource attacks on a real replica process (loopback; other source addresses are other
//! 127.0.0.x): idle sockets past a small open-file limit, 2,000 idle HTTP/2 connections
//! held, floods of requests and of what no account pays for (forged requests, requests for
//! unknown accounts, challenges), account creations (one account's own attacks are in
//! `hostile_accounts.rs`). Each shows the attack failing harmlessly: the
//! replica neither spins nor poisons its storage, and other users are served. The CPU,
//! memory and latency figures are printed (`--nocapture`); the only bound asserted on CPU
//! is half a core, far above idle and far below the busy loop this used to cause.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use common::attack::*;
use quintet::chat::Op;
use quintet::crypto::SigningKey;
use quintet::pb::{self, replica_client::ReplicaClient};

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
    // Every forged request is refused before ordering: a few are checked (each a signature
    // verification), then bob's name is locked from mallory's address (refused unchecked,
    // twelfth session) until the connection's unpaid burst is spent, then refused unread.
    let (forged, locked) = (count(false, "bad_signature"), count(false, "too_many_failures"));
    println!("forged: {forged} checked, {locked} refused unchecked (too many failures)");
    assert_eq!(forged + locked + count(false, "resource_exhausted"), 1_500, "{codes:?}");
    assert!(forged <= 5 + 64, "{forged} forged requests verified; the free failures and what was in flight");
    assert!((200..=unpaid).contains(&(forged + locked)), "{} forged requests read; at most {unpaid}", forged + locked);

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

