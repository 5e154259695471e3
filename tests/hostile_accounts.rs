//! Attacks one account can make, or make on another account, on a real replica process
//! (loopback; other source addresses are other 127.0.0.x): flooding logins, keeping a large
//! result in every session, guessing a password, reading the service's counters. Each shows
//! the attack failing harmlessly against a control, with the figures printed
//! (`--nocapture`).

mod common;

use std::time::{Duration, Instant};

use common::attack::*;
use quintet::chat::Op;
use quintet::crypto::{self, SigningKey};
use quintet::pb::replica_client::ReplicaClient;

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
        let out = std::process::Command::new(common::bin()).args(["status", "--json", "--config"]).arg(config).output().unwrap();
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap_or_default()
    };
    let beside = r.server_config.with_file_name("beside-the-key.toml");
    std::fs::copy(&r.client_config, &beside).unwrap();
    let shown = status(&beside);
    assert!(shown["replicas"][0]["accounts"] == 1 && shown["replicas"][0]["messages"] == 1, "{shown}");
    let elsewhere = common::TempDir::new("counters-client");
    let copy = elsewhere.0.join("cluster.toml");
    std::fs::copy(&r.client_config, &copy).unwrap();
    let hidden = status(&copy);
    assert!(hidden["replicas"][0]["up"] == true && hidden["replicas"][0]["accounts"].is_null(), "{hidden}");
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
