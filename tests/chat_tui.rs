//! The full-screen client (`chat --tui`) as a person uses it, under tmux: it offers to create
//! the account, refuses a conversation with nobody, shows messages arriving live with unread
//! counts, switches conversations, sends, redraws on a resize, and logs out on Ctrl-C (exit
//! status 1 when a command was refused, 0 otherwise); a second start shows the unread counts
//! the replicas keep; and with no quorum it restores the terminal, says why once and exits
//! with status 2. tmux runs on a private socket in the test's folder; its server is killed
//! by PID.

mod common;

use std::time::Duration;

use common::OneReplica;
use common::tmux::Tmux;

fn tui(cluster: &OneReplica, dir: &common::TempDir, user: &str) -> Tmux {
    let command = format!(
        "env QUINTET_PASSWORD=pw TZ=UTC {} chat --config {} --user {user} --tui --timeout-ms 2000; echo client exited with status $?",
        common::bin(),
        cluster.client_config.display()
    );
    Tmux::start(&dir.0, &command)
}

/// The row of the conversation list that names `who`.
fn list_row<'a>(screen: &'a str, who: &str) -> Option<&'a str> {
    screen.lines().find(|l| l.starts_with('│') && l.split('│').nth(1).is_some_and(|cell| cell.trim_start_matches('●').trim().starts_with(who)))
}

#[test]
fn the_full_screen_client_chats_switches_conversations_resizes_and_logs_out() {
    let cluster = OneReplica::start("tui");
    let dir = common::TempDir::new("tui-socket");
    let tmux = tui(&cluster, &dir, "alice");
    tmux.wait("the offer to create the account", |s| s.contains("no account named alice on this cluster: create it? [y/N]"));
    tmux.type_text("y");
    tmux.keys(&["Enter"]);
    tmux.wait("the full screen", |s| s.contains("conversations") && s.contains("alice@test-cluster ● 1/1 · height"));

    // A conversation with nobody: said, and nothing is left in the list.
    tmux.type_text("/open nobody");
    tmux.keys(&["Enter"]);
    let screen = tmux.wait("the refusal", |s| s.contains("/open: no account named \"nobody\""));
    assert!(list_row(&screen, "nobody").is_none() && screen.contains("no conversation"), "{screen}");

    // Bob and carol write: live, each in the list with its unread count.
    let (mut bob, mut carol) = (cluster.chat("bob", "pw"), cluster.chat("carol", "pw"));
    assert_eq!(bob.run("create")["type"], "result");
    assert_eq!(carol.run("create")["type"], "result");
    assert_eq!(bob.run("send alice hi alice, it is bob")["type"], "result");
    assert_eq!(carol.run("send alice carol here")["type"], "result");
    assert_eq!(carol.run("send alice second from carol")["type"], "result");
    let screen = tmux.wait("both conversations", |s| {
        list_row(s, "carol").is_some_and(|r| r.contains("carol (2)")) && list_row(s, "bob").is_some_and(|r| r.contains("bob (1)"))
    });
    assert!(screen.find("carol (2)") < screen.find("bob (1)"), "the latest conversation first:\n{screen}");

    // Down opens carol's (the first): her messages, the count gone; alice answers.
    tmux.keys(&["Down"]);
    tmux.wait("carol's conversation", |s| s.contains("carol: carol here") && s.contains("carol: second from carol") && s.contains("to carol"));
    tmux.type_text("hi carol, got it");
    tmux.keys(&["Enter"]);
    let screen = tmux.wait("alice's message", |s| s.contains("alice: hi carol, got it") && s.contains("sent message"));
    assert!(list_row(&screen, "carol").is_some_and(|r| !r.contains('(')), "read:\n{screen}");
    let history = carol.run("history alice");
    assert_eq!(history["messages"].as_array().map(|m| m.len()), Some(3), "{history}");
    // A name that is nobody's leaves carol's conversation open (a stranger's try: it closed).
    tmux.type_text("/open nobody2");
    tmux.keys(&["Enter"]);
    let screen = tmux.wait("the refusal", |s| s.contains("/open: no account named \"nobody2\""));
    assert!(screen.contains("alice: hi carol, got it") && screen.contains("to carol") && list_row(&screen, "nobody2").is_none(), "{screen}");

    // Down again: bob's conversation; a message from him arrives in it live.
    tmux.keys(&["Down"]);
    tmux.wait("bob's conversation", |s| s.contains("bob: hi alice, it is bob") && s.contains("to bob"));
    assert_eq!(bob.run("send alice are you there?")["type"], "result");
    tmux.wait("the live message", |s| s.contains("bob: are you there?"));

    // A resize redraws the whole layout at the new size.
    tmux.resize(70, 20);
    let screen = tmux.wait("the smaller screen", |s| {
        let rows: Vec<&str> = s.lines().collect();
        rows.len() >= 20 && rows[19].starts_with("alice@test-cluster") && rows[0].chars().count() == 70
    });
    assert!(screen.contains("bob: are you there?"), "{screen}");

    // Ctrl-C logs out and leaves the full screen, with status 1: one command (the /open of
    // nobody) was refused, as in the line client.
    tmux.keys(&["C-c"]);
    tmux.wait("the logout", |s| s.contains("logged out") && s.contains("client exited with status 1"));
    drop(tmux);

    // Bob writes while alice is away: the next start lists him with his unread count, which
    // comes from the replicas (nothing was read meanwhile).
    assert_eq!(bob.run("send alice while you were away")["type"], "result");
    let tmux = tui(&cluster, &dir, "alice");
    let screen = tmux.wait("the unread count", |s| list_row(s, "bob").is_some_and(|r| r.contains("bob (1)")));
    assert!(screen.contains("logged in as alice · 1 unread message"), "{screen}");
    assert!(list_row(&screen, "carol").is_some_and(|r| !r.contains('(')), "{screen}");
    tmux.keys(&["C-c"]);
    tmux.wait("the logout", |s| s.contains("client exited with status 0"));
}

/// The offer to create the account takes another password after a weak one, and after a
/// confirmation that differs (a stranger's try: the client exited after a weak one).
#[test]
fn the_create_offer_asks_again_after_a_weak_password_or_a_differing_confirmation() {
    let cluster = OneReplica::start("tui-weak");
    let dir = common::TempDir::new("tui-weak-socket");
    let command = format!(
        "env TZ=UTC {} chat --config {} --user dave --tui --timeout-ms 2000; echo client exited with status $?",
        common::bin(),
        cluster.client_config.display()
    );
    let tmux = Tmux::start(&dir.0, &command);
    tmux.wait("the password prompt", |s| s.contains("password for dave:"));
    tmux.type_text("sunshine");
    tmux.keys(&["Enter"]);
    tmux.wait("the offer", |s| s.contains("no account named dave on this cluster: create it? [y/N]"));
    tmux.type_text("y");
    tmux.keys(&["Enter"]);
    tmux.wait("the refusal and another prompt", |s| s.contains("too easy to guess") && s.contains("another password for dave"));
    let strong = "violet harbour quietly juggles anvils";
    tmux.type_text(strong);
    tmux.keys(&["Enter"]);
    tmux.wait("the confirmation", |s| s.contains("again, to confirm"));
    tmux.type_text("violet harbour quietly juggles anvilz");
    tmux.keys(&["Enter"]);
    tmux.wait("the mismatch and the password asked again", |s| s.contains("the two passwords differ") && s.contains("Enter keeps the last one"));
    tmux.type_text(strong);
    tmux.keys(&["Enter"]);
    let screen = tmux.wait("the confirmation again", |s| s.matches("again, to confirm").count() == 2);
    assert!(!screen.contains("client exited"), "{screen}");
    tmux.type_text(strong);
    tmux.keys(&["Enter"]);
    tmux.wait("the full screen", |s| s.contains("conversations") && s.contains("dave@test-cluster"));
    tmux.keys(&["C-c"]);
    tmux.wait("the logout", |s| s.contains("logged out") && s.contains("client exited with status"));
}

#[test]
fn with_no_quorum_the_full_screen_client_restores_the_terminal_and_says_why_once() {
    let mut cluster = OneReplica::start("tui-down");
    let dir = common::TempDir::new("tui-down-socket");
    let mut bob = cluster.chat("bob", "pw");
    assert_eq!(bob.run("create")["type"], "result");
    drop(bob);
    let tmux = tui(&cluster, &dir, "alice");
    tmux.type_text("y");
    tmux.keys(&["Enter"]);
    tmux.wait("the full screen", |s| s.contains("conversations") && s.contains("1/1"));
    cluster.kill9();
    tmux.type_text("/open bob");
    tmux.keys(&["Enter"]);
    let screen = tmux.wait("the exit", |s| s.contains("client exited with status 2"));
    assert_eq!(screen.matches("no quorum").count(), 1, "said once:\n{screen}");
    assert!(!screen.contains("conversations"), "the full screen is gone:\n{screen}");
    std::thread::sleep(Duration::from_millis(100));
}

/// `/delete` hides a message from the one who deletes it, `/logout` closes the session,
/// and `/delete-account` asks first and then deletes (the full-screen commands).
#[test]
fn delete_logout_and_delete_account_in_the_full_screen_client() {
    let cluster = OneReplica::start("tui-commands");
    let dir = common::TempDir::new("tui-commands-socket");
    let tmux = tui(&cluster, &dir, "alice");
    tmux.wait("the offer to create the account", |s| s.contains("create it? [y/N]"));
    tmux.type_text("y");
    tmux.keys(&["Enter"]);
    tmux.wait("the full screen", |s| s.contains("conversations") && s.contains("alice@test-cluster"));
    let mut bob = cluster.chat("bob", "pw");
    assert_eq!(bob.run("create")["type"], "result");
    let id = bob.run("send alice delete me")["id"].as_u64().expect("an id");
    assert_eq!(bob.run("send alice keep me")["type"], "result");
    tmux.wait("bob's messages", |s| list_row(s, "bob").is_some());
    tmux.keys(&["Down"]);
    tmux.wait("bob's conversation", |s| s.contains("bob: delete me") && s.contains("bob: keep me"));
    tmux.type_text(&format!("/delete {id}"));
    tmux.keys(&["Enter"]);
    let screen = tmux.wait("the deletion", |s| s.contains("deleted 1 message(s)"));
    assert!(!screen.contains("bob: delete me") && screen.contains("bob: keep me"), "{screen}");
    let bobs = bob.run("history alice");
    assert_eq!(bobs["messages"].as_array().map(|m| m.len()), Some(2), "bob still has both: {bobs}");
    assert_eq!(bob.run("who")["names"], serde_json::json!(["alice", "bob"]));
    tmux.type_text("/logout");
    tmux.keys(&["Enter"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while bob.run("who")["names"] != serde_json::json!(["bob"]) {
        assert!(std::time::Instant::now() < deadline, "alice is still online after /logout");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(tmux);

    // Again, and delete the account: a question first, then gone.
    let tmux = tui(&cluster, &dir, "alice");
    tmux.wait("the full screen", |s| s.contains("conversations") && s.contains("alice@test-cluster"));
    tmux.type_text("/delete-account");
    tmux.keys(&["Enter"]);
    tmux.wait("the question", |s| s.contains("for good? type /delete-account yes"));
    assert_eq!(bob.run("list alice")["names"], serde_json::json!(["alice"]), "asked, not deleted yet");
    tmux.type_text("/delete-account yes");
    tmux.keys(&["Enter"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while bob.run("list alice")["names"] != serde_json::json!([]) {
        assert!(std::time::Instant::now() < deadline, "alice's account is still there");
        std::thread::sleep(Duration::from_millis(100));
    }
}
