//! A tmux server on a private socket in a test's folder, for driving a client as a person
//! at a terminal would (send-keys) and reading its screen (capture-pane).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A tmux server on a private socket, killed (by PID) when dropped.
pub struct Tmux {
    socket: PathBuf,
    pid: Option<u32>,
}

impl Tmux {
    pub fn start(dir: &Path, command: &str) -> Tmux {
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

    pub fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux").arg("-S").arg(&self.socket).args(args).output().expect("tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "chat"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    /// Types text literally (no key names).
    pub fn type_text(&self, text: &str) {
        self.tmux(&["send-keys", "-t", "chat", "-l", text]);
    }

    pub fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", "chat", "-S", "-200"])
    }

    /// The visible screen with its colours as escape sequences.
    pub fn coloured(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-e", "-t", "chat"])
    }

    /// The visible screen only (a full-screen program's rows).
    pub fn visible(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", "chat"])
    }

    pub fn resize(&self, width: u16, height: u16) {
        self.tmux(&["resize-window", "-t", "chat", "-x", &width.to_string(), "-y", &height.to_string()]);
    }

    /// Waits until the screen satisfies `ok`, within 30 s.
    pub fn wait(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
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

