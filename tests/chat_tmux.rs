//! The line client as a person uses it, under tmux (a real terminal): Tab completion,
//! arrow keys, history recall, the prompt with the cluster's health, a delivery arriving
//! while a line is half typed (printed above it; the typing survives), colour (none with
//! `NO_COLOR`), `delete-account` asking first, and Ctrl-D logging out. tmux runs on its own socket in the test's folder; its server is killed by PID.

mod common;

use std::time::Duration;

use common::OneReplica;
use common::tmux::Tmux;

#[test]
fn a_person_at_a_terminal_edits_completes_recalls_and_is_not_interrupted_by_deliveries() {
    let cluster = OneReplica::start("tmux");
    let dir = common::TempDir::new("tmux-socket");
    let command = format!(
        "env QUINTET_PASSWORD=pw TZ=UTC {} chat --config {} --user alice; echo client exited with status $?",
        common::bin(),
        cluster.client_config.display()
    );
    let tmux = Tmux::start(&dir.0, &command);
    tmux.wait("the prompt", |s| s.contains("alice@test-cluster") && s.contains("-/1>"));

    // Tab completes a command; the prompt then shows that the one replica answered.
    tmux.type_text("crea");
    tmux.keys(&["Tab", "Enter"]);
    tmux.wait("the account", |s| s.contains("created account alice") && s.contains("1/1>"));

    // Arrow keys edit the line: "helo", cursor left once, "l": "hello".
    tmux.type_text("send alice helo");
    tmux.keys(&["Left"]);
    tmux.type_text("l");
    tmux.keys(&["Enter"]);
    tmux.wait("the message", |s| s.contains("sent message"));
    tmux.type_text("history alice");
    tmux.keys(&["Enter"]);
    tmux.wait("the history", |s| s.contains("alice: hello") && s.contains("1 message(s)"));
    // Up recalls the last line; Enter runs it again.
    tmux.keys(&["Up", "Enter"]);
    tmux.wait("the history twice", |s| s.matches("1 message(s)").count() == 2);
    assert!(!tmux.screen().contains("\\u{1b}[D") && !tmux.screen().contains("^[[D"), "arrow keys are not typed into the line");

    // Bob sends while alice has half a line typed: the delivery is printed above it, and
    // her typing survives; Tab then completes bob's name, seen on the delivery.
    let mut bob = cluster.chat("bob", "pw");
    assert_eq!(bob.run("create")["type"], "result");
    tmux.type_text("history b");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(bob.run("send alice are you there?")["type"], "result");
    tmux.wait("the delivery", |s| s.contains("bob: are you there?"));
    tmux.keys(&["Tab"]);
    tmux.keys(&["Enter"]);
    let screen = tmux.wait("bob's history", |s| s.contains("history bob") && s.matches("bob: are you there?").count() >= 2);
    assert!(screen.lines().any(|l| l.starts_with("new [") && l.contains("bob: are you there?")), "{screen}");
    // A message shown while she sits at the prompt is marked read without her typing
    // anything: `inbox` a moment later has nothing unread (found by a new user's try).
    assert_eq!(bob.run("send alice still there?")["type"], "result");
    tmux.wait("the second delivery", |s| s.contains("bob: still there?"));
    std::thread::sleep(Duration::from_millis(1_500));
    tmux.type_text("inbox");
    tmux.keys(&["Enter"]);
    let screen = tmux.wait("the inbox", |s| s.contains("conversation(s)"));
    assert!(screen.contains("0 unread in all"), "{screen}");

    // On a terminal the prompt is coloured (five dots, the user in bold).
    assert!(tmux.coloured().contains("\u{1b}[1malice@test-cluster"), "{}", tmux.coloured());
    // delete-account asks first on a terminal; anything but "yes" keeps the account.
    tmux.type_text("delete-account");
    tmux.keys(&["Enter"]);
    tmux.wait("the question", |s| s.contains("for good? type yes to delete:"));
    tmux.type_text("no");
    tmux.keys(&["Enter"]);
    tmux.wait("the answer", |s| s.contains("not deleted"));

    // Ctrl-D logs out and leaves, with status 0 (every command succeeded): the shell that
    // ran the client prints its status.
    tmux.keys(&["C-d"]);
    tmux.wait("the logout and the exit status", |s| s.contains("logged out") && s.contains("client exited with status 0"));
}

#[test]
fn with_no_color_a_terminal_gets_no_colour() {
    let cluster = OneReplica::start("tmux-nocolor");
    let dir = common::TempDir::new("tmux-nocolor-socket");
    let command = format!("env NO_COLOR=1 QUINTET_PASSWORD=pw {} chat --config {} --user alice", common::bin(), cluster.client_config.display());
    let tmux = Tmux::start(&dir.0, &command);
    tmux.wait("the prompt", |s| s.contains("alice@test-cluster -/1>"));
    tmux.type_text("create");
    tmux.keys(&["Enter"]);
    tmux.wait("the account", |s| s.contains("created account alice") && s.contains("1/1>"));
    tmux.type_text("sned x");
    tmux.keys(&["Enter"]);
    tmux.wait("the error", |s| s.contains("error: unknown command"));
    let coloured = tmux.coloured();
    assert!(!coloured.contains('\u{1b}'), "{coloured:?}");
}
