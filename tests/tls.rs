//! TLS on the client links (the peer links: `peer_input.rs`): what crosses the network is
//! unreadable, and a client that does not speak TLS or pins another certificate gets no
//! service. The plaintext control shows the eavesdropper below does read a plaintext link.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Chat, OneReplica};

/// An eavesdropper: a relay on loopback that passes every byte between its clients and
/// `to`, and keeps a copy of all of them.
fn relay(to: std::net::SocketAddr) -> (std::net::SocketAddr, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(to) else { continue };
            for (mut from, mut into) in [(client.try_clone().unwrap(), server.try_clone().unwrap()), (server, client)] {
                let record = record.clone();
                std::thread::spawn(move || {
                    let mut buffer = [0u8; 16 * 1024];
                    while let Ok(n @ 1..) = from.read(&mut buffer) {
                        record.lock().unwrap().extend_from_slice(&buffer[..n]);
                        if into.write_all(&buffer[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = into.shutdown(Shutdown::Both);
                });
            }
        }
    });
    (address, seen)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A client config for `replica` that reaches it at `address`.
fn client_config(replica: &OneReplica, address: &str, name: &str) -> PathBuf {
    let path = replica.dir.0.join(name);
    std::fs::write(&path, replica.config_for(address).to_toml()).unwrap();
    path
}

#[test]
fn what_crosses_the_network_is_unreadable_and_the_plaintext_control_is_read() {
    for plaintext in [false, true] {
        let replica = if plaintext { OneReplica::start_plaintext("tls-control") } else { OneReplica::start("tls-wire") };
        let (address, seen) = relay(replica.addr);
        let config = client_config(&replica, &address.to_string(), "through-relay.toml");
        let marker = format!("the-marker-{}", std::process::id());
        let mut alice = Chat::start(&config, "alice", "alice's password", &[]);
        assert_eq!(alice.run("create")["type"], "result");
        assert_eq!(alice.run(&format!("send alice {marker}"))["type"], "result");
        alice.finish();
        let seen = seen.lock().unwrap();
        assert!(seen.len() > 1_000, "the relay carried the session ({} bytes)", seen.len());
        let readable = contains(&seen, marker.as_bytes()) || contains(&seen, b"alice");
        if plaintext {
            assert!(readable, "control: a plaintext link shows the message and the user to the relay");
        } else {
            assert!(!readable, "over TLS the relay saw neither the message nor the user name");
        }
        println!("{}: relay saw {} bytes, message readable: {readable}", if plaintext { "plaintext" } else { "TLS" }, seen.len());
    }
}

#[test]
fn a_client_without_tls_or_pinning_another_certificate_gets_no_service() {
    let replica = OneReplica::start("tls-refuse");
    // The same replica, with the certificate left out of the client's config (plaintext),
    // and with another key's certificate pinned (what a man in the middle would present).
    let mut plain = replica.config_for(&replica.addr.to_string());
    plain.replicas[0].certificate.clear();
    let plain_path = replica.dir.0.join("plain.toml");
    std::fs::write(&plain_path, plain.to_toml()).unwrap();
    let mut other = replica.config_for(&replica.addr.to_string());
    other.replicas[0].certificate = quintet::crypto::tls::certificate_text(&quintet::crypto::generate_key());
    let other_path = replica.dir.0.join("other-certificate.toml");
    std::fs::write(&other_path, other.to_toml()).unwrap();
    for (what, path) in [("plaintext", &plain_path), ("another certificate", &other_path)] {
        let mut client = Chat::start(path, "bob", "bob's password", &["--timeout-ms", "1500"]);
        client.send("create");
        let answer = client.next(Duration::from_secs(30)).expect("the client reports");
        assert_eq!(answer["type"], "fatal", "{what}: {answer}");
        assert!(answer.to_string().contains("quorum"), "{what}: no quorum, said plainly: {answer}");
        let (code, _) = client.finish();
        assert_ne!(code, Some(0), "{what}");
    }
    // The replica served nobody meanwhile and still serves a client that pins it.
    let mut alice = replica.chat("alice", "alice's password");
    assert_eq!(alice.run("create")["type"], "result");
    assert!(!replica.logs().contains("panicked"));
}
