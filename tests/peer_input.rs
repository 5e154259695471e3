//! Hostile bytes on a real peer link: raw garbage on the socket, frames that claim the wrong
//! sender or addressee, a bad signature, another cluster's signature, and a correctly
//! signed frame of undecodable messages. Each is refused; the replicas keep ordering.

mod common;

use std::io::Write;
use std::time::Duration;

use common::five::Cluster;
use quintet::config::ClusterConfig;
use quintet::crypto::PeerCrypto;
use quintet::pb;
use quintet::wire::peer;

fn frame(crypto: &PeerCrypto, from: u32, to: u32, messages: Vec<Vec<u8>>) -> pb::PeerFrame {
    signed(crypto, from, to, peer::encode_batch(messages))
}

/// A frame of any batch bytes, signed.
fn signed(crypto: &PeerCrypto, from: u32, to: u32, batch: Vec<u8>) -> pb::PeerFrame {
    let mut f = pb::PeerFrame { from, to, batch, signature: Vec::new(), sent_at_us: 0 };
    f.signature = crypto.sign_frame(&peer::frame_signed_bytes(&f));
    f
}

async fn offer(address: &str, frames: Vec<pb::PeerFrame>) -> tonic::Status {
    let mut client = pb::peer_client::PeerClient::connect(format!("http://{address}")).await.expect("connects");
    client.stream(tokio_stream::iter(frames)).await.expect_err("the replica refuses the stream")
}

#[test]
fn garbage_and_forged_frames_on_a_peer_link_are_refused_and_ordering_goes_on() {
    let cluster = Cluster::start("peerinput", 50);
    let config = ClusterConfig::load(cluster.config()).unwrap();
    let target = config.replicas[2].address.clone();
    let keys: Vec<_> = config.replicas.iter().map(|r| r.verifying_key()).collect();
    let key_of = |i: usize| quintet::crypto::read_key_file(&cluster.config().parent().unwrap().join(format!("{}.key", config.replicas[i].id))).unwrap();
    let as_a = PeerCrypto::new(key_of(0), keys.clone(), &config.cluster_id);
    let other_cluster = PeerCrypto::new(key_of(0), keys.clone(), "another cluster");

    // Raw garbage on the socket: the connection is dropped, nothing else happens.
    let mut raw = std::net::TcpStream::connect(&target).unwrap();
    let _ = raw.write_all(&[0xde, 0xad, 0xbe, 0xef].repeat(4096));
    drop(raw);

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let vote = vec![0x12, 0x00];
        let refused = offer(&target, vec![frame(&as_a, 0, 3, vec![vote.clone()])]).await;
        assert_eq!(refused.code(), tonic::Code::PermissionDenied, "addressed to another replica: {refused:?}");
        let refused = offer(&target, vec![frame(&as_a, 2, 2, vec![vote.clone()])]).await;
        assert_eq!(refused.code(), tonic::Code::PermissionDenied, "claims to come from the replica itself: {refused:?}");
        let mut forged = frame(&as_a, 1, 2, vec![vote.clone()]);
        forged.signature[0] ^= 1;
        let refused = offer(&target, vec![forged]).await;
        assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
        let refused = offer(&target, vec![frame(&other_cluster, 0, 2, vec![vote.clone()])]).await;
        assert_eq!(refused.code(), tonic::Code::Unauthenticated, "another cluster's signature: {refused:?}");
        let refused = offer(&target, vec![frame(&as_a, 0, 2, vec![vec![0xff; 64]])]).await;
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "undecodable message: {refused:?}");
        let many = frame(&as_a, 0, 2, vec![Vec::new(); 100_000]);
        let refused = offer(&target, vec![many]).await;
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "too many messages: {refused:?}");
        // Counted before allocating: a batch of 4 million empty messages (8 MB on the wire,
        // about 100 MB once decoded) and one message that is a block of 1.5 million empty
        // requests are refused by their counts.
        let refused = offer(&target, vec![signed(&as_a, 0, 2, [0x0a, 0x00].repeat(4_000_000))]).await;
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "a batch of empty messages: {refused:?}");
        assert!(refused.message().contains("too many"), "{refused:?}");
        let requests = [0x3a, 0x00].repeat(1_500_000); // Block.requests (field 7), empty, 3 MB
        let mut block = vec![0x42]; // PeerMessage.block (field 8)
        prost::encoding::encode_varint(requests.len() as u64, &mut block);
        block.extend_from_slice(&requests);
        let refused = offer(&target, vec![frame(&as_a, 0, 2, vec![block])]).await;
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "a block of empty requests: {refused:?}");
        assert!(refused.message().contains("too many"), "{refused:?}");
    });

    // The cluster still orders, and the attacked replica is in step with the others.
    let mut alice = cluster.chat("alice");
    assert_eq!(alice.run("create")["type"], "result");
    assert_eq!(alice.run("send alice hello")["type"], "result");
    drop(alice);
    cluster.wait_converged(Duration::from_secs(30));
}
