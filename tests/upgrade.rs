//! Versions: a data folder written by the release before this one's format changes
//! (`tests/fixtures/data-v1`: one replica, 25 messages from alice to bob, an image at
//! height 50 and the chain after it; made with that release's `quintet init`, `replica`
//! and `chat`) opens with this release, which marks it as its own version; a folder of a
//! newer version is refused with one line.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Chat, Proc, TempDir, bin, line_reader};

fn copy(from: &Path, to: &Path) {
    let status = Command::new("cp").arg("-r").arg(from).arg(to).status().unwrap();
    assert!(status.success());
}

/// The fixture in a temporary folder, with private modes and a free port.
fn fixture() -> TempDir {
    let dir = TempDir::new("upgrade");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/data-v1");
    for name in ["cluster.toml", "A.key", "A"] {
        copy(&root.join(name), &dir.0.join(name));
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = std::fs::read_to_string(dir.0.join("cluster.toml")).unwrap();
    let config: String = config
        .lines()
        .map(|l| if l.starts_with("address = ") { format!("address = \"127.0.0.1:{port}\"") } else { l.to_string() })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(dir.0.join("cluster.toml"), config + "\n").unwrap();
    for (name, mode) in [("A.key", 0o600), ("A", 0o700), ("cluster.toml", 0o600)] {
        std::fs::set_permissions(dir.0.join(name), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    dir
}

fn start(dir: &TempDir) -> Result<Proc, String> {
    let mut child = Command::new(bin())
        .args(["replica", "--id", "A", "--config"])
        .arg(dir.0.join("cluster.toml"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = line_reader(child.stdout.take().unwrap());
    match lines.recv_timeout(Duration::from_secs(30)) {
        Ok(_) => Ok(Proc(child)),
        Err(_) => {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

#[test]
fn a_folder_of_the_previous_release_opens_with_every_message_and_is_marked_version_2() {
    let dir = fixture();
    assert!(!dir.0.join("A/VERSION").exists(), "the fixture predates VERSION");
    let replica = start(&dir).unwrap_or_else(|log| panic!("the old folder did not open: {log}"));
    let mut bob = Chat::start(&dir.0.join("cluster.toml"), "bob", "bob-pw", &["--timeout-ms", "20000"]);
    assert_eq!(bob.run("login")["type"], "result");
    let read = bob.run("read 100");
    let texts: Vec<&str> = read["messages"].as_array().unwrap_or_else(|| panic!("{read}")).iter().map(|m| m["text"].as_str().unwrap()).collect();
    let expected: Vec<String> = (1..=25).map(|i| format!("before the upgrade {i}")).collect();
    assert_eq!(texts, expected);
    assert_eq!(bob.run("send alice after the upgrade")["type"], "result");
    drop(bob);
    drop(replica);
    assert_eq!(std::fs::read_to_string(dir.0.join("A/VERSION")).unwrap().trim(), "2");
}

#[test]
fn a_folder_of_a_newer_version_is_refused_with_one_line() {
    let dir = fixture();
    std::fs::write(dir.0.join("A/VERSION"), "7\n").unwrap();
    let log = start(&dir).err().expect("a newer folder must be refused");
    assert!(log.contains("data format version 7, written by a newer release"), "{log}");
}
