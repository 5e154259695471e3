//! The line client as a person uses it, under tmux (a real terminal): Tab completion,
//! arrow keys, history recall, the prompt with the cluster's health, a delivery arriving
//! while a line is half typed (printed above it; the typing survives), and Ctrl-D logging
//! out. tmux runs on its own socket in the test's folder; its server is killed by PID.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::OneReplica;

/// A tmux server on a private socket, killed (by PID) when dropped.
struct Tmux {
    socket: PathBuf,
    pid: Option<u32>,
}

impl Tmux {
    fn start(dir: &Path, command: &str) -> Tmux {
        let socket = dir.join("tmux.sock");
        let status = Command::new("tmux")
            .arg("-S")
            .arg(&socket)
            .args(["-f", "/dev/null", "new-session", "-d", "-x", "150", "-y", "40", "-s", "chat", command])
            .status()
            .expect("tmux runs (it is part of this machine's tools)");
        assert!(status.success(), "tmux new-session");
        let mut t = Tmux { socket, pid: None };
        t.pid = t.tmux(&["display-message", "-p", "#{pid}"]).trim().parse().ok();
        t.tmux(&["set-option", "-g", "remain-on-exit", "on"]);
        t
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux").arg("-S").arg(&self.socket).args(args).output().expect("tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "chat"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    /// Types text literally (no key names).
    fn type_text(&self, text: &str) {
        self.tmux(&["send-keys", "-t", "chat", "-l", text]);
    }

    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", "chat", "-S", "-200"])
    }

    /// Waits until the screen satisfies `ok`, within 30 s.
    fn wait(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if ok(&screen) {
                return screen;
            }
            if start.elapsed() > Duration::from_secs(30) {
                let pane = self.tmux(&["display-message", "-p", "-t", "chat", "dead=#{pane_dead} pid=#{pane_pid}"]);
                panic!("waited 30 s for {what}; pane {pane}; the screen:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        if let Some(pid) = self.pid {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
    }
}

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

    // Ctrl-D logs out and leaves, with status 0 (every command succeeded): the shell that
    // ran the client prints its status.
    tmux.keys(&["C-d"]);
    tmux.wait("the logout and the exit status", |s| s.contains("logged out") && s.contains("client exited with status 0"));
}
