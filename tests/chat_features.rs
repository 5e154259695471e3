//! Two users exercise every chat feature through `quintet chat --json` over pipes, against a
//! real replica process on loopback.

mod common;

use std::time::Duration;

use common::OneReplica;
use serde_json::json;

#[test]
fn two_users_use_every_feature() {
    let cluster = OneReplica::start("features");
    let mut alice = cluster.chat("alice", "alice-pw");
    let mut bob = cluster.chat("bob", "bob-pw");

    // Create accounts; names are unique (also without regard to case).
    assert_eq!(alice.run("create")["type"], "result");
    assert_eq!(bob.run("create")["account"], 2);
    let mut carol = cluster.chat("Alice", "x");
    assert_eq!(carol.run("create")["code"], "name_taken");
    assert_eq!(carol.finish().0, Some(1), "a refused command: exit status 1");

    // Bob is offline (logged out): messages wait for him.
    assert_eq!(bob.run("logout")["command"], "logout");
    let first = alice.run("send bob hello bob, twice  spaced");
    assert_eq!(first["command"], "send");
    let first_id = first["id"].as_u64().unwrap();
    let second_id = alice.run("send bob second")["id"].as_u64().unwrap();
    assert_eq!(alice.run("send nobody hi")["code"], "unknown_user");
    assert_eq!(alice.run("send bob")["code"], "usage");

    // Login shows the unread count; read takes N at a time, oldest first.
    let login = bob.run("login");
    assert_eq!((login["command"].clone(), login["unread"].clone()), (json!("login"), json!(2)));
    let read = bob.run("read 1");
    assert_eq!(read["messages"][0]["text"], "hello bob, twice  spaced");
    assert_eq!(read["messages"][0]["from"], "alice");
    assert_eq!(read["unread_left"], 1);
    assert_eq!(bob.run("read")["messages"][0]["id"], second_id);
    assert_eq!(bob.run("read")["messages"], json!([]));

    // Bob is online now: alice's next message arrives on his stream at once.
    let live = alice.run("send bob are you there?")["id"].as_u64().unwrap();
    let delivery = loop {
        let v = bob.next(Duration::from_secs(20)).expect("live delivery");
        if v["type"] == "delivery" {
            break v;
        }
    };
    assert_eq!((delivery["id"].as_u64(), delivery["text"].as_str()), (Some(live), Some("are you there?")));

    // List accounts with wildcards and pages.
    assert_eq!(alice.run("list")["names"], json!(["alice", "bob"]));
    assert_eq!(alice.run("list b*")["names"], json!(["bob"]));
    assert_eq!(alice.run("list ?l*")["names"], json!(["alice"]));
    assert_eq!(alice.run("list * 2")["code"], "no_such_page");
    assert_eq!(alice.run("list a/b")["code"], "invalid_pattern");

    // Delete one message and a set, each for the one who deletes: bob's deletes leave
    // alice's view as it was, until she deletes hers.
    assert_eq!(bob.run(&format!("delete {first_id}"))["count"], 1);
    assert_eq!(bob.run(&format!("delete {second_id} {live}"))["count"], 2);
    assert_eq!(bob.run(&format!("delete {second_id}"))["code"], "no_such_message");
    assert_eq!(alice.run("history bob")["messages"].as_array().unwrap().len(), 3, "alice still has what she sent");
    assert_eq!(alice.run(&format!("delete {first_id}"))["count"], 1);
    assert_eq!(alice.run(&format!("delete {first_id}"))["code"], "no_such_message");
    assert_eq!(bob.run("delete x")["code"], "usage");

    // Too long: refused by the client before anything is sent, one limit in one message.
    for len in [65_537, 70_000, 200_000, 1_000_000] {
        let t = std::time::Instant::now();
        let v = alice.run(&format!("send bob {}", "x".repeat(len)));
        assert_eq!(v["code"], "text_too_long", "{len}");
        assert_eq!(v["message"], format!("message text is {len} bytes; the limit is 65536"));
        assert!(t.elapsed() < std::time::Duration::from_secs(5), "answered without waiting for replicas");
    }

    // Bad commands get a clear error and the session goes on.
    assert_eq!(bob.run("frobnicate")["code"], "usage");
    assert_eq!(bob.run("read 0")["code"], "usage");

    // Delete an account: its unread mail goes with it; the name cannot log in again.
    // (Sent while bob is logged out: a live delivery would be shown and marked read.)
    bob.run("logout");
    alice.run("send bob one more");
    assert_eq!(bob.run("login")["unread"], 1);
    // Nobody can confirm from a pipe: the script says --yes.
    assert_eq!(bob.run("delete-account")["code"], "usage");
    let deleted = bob.run("delete-account --yes");
    assert_eq!((deleted["command"].clone(), deleted["unread_dropped"].clone()), (json!("delete-account"), json!(1)));
    assert_eq!(bob.run("login")["code"], "unknown_user");
    assert_eq!(alice.run("send bob gone?")["code"], "unknown_user");
    assert_eq!(alice.run("list")["names"], json!(["alice"]));

    // End of input logs out cleanly.
    let (code, rest) = alice.finish();
    assert_eq!(code, Some(1), "some of alice's commands were refused");
    assert_eq!(rest.last().map(|v| v["command"].clone()), Some(json!("logout")));
    assert_eq!(bob.finish().0, Some(1));
}

#[test]
fn a_wrong_password_is_another_key_and_cannot_act_for_the_user() {
    let cluster = OneReplica::start("password");
    let mut alice = cluster.chat("alice", "right");
    alice.run("create");
    let mut mallory = cluster.chat("alice", "wrong");
    let refused = mallory.run("login");
    assert_eq!(refused["code"], "bad_signature");
    assert_eq!(refused["message"], "wrong password for alice (the replicas refused its signature)");
    assert_eq!(mallory.run("read")["code"], "bad_signature");
    // The right password works from a second client too.
    let mut again = cluster.chat("alice", "right");
    assert_eq!(again.run("login")["command"], "login");
}

#[test]
fn without_a_quorum_the_client_stops_with_a_clear_message_and_status_2() {
    let mut cluster = OneReplica::start("noquorum");
    cluster.kill9();
    // Nothing listens: the client does not wait out its 60 s, it says so at once.
    let started = std::time::Instant::now();
    let mut chat = common::Chat::start(&cluster.client_config, "alice", "pw", &["--timeout-ms", "60000"]);
    chat.send("create");
    let (code, lines) = chat.finish();
    assert_eq!(code, Some(2));
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "waited {:?}", started.elapsed());
    let fatal = lines.iter().find(|v| v["type"] == "fatal").expect("a fatal line");
    let message = fatal["message"].as_str().unwrap();
    assert!(message.starts_with("no quorum: 0 of 1 replicas answered, 1 alike needed"), "{message}");
    assert!(message.contains("A: down (connection refused)") && message.contains("ask the operator"), "{message}");
}

#[test]
fn ctrl_c_logs_out_cleanly() {
    let cluster = OneReplica::start("ctrlc");
    let mut alice = cluster.chat("alice", "pw");
    assert_eq!(alice.run("create")["type"], "result");
    let pid = alice.proc.0.id().to_string();
    assert!(std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let logout = alice.result();
    assert_eq!((logout["type"].as_str(), logout["command"].as_str()), (Some("result"), Some("logout")));
    assert_eq!(alice.proc.0.wait().unwrap().code(), Some(0));
    // The session is closed at the replica: a new client must log in again, and can.
    let mut again = cluster.chat("alice", "pw");
    assert_eq!(again.run("read")["code"], "not_logged_in");
    assert_eq!(again.run("login")["command"], "login");
}

#[test]
fn a_session_closed_by_the_server_is_told_on_the_stream_at_once() {
    let cluster = OneReplica::start("closed");
    // Deletion from another client: the first one is told without typing anything.
    let mut alice = cluster.chat("alice", "pw");
    assert_eq!(alice.run("create")["type"], "result");
    std::thread::sleep(Duration::from_millis(500)); // the live stream opens
    let mut other = cluster.chat("alice", "pw");
    assert_eq!(other.run("login")["type"], "result");
    assert_eq!(other.run("delete-account --yes")["type"], "result");
    let told = alice.next(Duration::from_secs(10)).expect("told within 10 s");
    assert_eq!(told["type"], "session_closed", "{told}");
    assert!(told["reason"].as_str().unwrap().contains("deleted"), "{told}");
    // Past the open-session limit: eight more logins close the oldest session, carol's first.
    let mut carol = cluster.chat("carol", "pw");
    assert_eq!(carol.run("create")["type"], "result");
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..7 {
        let mut c = cluster.chat("carol", "pw");
        assert_eq!(c.run("login")["type"], "result");
    }
    assert!(carol.next(Duration::from_millis(300)).is_none(), "eight open sessions are allowed");
    let mut ninth = cluster.chat("carol", "pw");
    assert_eq!(ninth.run("login")["type"], "result");
    let told = carol.next(Duration::from_secs(10)).expect("told within 10 s");
    assert_eq!(told["type"], "session_closed", "{told}");
    assert!(told["reason"].as_str().unwrap().contains("too many open sessions"), "{told}");
    // The client knows it is logged out, and logs in again.
    assert_eq!(carol.run("login")["type"], "result");
    assert_eq!(carol.run("read")["type"], "result");
}

/// A client killed with SIGKILL (no logout) goes offline for others within the presence
/// time (here 3 s; by default a minute), while an idle client that is alive stays online:
/// its heartbeats keep it there.
#[test]
fn a_killed_client_goes_offline_within_the_presence_time_and_an_idle_live_one_stays() {
    let cluster = OneReplica::start_with_presence("presence", 3_000);
    let mut alice = cluster.chat("alice", "pw");
    assert_eq!(alice.run("create")["type"], "result");
    let mut carol = cluster.chat("carol", "pw");
    assert_eq!(carol.run("create")["type"], "result");
    let mut bob = cluster.chat("bob", "pw");
    assert_eq!(bob.run("create")["type"], "result");
    let names = |bob: &mut common::Chat| bob.run("who")["names"].as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_string()).collect::<Vec<_>>();
    assert_eq!(names(&mut bob), ["alice", "bob", "carol"]);
    let pid = alice.proc.0.id().to_string();
    assert!(std::process::Command::new("kill").args(["-KILL", &pid]).status().unwrap().success());
    let killed = std::time::Instant::now();
    // Carol sends nothing meanwhile; her client's heartbeats keep her online.
    loop {
        let now = names(&mut bob);
        if !now.contains(&"alice".to_string()) {
            assert!(now.contains(&"carol".to_string()), "the live idle client stays online: {now:?}");
            break;
        }
        assert!(killed.elapsed() < std::time::Duration::from_secs(15), "alice still online {:?} after her client was killed", killed.elapsed());
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    println!("a killed client went offline {:?} after it was killed (presence 3 s)", killed.elapsed());
    std::thread::sleep(std::time::Duration::from_secs(4));
    assert!(names(&mut bob).contains(&"carol".to_string()), "carol idle for 4 s is still online");
}
