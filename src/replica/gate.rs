//! The connection gate: what a replica accepts before any request is read.
//!
//! Clients and peers share one port, and anyone who can reach it can open sockets. The gate
//! keeps that cheap and bounded:
//! - the open-file limit is raised to its hard limit at start, and the number of connections
//!   held is capped below it (leaving descriptors for the storage), in all and per source
//!   address; a connection past a cap is closed as soon as it is accepted;
//! - a connection must send the HTTP/2 preface within `HANDSHAKE_TIMEOUT`, and one that
//!   sends nothing for `IDLE_TIMEOUT` is closed (the server pings every live connection
//!   more often than that, and a real client answers);
//! - an accept error (out of descriptors, out of memory) backs off instead of retrying at
//!   once, which is what spun a replica at full CPU before;
//! - with TLS, the handshake has the same deadline (`server_tls`).

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};
use tonic::transport::server::{Connected, TcpConnectInfo};

/// Time from accept to the end of the HTTP/2 preface (in plaintext), or to the end of the
/// TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection that sends nothing for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// The server's HTTP/2 ping interval: a live client's answer keeps its connection open.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// Concurrent streams on one connection.
pub const STREAMS_PER_CONNECTION: u32 = 64;
/// Connections held at most, whatever the open-file limit.
const CONNECTIONS_MAX: usize = 4_096;
/// Descriptors kept for the storage, the peers' outgoing links and the runtime.
const FD_RESERVE: u64 = 128;
/// The HTTP/2 client preface ("PRI * HTTP/2.0...").
const PREFACE_LEN: u64 = 24;

/// How many connections the gate holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub total: usize,
    pub per_address: usize,
}

impl Limits {
    /// Limits that fit under `open_files` descriptors.
    pub fn for_open_files(open_files: u64) -> Limits {
        let total = (open_files.saturating_sub(FD_RESERVE) as usize).clamp(16, CONNECTIONS_MAX);
        Limits { total, per_address: (total / 8).max(8) }
    }
}

/// Raises this process's soft open-file limit to its hard limit; returns the new soft limit.
pub fn raise_open_file_limit() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed to them.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1_024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit.rlim_cur = limit.rlim_max;
            }
        }
    }
    limit.rlim_cur as u64
}

#[derive(Default)]
struct Counts {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// What the gate has let in; shared with every permit.
struct Held {
    limits: Limits,
    counts: Mutex<Counts>,
}

impl Held {
    fn admit(self: &Arc<Self>, address: IpAddr) -> Option<Permit> {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let from_address = counts.by_address.get(&address).copied().unwrap_or(0);
        if counts.total >= self.limits.total || from_address >= self.limits.per_address {
            return None;
        }
        counts.total += 1;
        counts.by_address.insert(address, from_address + 1);
        Some(Permit { held: self.clone(), address })
    }
}

/// One admitted connection's place; given back when the connection is dropped.
struct Permit {
    held: Arc<Held>,
    address: IpAddr,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut counts = self.held.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts.total -= 1;
        if let Some(n) = counts.by_address.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                counts.by_address.remove(&self.address);
            }
        }
    }
}

/// Accepts on `listener` behind the gate; the stream ends when the receiver is dropped.
pub fn incoming(listener: TcpListener, limits: Limits) -> tokio_stream::wrappers::ReceiverStream<io::Result<Guarded>> {
    let (tx, rx) = mpsc::channel(16);
    let held = Arc::new(Held { limits, counts: Mutex::new(Counts::default()) });
    tokio::spawn(async move {
        let mut backoff = Duration::ZERO;
        let (mut refused, mut errors) = (Reported::new("connections refused: the gate is full"), Reported::new("accept failed"));
        loop {
            let accepted = tokio::select! {
                _ = tx.closed() => return,
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, from)) => {
                    backoff = Duration::ZERO;
                    let _ = stream.set_nodelay(true);
                    match held.admit(from.ip()) {
                        Some(permit) => {
                            if tx.send(Ok(Guarded::new(stream, permit))).await.is_err() {
                                return;
                            }
                        }
                        None => refused.count(&format!("from {}", from.ip())),
                    }
                }
                Err(e) => {
                    // Out of descriptors or memory: the same accept would fail again at once.
                    backoff = (backoff * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
                    errors.count(&e.to_string());
                    tokio::time::sleep(backoff).await;
                }
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// A warning that repeats at most every 10 s, with how many times it happened.
struct Reported {
    what: &'static str,
    since: u64,
    last: Option<Instant>,
}

impl Reported {
    fn new(what: &'static str) -> Self {
        Reported { what, since: 0, last: None }
    }

    fn count(&mut self, detail: &str) {
        self.since += 1;
        if self.last.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
            tracing::warn!(times = self.since, "{} ({detail})", self.what);
            self.since = 0;
            self.last = Some(Instant::now());
        }
    }
}

/// An admitted connection: a TCP stream with its permit and its read deadline.
pub struct Guarded {
    inner: TcpStream,
    _permit: Permit,
    deadline: Pin<Box<Sleep>>,
    read: u64,
    last_read: Instant,
}

impl Guarded {
    fn new(inner: TcpStream, permit: Permit) -> Self {
        let now = Instant::now();
        Guarded { inner, _permit: permit, deadline: Box::pin(tokio::time::sleep_until(now + HANDSHAKE_TIMEOUT)), read: 0, last_read: now }
    }

    /// The deadline has passed: closes the connection, or moves the deadline to
    /// `IDLE_TIMEOUT` after the last read if the client has spoken since.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        while self.deadline.as_mut().poll(cx).is_ready() {
            if self.read < PREFACE_LEN {
                return true;
            }
            let next = self.last_read + IDLE_TIMEOUT;
            if next <= Instant::now() {
                return true;
            }
            self.deadline.as_mut().reset(next);
        }
        false
    }
}

impl AsyncRead for Guarded {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let n = (buf.filled().len() - before) as u64;
                if n > 0 {
                    let first_idle = self.read < PREFACE_LEN && self.read + n >= PREFACE_LEN;
                    self.read += n;
                    self.last_read = Instant::now();
                    if first_idle {
                        let next = self.last_read + IDLE_TIMEOUT;
                        self.deadline.as_mut().reset(next);
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending if self.expired(cx) => {
                let what = if self.read < PREFACE_LEN { "no HTTP/2 preface in time" } else { "idle too long" };
                Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, what)))
            }
            other => other,
        }
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl Connected for Guarded {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.inner.connect_info()
    }
}

/// The server's TLS: its identity, and the config's certificates as the only ones a peer
/// may present (clients present none).
pub fn server_tls(config: &crate::config::ClusterConfig, identity: &crate::crypto::tls::TlsIdentity) -> tonic::transport::ServerTlsConfig {
    use tonic::transport::{Certificate, Identity};
    let members: String =
        config.replicas.iter().filter_map(|r| r.certificate_der()).map(|der| crate::crypto::tls::certificate_pem(&der)).collect();
    tonic::transport::ServerTlsConfig::new()
        .identity(Identity::from_pem(&identity.certificate_pem, identity.key_pem.as_bytes()))
        .client_ca_root(Certificate::from_pem(members))
        .client_auth_optional(true)
        .timeout(HANDSHAKE_TIMEOUT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_fit_under_the_open_file_limit() {
        assert_eq!(Limits::for_open_files(1 << 20), Limits { total: 4_096, per_address: 512 });
        assert_eq!(Limits::for_open_files(1_024), Limits { total: 896, per_address: 112 });
        assert_eq!(Limits::for_open_files(256), Limits { total: 128, per_address: 16 });
        assert_eq!(Limits::for_open_files(64), Limits { total: 16, per_address: 8 });
    }

    #[test]
    fn permits_are_counted_per_address_and_given_back_on_drop() {
        let held = Arc::new(Held { limits: Limits { total: 3, per_address: 2 }, counts: Mutex::new(Counts::default()) });
        let (a, b): (IpAddr, IpAddr) = ("127.0.0.2".parse().unwrap(), "127.0.0.3".parse().unwrap());
        let first = held.admit(a).expect("room");
        let _second = held.admit(a).expect("room");
        assert!(held.admit(a).is_none(), "per-address cap");
        let _third = held.admit(b).expect("another address has room");
        assert!(held.admit(b).is_none(), "total cap");
        drop(first);
        assert!(held.admit(b).is_some(), "a dropped connection frees its place");
    }
}
