//! The line client as a person and a script meet it: conversations, who is online, pages
//! with totals, which replicas agreed, exit statuses, local times, the default config, and
//! commands in any case. Against a real replica on loopback, over pipes.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::OneReplica;
use serde_json::json;

#[test]
fn conversations_who_pages_and_agreement() {
    let cluster = OneReplica::start("client");
    let mut alice = cluster.chat("alice", "pw-a");
    let mut bob = cluster.chat("bob", "pw-b");
    assert_eq!(alice.run("CREATE")["command"], "create", "commands in any case");
    assert_eq!(bob.run("Create")["type"], "result");

    // Who is online: both, then one after a logout; replicated, so a quorum agrees.
    let who = alice.run("who");
    assert_eq!((who["names"].clone(), who["total"].clone()), (json!(["alice", "bob"]), json!(2)));
    assert_eq!((who["agreed"].clone(), who["differed"].clone(), who["silent"].clone()), (json!(["A"]), json!([]), json!([])));
    assert_eq!(bob.run("logout")["command"], "logout");
    assert_eq!(alice.run("who")["names"], json!(["alice"]));

    // A conversation, both directions, read or unread, in order; read keeps its meaning.
    alice.run("send bob first from alice");
    assert_eq!(bob.run("login")["unread"], 1);
    bob.run("send alice reply from bob");
    alice.run("send bob second from alice");
    // The first was unread at login; the second may come live (shown, then marked read).
    assert_eq!(bob.run("read")["type"], "result");
    let texts = |v: &serde_json::Value| v["messages"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    let history = bob.run("history alice");
    assert_eq!(texts(&history), ["first from alice", "reply from bob", "second from alice"]);
    assert_eq!(texts(&alice.run("HISTORY bob 2")), ["reply from bob", "second from alice"]);
    assert_eq!(bob.run("read")["messages"], json!([]), "history marks nothing read, read shows only unread");
    assert_eq!(alice.run("history nobody")["code"], "unknown_user");
    // Who wrote, latest first, with unread counts (nothing marked read by asking).
    assert_eq!(bob.run("logout")["type"], "result");
    let mut carol = cluster.chat("carol", "pw-c");
    assert_eq!(carol.run("create")["type"], "result");
    assert_eq!(carol.run("send bob from carol")["type"], "result");
    let inbox = alice.run("inbox");
    assert_eq!(inbox["senders"].as_array().map(|s| s.len()), Some(1), "{inbox}");
    assert_eq!(inbox["senders"][0]["from"], "bob");
    let mut bob = cluster.chat("bob", "pw-b");
    assert_eq!(bob.run("login")["unread"], 1);
    let inbox = bob.run("inbox");
    let senders: Vec<(String, u64)> =
        inbox["senders"].as_array().unwrap().iter().map(|e| (e["from"].as_str().unwrap().to_string(), e["unread"].as_u64().unwrap())).collect();
    assert_eq!(senders, [("carol".to_string(), 1), ("alice".to_string(), 0)]);
    assert_eq!((inbox["unread"].clone(), inbox["complete"].clone()), (json!(1), json!(true)));
    assert_eq!(bob.run("read")["messages"][0]["text"], "from carol", "still unread after inbox");
    assert_eq!(alice.run("history")["code"], "usage");

    // Pages say how many there are; paging works without a pattern.
    for i in 0..22 {
        assert_eq!(cluster.chat(&format!("user{i:02}"), "pw").run("create")["type"], "result");
    }
    let first = alice.run("list");
    assert_eq!((first["total"].clone(), first["pages"].clone(), first["page"].clone()), (json!(25), json!(2), json!(1)));
    assert_eq!(first["names"].as_array().map(|n| n.len()), Some(20));
    let second = alice.run("list --page 2");
    assert_eq!(second["names"], json!(["user17", "user18", "user19", "user20", "user21"]));
    assert_eq!(alice.run("list --page 3")["code"], "no_such_page");
    assert_eq!(alice.run("list user1* 1")["names"].as_array().map(|n| n.len()), Some(10));

    // Only successes: exit status 0.
    let mut quiet = cluster.chat("alice", "pw-a");
    assert_eq!(quiet.run("login")["type"], "result");
    assert_eq!(quiet.finish().0, Some(0));
}

/// A text-mode client (no --json) in `dir`, with `env`; returns its exit status and output.
fn text_client(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)], input: &str) -> (Option<i32>, String, String) {
    let mut child = Command::new(common::bin())
        .current_dir(dir)
        .args(["chat"])
        .args(args)
        .envs(env.iter().copied())
        .env("QUINTET_PASSWORD", "pw")
        .env_remove("CARGO_MANIFEST_DIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chat");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let proc = common::Proc(child);
    let mut child = proc;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "the client did not exit within 60 s");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let read = |s: Option<&mut dyn std::io::Read>| {
        let mut out = String::new();
        if let Some(s) = s {
            s.read_to_string(&mut out).unwrap();
        }
        out
    };
    let out = read(child.0.stdout.as_mut().map(|s| s as &mut dyn std::io::Read));
    let err = read(child.0.stderr.as_mut().map(|s| s as &mut dyn std::io::Read));
    (status.code(), out, err)
}

#[test]
fn text_mode_shows_local_time_uses_the_default_config_and_says_things_once() {
    let cluster = OneReplica::start("textmode");
    let dir = common::TempDir::new("textmode-cwd");
    // Without --config and without ./quintet-data/cluster.toml: one clear line, status 1.
    let (code, out, err) = text_client(&dir.0, &["--user", "alice"], &[], "");
    assert_eq!(code, Some(1));
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("no --config given") && err.contains(" up`"), "{err}");
    // With the file where `up` writes it, no flag is needed.
    std::fs::create_dir_all(dir.0.join("quintet-data")).unwrap();
    std::fs::copy(&cluster.client_config, dir.0.join("quintet-data/cluster.toml")).unwrap();
    // A POSIX TZ string needs no zone database: the zone XYZ is three hours east of UTC.
    let (code, out, err) = text_client(&dir.0, &["--user", "alice", "--verbose"], &[("TZ", "XYZ-3")], "create\nsend alice note to self\nread\n");
    assert_eq!(code, Some(0), "{out}\n{err}");
    // Shown live ("new [..] ...") or by `read` ("[..] ..."), whichever came first.
    let line = out.lines().find(|l| l.contains(": note to self")).unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains(" XYZ alice: note to self"), "{line}");
    assert!(out.contains("(agreed A · differed - · silent -)"), "{out}");
    assert!(!out.contains('\x1b'), "no colour in a pipe: {out:?}");
    // A refused command: status 1, one error line.
    let (code, out, _) = text_client(&dir.0, &["--user", "alice"], &[], "login\nsend nobody hi\n");
    assert_eq!(code, Some(1));
    assert_eq!(out.matches("error:").count(), 1, "{out}");
    // No quorum: status 2, said once (on stderr for a person), not twice.
    drop(cluster);
    let (code, out, err) = text_client(&dir.0, &["--user", "alice", "--timeout-ms", "1000"], &[], "login\n");
    assert_eq!(code, Some(2));
    assert!(!out.contains("no quorum"), "{out}");
    assert_eq!(err.matches("no quorum").count(), 1, "{err}");
}

#[test]
fn a_weak_password_is_refused_at_create_on_a_terminal_and_only_warned_of_from_a_script() {
    let cluster = OneReplica::start("weak-password");
    let dir = common::TempDir::new("weak-password-tmux");
    // A person at a terminal types "sunshine" at the prompt: create is refused, nothing sent.
    let command = format!(
        "{} chat --config {} --user alice; echo client exited with status $?",
        common::bin(),
        cluster.client_config.display()
    );
    let tmux = common::tmux::Tmux::start(&dir.0, &command);
    tmux.wait("the password prompt", |s| s.contains("password for alice:"));
    tmux.type_text("sunshine");
    tmux.keys(&["Enter"]);
    tmux.wait("the prompt", |s| s.contains("alice@test-cluster"));
    tmux.type_text("create");
    tmux.keys(&["Enter"]);
    let screen = tmux.wait("the refusal", |s| s.contains("too easy to guess"));
    assert!(screen.contains("nothing was sent"), "{screen}");
    tmux.type_text("quit");
    tmux.keys(&["Enter"]);
    tmux.wait("the exit", |s| s.contains("client exited with status 1"));
    let mut bob = cluster.chat("bob", "pw");
    assert_eq!(bob.run("create")["type"], "result");
    assert_eq!(bob.run("list alice")["names"], serde_json::json!([]), "no account was created");
    // A script with QUINTET_PASSWORD: a warning on stderr, and the account is made.
    let (code, out, err) = text_client(&dir.0, &["--config", cluster.client_config.to_str().unwrap(), "--user", "carol"], &[("QUINTET_PASSWORD", "sunshine")], "create\n");
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("created account carol"), "{out}");
    assert!(err.contains("warning: this password is too easy to guess"), "{err}");
}
