//! Quintet: a chat service replicated on five replicas that keeps working, and loses no
//! acknowledged message, while any two replicas are crashed or lying.
//!
//! # Layout
//!
//! - [`chat`]: the deterministic chat state machine (`apply(request, context) -> reply`)
//!   and its state digest. Pure: no I/O, no clock.
//! - [`consensus`]: the ordering protocol (NOTEBOOK "QOP v1") as a sans-IO core: messages,
//!   requests and ticks in; persist, send, broadcast and commit actions out.
//! - [`sim`]: the deterministic, seeded simulator that drives the real core, chat state
//!   machine and client voting rule through crash and Byzantine faults (`quintet sim`).
//! - [`execute`]: a committed block on the chat state: every request checked again (cluster,
//!   the user's signature against the replicated key), then applied; shared by the replica
//!   and the simulator.
//! - [`rng`]: the seeded generator behind tests, benchmarks and the simulator.
//! - [`crypto`]: replica and user keys, password key derivation (Argon2id), domain-separated
//!   signing and strict verification.
//! - [`storage`]: the append-only log and CSV snapshots, behind the [`storage::Fs`] trait so
//!   tests can inject torn writes, failed fsyncs and corruption.
//! - [`wire`]: conversions between the protobuf messages ([`pb`]) and the chat types, with
//!   every size and shape check for input that comes off the network.
//! - [`config`] reads and writes `cluster.toml`; [`transport`] makes the TLS (or plaintext)
//!   endpoints of the replicas from it (the server's TLS is in `replica::gate`).
//! - [`replica`]: the async driver: gRPC service, the apply loop (log, fsync, reply), live
//!   delivery.
//! - [`client`]: the quorum client: send to every replica, accept `quorum` matching signed
//!   replies. Its voting rule, [`client::Tally`], is pure.
//! - [`recover`]: recovery of a stopped cluster after more than two faults (`quintet
//!   recover`, run by `reset.sh`).
//! - [`cli`]: the `quintet` subcommands.

pub mod byzantine;
pub mod chat;
pub mod cli;
pub mod client;
pub mod config;
pub mod consensus;
pub mod crypto;
pub mod evidence;
pub mod execute;
pub mod recover;
pub mod replica;
pub mod rng;
pub mod sim;
pub mod storage;
pub mod transport;
pub mod wire;

/// The generated protobuf and gRPC code (from `proto/quintet.proto`).
pub mod pb {
    tonic::include_proto!("quintet.v1");
}
